"""cluster stage of lowres-ocr."""
