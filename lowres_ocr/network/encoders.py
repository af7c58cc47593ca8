"""Recognition encoders: image [B, 3, 32, 128] in [0, 1] → feature sequence [B, T, D].

- ``PPOCREncoder``: the PP-OCR recognition backbone + neck interpreted from the ONNX file in the
  ``rapidocr`` wheel (pretrained start, fine-tuned here).
- ``ResNetEncoder``: a ResNet-style CNN + BiLSTM trained from scratch (small; used by tests and
  as the ASTER-style alternative).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lowres_ocr.core.charset import ASCII, Charset
from lowres_ocr.network.onnx_import import OnnxGraphModule

PPOCR_REC_FILE = "PP-OCRv6_rec_small.onnx"
PPOCR_FEATURE_NODE = "p2o.pd_op.transpose.8.0"  # [B, T, 120] before the classifier
PPOCR_CLASSIFIER = ("linear_8.w_0", "linear_8.b_0")


def rapidocr_model_path(name: str = PPOCR_REC_FILE) -> Path:
    """Where the installed ``rapidocr`` wheel keeps ``name``; a clear error if rapidocr is missing."""
    try:
        import rapidocr
    except ImportError as err:
        raise RuntimeError("recognizer init 'rapidocr' needs the rapidocr package (pip install rapidocr)") from err
    path = Path(rapidocr.__file__).parent / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in the installed rapidocr package")
    return path


@lru_cache(maxsize=1)
def ppocr_charset() -> Charset:
    """Every class of the pretrained PP-OCR classifier: its dictionary (ONNX metadata ``character``) + space."""
    import onnx

    proto = onnx.load(str(rapidocr_model_path()), load_external_data=False)
    chars = next(p.value for p in proto.metadata_props if p.key == "character").split("\n")
    return Charset("ppocr", [*chars, " "])


def model_charset(name: str, symbols_text: str | None = None) -> Charset:
    """The charset a model config names; ``symbols_text`` (stored in checkpoints) avoids reading the wheel."""
    if name == "ascii":
        return ASCII
    if name != "ppocr":
        raise ValueError(f"unknown charset {name!r} (expected 'ascii' or 'ppocr')")
    return Charset.from_text("ppocr", symbols_text) if symbols_text else ppocr_charset()


class PPOCREncoder(nn.Module):
    """Resize to 48×``width``, BGR, scale to [-1, 1], run the PP-OCR backbone and neck (stride 8 in width).

    An input already 48 px high (a direct-read geometry, ``sr_scale`` 1) is read at its own width.
    """

    def __init__(self, graph_spec: dict[str, Any], width: int = 192):
        super().__init__()
        self.width = width
        self.graph = OnnxGraphModule(graph_spec)
        self.feature_dim = int(graph_spec.get("feature_dim", 120))

    @classmethod
    def pretrained(cls, width: int = 192, charset: Charset = ASCII) -> tuple["PPOCREncoder", nn.Linear]:
        """Encoder and the CTC head: the PP-OCR classifier's rows of blank and each symbol of ``charset``."""
        import onnx
        from onnx import numpy_helper

        proto = onnx.load(str(rapidocr_model_path()))
        chars = next(p.value for p in proto.metadata_props if p.key == "character").split("\n")
        graph = OnnxGraphModule.from_onnx(proto, output=PPOCR_FEATURE_NODE)
        spec = dict(graph.spec, feature_dim=120)
        enc = cls(spec, width)
        enc.graph.load_state_dict(graph.state_dict())
        weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer if t.name in PPOCR_CLASSIFIER}
        w, b = weights[PPOCR_CLASSIFIER[0]], weights[PPOCR_CLASSIFIER[1]]
        position = {c: i + 1 for i, c in enumerate([*chars, " "])}  # PP-OCR: 0 is blank, i is chars[i-1], last is space
        missing = [c for c in charset.symbols if c not in position]
        if missing:
            raise ValueError(f"charset {charset.name}: {len(missing)} symbols have no PP-OCR class, e.g. {missing[:5]}")
        index = [0] + [position[c] for c in charset.symbols]
        head = nn.Linear(w.shape[0], len(index))
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(np.ascontiguousarray(w[:, index].T)))
            head.bias.copy_(torch.from_numpy(b[index].copy()))
        return enc, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != 48:  # fixed by the geometry, so ONNX export traces one branch
            x = F.interpolate(x, size=(48, self.width), mode="bilinear", align_corners=False)
        x = x.flip(1) * 2.0 - 1.0  # RGB [0,1] → BGR [-1,1], as PP-OCR was trained
        return self.graph(x)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: tuple[int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != (1, 1) or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.short(x))


class ResNetEncoder(nn.Module):
    """ResNet-style CNN (height pooled to 1, width stride 4) + BiLSTM: [B,3,32,128] → [B, 32, hidden]."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), hidden: int = 256):
        super().__init__()
        strides = [(2, 2), (2, 2), (2, 1), (2, 1)]
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        cin = widths[0]
        for cout, st in zip(widths, strides):
            layers.append(_BasicBlock(cin, cout, st))
            cin = cout
        self.cnn = nn.Sequential(*layers)
        self.rnn = nn.LSTM(cin, hidden // 2, num_layers=2, batch_first=True, bidirectional=True)
        self.feature_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cnn(x * 2.0 - 1.0)  # [B, C, 2, 32]
        f = f.mean(dim=2).permute(0, 2, 1)  # [B, 32, C]
        out, _ = self.rnn(f)
        return out
