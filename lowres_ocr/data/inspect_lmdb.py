"""Summary of an LMDB for people: count, key format, label-length histogram, a few samples."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from lowres_ocr.data.lmdb_io import LmdbReader

KEY_FORMATS = {
    "words": "ASTER: num-samples, image-%09d, label-%09d",
    "pairs": "TextZoom: num-samples, image_hr-%09d, image_lr-%09d, label-%09d",
}


@dataclass
class SampleInfo:
    index: int  # 1-based key index
    label: str
    images: dict[str, str]  # role → "PNG 128x32" (or the decode error)


@dataclass
class LmdbSummary:
    path: Path
    kind: str
    key_format: str
    count: int
    label_lengths: dict[int, int] = field(default_factory=dict)
    samples: list[SampleInfo] = field(default_factory=list)


def _describe(data: bytes | None) -> str:
    if data is None:
        return "-"
    try:
        with Image.open(io.BytesIO(data)) as im:
            return f"{im.format} {im.size[0]}x{im.size[1]} {im.mode}"
    except Exception as err:  # a summary must not stop at one bad record
        return f"undecodable ({type(err).__name__})"


def summarize(path: str | Path, show: int = 5) -> LmdbSummary:
    """Read every label (cheap) and describe the first ``show`` samples."""
    with LmdbReader(path) as reader:
        lengths = Counter(len(label) for label in reader.labels())
        summary = LmdbSummary(Path(path), reader.kind, KEY_FORMATS[reader.kind], len(reader), dict(sorted(lengths.items())))
        for i in range(min(show, len(reader))):
            s = reader[i]
            roles = {"hr": s.hr, "lr": s.lr} if reader.kind == "pairs" else {"image": s.image}
            summary.samples.append(SampleInfo(i + 1, s.label, {k: _describe(v) for k, v in roles.items()}))
    return summary
