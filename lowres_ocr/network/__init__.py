"""network stage of lowres-ocr."""
