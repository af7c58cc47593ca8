"""Word boxes from a recognised line: split at its spaces, placed by the CTC alignment.

Greedy CTC decoding records the time step of each emitted character (``Decoded.steps``). Step ``t`` of ``T``
covers the recognizer input columns ``[t, t + 1) × input_width / T``; the crop's content fills the first
``content_width`` columns of the input (the rest is right padding for ``aspect`` geometries), so a step
maps to the crop fraction ``(t + 0.5) / T × input_width / content_width``. A word spans the crop from the
middle of the space before it (or the crop's left edge) to the middle of the space after it (or the right edge).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WordSpan:
    text: str
    start: float  # fraction of the crop width where the word begins, in [0, 1]
    end: float  # fraction where it ends
    confidence: float  # mean confidence of its characters


def step_fraction(step: float, steps_total: int, input_width: int, content_width: int) -> float:
    """Fraction of the crop width at the centre of CTC step ``step`` (of ``steps_total``), clipped to [0, 1]."""
    if steps_total <= 0 or content_width <= 0:
        raise ValueError(f"steps_total and content_width must be positive, got {steps_total}, {content_width}")
    frac = (step + 0.5) / steps_total * input_width / content_width
    return min(1.0, max(0.0, frac))


def split_words(text: str, steps: list[int], char_confidences: list[float], steps_total: int,
                input_width: int, content_width: int) -> list[WordSpan]:
    """The words of ``text`` (split at spaces) with their spans over the crop; [] for blank text."""
    if len(steps) != len(text):
        raise ValueError(f"{len(text)} characters but {len(steps)} alignment steps")
    confs = list(char_confidences) if len(char_confidences) == len(text) else [1.0] * len(text)
    words: list[WordSpan] = []
    start = 0.0
    current: list[int] = []  # character indices of the word being read
    for i, ch in enumerate(text + " "):
        if ch != " ":
            current.append(i)
            continue
        # a space (or the end): the word ends at the space's step, or at the crop's right edge
        end = step_fraction(steps[i], steps_total, input_width, content_width) if i < len(text) else 1.0
        if current:
            word = "".join(text[j] for j in current)
            conf = sum(confs[j] for j in current) / len(current)
            words.append(WordSpan(word, start, max(start, end), conf))
        start = end
        current = []
    return words
