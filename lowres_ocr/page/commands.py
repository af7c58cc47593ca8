"""``lowres-ocr read IMAGE... --out DIR [--words]`` (a single command, registered by cli.py).

Per image it writes ``DIR/<name>.json`` (the regions in reading order) and ``DIR/<name>.png`` (the sheet
with its regions beside the recognised text). A bad image reports its own error and the others are still
read; exit code 1 if any image failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _write(out: Path, path: Path, rgb, regions: list[dict]) -> None:
    """The JSON and PNG of one page."""
    from lowres_ocr.page.render import render_page

    (out / f"{path.stem}.json").write_text(json.dumps(regions, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    render_page(rgb, regions).save(out / f"{path.stem}.png")


def app(
    images: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="page images (PNG, JPEG, ...)"),
    out: Path = typer.Option(..., "--out", file_okay=False, help="folder for <name>.json and <name>.png"),
    words: bool = typer.Option(False, "--words", help="add each line's word boxes to the JSON and the picture"),
    weights: Path = typer.Option(Path("model/lowres_ocr.pt"), "--weights", exists=True, dir_okay=False,
                                 help="recognizer checkpoint"),
    limit_side: int = typer.Option(960, "--limit-side", help="longer side of the detector input, px"),
    box_thresh: float = typer.Option(0.5, "--box-thresh", help="minimum mean text probability of a region"),
    batch_size: int = typer.Option(64, "--batch-size", help="crops per recognizer batch"),
) -> None:
    """Detect the text lines of each IMAGE and read them with our recognizer."""
    from lowres_ocr.core.images import BadImageError
    from lowres_ocr.page.detect import DetectorSettings
    from lowres_ocr.page.reader import PageReader, load_page

    stems = [p.stem for p in images]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        typer.echo(f"error: several images share the name(s) {', '.join(clashes)}; their outputs would collide", err=True)
        raise typer.Exit(2)
    try:
        reader = PageReader.load(weights, DetectorSettings(limit_side=limit_side, box_thresh=box_thresh), batch_size=batch_size)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in images:
        try:
            rgb = load_page(path.read_bytes(), str(path))
        except BadImageError as err:
            failed += 1
            typer.echo(f"{path}\tERROR\t{err}", err=True)
            continue
        regions = [r.to_json(words) for r in reader.read(rgb)]
        _write(out, path, rgb, regions)
        typer.echo(f"{path}\t{len(regions)} regions\t{out / (path.stem + '.json')}")
    if failed:
        raise typer.Exit(1)
