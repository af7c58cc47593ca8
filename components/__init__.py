"""Kubeflow components of lowres-ocr: one folder per pipeline step (component.py, README.md, tests/)."""
