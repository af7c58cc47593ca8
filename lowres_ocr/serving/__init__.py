"""serving stage of lowres-ocr."""
