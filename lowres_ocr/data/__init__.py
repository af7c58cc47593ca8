"""data stage of lowres-ocr."""
