"""The benchmark run: every set through the model (all modes it supports) and the peers, metrics, speed.

The result is a plain dict (the ``report.json`` schema, docs/report-schema.md) plus in-memory
``Artifacts`` (gallery and failure images) that the HTML report embeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lowres_ocr.core.charset import MAX_LABEL_LENGTH, normalize_36
from lowres_ocr.core.decoding import Decoded
from lowres_ocr.evaluation.image_quality import image_quality, to_uint8
from lowres_ocr.evaluation.metrics import Score, Tally, label_filter, protocol_for, score, tally, weighted_average
from lowres_ocr.evaluation.predictors import Predictor
from lowres_ocr.data.reader import EvalSet, load_set
from lowres_ocr.core.geometry import HR_SIZE
from lowres_ocr.core.images import BadImageError, decode_image

SCHEMA_VERSION = 1
#: Which image of a sample each mode reads.
MODE_INPUT = {"sr": "lr", "bicubic": "lr", "lr": "lr", "hr": "hr"}
#: Headline mode preference: pairs are measured on the deployed path (LR → SR), word sets on the crop.
PAIR_MODES = ("bicubic", "sr", "hr")
PEER_PAIR_MODES = ("lr", "hr")
#: The TextZoom protocol row: a pair's LR image squeezed to 64×16 (bicubic), as the published TextZoom methods read
#: it, then read by the predictor's own LR path (``sr`` for our models, ``lr`` for peers).
PROTOCOL_MODE = "lr16x64"
PROTOCOL_SIZE = (64, 16)


@dataclass
class Options:
    batch_size: int = 64
    latency_samples: int = 50  # batch-1 calls timed per set (0 = skip)
    gallery: int = 8  # crops per set shown in the HTML gallery
    failures: int = 8  # worst failures per set kept for the HTML
    limit: int = 0  # first N samples of each set only (0 = all)
    modes: tuple[str, ...] = ()  # run only these modes where a predictor has them (empty = all)
    protocol_row: bool = False  # pair sets also run PROTOCOL_MODE (LR squeezed to 16×64 first)


@dataclass
class Artifacts:
    """Images for the HTML report, per set: gallery rows and worst failures (PIL images, 128×32)."""

    gallery: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class UsableSample:
    """One usable sample: decoded images and label."""

    where: str
    label: str
    hr: Image.Image
    lr: Image.Image | None


Progress = Callable[[str, int], None]  # (description, samples just done)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else 0.0


def prepare(ev: EvalSet, limit: int = 0) -> tuple[list[UsableSample], dict[str, Any]]:
    """Decode images and filter labels; returns usable samples and the accounting of the rest."""
    used: list[UsableSample] = []
    filtered: list[dict[str, str]] = []
    unreadable: list[dict[str, str]] = []
    samples = ev.samples[:limit] if limit else ev.samples
    protocol = protocol_for(s.label for s in samples)
    for s in samples:
        if s.error:
            unreadable.append({"where": s.where, "error": s.error})
            continue
        problem = label_filter(s.label, MAX_LABEL_LENGTH, protocol)
        if problem:
            filtered.append({"where": s.where, "reason": problem[0], "detail": problem[1]})
            continue
        try:
            hr = decode_image(s.hr or b"", f"{ev.name} {s.where}")
            lr = decode_image(s.lr or b"", f"{ev.name} {s.where} (lr)") if ev.kind == "pairs" else None
        except BadImageError as err:
            unreadable.append({"where": s.where, "error": str(err)})
            continue
        used.append(UsableSample(s.where, s.label, hr, lr))
    reasons: dict[str, int] = {}
    for f in filtered:
        reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
    accounting = {
        "protocol": protocol, "total": len(samples) + len(ev.skipped_lines), "used": len(used),
        "filtered": reasons, "filtered_samples": filtered,
        "unreadable": len(unreadable), "unreadable_samples": unreadable,
        "skipped_lines": ev.skipped_lines,
    }
    return used, accounting


def _inputs(samples: list[UsableSample], mode: str) -> list[Image.Image]:
    if mode == PROTOCOL_MODE:
        return [s.lr.resize(PROTOCOL_SIZE, Image.BICUBIC) for s in samples if s.lr is not None]
    key = MODE_INPUT[mode]
    return [(s.lr if key == "lr" and s.lr is not None else s.hr) for s in samples]


def _run_mode(p: Predictor, images: list[Image.Image], mode: str, opts: Options, progress: Progress | None,
              desc: str) -> tuple[list[Decoded], float]:
    preds: list[Decoded] = []
    start = time.perf_counter()
    for i in range(0, len(images), opts.batch_size):
        chunk = images[i:i + opts.batch_size]
        preds += p.predict(chunk, (_lr_path(p) or mode) if mode == PROTOCOL_MODE else mode, opts.batch_size)
        if progress:
            progress(desc, len(chunk))
    elapsed = time.perf_counter() - start
    if len(preds) != len(images):
        raise RuntimeError(f"{p.name} returned {len(preds)} predictions for {len(images)} images ({mode})")
    return preds, elapsed


def _latency(p: Predictor, images: list[Image.Image], mode: str, n: int) -> dict[str, float | int]:
    times = []
    for im in images[:n]:
        t0 = time.perf_counter()
        p.predict([im], mode, 1)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {"latency_samples": len(times), "latency_ms_p50": _percentile(times, 50), "latency_ms_p99": _percentile(times, 99)}


def _by_length(scores: list[Score]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for s in scores:
        cell = out.setdefault(str(s.length), [0, 0])
        cell[0] += 1
        cell[1] += int(s.correct)
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def _lr_path(p: Predictor) -> str | None:
    """The mode in which ``p`` reads an LR image: ``sr`` (our models) or ``lr`` (peers); None if it has neither."""
    return next((m for m in ("sr", "lr") if m in p.modes), None)


def modes_for(p: Predictor, kind: str, only: tuple[str, ...] = (), protocol_row: bool = False) -> tuple[list[str], str]:
    """(modes to run, headline mode) of a predictor on a set of ``kind``.

    ``only`` keeps the listed modes where the predictor has them; a predictor left with none of them
    runs its headline mode alone. ``protocol_row`` adds PROTOCOL_MODE on pair sets (never the headline).
    """
    wanted, headline = _modes(p, kind, only)
    if protocol_row and kind == "pairs" and _lr_path(p) and PROTOCOL_MODE not in wanted:
        wanted.append(PROTOCOL_MODE)
    return wanted, headline


def _modes(p: Predictor, kind: str, only: tuple[str, ...]) -> tuple[list[str], str]:
    if kind == "pairs":
        wanted = [m for m in (*PAIR_MODES, *PEER_PAIR_MODES) if m in p.modes]
        headline = next(m for m in ("sr", "lr", "bicubic", "hr") if m in wanted)
    else:
        wanted = ["hr"] if "hr" in p.modes else [p.modes[0]]
        headline = wanted[0]
    if only:
        kept = [m for m in wanted if m in only]
        wanted = kept or [headline]
        if headline not in wanted:
            headline = wanted[0]
    return wanted, headline


def evaluate_predictor(p: Predictor, samples: list[UsableSample], kind: str, opts: Options, progress: Progress | None,
                       set_name: str, protocol: str = "latin36",
                       ) -> tuple[dict[str, Any], dict[str, list[Decoded]], dict[str, list[Score]]]:
    modes, headline = modes_for(p, kind, opts.modes, opts.protocol_row)
    result: dict[str, Any] = {"headline_mode": headline, "modes": {}}
    preds_by_mode: dict[str, list[Decoded]] = {}
    scores_by_mode: dict[str, list[Score]] = {}
    for mode in modes:
        images = _inputs(samples, mode)
        preds, elapsed = _run_mode(p, images, mode, opts, progress, f"{set_name} · {p.name} · {mode}")
        scores = [score(s.label, d.text, protocol) for s, d in zip(samples, preds)]
        t = tally(scores)
        result["modes"][mode] = {**t.summary(), "correct": t.correct, "correct_cs": t.correct_cs, "crops_per_s": len(images) / elapsed if elapsed > 0 else 0.0}
        preds_by_mode[mode], scores_by_mode[mode] = preds, scores
    head_images = _inputs(samples, headline)
    result["speed"] = {"mode": headline, "batch_size": opts.batch_size,
                       "crops_per_s": result["modes"][headline]["crops_per_s"],
                       **_latency(p, head_images, headline, opts.latency_samples)}
    result["by_length"] = _by_length(scores_by_mode[headline])
    return result, preds_by_mode, scores_by_mode


def _pairs_quality(p: Predictor, samples: list[UsableSample], kind: str, batch_size: int,
                   ) -> tuple[dict[str, Any] | None, np.ndarray | None, np.ndarray | None]:
    """Image quality, SR and bicubic images of a pairs set; all None for word sets."""
    lrs = [s.lr for s in samples if s.lr is not None]
    if kind != "pairs" or not lrs or len(lrs) != len(samples):
        return None, None, None
    return image_quality(p, lrs, [s.hr for s in samples], batch_size)


def _thumb(img: Image.Image) -> Image.Image:
    return img.convert("RGB").resize(HR_SIZE, Image.BICUBIC)


def _gallery_and_failures(samples: list[UsableSample], kind: str, model: dict[str, Any], preds: dict[str, list[Decoded]],
                          scores: dict[str, list[Score]], sr: np.ndarray | None, bicubic: np.ndarray | None,
                          peer_preds: dict[str, list[Decoded]], opts: Options) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Gallery rows and worst failures; pairs show the bicubic image the bicubic mode recognizes and SR."""
    headline = model["headline_mode"]

    def row(i: int) -> dict[str, Any]:
        s = samples[i]
        images: dict[str, Image.Image] = {}
        if bicubic is not None:
            images["LR (bicubic)"] = to_uint8(bicubic[i])
        if sr is not None:
            images["SR"] = to_uint8(sr[i])
        images["HR" if kind == "pairs" else "crop"] = _thumb(s.hr)
        return {"where": s.where, "label": s.label, "images": images,
                "predictions": {m: preds[m][i].text for m in preds},
                "correct": {m: bool(scores[m][i].correct) for m in scores},
                "confidence": preds[headline][i].confidence,
                "peers": {n: pp[i].text for n, pp in peer_preds.items()}}

    gallery = [row(i) for i in range(min(opts.gallery, len(samples)))]
    wrong = [i for i, sc in enumerate(scores[headline]) if not sc.correct]
    # worst = confidently wrong first, then the farthest from the label
    wrong.sort(key=lambda i: (-preds[headline][i].confidence, scores[headline][i].one_minus_ned))
    return gallery, [row(i) for i in wrong[:opts.failures]]


