"""Dataset folders → one LMDB (ASTER keys for word crops, TextZoom keys for pairs).

Every row is checked (label filters, file present, image fully decodable); a bad row is skipped with a
``Problem`` naming it and the reason, good rows are kept. The LMDB is written aside and renamed onto the
destination at the end (``LmdbWriter``); with ``strict`` any skip aborts the build and the destination is
left untouched.
"""

from __future__ import annotations

import errno
import io
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import lmdb
from PIL import Image, ImageFile, UnidentifiedImageError

from lowres_ocr.core.charset import CHARSET, MAX_LABEL_LENGTH
from lowres_ocr.data.datasets import LABELS, REASONS, DatasetFolder, Problem, label_problem, read_folder
from lowres_ocr.data.lmdb_io import LmdbWriter
from lowres_ocr.core.geometry import HR_SIZE, LR_SIZE


@dataclass
class BuildOptions:
    labels: str = LABELS
    resize: bool = False  # store 128×32 (pairs: HR 128×32 + LR 64×16) PNGs instead of the original bytes
    charset: str | None = CHARSET  # None: no charset filter
    max_length: int = MAX_LABEL_LENGTH  # 0: no limit
    strict: bool = False
    overwrite: bool = False


@dataclass
class BuildReport:
    dst: Path
    kind: str
    kept: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    written: bool = False

    def by_reason(self) -> dict[str, int]:
        counts = Counter(p.reason for p in self.problems)
        return {r: counts[r] for r in REASONS if counts[r]}

    @property
    def skipped(self) -> int:
        return len(self.problems)


class StrictBuildError(RuntimeError):
    """``strict`` build with skipped samples; carries the report (nothing was written)."""

    def __init__(self, report: BuildReport):
        self.report = report
        reasons = ", ".join(f"{n} {REASONS[r]}" for r, n in report.by_reason().items())
        super().__init__(f"--strict: {report.skipped} sample(s) would be skipped ({reasons}); {report.dst} not written")


@contextmanager
def _strict_pil() -> Iterator[None]:
    """Make sure PIL raises on truncated files even if some other module relaxed it globally."""
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}


def _signature(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for sig, fmt in _SIGNATURES.items() if data.startswith(sig)), None)


def check_image(data: bytes) -> tuple[Image.Image | None, tuple[str, str] | None]:
    """Decode ``data`` completely: ``(image, None)`` or ``(None, (reason, detail))``."""
    if not data:
        return None, ("corrupt_image", "empty file (0 bytes)")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        fmt = _signature(data)
        if fmt:  # the header says image, the rest does not parse
            return None, ("corrupt_image", f"{fmt} signature but the file does not parse ({len(data)} bytes)")
        return None, ("non_image", f"no known image format (file starts with {data[:8]!r})")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return None, ("corrupt_image", f"{type(err).__name__}: {err}")
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, Image.DecompressionBombError) as err:
        return None, ("corrupt_image", f"{im.format} does not decode ({type(err).__name__}: {err})")
    return im, None


def _png(im: Image.Image, size: tuple[int, int]) -> bytes:
    rgb = im if im.mode == "RGB" else im.convert("RGB")
    buf = io.BytesIO()
    rgb.resize(size, Image.BICUBIC).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _read(ds: DatasetFolder, rel: str) -> tuple[bytes | None, tuple[str, str] | None]:
    path = ds.file(rel)
    try:
        return path.read_bytes(), None
    except FileNotFoundError:
        return None, ("missing_path", f"{path} does not exist")
    except IsADirectoryError:
        return None, ("missing_path", f"{path} is a directory, not a file")
    except OSError as err:
        return None, ("missing_path", f"{path} cannot be read ({err.strerror or err})")


