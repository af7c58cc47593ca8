"""The README's and the model card's accuracy tables, rendered from one ``report.json`` of ``scripts/evaluate_release``.

    .venv/bin/python scripts/release_tables.py model/eval/report.json

Prints markdown: TextZoom (each split and weighted), the word sets (and weighted), the Chinese set (LR and HR side),
the TextZoom protocol row. Every cell is a number of the report; nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lowres_ocr.evaluation.runner import PROTOCOL_MODE as PROTOCOL, pool

TEXTZOOM = ("textzoom_easy", "textzoom_medium", "textzoom_hard")
WORDS = ("iiit5k_test", "svt_test", "svtp_test", "ic15_test")
CHINESE = ("zh_express_test",)


def _cell(result: dict[str, Any] | None, mode: str) -> dict[str, Any] | None:
    return result["modes"].get(mode) if result else None


def _pooled(cells: list[dict[str, Any] | None], key: str = "accuracy") -> str:
    """``key`` pooled over the cells' samples; "–" unless every cell exists."""
    if not cells or any(c is None for c in cells):
        return "–"
    return f"{pool(cells)[key]:.1f}"  # type: ignore[arg-type]


def _row(label: str, cells: list[dict[str, Any] | None], key: str = "accuracy") -> str:
    return "| " + label + " | " + " | ".join(_pooled([c], key) for c in cells) + " | " + _pooled(cells, key) + " |"


def tables(report: dict[str, Any]) -> str:
    sets = {s["name"]: s for s in report["sets"]}
    peers = list(report.get("peers_average", {}))
    out: list[str] = []

    def readers(names: tuple[str, ...], model_mode: str, peer_mode: str) -> list[tuple[str, list[dict[str, Any] | None]]]:
        rows = [("lowres-ocr", [_cell(sets[n]["model"], model_mode) for n in names])]
        rows += [(p, [_cell(sets[n]["peers"].get(p), peer_mode) for n in names]) for p in peers]
        return rows

    tz = tuple(n for n in TEXTZOOM if n in sets)
    if tz:
        out += ["| TextZoom test, LR crop as stored | " + " | ".join(f"{n.split('_')[1]} ({sets[n]['used']})" for n in tz)
                + " | weighted |", "|---" * (len(tz) + 2) + "|"]
        out += [_row(name, cells) for name, cells in readers(tz, "sr", "lr")]
        out += [_row("lowres-ocr, HR crop", [_cell(sets[n]["model"], "hr") for n in tz])]
        out += [_row(f"{p}, HR crop", [_cell(sets[n]["peers"].get(p), "hr") for n in tz]) for p in peers]
        if any(_cell(sets[n]["model"], PROTOCOL) for n in tz):
            out += ["", "| TextZoom protocol row: LR squeezed to 16×64 first | " + " | ".join(n.split("_")[1] for n in tz)
                    + " | weighted |", "|---" * (len(tz) + 2) + "|"]
            out += [_row(name, cells) for name, cells in readers(tz, PROTOCOL, PROTOCOL)]
        out.append("")
    words = tuple(n for n in WORDS if n in sets)
    if words:
        out += ["| word crops as stored | " + " | ".join(f"{n} ({sets[n]['used']})" for n in words) + " | weighted |",
                "|---" * (len(words) + 2) + "|"]
        out += [_row(name, cells) for name, cells in readers(words, "hr", "hr")]
        out.append("")
    for n in (c for c in CHINESE if c in sets):
        s = sets[n]
        out += [f"| {n} ({s['used']} lines), line accuracy / 1-NED | LR crop | HR crop |", "|---|---|---|"]
        for name, lr_mode, hr_mode, result in [("lowres-ocr", "sr", "hr", s["model"]),
                                               *[(p, "lr", "hr", s["peers"].get(p)) for p in peers]]:
            cells = [_cell(result, m) for m in (lr_mode, hr_mode)]
            out.append(f"| {name} | " + " | ".join("–" if c is None else f"{c['accuracy']:.1f} / {c['one_minus_ned']:.1f}"
                                                   for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    print(tables(json.loads(ap.parse_args().report.read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
