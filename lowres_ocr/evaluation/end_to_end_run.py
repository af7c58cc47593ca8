"""``lowres-ocr evaluate e2e``: whole images read by our page reader and by rapidocr's full pipeline, scored by
``lowres_ocr.evaluation.end_to_end`` (end-to-end and detection-only P/R/F), with a gallery of annotated images."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import typer

from lowres_ocr.evaluation.end_to_end import Box, GroundTruthError, Tally, image_pairs, read_ground_truth

Reader = Callable[[np.ndarray], list[Box]]


def our_reader(weights: Path) -> tuple[Reader, Any]:
    """Our detector + recognizer, word boxes (a line without recognised spaces is one word)."""
    from lowres_ocr.page.reader import PageReader

    reader = PageReader.load(weights)

    def read(rgb: np.ndarray) -> list[Box]:
        regions = reader.read(rgb)
        return [Box(np.asarray(w.points, dtype=np.float64), w.text)
                for r in regions for w in (r.words or [r]) if w.text.strip()]
    return read, reader


def rapidocr_reader() -> Reader:
    """rapidocr's full pipeline (its detector, direction classifier and recognizer) with its word boxes.

    ``read.notes["images_with_line_boxes"]`` counts the images where rapidocr placed no word boxes (it skips that
    step for the whole image when one line's recognizer output has no word information); their line boxes are scored.
    """
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "error"})
    notes = {"images_with_line_boxes": 0}

    def read(rgb: np.ndarray) -> list[Box]:
        boxes, placed = rapidocr_word_boxes(engine(np.ascontiguousarray(rgb[:, :, ::-1]), return_word_box=True))
        notes["images_with_line_boxes"] += not placed
        return boxes
    read.notes = notes  # type: ignore[attr-defined]
    return read


def _placed_word(word: Any) -> bool:
    return (isinstance(word, (list, tuple)) and len(word) == 3 and isinstance(word[0], str) and word[2] is not None
            and np.asarray(word[2]).shape == (4, 2))


def rapidocr_word_boxes(result: Any) -> tuple[list[Box], bool]:
    """The boxes of a rapidocr result and whether they are word boxes.

    Placed words are ``word_results`` = per line a sequence of ``(text, score, 4x2 box)``. An empty result (no
    ``txts``) carries a placeholder ``(("", 1.0, None),)`` and gives no boxes; a result whose word boxes rapidocr did
    not compute (raw recognizer word information instead) gives its line boxes (``boxes`` with ``txts``).
    """
    texts = getattr(result, "txts", None)
    if not texts:
        return [], True
    lines = getattr(result, "word_results", None) or ()
    if lines and all(isinstance(line, (list, tuple)) and all(_placed_word(w) for w in line) for line in lines):
        return [Box(np.asarray(w[2], dtype=np.float64), w[0]) for line in lines for w in line if w[0].strip()], True
    return [Box(np.asarray(b, dtype=np.float64), str(t)) for b, t in zip(result.boxes, texts) if str(t).strip()], False


def _gallery(out: Path, name: str, rgb: np.ndarray, boxes: list[Box]) -> str:
    from lowres_ocr.page.render import render_page

    regions = [{"points": b.points.tolist(), "text": b.text} for b in boxes]
    path = out / "gallery" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    render_page(rgb, regions).save(path)
    return str(path.relative_to(out))


def evaluate_end_to_end(folder: Path, readers: dict[str, Reader], out: Path, limit: int = 0,
                        gallery: int = 4) -> dict[str, Any]:
    """Every reader on every image of ``folder``; returns the report (also written to ``out/e2e_report.json``).

    An image that cannot be decoded is left out of the scores and named with the reason under ``unreadable``."""
    from lowres_ocr.core.images import BadImageError, decode_image

    pairs = image_pairs(folder, limit)
    tallies = {name: Tally() for name in readers}
    seconds = dict.fromkeys(readers, 0.0)
    shown: list[dict[str, str]] = []
    unreadable: dict[str, str] = {}
    for index, (image, gt_path) in enumerate(pairs):
        ground_truth = read_ground_truth(gt_path)
        try:
            rgb = np.asarray(decode_image(image), dtype=np.uint8)
        except BadImageError as err:
            unreadable[image.name] = str(err)
            continue
        for name, read in readers.items():
            t0 = time.perf_counter()
            boxes = read(rgb)
            seconds[name] += time.perf_counter() - t0
            tallies[name].add(image.name, ground_truth, boxes)
            if index < gallery:
                shown.append({"image": image.name, "reader": name, "png": _gallery(out, f"{image.stem}_{name}", rgb, boxes)})
    read_pages = len(pairs) - len(unreadable)
    report = {"set": str(folder), "protocol": "ICDAR 2015 end to end (generic): IoU > 0.5, case-insensitive, "
              "### and words under 3 characters don't care",
              "readers": {name: {**t.summary(), "pages_per_s": read_pages / seconds[name] if seconds[name] else 0.0,
                                 **getattr(readers[name], "notes", {})} for name, t in tallies.items()},
              "per_image": {name: t.per_image for name, t in tallies.items()}, "gallery": shown, "unreadable": unreadable}
    out.mkdir(parents=True, exist_ok=True)
    (out / "e2e_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "e2e_report.html").write_text(_html(report), encoding="utf-8")
    return report


def _html(report: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{name}</td><td>{r['end_to_end']['precision']:.1f}</td><td>{r['end_to_end']['recall']:.1f}</td>"
        f"<td>{r['end_to_end']['f']:.1f}</td><td>{r['detection']['precision']:.1f}</td><td>{r['detection']['recall']:.1f}</td>"
        f"<td>{r['detection']['f']:.1f}</td><td>{r['pages_per_s']:.2f}</td></tr>" for name, r in report["readers"].items())
    pictures = "".join(f"<figure><img src=\"{g['png']}\" width=\"900\"><figcaption>{g['image']} · {g['reader']}</figcaption>"
                       "</figure>" for g in report["gallery"])
    return ("<!doctype html><meta charset=\"utf-8\"><title>lowres-ocr end-to-end evaluation</title>"
            f"<h1>End to end: {report['set']}</h1><p>{report['protocol']}</p><table border=\"1\"><tr><th>reader</th>"
            "<th>E2E P</th><th>E2E R</th><th>E2E F</th><th>det P</th><th>det R</th><th>det F</th><th>pages/s</th></tr>"
            f"{rows}</table>{pictures}")


def e2e_command(
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False, help="end-to-end set: images/ and gt/"),
    out: Path = typer.Option(..., "--out", help="folder for e2e_report.json / .html and the gallery"),
    weights: Path = typer.Option(Path("model/lowres_ocr.pt"), "--weights", exists=True, dir_okay=False),
    peers: list[str] = typer.Option([], "--peers", help="rapidocr (its full pipeline, with word boxes)"),
    limit: int = typer.Option(0, "--limit", min=0, help="only the first N images (0 = all)"),
    gallery: int = typer.Option(4, "--gallery", min=0, help="annotated images per reader in the HTML report"),
) -> None:
    """End-to-end and detection-only precision / recall / F on whole images, peers side by side."""
    names = [p for item in peers for p in item.split(",") if p]
    unknown = sorted(set(names) - {"rapidocr"})
    if unknown:
        typer.echo(f"error: unknown end-to-end peer(s) {', '.join(unknown)} (known: rapidocr)", err=True)
        raise typer.Exit(2)
    readers: dict[str, Reader] = {"lowres-ocr": our_reader(weights)[0]}
    if "rapidocr" in names:
        readers["rapidocr"] = rapidocr_reader()
    try:
        report = evaluate_end_to_end(data, readers, out, limit, gallery)
    except GroundTruthError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    for name, r in report["readers"].items():
        e2e, det = r["end_to_end"], r["detection"]
        typer.echo(f"{name}: end-to-end P {e2e['precision']:.1f} R {e2e['recall']:.1f} F {e2e['f']:.1f} · detection "
                   f"P {det['precision']:.1f} R {det['recall']:.1f} F {det['f']:.1f} · {r['pages_per_s']:.2f} pages/s")
    typer.echo(f"report: {out / 'e2e_report.json'}, {out / 'e2e_report.html'}")
    if report["unreadable"]:
        for reason in report["unreadable"].values():
            typer.echo(f"error: {reason}", err=True)
        typer.echo(f"error: {len(report['unreadable'])} image(s) could not be read and are not scored", err=True)
        raise typer.Exit(1)
