"""The multi-task network: SR branch, rectifier, recognition encoders, CTC head, losses."""

from lowres_ocr.network.model import (
    DEFAULT_LOSS_WEIGHTS,
    DEFAULT_MODEL,
    LowResOCR,
    build_model,
    load_checkpoint,
    load_model,
    save_checkpoint,
    tiny_config,
)

__all__ = ["DEFAULT_LOSS_WEIGHTS", "DEFAULT_MODEL", "LowResOCR", "build_model", "load_checkpoint", "load_model",
           "save_checkpoint", "tiny_config"]
