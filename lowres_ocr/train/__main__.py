"""``python -m lowres_ocr.train``: the trainer entry point torchrun launches."""

import sys

from lowres_ocr.train.trainer import main

if __name__ == "__main__":
    sys.exit(main())
