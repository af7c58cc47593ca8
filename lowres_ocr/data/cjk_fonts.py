"""The CJK fonts of the Chinese / mixed synthetic text, found by path in the Debian font packages.

``scripts/bootstrap`` installs fonts-wqy-zenhei, fonts-wqy-microhei, fonts-noto-cjk, fonts-arphic-ukai,
fonts-arphic-uming and fonts-droid-fallback. The ``train`` and ``test`` splits use disjoint faces, so a
recognizer evaluated on the test split has never seen its letterforms: train = WenQuanYi + Noto CJK SC,
test = AR PL UKai / UMing (brush and Ming styles) + Droid Sans Fallback.

A ``.ttc`` collection holds several faces; the face is picked by its family name (``ImageFont.getname``), not
by a hard-coded index, because the face order differs between package versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import ImageFont

SPLITS = ("train", "test")
PACKAGES = ("fonts-wqy-zenhei", "fonts-wqy-microhei", "fonts-noto-cjk", "fonts-arphic-ukai",
            "fonts-arphic-uming", "fonts-droid-fallback")
_WQY = "/usr/share/fonts/truetype/wqy/"
_NOTO = "/usr/share/fonts/opentype/noto/"
_ARPHIC = "/usr/share/fonts/truetype/arphic/"

#: split -> (path, family name of the face) of every face the split renders with
FACES: dict[str, tuple[tuple[str, str], ...]] = {
    "train": (
        (_WQY + "wqy-zenhei.ttc", "WenQuanYi Zen Hei"),
        (_WQY + "wqy-zenhei.ttc", "WenQuanYi Zen Hei Sharp"),
        (_WQY + "wqy-microhei.ttc", "WenQuanYi Micro Hei"),
        (_NOTO + "NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
        (_NOTO + "NotoSansCJK-Bold.ttc", "Noto Sans CJK SC"),
        (_NOTO + "NotoSerifCJK-Regular.ttc", "Noto Serif CJK SC"),
        (_NOTO + "NotoSerifCJK-Bold.ttc", "Noto Serif CJK SC"),
    ),
    "test": (
        (_ARPHIC + "ukai.ttc", "AR PL UKai CN"),
        (_ARPHIC + "uming.ttc", "AR PL UMing CN"),
        ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "Droid Sans Fallback"),
    ),
}


@dataclass(frozen=True)
class Face:
    """One font face: a file and the index of the face inside it (0 for a plain .ttf)."""

    path: str
    index: int
    name: str


def _face_index(path: str, family: str) -> int | None:
    """Index of the face ``family`` in the collection ``path``; None if the file or the face is missing."""
    if not Path(path).is_file():
        return None
    for index in range(32):
        try:
            font = ImageFont.truetype(path, 12, index=index)
        except OSError:  # past the last face of the collection
            return None
        if font.getname()[0] == family:
            return index
    return None


@cache
def faces(split: str) -> tuple[Face, ...]:
    """The installed faces of ``split``, in the fixed order of ``FACES`` (missing ones are left out)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    found = []
    for path, family in FACES[split]:
        index = _face_index(path, family)
        if index is not None:
            found.append(Face(path, index, f"{family} ({Path(path).name})"))
    return tuple(found)


def missing(split: str) -> list[str]:
    """``path (family)`` of each face of ``split`` that is not installed."""
    have = {(f.path, f.name.split(" (")[0]) for f in faces(split)}
    return [f"{p} ({fam})" for p, fam in FACES[split] if (p, fam) not in have]


def require(split: str) -> tuple[Face, ...]:
    """``faces(split)``, or a FileNotFoundError that names the Debian packages to install."""
    found = faces(split)
    if not found:
        raise FileNotFoundError(f"no CJK font of the {split!r} split is installed (looked for "
                                f"{', '.join(missing(split))}); install: apt-get install {' '.join(PACKAGES)}")
    return found
