"""The project image every component runs in (built from the repository's Dockerfile).

Lightweight components take their base image at definition time, so it is a constant; set
``LOWRES_OCR_IMAGE`` when compiling to point the pipeline at your registry. The pipeline's ``image``
parameter is the image of the pods the train step creates (PyTorchJob / TrainJob).
"""

from __future__ import annotations

import os

DEFAULT_IMAGE = "ghcr.io/lowres-ocr/lowres-ocr:0.1.0-gpu"
PROJECT_IMAGE = os.environ.get("LOWRES_OCR_IMAGE", DEFAULT_IMAGE)
