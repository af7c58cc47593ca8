"""The one reader of a set, for every stage: a dataset folder (``labels.tsv`` or a named variant) or an LMDB
(ASTER / TextZoom keys). Training sources, evaluation sets and the ONNX parity crops all come from here.

A SET argument is ``PATH`` or ``PATH:LABELS`` where ``LABELS`` names another labels file of the folder,
e.g. ``data/iiit5k_test:labels_cs.tsv`` for the case-sensitive re-annotation. The set is then called
``iiit5k_test:labels_cs``. Anything that is not a readable set raises :class:`SetError` with a one-line
message naming it; problems of single samples never do (they are listed in the report instead).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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
    hr: bytes | Path | None  # a Path when the set was read lazily (files are read when used)
    lr: bytes | Path | None = None
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


def is_lmdb(path: Path) -> bool:
    """An LMDB directory (``data.mdb`` inside) or the ``data.mdb`` file itself."""
    path = Path(path)
    return (path / "data.mdb").is_file() or (path.suffix == ".mdb" and path.is_file())


def _load_folder(spec: SetSpec, lazy: bool) -> EvalSet:
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
        if lazy:
            files = [folder.file(p) for p in row.paths]
            samples.append(RawSample(where, row.label, files[0], files[1] if len(files) == 2 else None))
        elif folder.kind == "pairs":
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


def load_set(spec: SetSpec | str | Path, lazy: bool = False) -> EvalSet:
    """Every sample's label and encoded image bytes (decoded later, by the caller).

    ``lazy``: a folder's samples hold file paths, read when used (training keeps large folders out of memory);
    LMDB samples always hold bytes.
    """
    spec = parse_spec(str(spec)) if isinstance(spec, (str, Path)) else spec
    if not spec.path.exists():
        raise SetError(f"{spec}: no such file or directory")
    if spec.path.is_dir() and not is_lmdb(spec.path):
        return _load_folder(spec, lazy)
    return _load_lmdb(spec)


def sample_bytes(data: bytes | Path) -> bytes:
    """The encoded image of a sample side, reading the file of a lazily read set."""
    return data.read_bytes() if isinstance(data, Path) else data


def _set_crops(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, encoded bytes) of the input side of each sample: the LR crop of a pair, else the word crop."""
    for i, sample in enumerate(load_set(SetSpec(path), lazy=True).samples):
        side = sample.lr if sample.lr is not None else sample.hr
        if side is None:
            continue
        if isinstance(side, Path):
            yield f"{path.name}/{Path(os.path.relpath(side, path)).as_posix()}", sample_bytes(side)
        else:
            yield f"{path.name}[{i}]", side


def _round_robin(sources: list[Iterator[tuple[str, bytes]]]) -> Iterator[tuple[str, bytes]]:
    while sources:
        for it in list(sources):
            try:
                yield next(it)
            except StopIteration:
                sources.remove(it)


def iter_crops(source: Path) -> Iterator[tuple[str, bytes]]:
    """Input-side crops (name, bytes) of a set, or of every set in a folder of sets, mixed round-robin."""
    source = Path(source)
    if is_lmdb(source) or (source / LABELS).is_file():
        yield from _set_crops(source)
    elif source.is_dir():
        subs = sorted(p for p in source.iterdir() if p.is_dir() and ((p / LABELS).is_file() or is_lmdb(p)))
        if not subs:
            raise FileNotFoundError(f"{source}: no labels.tsv, LMDB or dataset sub-folders")
        yield from _round_robin([_set_crops(s) for s in subs])
    else:
        raise FileNotFoundError(f"{source}: not a dataset folder or LMDB")
