"""Writing the report: ``report.json`` (schema: docs/report-schema.md), ``report.md`` and a self-contained
``report.html`` (inline SVG plots, images as base64 PNG), plus the flat metric dict for KFP ``Metrics``."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

from lowres_ocr.core.charset import normalize_36
from lowres_ocr.evaluation.runner import PROTOCOL_MODE, Artifacts, pool

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


# ---------------------------------------------------------------------------------------------- tables
def _fmt(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _head_acc(result: dict[str, Any] | None) -> float | None:
    return None if not result else result["modes"][result["headline_mode"]]["accuracy"]


def summary_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The main table: one row per set + the weighted average; model modes, PSNR/SSIM, peers, speed."""
    modes = [m for m in ("bicubic", "sr", "hr") if any(s.get("model") and m in s["model"]["modes"] for s in report["sets"])]
    peers = list(report.get("peers_average", {}))
    header = ["set", "kind", "used", "filtered", "unreadable", *[f"acc {m}" for m in modes], "acc (cs)", "1-NED",
              "PSNR sr/bic", "SSIM sr/bic", *[f"{p}" for p in peers], "crops/s", "p50 ms", "p99 ms"]
    rows = []
    for s in report["sets"]:
        r = s.get("model")
        head = r["modes"][r["headline_mode"]] if r else None
        q = s.get("image_quality") or {}
        sr_q, bic_q = q.get("sr"), q.get("bicubic")
        rows.append([
            s["name"], s["kind"], str(s["used"]), str(sum(s["filtered"].values())), str(s["unreadable"]),
            *[_fmt(r["modes"][m]["accuracy"]) if r and m in r["modes"] else "–" for m in modes],
            _fmt(head and head["accuracy_cs"]), _fmt(head and head["one_minus_ned"]),
            f"{_fmt(sr_q and sr_q['psnr'], 2)}/{_fmt(bic_q and bic_q['psnr'], 2)}" if q else "–",
            f"{_fmt(sr_q and sr_q['ssim'], 3)}/{_fmt(bic_q and bic_q['ssim'], 3)}" if q else "–",
            *[_fmt(_head_acc(s["peers"].get(p))) + (f" ({s['peers'][p]['headline_mode']})" if s["peers"].get(p) else "")
              for p in peers],
            _fmt(r and r["speed"]["crops_per_s"]), _fmt(r and r["speed"]["latency_ms_p50"], 2),
            _fmt(r and r["speed"]["latency_ms_p99"], 2),
        ])
    avg = report["average"]
    rows.append([
        "**average (weighted)**", "", str(avg["n"]), "", "",
        *[_fmt(avg["modes"][m]["accuracy"]) if m in avg["modes"] else "–" for m in modes],
        _fmt(avg["accuracy_cs"]), _fmt(avg["one_minus_ned"]), "", "",
        *[_fmt(report["peers_average"][p]["accuracy"]) for p in peers], "", "", "",
    ])
    return header, rows


def protocol_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The TextZoom protocol row: every pair set read with the LR image squeezed to 16×64 first, model and peers,
    beside each one's reading of the LR image as stored. Empty when the run had no ``lr16x64`` mode."""
    def cell(r: dict[str, Any] | None, mode: str) -> str:
        return _fmt(r["modes"][mode]["accuracy"]) if r and mode in r["modes"] else "–"

    peers = list(report.get("peers_average", {}))
    sets = [s for s in report["sets"] if s.get("model") and PROTOCOL_MODE in s["model"]["modes"]]
    if not sets:
        return [], []
    header = ["set", "used", "ours 16×64", "ours as stored", *[f"{p} {k}" for p in peers for k in ("16×64", "as stored")]]
    rows = [[s["name"], str(s["used"]), cell(s["model"], PROTOCOL_MODE), cell(s["model"], s["model"]["headline_mode"]),
             *[c for p in peers for c in (cell(s["peers"].get(p), PROTOCOL_MODE),
                                          cell(s["peers"].get(p), (s["peers"].get(p) or {}).get("headline_mode", "")))]]
            for s in sets]
    names = {s["name"] for s in sets}

    def pooled(results: list[dict[str, Any] | None], mode: str | None) -> str:
        cells = [r["modes"][mode or r["headline_mode"]] for r in results if r and (mode or r["headline_mode"]) in r["modes"]]
        return _fmt(pool(cells)["accuracy"]) if cells else "–"

    model_results = [s["model"] for s in report["sets"] if s["name"] in names]
    rows.append(["**weighted**", str(sum(s["used"] for s in sets)), pooled(model_results, PROTOCOL_MODE),
                 pooled(model_results, None),
                 *[c for p in peers for c in (pooled([s["peers"].get(p) for s in sets], PROTOCOL_MODE),
                                              pooled([s["peers"].get(p) for s in sets], None))]])
    return header, rows