def evaluate_sets(model: Predictor, specs: list[str], peers: list[Predictor] | None = None, opts: Options | None = None,
                  progress_factory: Callable[[int], Progress] | None = None, predictions_dir: Path | None = None,
                  ) -> tuple[dict[str, Any], Artifacts]:
    """Evaluate ``model`` (and ``peers``) on every set; all sets are loaded first so a bad SET fails fast."""
    opts = opts or Options()
    peers = peers or []
    loaded = [load_set(s) for s in specs]
    prepared = [(ev, *prepare(ev, opts.limit)) for ev in loaded]
    work = 0
    for ev, used, _ in prepared:
        for p in [model, *peers]:
            work += len(used) * len(modes_for(p, ev.kind, opts.modes, opts.protocol_row)[0])
    progress = progress_factory(work) if progress_factory else None
    artifacts = Artifacts()
    sets_out: list[dict[str, Any]] = []
    for ev, used, accounting in prepared:
        entry: dict[str, Any] = {"name": ev.name, "path": str(ev.spec.path), "labels_file": ev.spec.labels or "labels.tsv",
                                 "kind": ev.kind, **accounting}
        if not used:
            entry.update({"model": None, "image_quality": None, "peers": {}})
            sets_out.append(entry)
            continue
        res, preds, scores = evaluate_predictor(model, used, ev.kind, opts, progress, ev.name, accounting["protocol"])
        quality, sr, bicubic = _pairs_quality(model, used, ev.kind, opts.batch_size)
        peer_out: dict[str, Any] = {}
        peer_head: dict[str, list[Decoded]] = {}
        for peer in peers:
            pres, ppreds, _ = evaluate_predictor(peer, used, ev.kind, opts, progress, ev.name, accounting["protocol"])
            peer_out[peer.name] = pres
            peer_head[peer.name] = ppreds[pres["headline_mode"]]
        entry.update({"model": res, "image_quality": quality, "peers": peer_out})
        gallery, failures = _gallery_and_failures(used, ev.kind, res, preds, scores, sr, bicubic, peer_head, opts)
        artifacts.gallery[ev.name], artifacts.failures[ev.name] = gallery, failures
        if predictions_dir is not None:
            _write_predictions(predictions_dir / f"{_safe(ev.name)}.tsv", used, preds, peer_head)
        sets_out.append(entry)
    return summarize(model, peers, sets_out, opts), artifacts


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _write_predictions(path: Path, samples: list[UsableSample], preds: dict[str, list[Decoded]],
                       peers: dict[str, list[Decoded]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(preds) + list(peers)
    lines = ["\t".join(["where", "label", "label_36", *cols])]
    for i, s in enumerate(samples):
        texts = [preds[m][i].text for m in preds] + [peers[n][i].text for n in peers]
        lines.append("\t".join([s.where, s.label, normalize_36(s.label), *texts]).replace("\n", " "))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _tally_of(cell: dict[str, Any]) -> Tally:
    n = int(cell["n"])
    correct_cs = cell.get("correct_cs", round(cell["accuracy_cs"] * n / 100.0))
    return Tally(n, int(cell["correct"]), int(correct_cs), cell["one_minus_ned"] * n / 100.0)


def pool(cells: list[dict[str, Any]]) -> dict[str, float | int]:
    """Report cells (a result's ``modes[mode]``) pooled over their samples: n, accuracy, accuracy_cs, one_minus_ned."""
    return weighted_average([_tally_of(c) for c in cells])


def _average(results: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Sample-weighted average of the headline modes, and per mode over the sets that ran it."""
    heads = [r for r in results if r]
    avg: dict[str, Any] = dict(pool([r["modes"][r["headline_mode"]] for r in heads]))
    modes: dict[str, Any] = {}
    for mode in sorted({m for r in heads for m in r["modes"]}):
        cells = [r["modes"][mode] for r in heads if mode in r["modes"]]
        modes[mode] = {**pool(cells), "sets": len(cells)}
    avg["modes"] = modes
    return avg


def summarize(model: Predictor, peers: list[Predictor], sets_out: list[dict[str, Any]], opts: Options) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"name": model.name, "source": getattr(model, "source", ""), "device": getattr(model, "device", ""),
                  "modes": list(model.modes)},
        "options": {"batch_size": opts.batch_size, "latency_samples": opts.latency_samples, "limit": opts.limit,
                    "modes": list(opts.modes), "protocol_row": opts.protocol_row},
        "protocol": {
            "accuracy": "exact match after normalize_36 (fold accents, lower-case, keep [0-9a-z]) on both sides",
            "accuracy_cs": "exact match after fold_to_ascii (case and punctuation kept, spaces dropped)",
            "one_minus_ned": "1 - edit distance / max length, on the 36-char strings",
            "filtered": f"empty after normalize_36, longer than {MAX_LABEL_LENGTH} after it, or outside the charset",
            "image_quality": "PSNR (dB, range 1) and SSIM (Gaussian 11x11, sigma 1.5, valid region) at 32x128",
        },
        "sets": sets_out,
        "average": _average([s.get("model") for s in sets_out]),
        "peers_average": {p.name: _average([s["peers"].get(p.name) for s in sets_out if s.get("peers")]) for p in peers},
        "peers_skipped": {},
    }
