"""The pipeline's deploy gate: set by set against the baseline, and whether two reports scored the same samples."""

from __future__ import annotations

from typing import Any

from lowres_ocr.evaluation.gate import gate_per_set, same_samples, set_accuracies


def _report(sets: dict[str, tuple[int, int]], total: int | None = None) -> dict[str, Any]:
    entries = [{"name": name, "total": n if total is None else total, "used": n, "unreadable": 0,
                "model": {"headline_mode": "sr", "modes": {"sr": {"n": n, "correct": c}}}} for name, (n, c) in sets.items()]
    n_all, c_all = sum(v[0] for v in sets.values()), sum(v[1] for v in sets.values())
    return {"average": {"accuracy": 100.0 * c_all / n_all, "n": n_all}, "sets": entries}


def test_a_set_worse_than_the_baseline_fails_even_with_a_better_average():
    new = _report({"easy": (200, 148), "svt": (200, 160)})  # 74.0 / 80.0, average 77.0
    old = _report({"easy": (200, 151), "svt": (200, 150)})  # 75.5 / 75.0, average 75.25
    r = gate_per_set(new, 60, old)
    assert not r.passed and len(r.reasons) == 1
    assert "easy 74.00% is worse than the baseline's 75.50% (tolerance 0.00 points)" in r.reasons[0]
    assert "easy 74.00/75.50" in r.summary and "svt 80.00/75.00" in r.summary
    assert gate_per_set(new, 60, old, tolerance=1.5).passed
    assert not gate_per_set(new, 60, old, tolerance=1.49).passed


def test_equal_passes_threshold_still_applies_and_no_shared_set_fails():
    new = _report({"easy": (200, 150)})
    assert gate_per_set(new, 60, _report({"easy": (200, 150)})).passed
    r = gate_per_set(new, 80, None)
    assert not r.passed and "below the threshold 80.00%" in r.reasons[0]
    assert not gate_per_set(new, 0, _report({"other": (10, 1)})).passed
    assert gate_per_set(new, 0, _report({"easy": (200, 100), "other": (10, 1)})).passed  # only shared sets compared


def test_same_samples_needs_every_set_with_the_same_counts():
    new = _report({"easy": (200, 150), "svt": (200, 160)})
    assert same_samples(new, _report({"easy": (200, 10), "svt": (200, 20), "hard": (5, 1)}))
    assert not same_samples(new, _report({"easy": (200, 10), "svt": (200, 20)}, total=1619))  # whole sets
    assert not same_samples(new, _report({"easy": (200, 10)}))  # svt missing
    other_mode = _report({"easy": (200, 150), "svt": (200, 160)})
    for s in other_mode["sets"]:
        s["model"]["headline_mode"] = "hr"
        s["model"]["modes"] = {"hr": s["model"]["modes"]["sr"]}
    assert not same_samples(new, other_mode)
    assert set_accuracies(new) == {"easy": 75.0, "svt": 80.0}
