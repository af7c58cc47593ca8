"""The deploy gate: is the new report's weighted average good enough, and not worse than the baseline's?"""

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
