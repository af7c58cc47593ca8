"""Page reading: text detection (PP-OCR DB detector), reading order, perspective crops and our recognizer.

``detect`` and ``crop`` are numpy / OpenCV / pyclipper only, so the Triton page model can run them;
``reader`` ties them to :class:`~lowres_ocr.network.inference.Recognizer`; ``commands`` is ``lowres-ocr read``.
"""
