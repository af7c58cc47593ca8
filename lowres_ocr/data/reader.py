"""Evaluation sets: a dataset folder (``labels.tsv`` or a named variant) or an LMDB (ASTER / TextZoom keys).

A SET argument is ``PATH`` or ``PATH:LABELS`` where ``LABELS`` names another labels file of the folder,
e.g. ``data/iiit5k_test:labels_cs.tsv`` for the case-sensitive re-annotation. The set is then called
``iiit5k_test:labels_cs``. Anything that is not a readable set raises :class:`SetError` with a one-line
message naming it; problems of single samples never do (they are listed in the report instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lowres_ocr.data.datasets import LABELS, read_folder


class SetError(ValueError):
    """A SET argument that is missing or not in a supported format (one line, names the set)."""


@dataclass(frozen=True)
class SetSpec:
    path: Path
    labels: str | None = None  # another labels file of a folder; None = labels.tsv

    @property
    def name(self) -> str:
        base = self.path.name or str(self.path)
        if self.labels and self.labels != LABELS:
            return f"{base}:{Path(self.labels).stem}"
        return base

    def __str__(self) -> str:
        return f"{self.path}:{self.labels}" if self.labels else str(self.path)


def parse_spec(text: str) -> SetSpec:
    """``PATH`` or ``PATH:LABELS_FILE`` (only when ``PATH`` alone does not exist and the suffix ends in .tsv)."""
    if not text:
        raise SetError("empty SET argument")
    path = Path(text)
    if not path.exists() and ":" in text:
        head, _, tail = text.rpartition(":")
        if tail.endswith(".tsv") and "/" not in tail:
            return SetSpec(Path(head), tail)
    return SetSpec(path)


@dataclass
class RawSample:
    """One sample before decoding: ``where`` names it for people; ``hr`` is the word crop for word sets."""

    where: str
    label: str
    hr: bytes | None
    lr: bytes | None = None
    error: str | None = None  # the bytes could not be read (missing file, ...)


@dataclass
class EvalSet:
    spec: SetSpec
    kind: str  # "words" | "pairs"
    samples: list[RawSample]
    skipped_lines: list[dict[str, str]] = field(default_factory=list)  # malformed / duplicate lines of labels.tsv

    @property
    def name(self) -> str:
        return self.spec.name


def _read(path: Path) -> tuple[bytes | None, str | None]:
    try:
        return path.read_bytes(), None
    except OSError as err:
        return None, f"cannot read {path} ({err.strerror or err})"


def _load_folder(spec: SetSpec) -> EvalSet:
    labels = spec.labels or LABELS
    if not (spec.path / labels).is_file():
        extra = "" if spec.labels else " and no data.mdb (not a dataset folder nor an LMDB)"
        raise SetError(f"{spec}: {spec.path / labels} not found{extra}")
    try:
        folder = read_folder(spec.path, labels)
    except (OSError, ValueError) as err:
        raise SetError(f"{spec}: {err}") from None
    samples: list[RawSample] = []
    for row in folder.rows:
        where = f"{labels}:{row.line} ({', '.join(row.paths)})"
        if folder.kind == "pairs":
            hr, err_hr = _read(folder.file(row.paths[0]))
            lr, err_lr = _read(folder.file(row.paths[1]))
            samples.append(RawSample(where, row.label, hr, lr, err_hr or err_lr))
        else:
            data, err = _read(folder.file(row.paths[0]))
            samples.append(RawSample(where, row.label, data, None, err))
    skipped = [{"where": p.where, "reason": p.reason, "detail": p.detail} for p in folder.problems]
    if not samples and not skipped:
        raise SetError(f"{spec}: {spec.path / labels} holds no samples")
    return EvalSet(spec, folder.kind, samples, skipped)


def _load_lmdb(spec: SetSpec) -> EvalSet:
    import lmdb

    from lowres_ocr.data.lmdb_io import LmdbError, LmdbReader

    if spec.labels:
        raise SetError(f"{spec}: a labels file variant applies to dataset folders, not to an LMDB")
    try:
        reader = LmdbReader(spec.path)
    except (LmdbError, lmdb.Error, OSError) as err:
        raise SetError(f"{spec}: not a readable LMDB ({str(err).splitlines()[0]})") from None
    samples: list[RawSample] = []
    with reader:
        for i in range(len(reader)):
            where = f"index {i + 1}"
            try:
                s = reader[i]
            except (LmdbError, lmdb.Error) as err:
                samples.append(RawSample(where, "", None, None, str(err)))
                continue
            if reader.kind == "pairs":
                samples.append(RawSample(where, s.label, s.hr, s.lr))
            else:
                samples.append(RawSample(where, s.label, s.image))
        kind = reader.kind
    return EvalSet(spec, kind, samples)


def load_set(spec: SetSpec | str) -> EvalSet:
    """Read every sample's label and encoded bytes (images are decoded later, by the runner)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if not spec.path.exists():
        raise SetError(f"{spec}: no such file or directory")
    if spec.path.is_dir() and not (spec.path / "data.mdb").is_file():
        return _load_folder(spec)
    return _load_lmdb(spec)
