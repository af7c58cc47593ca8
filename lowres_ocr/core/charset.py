"""The 94-character case-sensitive vocabulary and the 36-character evaluation protocol."""

from __future__ import annotations

import string
import unicodedata

#: Printable ASCII without space: chr(33) .. chr(126), 94 symbols, case-sensitive.
CHARSET: str = "".join(chr(c) for c in range(33, 127))
#: Lower-case letters and digits: the usual case-insensitive benchmark protocol.
CHARSET_36: str = string.digits + string.ascii_lowercase
#: Index 0 is reserved (CTC blank / attention end-of-sequence); symbol i of CHARSET has id i + 1.
BLANK = 0
NUM_CLASSES = len(CHARSET) + 1
MAX_LABEL_LENGTH = 25

_INDEX = {ch: i + 1 for i, ch in enumerate(CHARSET)}


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
