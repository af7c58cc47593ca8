"""Copy a dataset folder into the project, storing oversized images downscaled.

Readers here use crops at ≤ 48 px height (recognizer 32 px, PP-OCR peers 48 px), so an image taller than
``max_height`` carries nothing they use: it is stored resized to ``max_height`` (aspect kept, same format:
PNG stays lossless, JPEG is re-encoded at quality 95, the quality of the source copies). The two images of a
TextZoom pair are resized by the same factor. Everything else is copied byte for byte.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lowres_ocr.data.datasets import read_folder


@dataclass
class CopyReport:
    files: int = 0
    downscaled: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


def _downscaled(src: Path, factor: float) -> bytes:
    with Image.open(src) as im:
        fmt = im.format
        w, h = im.size
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        small = im.resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    if fmt == "JPEG":
        small.convert("RGB").save(buf, "JPEG", quality=95)
    else:
        small.save(buf, fmt or "PNG", optimize=True)
    return buf.getvalue()


def copy_set(src: str | Path, dst: str | Path, max_height: int = 128) -> CopyReport:
    """Copy every file of ``src`` to ``dst``; images of rows taller than ``max_height`` are downscaled."""
    src, dst = Path(src), Path(dst)
    rep = CopyReport()
    scale: dict[str, float] = {}
    for name in ("labels.tsv", "labels_cs.tsv"):
        if not (src / name).is_file():
            continue
        ds = read_folder(src, name)
        if ds.problems:
            raise ValueError(f"{src}: {len(ds.problems)} bad lines, first: {ds.problems[0]}")
        for row in ds.rows:
            with Image.open(src / row.paths[0]) as im:  # the HR image decides for a pair
                h = im.size[1]
            if h > max_height:
                for p in row.paths:
                    scale[p] = max_height / h
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = f.relative_to(src).as_posix()
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        rep.files += 1
        rep.bytes_in += f.stat().st_size
        if rel in scale:
            out.write_bytes(_downscaled(f, scale[rel]))
            rep.downscaled += 1
        else:
            shutil.copyfile(f, out)
        rep.bytes_out += out.stat().st_size
    return rep