def _encoded_images(ds: DatasetFolder, rel_paths: Sequence[str], resize: bool) -> tuple[list[bytes], tuple[str, str] | None]:
    out = []
    sizes = (HR_SIZE, LR_SIZE) if len(rel_paths) == 2 else (HR_SIZE,)
    for rel, size in zip(rel_paths, sizes):
        data, problem = _read(ds, rel)
        if problem:
            return [], problem
        im, problem = check_image(data)
        if problem:
            return [], (problem[0], f"{rel}: {problem[1]}")
        out.append(_png(im, size) if resize else data)
    return out, None


def open_sources(sources: Sequence[str | Path], labels: str = LABELS) -> list[DatasetFolder]:
    """Parse every source folder; they must all be of one kind."""
    if not sources:
        raise ValueError("no source folder given")
    folders = [read_folder(s, labels) for s in sources]
    kinds = {f.kind for f in folders}
    if len(kinds) > 1:
        listing = ", ".join(f"{f.root} ({f.kind})" for f in folders)
        raise ValueError(f"sources mix word crops and LR/HR pairs, which one LMDB cannot hold: {listing}")
    return folders


FULL_BELOW = 1 << 20  # bytes free under which a failed LMDB write is taken as a full filesystem


def full_disk_error(dst: Path, err: BaseException) -> OSError | None:
    """An ENOSPC ``OSError`` naming ``dst`` when ``err`` (an LMDB or OS error) came from a full filesystem, else None.

    LMDB reports a short write as EIO ("mdb_txn_commit: Input/output error"), so besides the errno the free space of
    ``dst``'s filesystem is read (before the partial LMDB is removed): under ``FULL_BELOW`` bytes counts as full.
    """
    if not isinstance(err, (OSError, lmdb.Error)):
        return None
    try:
        stat = os.statvfs(dst.parent)
        free = stat.f_bavail * stat.f_frsize
    except OSError:
        free = -1
    if getattr(err, "errno", None) != errno.ENOSPC and "no space left" not in str(err).lower() \
            and not 0 <= free < FULL_BELOW:
        return None
    return OSError(errno.ENOSPC, f"LMDB {dst} not written: no space left on device ({free} bytes free in "
                                 f"{dst.parent}; {type(err).__name__}: {err}); the previous {dst.name}, if any, "
                                 f"is unchanged")


def build_lmdb(sources: Sequence[str | Path], dst: str | Path, opts: BuildOptions | None = None,
               on_problem: Callable[[Problem], None] | None = None,
               progress: Callable[[int], None] | None = None) -> BuildReport:
    """Build ``dst`` from ``sources``; raises ``StrictBuildError`` under ``opts.strict`` if anything was skipped."""
    opts = opts or BuildOptions()
    t0 = time.perf_counter()
    folders = open_sources(sources, opts.labels)
    report = BuildReport(Path(dst), folders[0].kind)

    def skip(problem: Problem) -> None:
        report.problems.append(problem)
        if on_problem:
            on_problem(problem)

    writer = LmdbWriter(dst, report.kind, overwrite=opts.overwrite)
    try:
        with _strict_pil():
            for ds in folders:
                for p in ds.problems:
                    skip(p)
                for row in ds.rows:
                    bad = label_problem(row.label, opts.charset, opts.max_length)
                    images, img_bad = ([], None) if bad else _encoded_images(ds, row.paths, opts.resize)
                    bad = bad or img_bad
                    if bad:
                        skip(Problem(ds.where(row), *bad))
                    elif report.kind == "pairs":
                        writer.add(row.label, hr=images[0], lr=images[1])
                    else:
                        writer.add(row.label, image=images[0])
                    if progress:
                        progress(1)
        report.kept = writer.count
        if opts.strict and report.problems:
            raise StrictBuildError(report)
        writer.commit()
        report.written = True
    except BaseException as err:
        full = full_disk_error(report.dst, err)  # read before abort() frees the partial LMDB's space
        writer.abort()
        if full is not None:
            raise full from err
        raise
    finally:
        report.seconds = time.perf_counter() - t0
    return report
