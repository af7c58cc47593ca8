"""LMDB datasets with the community key layouts, read and written by plain ``lmdb``.

Keys (1-based index ``i``; every value is raw bytes):

- word crops (ASTER / deep-text-recognition-benchmark / PARSeq): ``num-samples`` → ASCII integer,
  ``image-%09d`` → encoded image (PNG/JPEG bytes), ``label-%09d`` → UTF-8 label;
- LR/HR pairs (TextZoom): ``num-samples``, ``image_hr-%09d``, ``image_lr-%09d``, ``label-%09d``.

Nothing else is needed to read them back: ``lmdb.open(path)`` + ``PIL.Image.open(BytesIO(value))``.
``LmdbWriter`` writes into a hidden sibling directory and renames it onto the destination only after the
last commit, so an interrupted build never leaves a half-written LMDB at the destination.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Iterator

import lmdb

KINDS = ("words", "pairs")
NUM_SAMPLES = b"num-samples"
_PARTIAL = ".partial-"  # marker in the name of a directory being written


def image_key(i: int) -> bytes:
    return b"image-%09d" % i


def hr_key(i: int) -> bytes:
    return b"image_hr-%09d" % i


def lr_key(i: int) -> bytes:
    return b"image_lr-%09d" % i


def label_key(i: int) -> bytes:
    return b"label-%09d" % i


@dataclass(frozen=True)
class Sample:
    """One record: ``image`` for word crops, ``hr`` + ``lr`` for pairs (the other fields are None)."""

    label: str
    image: bytes | None = field(default=None, repr=False)
    hr: bytes | None = field(default=None, repr=False)
    lr: bytes | None = field(default=None, repr=False)


class LmdbError(ValueError):
    """An LMDB that does not follow the documented layout (message names the path and the key)."""


# py-lmdb refuses to open one environment twice in a process: readers of the same path share it.
_ENVS: dict[tuple[int, str], list] = {}  # (pid, real path) -> [environment, users]


def _env_key(path: Path) -> tuple[int, str]:
    return os.getpid(), os.path.realpath(path)


def _acquire(path: Path) -> list:
    entry = _ENVS.get(_env_key(path))
    if entry is None:
        env = lmdb.open(str(path), subdir=path.is_dir(), readonly=True, lock=False, readahead=False, meminit=False,
                        max_readers=256)
        entry = _ENVS[_env_key(path)] = [env, 0]
    entry[1] += 1
    return entry


def _release(path: Path, entry: list) -> None:
    entry[1] -= 1
    if entry[1] <= 0:
        entry[0].close()
        if _ENVS.get(_env_key(path)) is entry:
            del _ENVS[_env_key(path)]


class LmdbReader:
    """Random access to an ASTER- or TextZoom-key LMDB; ``reader[i]`` is 0-based (key ``i + 1``).

    The environment is (re)opened lazily per process, so a reader made before ``fork`` (DataLoader
    workers) is safe to use in the children.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"LMDB {self.path} does not exist")
        if self.path.is_dir() and not (self.path / "data.mdb").is_file():
            raise LmdbError(f"{self.path}: not an LMDB directory (no data.mdb)")
        self._entry: list | None = None
        self._pid = -1
        try:
            self._read_header()
        except BaseException:
            self.close()
            raise

    def _read_header(self) -> None:
        with self._environment().begin(buffers=False) as txn:
            raw = txn.get(NUM_SAMPLES)
            if raw is None:
                raise LmdbError(f"{self.path}: key 'num-samples' is missing")
            try:
                self._count = int(raw.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                raise LmdbError(f"{self.path}: 'num-samples' is {raw[:40]!r}, not an ASCII integer") from None
            if self._count < 0:
                raise LmdbError(f"{self.path}: 'num-samples' is negative ({self._count})")
            if self._count == 0:
                self.kind = "pairs" if txn.get(b"kind") == b"pairs" else "words"
            elif txn.get(hr_key(1)) is not None:
                self.kind = "pairs"
            elif txn.get(image_key(1)) is not None:
                self.kind = "words"
            else:
                raise LmdbError(f"{self.path}: neither 'image-000000001' (ASTER) nor 'image_hr-000000001' (TextZoom) exists")

    def _environment(self) -> lmdb.Environment:
        if self._entry is None or self._pid != os.getpid():
            self._entry = _acquire(self.path)
            self._pid = os.getpid()
        return self._entry[0]

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> Sample:
        if not isinstance(index, int):
            raise TypeError(f"LMDB index must be an int, got {type(index).__name__}")
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"{self.path}: index {index} out of range for {self._count} samples")
        i = index + 1
        with self._environment().begin(buffers=False) as txn:
            raw_label = self._get(txn, label_key(i))
            try:
                label = raw_label.decode("utf-8")
            except UnicodeDecodeError:
                raise LmdbError(f"{self.path}: {label_key(i).decode()} is not valid UTF-8") from None
            if self.kind == "pairs":
                return Sample(label, hr=self._get(txn, hr_key(i)), lr=self._get(txn, lr_key(i)))
            return Sample(label, image=self._get(txn, image_key(i)))

    def _get(self, txn: lmdb.Transaction, key: bytes) -> bytes:
        value = txn.get(key)
        if value is None:
            raise LmdbError(f"{self.path}: key {key.decode()!r} is missing (num-samples is {self._count})")
        return value

    def __iter__(self) -> Iterator[Sample]:
        for i in range(self._count):
            yield self[i]

    def labels(self) -> list[str]:
        """All labels in order, in one transaction (cheap: no image bytes are copied)."""
        with self._environment().begin(buffers=True) as txn:
            return [bytes(self._get(txn, label_key(i))).decode("utf-8", "replace") for i in range(1, self._count + 1)]

    def close(self) -> None:
        if self._entry is not None and self._pid == os.getpid():
            _release(self.path, self._entry)
        self._entry = None

    def __enter__(self) -> "LmdbReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(dst: Path) -> list[Path]:
    """Delete leftovers of interrupted builds of ``dst`` whose writer process is gone."""
    removed = []
    for p in dst.parent.glob(f".{dst.name}{_PARTIAL}*"):
        try:
            pid = int(p.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


class LmdbWriter:
    """Write an LMDB of one kind, then publish it at ``dst`` atomically.

    Use as a context manager: on normal exit the data is committed, ``num-samples`` written and the
    directory renamed onto ``dst`` (replacing it only if ``overwrite``); on an exception (Ctrl-C included)
    the partial directory is removed and ``dst`` is left as it was.
    """

    def __init__(self, dst: str | Path, kind: str, overwrite: bool = False, commit_every: int = 1000,
                 map_size: int = 1 << 28):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.dst = Path(dst)
        self.kind = kind
        self.overwrite = overwrite
        self.commit_every = commit_every
        self.count = 0
        if self.dst.exists() and not overwrite:
            raise FileExistsError(f"{self.dst} already exists (pass overwrite=True / --force to replace it)")
        self.dst.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.dst)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dst.name}{_PARTIAL}{os.getpid()}-", dir=self.dst.parent))
        self._env: lmdb.Environment | None = lmdb.open(str(self.tmp), map_size=map_size, subdir=True, sync=False,
                                                        metasync=False, writemap=False, meminit=False)
        self._pending: list[tuple[bytes, bytes]] = []

    def add(self, label: str, image: bytes | None = None, hr: bytes | None = None, lr: bytes | None = None) -> int:
        """Append one sample; returns its 1-based key index."""
        if self._env is None:
            raise RuntimeError("LmdbWriter is closed")
        i = self.count + 1
        if self.kind == "words":
            if image is None or hr is not None or lr is not None:
                raise ValueError("a words LMDB takes image= only")
            self._pending += [(image_key(i), bytes(image)), (label_key(i), label.encode("utf-8"))]
        else:
            if hr is None or lr is None or image is not None:
                raise ValueError("a pairs LMDB takes hr= and lr= only")
            self._pending += [(hr_key(i), bytes(hr)), (lr_key(i), bytes(lr)), (label_key(i), label.encode("utf-8"))]
        self.count = i
        if self.count % self.commit_every == 0:
            self._flush()
        return i

    def _flush(self, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        assert self._env is not None
        items = self._pending + (extra or [])
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    for k, v in items:
                        txn.put(k, v)
                break
            except lmdb.MapFullError:  # the aborted transaction wrote nothing: grow and replay it
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
        self._pending = []

    def commit(self) -> Path:
        """Write ``num-samples``, sync, and rename onto ``dst``; returns ``dst``."""
        extra = [(NUM_SAMPLES, str(self.count).encode("ascii"))]
        if self.count == 0:
            extra.append((b"kind", self.kind.encode("ascii")))  # keeps the kind of an empty LMDB
        self._flush(extra)
        assert self._env is not None
        self._env.sync(True)
        self._env.close()
        self._env = None
        (self.tmp / "lock.mdb").unlink(missing_ok=True)  # readers open with lock=False
        os.chmod(self.tmp, 0o755)
        _ENVS.pop(_env_key(self.dst), None)  # readers still open keep the old data; new ones see the new
        if self.dst.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{self.dst.name}.old-", dir=self.dst.parent))
            os.rename(self.dst, trash / "old")
            os.rename(self.tmp, self.dst)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(self.tmp, self.dst)
        return self.dst

    def abort(self) -> None:
        """Drop everything written so far; ``dst`` is untouched."""
        if self._env is not None:
            self._env.close()
            self._env = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "LmdbWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_lmdb(dst: str | Path, kind: str, samples: list[Sample], overwrite: bool = False) -> Path:
    """Write ``samples`` (all of ``kind``) to ``dst`` in one go; a convenience for tests and small sets."""
    with LmdbWriter(dst, kind, overwrite=overwrite) as w:
        for s in samples:
            w.add(s.label, image=s.image, hr=s.hr, lr=s.lr)
    return Path(dst)
