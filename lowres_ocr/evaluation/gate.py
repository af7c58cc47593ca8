"""The deploy gate: is the new report's weighted average good enough, and not worse than the baseline's
(on average: `gate`; set by set on the same samples: `gate_per_set`, what the pipeline uses)?"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ReportError(ValueError):
    """A report file that is missing or not a lowres-ocr report.json."""


def read_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"report {p} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"report {p} is not readable JSON ({err})") from None
    try:
        float(data["average"]["accuracy"])
        [s["name"] for s in data["sets"]]
    except (KeyError, TypeError, ValueError):
        raise ReportError(f"report {p} has no average.accuracy / sets: not a lowres-ocr report.json") from None
    return data


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]  # why it failed (empty when it passed)
    summary: str


def _common_accuracy(report: dict[str, Any], names: set[str]) -> float:
    """Weighted headline accuracy over the sets in ``names``."""
    n = correct = 0
    for s in report["sets"]:
        r = s.get("model")
        if s["name"] in names and r:
            cell = r["modes"][r["headline_mode"]]
            n += cell["n"]
            correct += cell["correct"]
    return 100.0 * correct / n if n else 0.0


def gate(new: dict[str, Any], min_accuracy: float, baseline: dict[str, Any] | None = None, tolerance: float = 0.0) -> GateResult:
    """Pass when the average accuracy ≥ ``min_accuracy`` and ≥ baseline − ``tolerance`` (points).

    When the two reports cover different sets, the comparison uses the sets they share.
    """
    acc = float(new["average"]["accuracy"])
    reasons = []
    if acc < min_accuracy:
        reasons.append(f"average accuracy {acc:.2f}% is below the threshold {min_accuracy:.2f}%")
    summary = f"new average {acc:.2f}% (threshold {min_accuracy:.2f}%)"
    if baseline is not None:
        new_sets = {s["name"] for s in new["sets"]}
        old_sets = {s["name"] for s in baseline["sets"]}
        if new_sets == old_sets:
            a, b, scope = acc, float(baseline["average"]["accuracy"]), "average"
        else:
            common = new_sets & old_sets
            if not common:
                reasons.append(f"the baseline covers none of the new report's sets ({', '.join(sorted(old_sets))})")
                return GateResult(False, reasons, summary)
            a, b = _common_accuracy(new, common), _common_accuracy(baseline, common)
            scope = f"average over the {len(common)} shared sets"
        summary += f"; baseline {b:.2f}% ({scope})"
        if a < b - tolerance:
            reasons.append(f"{scope} {a:.2f}% is worse than the baseline's {b:.2f}% (tolerance {tolerance:.2f} points)")
    return GateResult(not reasons, reasons, summary)


def set_accuracies(report: dict[str, Any]) -> dict[str, float]:
    """Headline-mode word accuracy (%) of each set the model was evaluated on."""
    out: dict[str, float] = {}
    for s in report["sets"]:
        r = s.get("model")
        if r:
            cell = r["modes"][r["headline_mode"]]
            out[s["name"]] = 100.0 * cell["correct"] / cell["n"] if cell["n"] else 0.0
    return out


def _sample_key(s: dict[str, Any]) -> tuple[Any, ...]:
    model = s.get("model") or {}
    mode = model.get("headline_mode")
    n = model.get("modes", {}).get(mode, {}).get("n")
    return s.get("total"), s.get("used"), s.get("unreadable"), mode, n


def same_samples(new: dict[str, Any], baseline: dict[str, Any]) -> bool:
    """True when the baseline report scored every set of ``new`` on the same samples in the same headline mode
    (same sample counts: total, used, unreadable, scored), i.e. the two reports compare the same crops."""
    old = {s["name"]: s for s in baseline["sets"]}
    for s in new["sets"]:
        if s["name"] not in old or _sample_key(s) != _sample_key(old[s["name"]]) or s.get("total") is None:
            return False
    return True


def gate_per_set(new: dict[str, Any], min_accuracy: float, baseline: dict[str, Any] | None,
                 tolerance: float = 0.0) -> GateResult:
    """Pass when the average accuracy ≥ ``min_accuracy`` and, on every set both reports cover, the new accuracy
    ≥ the baseline's − ``tolerance`` (points)."""
    acc = float(new["average"]["accuracy"])
    reasons = []
    if acc < min_accuracy:
        reasons.append(f"average accuracy {acc:.2f}% is below the threshold {min_accuracy:.2f}%")
    summary = f"new average {acc:.2f}% (threshold {min_accuracy:.2f}%)"
    if baseline is None:
        return GateResult(not reasons, reasons, summary)
    mine, theirs = set_accuracies(new), set_accuracies(baseline)
    common = [name for name in mine if name in theirs]
    if not common:
        reasons.append(f"the baseline covers none of the new report's sets ({', '.join(sorted(theirs))})")
        return GateResult(False, reasons, summary)
    summary += "; per set new/baseline: " + ", ".join(f"{n} {mine[n]:.2f}/{theirs[n]:.2f}" for n in common)
    for name in common:
        if mine[name] < theirs[name] - tolerance:
            reasons.append(f"{name} {mine[name]:.2f}% is worse than the baseline's {theirs[name]:.2f}% "
                           f"(tolerance {tolerance:.2f} points)")
    return GateResult(not reasons, reasons, summary)
