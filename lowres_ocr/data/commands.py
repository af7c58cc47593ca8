"""``lowres-ocr data ...``: pull, bundle, synth, build-lmdb, inspect, import-set."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)

CHARSETS = ("94", "36", "any")


def _error(message: object) -> None:
    err.print("[red]error:[/]", str(message), soft_wrap=True, highlight=False)


def _charset(name: str) -> str | None:
    from lowres_ocr.core.charset import CHARSET, CHARSET_36

    if name not in CHARSETS:
        raise typer.BadParameter(f"--charset must be one of {', '.join(CHARSETS)}, got {name!r}")
    return {"94": CHARSET, "36": CHARSET_36, "any": None}[name]


@app.command("build-lmdb")
def build_lmdb_cmd(
    sources: list[Path] = typer.Argument(..., help="Dataset folders (labels.tsv); all of one kind."),
    out: Path = typer.Option(..., "--out", "-o", help="Destination LMDB directory."),
    labels: str = typer.Option("labels.tsv", help="Labels file inside each folder (e.g. labels_cs.tsv)."),
    resize: bool = typer.Option(False, "--resize/--no-resize",
                                help="Store 128x32 PNGs (pairs: HR 128x32 + LR 64x16) instead of the original bytes."),
    charset: str = typer.Option("94", help="Label filter: 94 (printable ASCII, no space), 36 ([0-9a-z]) or any."),
    max_label_length: int = typer.Option(25, min=0, help="Skip longer labels (0: no limit)."),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 1, nothing written) if any sample would be skipped."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
    show: int = typer.Option(20, help="Print at most this many skipped samples (all are counted)."),
) -> None:
    """Build one LMDB: ASTER keys for word crops, TextZoom keys for LR/HR pairs."""
    from lowres_ocr.data.build import BuildOptions, StrictBuildError, build_lmdb
    from lowres_ocr.data.datasets import REASONS

    opts = BuildOptions(labels=labels, resize=resize, charset=_charset(charset), max_length=max_label_length,
                        strict=strict, overwrite=force)
    printed = 0

    def on_problem(p) -> None:
        nonlocal printed
        if printed < show:
            err.print(f"[yellow]skip[/] {p}", markup=True, highlight=False, soft_wrap=True)
        printed += 1

    try:
        report = build_lmdb(sources, out, opts, on_problem=on_problem)
    except StrictBuildError as e:
        _print_summary(e.report, REASONS)
        _error(e)
        raise typer.Exit(1)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        _error(e)
        raise typer.Exit(2)
    _print_summary(report, REASONS)


def _print_summary(report, reasons: dict[str, str]) -> None:
    rate = report.kept / report.seconds if report.seconds else 0.0
    state = f"written to {report.dst}" if report.written else "not written"
    console.print(f"{report.kind}: kept {report.kept}, skipped {report.skipped} "
                  f"({report.seconds:.1f} s, {rate:.0f} samples/s); {state}")
    if report.skipped:
        t = Table("reason", "skipped", title="skipped by reason")
        for r, n in report.by_reason().items():
            t.add_row(reasons[r], str(n))
        console.print(t)


@app.command("inspect")
def inspect_cmd(
    path: Path = typer.Argument(..., help="An LMDB directory."),
    show: int = typer.Option(5, help="Samples to show."),
) -> None:
    """Count, key format, label-length histogram and the first samples of an LMDB."""
    from lowres_ocr.data.inspect_lmdb import summarize
    from lowres_ocr.data.lmdb_io import LmdbError

    try:
        s = summarize(path, show)
    except (FileNotFoundError, LmdbError) as e:
        _error(e)
        raise typer.Exit(2)
    console.print(f"[bold]{s.path}[/]: {s.count} samples, kind {s.kind}")
    console.print(f"keys: {s.key_format}")
    if s.label_lengths:
        hist = Table("label length", "samples", "", title="label lengths")
        top = max(s.label_lengths.values())
        for length, n in s.label_lengths.items():
            hist.add_row(str(length), str(n), "#" * max(1, round(30 * n / top)))
        console.print(hist)
    rows = Table("index", "label", *(s.samples[0].images if s.samples else []), title="samples")
    for smp in s.samples:
        rows.add_row(str(smp.index), repr(smp.label), *smp.images.values())
    console.print(rows)


@app.command("synth")
def synth_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Destination dataset folder (hr/, lr/, labels.tsv)."),
    count: int = typer.Option(..., min=1, help="Number of LR/HR pairs."),
    seed: int = typer.Option(0, help="Same seed, same bytes."),
    workers: int = typer.Option(1, min=1, help="Processes (the output does not depend on it)."),
    strength: str = typer.Option("express", help="LR degradation: express (default) or seed."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
    source: str = typer.Option("ascii", help="ascii: English words and parcel strings, HR 128x32; zh: Chinese "
                                             "express-sheet lines; mixed: Chinese with codes and numbers (HR 48 px "
                                             "high, LR 1/2 or 1/3)."),
    split: str = typer.Option("train", help="zh/mixed: train or test (disjoint fonts, held-out place and "
                                            "person names)."),
) -> None:
    """Render HR crops (words, tracking numbers, phones, ...; or Chinese express-sheet lines) and degrade them to LR."""
    import time

    from lowres_ocr.data.synth import synthesize

    t0 = time.perf_counter()
    try:
        synthesize(out, count, seed, workers=workers, strength=strength, overwrite=force, source=source, split=split)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        _error(e)
        raise typer.Exit(2)
    dt = time.perf_counter() - t0
    console.print(f"{count} pairs in {out} ({dt:.1f} s, {count / dt:.0f} pairs/s with {workers} worker(s))")


@app.command("pull")
def pull_cmd(
    targets: Optional[list[str]] = typer.Argument(None, help="Parts to pull, e.g. data/svt_test (default: all)."),
    source: str = typer.Option("auto", help="auto: S3 if configured, else the bundled remote (dvc-bundle/ "
                                            "unpacked into a local DVC remote); s3; bundled."),
    remote: str = typer.Option("storage", help="DVC remote name of the S3 remote."),
    jobs: Optional[int] = typer.Option(None, "-j", "--jobs", help="Parallel transfers (dvc default: 4 x cores)."),
    timeout: float = typer.Option(1800, help="Seconds before dvc is stopped."),
) -> None:
    """``dvc pull`` the datasets (real S3 given credentials/endpoint; offline: the archives of dvc-bundle/)."""
    from lowres_ocr.data.bundle import BundleError
    from lowres_ocr.data.remote import DvcError, pull

    try:
        r = pull(None, targets or None, source=source, remote=remote, jobs=jobs, timeout=timeout)
    except (BundleError, DvcError, FileNotFoundError, ValueError, RuntimeError) as e:
        _error(e)
        raise typer.Exit(1)
    last = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    how = ""
    if r.unpacked is not None:
        u = r.unpacked
        how = (f" ({u.objects} objects in {len(u.archives)} archive(s), {len(u.extracted)} extracted now, "
               f"into {u.remote})")
    console.print(f"dvc pull via {r.source}{how}: {last[-1] if last else 'done'} ({r.seconds:.1f} s)",
                  soft_wrap=True, highlight=False)


@app.command("bundle")
def bundle_cmd(
    objects: Optional[list[Path]] = typer.Option(None, "--objects", help="Folder(s) with DVC's cache layout "
                                                 "(files/md5/xx/yyyy) to read the objects from (default: .dvc/cache)."),
) -> None:
    """(Re)write dvc-bundle/ (one tar per set + manifest) from the DVC objects of what the .dvc files track."""
    import time

    from lowres_ocr.data.bundle import BUNDLE_DIR, BundleError, write_bundle
    from lowres_ocr.data.remote import repo_root

    t0 = time.perf_counter()
    try:
        root = repo_root()
        stores = [p.resolve() for p in objects] if objects else [root / ".dvc" / "cache"]
        report = write_bundle(root, stores)
    except (BundleError, FileNotFoundError, ValueError) as e:
        _error(e)
        raise typer.Exit(1)
    t = Table("archive", "objects", "MiB", "sha256", "", title=f"{root / BUNDLE_DIR}")
    for name, entry in report.archives.items():
        t.add_row(name, str(entry["objects"]), f"{entry['bytes'] / 2**20:.1f}", entry["sha256"][:16],
                  "written" if name in report.written else "unchanged")
    console.print(t)
    if report.removed:
        console.print(f"removed (no longer tracked): {', '.join(report.removed)}")
    console.print(f"{len(report.written)} archive(s) written in {time.perf_counter() - t0:.1f} s; "
                  f"commit {BUNDLE_DIR}/ (git add {BUNDLE_DIR})", highlight=False)


@app.command("import-set")
def import_set_cmd(
    src: Path = typer.Argument(..., help="A dataset folder to copy into the project."),
    dst: Path = typer.Argument(..., help="Destination, e.g. data/<set>."),
    max_height: int = typer.Option(128, min=16, help="Store taller images downscaled to this height."),
) -> None:
    """Copy a dataset folder, storing images taller than --max-height downscaled (pairs: HR and LR alike)."""
    from lowres_ocr.data.prepare import copy_set

    if dst.exists():
        _error(f"{dst} already exists")
        raise typer.Exit(2)
    r = copy_set(src, dst, max_height)
    console.print(f"{dst}: {r.files} files, {r.downscaled} downscaled, {r.bytes_in} -> {r.bytes_out} bytes")
