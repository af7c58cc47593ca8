"""Dataset folders: ``labels.tsv`` (UTF-8, no header) beside the images.

Two kinds, told apart by the number of tab-separated columns:

- ``words``: ``path<TAB>label`` (a word crop);
- ``pairs``: ``hr_path<TAB>lr_path<TAB>label`` (TextZoom-style LR/HR pair).

Paths are relative to the folder. ``read_folder`` parses the file line by line and never stops at a bad
line: each one becomes a ``Problem`` naming the file, the line and the reason, and every good row is kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lowres_ocr.core.charset import CHARSET, outside_charset

LABELS = "labels.tsv"

#: Every reason a sample can be skipped for, in report order (code → words for people).
REASONS: dict[str, str] = {
    "wrong_encoding": "line is not valid UTF-8",
    "malformed_line": "malformed labels.tsv line",
    "duplicate_path": "duplicate path",
    "missing_path": "image file missing",
    "non_image": "not an image file",
    "corrupt_image": "corrupt or truncated image",
    "empty_label": "empty label",
    "too_long": "label longer than the limit",
    "outside_charset": "label has characters outside the charset",
}


@dataclass(frozen=True)
class Problem:
    """A skipped sample (or line): where it is, why, and the details."""

    where: str
    reason: str  # a key of REASONS
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {REASONS[self.reason]}: {self.detail}"


@dataclass(frozen=True)
class Row:
    """One well-formed line: ``paths`` is ``(image,)`` for words or ``(hr, lr)`` for pairs."""

    line: int
    label: str
    paths: tuple[str, ...]


@dataclass
class DatasetFolder:
    root: Path
    labels_file: Path
    kind: str  # "words" | "pairs"
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def where(self, row: Row) -> str:
        return f"{self.labels_file}:{row.line} ({', '.join(row.paths)})"

    def file(self, rel: str) -> Path:
        return self.root / rel


def _columns(kind: str) -> int:
    return 3 if kind == "pairs" else 2


def _bad_path(rel: str) -> str | None:
    if not rel:
        return "empty path column"
    p = PurePosixPath(rel)
    if p.is_absolute() or rel.startswith("\\") or ".." in p.parts:
        return f"path {rel!r} leaves the dataset folder"
    return None


def _decode_lines(raw: bytes, labels_file: Path) -> tuple[list[tuple[int, str]], list[Problem]]:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines, problems = [], []
    for n, chunk in enumerate(raw.split(b"\n"), start=1):
        chunk = chunk[:-1] if chunk.endswith(b"\r") else chunk
        if not chunk.strip():
            continue
        try:
            lines.append((n, chunk.decode("utf-8")))
        except UnicodeDecodeError as err:
            problems.append(Problem(f"{labels_file}:{n}", "wrong_encoding",
                                    f"byte {chunk[err.start]:#04x} at column {err.start + 1} ({chunk[:60]!r})"))
    return lines, problems


def detect_kind(lines: list[str]) -> str:
    """``pairs`` if most lines have 3 columns, else ``words``."""
    n3 = sum(1 for s in lines if s.count("\t") == 2)
    n2 = sum(1 for s in lines if s.count("\t") == 1)
    return "pairs" if n3 > n2 else "words"


def read_folder(folder: str | Path, labels: str = LABELS, kind: str | None = None) -> DatasetFolder:
    """Parse ``folder/labels``; structural problems (encoding, columns, paths, duplicates) are collected.

    Image files are not opened here (see ``lowres_ocr.data.build``). ``kind`` forces the kind instead of
    detecting it.
    """
    root = Path(folder)
    labels_file = root / labels
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    if not labels_file.is_file():
        raise FileNotFoundError(f"{labels_file} not found (a dataset folder needs {labels})")
    lines, problems = _decode_lines(labels_file.read_bytes(), labels_file)
    kind = kind or detect_kind([s for _, s in lines])
    ds = DatasetFolder(root, labels_file, kind, problems=problems)
    ncol = _columns(kind)
    first_seen: dict[str, int] = {}
    for n, text in lines:
        where = f"{labels_file}:{n}"
        cols = text.split("\t")
        if len(cols) != ncol:
            want = "hr_path<TAB>lr_path<TAB>label" if kind == "pairs" else "path<TAB>label"
            ds.problems.append(Problem(where, "malformed_line", f"{len(cols)} columns, expected {ncol} ({want}): {text[:80]!r}"))
            continue
        paths, label = tuple(cols[:-1]), cols[-1]
        bad = next((b for b in map(_bad_path, paths) if b), None)
        if bad:
            ds.problems.append(Problem(where, "malformed_line", bad))
            continue
        norm = [os.path.normpath(p) for p in paths]
        dup = next((p for p in norm if p in first_seen), None)
        if dup is not None or (len(norm) == 2 and norm[0] == norm[1]):
            first = first_seen.get(dup, n) if dup is not None else n
            ds.problems.append(Problem(where, "duplicate_path", f"{dup or norm[0]!r} already used on line {first}"))
            continue
        for p in norm:
            first_seen[p] = n
        ds.rows.append(Row(n, label, paths))
    return ds


def label_problem(label: str, charset: str | None = CHARSET, max_length: int = 0) -> tuple[str, str] | None:
    """``(reason, detail)`` if ``label`` is unusable under the filters, else None.

    ``charset=None`` accepts any character; ``max_length=0`` means no limit.
    """
    if not label:
        return "empty_label", "the label column is empty"
    if max_length and len(label) > max_length:
        return "too_long", f"{len(label)} characters > {max_length}: {label[:40]!r}"
    if charset is not None:
        bad = outside_charset(label, charset)
        if bad:
            return "outside_charset", f"{label!r} has {', '.join(repr(c) for c in bad)}"
    return None