def mode_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Every mode of the model and of each peer on every set (accuracy and 1-NED), e.g. the HR side of pair sets."""
    modes = ("sr", "bicubic", "lr", "hr", PROTOCOL_MODE)
    header = ["set", "protocol", "reader", *[f"{m} acc / 1-NED" for m in modes]]
    rows = []
    for s in report["sets"]:
        readers = [("ours", s.get("model")), *s.get("peers", {}).items()]
        for name, r in readers:
            if not r:
                continue
            cells = [f"{_fmt(r['modes'][m]['accuracy'])} / {_fmt(r['modes'][m]['one_minus_ned'])}" if m in r["modes"] else "–"
                     for m in modes]
            rows.append([s["name"], s.get("protocol", "latin36"), name, *cells])
    return header, rows


def to_markdown(report: dict[str, Any], command: str = "") -> str:
    header, rows = summary_rows(report)
    lines = ["# lowres-ocr evaluation", "", f"Model: `{report['model']['name']}` ({report['model']['source']}, "
             f"{report['model']['device']}), batch size {report['options']['batch_size']}, {report['created']}."]
    if command:
        lines += ["", f"Command: `{command}`"]
    lines += ["", f"Headline accuracy: **{report['average']['accuracy']:.2f}%** (36-char protocol, "
              f"{report['average']['n']} samples, weighted by set size; pairs in mode sr, word sets in mode hr).", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "Accuracies in % (36-char protocol unless marked cs); peers in their headline mode "
              "(lr = the stored LR image, hr = the HR image or word crop)."]
    for name, why in report.get("peers_skipped", {}).items():
        lines.append(f"- peer {name} skipped: {why}")
    p_header, p_rows = protocol_rows(report)
    if p_rows:
        lines += ["", "## TextZoom protocol row", "", "Pair sets read with the LR image squeezed to 16×64 (bicubic) "
                  "first, as the published TextZoom methods read it, beside the LR image as stored (the headline).", ""]
        lines += ["| " + " | ".join(p_header) + " |", "|" + "---|" * len(p_header)]
        lines += ["| " + " | ".join(r) + " |" for r in p_rows]
    m_header, m_rows = mode_rows(report)
    if m_rows:
        lines += ["", "## Every mode, model and peers", "", "sr / bicubic: our LR path (SR branch / bicubic "
                  "upsampling); lr: a peer reading the stored LR image; hr: the HR image of a pair or the word crop; "
                  "lr16x64: the TextZoom protocol row.", ""]
        lines += ["| " + " | ".join(m_header) + " |", "|" + "---|" * len(m_header)]
        lines += ["| " + " | ".join(r) + " |" for r in m_rows]
    problems = [(s["name"], x) for s in report["sets"] for x in s["unreadable_samples"]]
    if problems:
        lines += ["", "## Unreadable samples", ""] + [f"- {n}: {x['where']}: {x['error']}" for n, x in problems[:200]]
    skipped = [(s["name"], x) for s in report["sets"] for x in s["skipped_lines"]]
    if skipped:
        lines += ["", "## Skipped lines", ""] + [f"- {n}: {x['where']}: {x['reason']}: {x['detail']}" for n, x in skipped[:200]]
    filtered = [(s["name"], x) for s in report["sets"] for x in s["filtered_samples"]]
    if filtered:
        lines += ["", f"## Filtered labels ({len(filtered)})", ""]
        lines += [f"- {n}: {x['where']}: {x['detail']}" for n, x in filtered[:200]]
        if len(filtered) > 200:
            lines.append(f"- … {len(filtered) - 200} more in report.json")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- plots
def _svg_bars(title: str, groups: list[str], series: dict[str, list[float | None]], ymax: float = 100.0,
              ylabel: str = "accuracy %") -> str:
    """Grouped bar chart as inline SVG (one group per x label, one bar per series)."""
    w_group = max(60, 22 * len(series) + 20)
    left, top, bottom, height = 50, 30, 70, 220
    width = left + w_group * max(1, len(groups)) + 20 + 140
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{top + height + bottom}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    for k in range(0, 6):
        y = top + height - height * k / 5
        parts.append(f'<line x1="{left}" x2="{left + w_group * len(groups)}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{ymax * k / 5:.0f}</text>')
    parts.append(f'<text x="12" y="{top + height / 2}" font-size="11" transform="rotate(-90 12 {top + height / 2})" '
                 f'text-anchor="middle">{html.escape(ylabel)}</text>')
    bar_w = (w_group - 20) / max(1, len(series))
    for g, name in enumerate(groups):
        x0 = left + g * w_group + 10
        for k, (sname, values) in enumerate(series.items()):
            v = values[g]
            if v is None:
                continue
            h = max(1.5, height * min(v, ymax) / ymax)  # a sliver keeps 0% visible
            x = x0 + k * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top + height - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"><title>{html.escape(sname)} {html.escape(name)}: {v:.1f}</title></rect>')
        parts.append(f'<text x="{x0 + (w_group - 20) / 2:.1f}" y="{top + height + 14}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-30 {x0 + (w_group - 20) / 2:.1f} {top + height + 14})">{html.escape(name)}</text>')
    lx = left + w_group * len(groups) + 20
    for k, sname in enumerate(series):
        parts.append(f'<rect x="{lx}" y="{top + 16 * k}" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>')
        parts.append(f'<text x="{lx + 16}" y="{top + 16 * k + 10}" font-size="11">{html.escape(sname)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def accuracy_plot(report: dict[str, Any]) -> str:
    sets = [s for s in report["sets"] if s.get("model")]
    groups = [s["name"] for s in sets] + ["average"]
    series: dict[str, list[float | None]] = {}
    for mode in ("bicubic", "sr", "hr"):
        vals = [s["model"]["modes"][mode]["accuracy"] if mode in s["model"]["modes"] else None for s in sets]
        if any(v is not None for v in vals):
            series[f"lowres-ocr {mode}"] = vals + [report["average"]["modes"].get(mode, {}).get("accuracy")]
    for peer, avg in report.get("peers_average", {}).items():
        series[peer] = [_head_acc(s["peers"].get(peer)) for s in sets] + [avg["accuracy"]]
    return _svg_bars("Word accuracy per set (36-char protocol)", groups, series)


def length_plot(report: dict[str, Any]) -> str:
    """Accuracy by normalised label length, pooled over sets (headline modes)."""
    def pooled(results: list[dict[str, Any] | None]) -> dict[int, list[int]]:
        acc: dict[int, list[int]] = {}
        for r in results:
            for k, (n, c) in (r or {}).get("by_length", {}).items():
                cell = acc.setdefault(min(int(k), 12), [0, 0])
                cell[0] += n
                cell[1] += c
        return acc

    curves = {"lowres-ocr": pooled([s.get("model") for s in report["sets"]])}
    for peer in report.get("peers_average", {}):
        curves[peer] = pooled([s["peers"].get(peer) for s in report["sets"] if s.get("peers")])
    lengths = sorted({k for c in curves.values() for k in c})
    groups = [f"{k}" if k < 12 else "12+" for k in lengths]
    series = {name: [100.0 * c[k][1] / c[k][0] if k in c and c[k][0] else None for k in lengths] for name, c in curves.items()}
    return _svg_bars("Accuracy by label length (characters after normalisation)", groups, series)


# ------------------------------------------------------------------------------------------------ html
def _b64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _cards(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        imgs = "".join(f'<figure><img src="{_b64(im)}" width="256" height="64" alt="{html.escape(k)}"><figcaption>{html.escape(k)}</figcaption></figure>'
                       for k, im in r["images"].items())
        preds = "".join(f'<li class="{"ok" if r["correct"].get(m) else "bad"}">{html.escape(m)}: <code>{html.escape(t)}</code></li>'
                        for m, t in r["predictions"].items())
        preds += "".join(f'<li class="{"ok" if normalize_36(t) == normalize_36(r["label"]) else "bad"}">{html.escape(n)}: '
                         f'<code>{html.escape(t)}</code></li>' for n, t in r["peers"].items())
        out.append(f'<div class="card"><div class="imgs">{imgs}</div><div>label <code>{html.escape(r["label"])}</code> '
                   f'<small>{html.escape(r["where"])} · conf {r["confidence"]:.2f}</small><ul>{preds}</ul></div></div>')
    return "".join(out)


CSS = """body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}
.card{display:flex;gap:12px;border:1px solid #ddd;margin:6px 0;padding:6px}.imgs{display:flex;gap:6px}
figure{margin:0;text-align:center;font-size:11px}img{image-rendering:pixelated;border:1px solid #eee}
li.ok{color:#1a7f37}li.bad{color:#b42318}ul{margin:4px 0;padding-left:18px;font-size:13px}.plot{margin:10px 0}"""


def to_html(report: dict[str, Any], artifacts: Artifacts, command: str = "") -> str:
    header, rows = summary_rows(report)
    table = "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{html.escape(c.replace('**', ''))}</td>" for c in r) + "</tr>" for r in rows) + "</table>"
    body = [f"<h1>lowres-ocr evaluation</h1><p>Model <code>{html.escape(report['model']['name'])}</code> "
            f"({html.escape(report['model']['source'])}, {html.escape(str(report['model']['device']))}), {report['created']}. "
            f"Headline accuracy <b>{report['average']['accuracy']:.2f}%</b> over {report['average']['n']} samples.</p>"]
    if command:
        body.append(f"<p>Command: <code>{html.escape(command)}</code></p>")
    body += [table, "<h2>Plots</h2>", accuracy_plot(report), length_plot(report)]
    for name, why in report.get("peers_skipped", {}).items():
        body.append(f"<p>Peer {html.escape(name)} skipped: {html.escape(why)}</p>")
    body.append("<h2>Gallery</h2>")
    for name, rows_ in artifacts.gallery.items():
        body.append(f"<h3>{html.escape(name)}</h3>{_cards(rows_)}")
    body.append("<h2>Worst failures</h2><p>Wrong predictions of the headline mode, most confident first.</p>")
    for name, rows_ in artifacts.failures.items():
        body.append(f"<h3>{html.escape(name)}</h3>{_cards(rows_) or '<p>none</p>'}")
    bad = [(s["name"], x) for s in report["sets"] for x in s["unreadable_samples"]]
    if bad:
        body.append("<h2>Unreadable samples</h2><ul>" + "".join(
            f"<li>{html.escape(n)}: {html.escape(x['where'])}: {html.escape(x['error'])}</li>" for n, x in bad[:500]) + "</ul>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>lowres-ocr evaluation</title><style>{CSS}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


# ------------------------------------------------------------------------------------------------ kfp
def _metric_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(parts)).strip("_")


def kfp_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Flat ``name → float`` for ``dsl.Metrics.log_metric``: averages, per-set accuracies, PSNR/SSIM, peers."""
    avg = report["average"]
    out = {"average_accuracy": float(avg["accuracy"]), "average_accuracy_cs": float(avg["accuracy_cs"]),
           "average_one_minus_ned": float(avg["one_minus_ned"]), "samples_used": float(avg["n"])}
    for s in report["sets"]:
        r = s.get("model")
        out[_metric_name(s["name"], "unreadable")] = float(s["unreadable"])
        if not r:
            continue
        for mode, cell in r["modes"].items():
            out[_metric_name(s["name"], mode, "accuracy")] = float(cell["accuracy"])
        out[_metric_name(s["name"], "crops_per_s")] = float(r["speed"]["crops_per_s"])
        for kind, q in (s.get("image_quality") or {}).items():
            if isinstance(q, dict):
                out[_metric_name(s["name"], kind, "psnr")] = float(q["psnr"])
                out[_metric_name(s["name"], kind, "ssim")] = float(q["ssim"])
    for peer, pavg in report.get("peers_average", {}).items():
        out[_metric_name("peer", peer, "average_accuracy")] = float(pavg["accuracy"])
    return out


def write_reports(report: dict[str, Any], artifacts: Artifacts, out_dir: Path, command: str = "") -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    report = {**report, "command": command}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["md"].write_text(to_markdown(report, command), encoding="utf-8")
    paths["html"].write_text(to_html(report, artifacts, command), encoding="utf-8")
    return paths
