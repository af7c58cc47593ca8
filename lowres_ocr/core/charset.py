"""Recognizer vocabularies (a model setting) and the 36-character evaluation protocol.

A :class:`Charset` is the ordered list of symbols of the recognizer head; class 0 is reserved (CTC blank /
attention end-of-sequence) and symbol i has class i + 1. Two are in use: ``ascii`` (the 94 printable ASCII
symbols, a lean English-only head) and ``ppocr`` (every class of the pretrained PP-OCR classifier: its
dictionary, shipped in the recognizer ONNX file's metadata, plus the space). The module-level names
(``CHARSET``, ``NUM_CLASSES``, ``encode`` ...) are the ``ascii`` charset.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable, Sequence

#: Printable ASCII without space: chr(33) .. chr(126), 94 symbols, case-sensitive.
CHARSET: str = "".join(chr(c) for c in range(33, 127))
#: Lower-case letters and digits: the usual case-insensitive benchmark protocol.
CHARSET_36: str = string.digits + string.ascii_lowercase
#: Index 0 is reserved (CTC blank / attention end-of-sequence); symbol i of CHARSET has id i + 1.
BLANK = 0
NUM_CLASSES = len(CHARSET) + 1
MAX_LABEL_LENGTH = 25

_INDEX = {ch: i + 1 for i, ch in enumerate(CHARSET)}


class Charset:
    """An ordered vocabulary: ``symbols[i]`` has class id ``i + 1``; id 0 is blank / end of sequence."""

    def __init__(self, name: str, symbols: Sequence[str]) -> None:
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"charset {name!r}: symbols must be unique")
        if any(not s for s in symbols):
            raise ValueError(f"charset {name!r}: empty symbol")
        self.name = name
        self.symbols: tuple[str, ...] = tuple(symbols)
        self._index = {s: i + 1 for i, s in enumerate(self.symbols)}
        self.ascii_only = all(len(s) == 1 and 32 <= ord(s) < 127 for s in self.symbols)

    @property
    def num_classes(self) -> int:
        return len(self.symbols) + 1

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and other.symbols == self.symbols

    def __hash__(self) -> int:
        return hash(self.symbols)

    def __repr__(self) -> str:
        return f"Charset({self.name!r}, {len(self.symbols)} symbols)"

    def encode(self, text: str) -> list[int]:
        """Class ids of ``text``; raises KeyError naming the first character the charset lacks."""
        try:
            return [self._index[ch] for ch in text]
        except KeyError as err:
            raise KeyError(f"character {err.args[0]!r} is outside the {self.name} charset") from None

    def decode_ids(self, ids: Iterable[int]) -> str:
        """Class ids (0 = blank, skipped) back to text."""
        n = len(self.symbols)
        return "".join(self.symbols[i - 1] for i in ids if 0 < i <= n)

    def outside(self, text: str) -> list[str]:
        """Characters of ``text`` the charset lacks, in order of first appearance."""
        seen: list[str] = []
        for ch in text:
            if ch not in self._index and ch not in seen:
                seen.append(ch)
        return seen

    def clean_label(self, label: str, max_length: int = 0) -> str | None:
        """A training label in this charset, or None when it cannot be one.

        ASCII heads fold accents and drop spaces (``café au lait`` → ``cafeaulait``) and refuse labels with
        letters that have no ASCII form (a Chinese line is never shortened to its ASCII fragments). Other
        heads keep the text (NFKC, so full-width forms read as their usual symbols) and refuse labels holding a
        character they lack.
        """
        if self.ascii_only:
            if any(ord(ch) > 127 and unicodedata.category(ch).startswith("L") and not fold_to_ascii(ch) for ch in label):
                return None  # a letter with no ASCII form (CJK, Cyrillic ...): the label cannot be read by this head
            text = fold_to_ascii(label)
        else:
            text = unicodedata.normalize("NFKC", label).strip()
            text = " ".join(text.split()) if " " in self._index else "".join(text.split())
        if not text or (max_length and len(text) > max_length) or self.outside(text):
            return None
        return text

    def to_text(self) -> str:
        """One symbol per line (the Triton ``decode`` model's ``charset.txt`` and the ONNX metadata)."""
        return "\n".join(self.symbols)

    @classmethod
    def from_text(cls, name: str, text: str) -> "Charset":
        return cls(name, text.split("\n"))


ASCII = Charset("ascii", CHARSET)


def encode(text: str) -> list[int]:
    """Map a label to class ids; raises KeyError naming the first character outside CHARSET."""
    try:
        return [_INDEX[ch] for ch in text]
    except KeyError as err:
        raise KeyError(f"character {err.args[0]!r} is outside the 94-char charset") from None


def decode_ids(ids) -> str:
    """Class ids (0 = blank, skipped) back to text."""
    return "".join(CHARSET[i - 1] for i in ids if 0 < i <= len(CHARSET))


def outside_charset(text: str, charset: str = CHARSET) -> list[str]:
    """Characters of ``text`` that ``charset`` does not hold, in order of first appearance."""
    allowed = set(charset)
    seen: list[str] = []
    for ch in text:
        if ch not in allowed and ch not in seen:
            seen.append(ch)
    return seen


def fold_to_ascii(text: str) -> str:
    """Drop accents (``café`` → ``cafe``) and spaces so that labels fit the 94-char charset where possible."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded.replace(" ", "")


def normalize_36(text: str) -> str:
    """The case-insensitive protocol: lower-case, keep only [0-9a-z]."""
    return "".join(ch for ch in fold_to_ascii(text).lower() if ch in CHARSET_36)
