"""lowres-ocr: read small, blurred, tilted, dark text.

Each module is one stage of the train → evaluate → export → serve pipeline.
"""

__version__ = "0.1.0"
