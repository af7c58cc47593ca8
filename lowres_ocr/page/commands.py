"""``lowres-ocr read IMAGE... --out DIR [--words] [--url HOST:PORT]`` (a single command, registered by cli.py).

Per image it writes ``DIR/<name>.json`` (the regions in reading order) and ``DIR/<name>.png`` (the sheet
with its regions beside the recognised text). The reading runs in process (detector + ``--weights``) or on
the served ``lowres_ocr_page`` endpoint (``--url``). A bad image reports its own error and the others are
still read; exit code 1 if any image failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import typer

DEFAULT_WEIGHTS = Path("model/lowres_ocr.pt")


def _write(out: Path, path: Path, rgb: Any, regions: list[dict]) -> None:
    """The JSON and PNG of one page."""
    from lowres_ocr.page.render import render_page

    (out / f"{path.stem}.json").write_text(json.dumps(regions, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    render_page(rgb, regions).save(out / f"{path.stem}.png")


def _reader(url: str | None, protocol: str, weights: Path, settings: Any, batch_size: int) -> tuple[Callable, Callable]:
    """(read: (rgb, encoded bytes) → regions, close) for the in-process reader or the served endpoint."""
    if url is None:
        from lowres_ocr.page.reader import PageReader

        if not weights.is_file():
            raise ValueError(f"{weights}: recognizer checkpoint not found")
        reader = PageReader.load(weights, settings, batch_size=batch_size)
        return (lambda rgb, data: reader.read(rgb)), (lambda: None)
    if protocol not in ("http", "grpc"):
        raise ValueError(f"--protocol must be http or grpc, got {protocol!r}")
    from lowres_ocr.page.client import PageClient

    client = PageClient(url, protocol)  # type: ignore[arg-type]
    return (lambda rgb, data: client.read(data)), client.close


def app(
    images: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="page images (PNG, JPEG, ...)"),
    out: Path = typer.Option(..., "--out", file_okay=False, help="folder for <name>.json and <name>.png"),
    words: bool = typer.Option(False, "--words", help="add each line's word boxes to the JSON and the picture (in process only)"),
    weights: Path = typer.Option(DEFAULT_WEIGHTS, "--weights", dir_okay=False, help="recognizer checkpoint"),
    url: str | None = typer.Option(None, "--url", help="HOST:PORT of a Triton server with lowres_ocr_page (else in process)"),
    protocol: str = typer.Option("http", "--protocol", help="http or grpc (with --url)"),
    limit_side: int = typer.Option(736, "--limit-side", help="detector input: shorter side at least this, px (in process)"),
    box_thresh: float = typer.Option(0.5, "--box-thresh", help="minimum mean text probability of a region (in process)"),
    batch_size: int = typer.Option(64, "--batch-size", help="crops per recognizer batch (in process)"),
) -> None:
    """Detect the text lines of each IMAGE and read them with our recognizer."""
    from lowres_ocr.core.images import BadImageError
    from lowres_ocr.page.detect import DetectorSettings
    from lowres_ocr.page.reader import load_page

    stems = [p.stem for p in images]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes or (words and url):
        problem = f"several images share the name(s) {', '.join(clashes)}" if clashes else "--words needs the in-process reader (no --url)"
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    try:
        read, close = _reader(url, protocol, weights, DetectorSettings(limit_side=limit_side, box_thresh=box_thresh), batch_size)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in images:
        try:
            data = path.read_bytes()
            rgb = load_page(data, str(path))
            regions = [r.to_json(words) for r in read(rgb, data)]
        except (BadImageError, _server_error()) as err:
            failed += 1
            typer.echo(f"{path}\tERROR\t{err}", err=True)
            continue
        _write(out, path, rgb, regions)
        typer.echo(f"{path}\t{len(regions)} regions\t{out / (path.stem + '.json')}")
    close()
    if failed:
        raise typer.Exit(1)


def _server_error() -> type[Exception]:
    """tritonclient's exception type (a server refusing an image)."""
    from tritonclient.utils import InferenceServerException

    return InferenceServerException
