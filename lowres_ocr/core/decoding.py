"""Turning per-step class probabilities into text (numpy only: used by torch code, ONNX Runtime and Triton).

The network emits ``probs`` [B, T, C] (softmax over the C classes of its charset, class 0 = CTC blank). Greedy
decoding takes the best class per step, merges repeats and drops blanks; beam search keeps the
``beam_width`` best prefixes under the CTC prefix-merging rule. Class ids become text through the model's
:class:`~lowres_ocr.core.charset.Charset` (the 94-symbol ``ascii`` one unless given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lowres_ocr.core.charset import ASCII, BLANK, Charset


@dataclass
class Decoded:
    text: str
    confidence: float  # mean probability of the emitted characters (0.0 for an empty string)
    char_confidences: list[float] = field(default_factory=list)
    # time step at which each emitted character first appears (greedy CTC only; empty otherwise);
    # left out of equality so that results compare as before
    steps: list[int] = field(default_factory=list, compare=False)


def _check(probs: np.ndarray, charset: Charset) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3:
        raise ValueError(f"probs must be [batch, steps, classes], got shape {probs.shape}")
    if probs.shape[2] != charset.num_classes:
        raise ValueError(f"probs have {probs.shape[2]} classes, the {charset.name} charset has {charset.num_classes}")
    return probs


def ctc_greedy(probs: np.ndarray, charset: Charset = ASCII) -> list[Decoded]:
    """Best path decoding of a batch ``probs`` [B, T, C]."""
    probs = _check(probs, charset)
    return ctc_greedy_best(probs.argmax(axis=2), probs.max(axis=2), charset)


def ctc_greedy_best(best: np.ndarray, best_p: np.ndarray, charset: Charset = ASCII) -> list[Decoded]:
    """Best path decoding from the best class per step ``best`` [B, T] and its probability ``best_p`` [B, T]."""
    out: list[Decoded] = []
    for ids, ps in zip(best, best_p):
        kept_ids: list[int] = []
        kept_p: list[float] = []
        kept_t: list[int] = []
        prev = BLANK
        for t, (i, p) in enumerate(zip(ids.tolist(), ps.tolist())):
            if i != BLANK and i != prev:
                kept_ids.append(i)
                kept_p.append(p)
                kept_t.append(t)
            elif i != BLANK and i == prev and kept_p:  # same character held over several steps
                kept_p[-1] = max(kept_p[-1], p)
            prev = i
        conf = float(np.mean(kept_p)) if kept_p else 0.0
        out.append(Decoded(charset.decode_ids(kept_ids), conf, [float(p) for p in kept_p], kept_t))
    return out


def ctc_sequence_logprob(probs: np.ndarray, ids: list[int]) -> float:
    """log P(label | probs) for one sample ``probs`` [T, C], summed over all CTC alignments."""
    probs = np.asarray(probs, dtype=np.float64)
    ext = [BLANK]
    for i in ids:
        ext += [i, BLANK]
    t_steps, s = probs.shape[0], len(ext)
    alpha = np.zeros(s)
    alpha[0] = probs[0, ext[0]]
    if s > 1:
        alpha[1] = probs[0, ext[1]]
    for t in range(1, t_steps):
        new = np.zeros(s)
        for k in range(s):
            a = alpha[k] + (alpha[k - 1] if k >= 1 else 0.0)
            if k >= 2 and ext[k] != BLANK and ext[k] != ext[k - 2]:
                a += alpha[k - 2]
            new[k] = a * probs[t, ext[k]]
        alpha = new
    total = alpha[-1] + (alpha[-2] if s > 1 else 0.0)
    return math.log(total) if total > 0 else float("-inf")


def ctc_beam_search(probs: np.ndarray, beam_width: int = 8, prune: float = 1e-4, charset: Charset = ASCII) -> list[Decoded]:
    """CTC prefix beam search over a batch ``probs`` [B, T, C]; returns the most probable label per sample."""
    probs = _check(probs, charset).astype(np.float64)
    results: list[Decoded] = []
    for sample in probs:
        # prefix -> (p ending in blank, p ending in non-blank)
        beams: dict[tuple[int, ...], tuple[float, float]] = {(): (1.0, 0.0)}
        for step in sample:
            candidates = np.nonzero(step >= prune)[0]
            nxt: dict[tuple[int, ...], list[float]] = {}
            for prefix, (pb, pnb) in beams.items():
                for c in candidates.tolist():
                    p = step[c]
                    if c == BLANK:
                        entry = nxt.setdefault(prefix, [0.0, 0.0])
                        entry[0] += (pb + pnb) * p
                        continue
                    last = prefix[-1] if prefix else None
                    extended = prefix + (c,)
                    entry = nxt.setdefault(extended, [0.0, 0.0])
                    if c == last:
                        entry[1] += pb * p  # repeated char needs a blank in between
                        same = nxt.setdefault(prefix, [0.0, 0.0])
                        same[1] += pnb * p
                    else:
                        entry[1] += (pb + pnb) * p
            ranked = sorted(nxt.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)[:beam_width]
            total = sum(v[0] + v[1] for _, v in ranked) or 1.0
            beams = {k: (v[0] / total, v[1] / total) for k, v in ranked}  # renormalise against underflow
        best = max(beams.items(), key=lambda kv: kv[1][0] + kv[1][1])[0]
        # per-character confidence from the greedy alignment restricted to this label is costly; use the
        # per-step max over the character's class as an estimate
        char_conf = [float(sample[:, c].max()) for c in best]
        conf = float(np.mean(char_conf)) if char_conf else 0.0
        results.append(Decoded(charset.decode_ids(best), conf, char_conf))
    return results


def attention_greedy(probs: np.ndarray, charset: Charset = ASCII) -> list[Decoded]:
    """Attention-decoder output [B, L, C] (class 0 = end of sequence): best class per step up to the first EOS."""
    probs = _check(probs, charset)
    return attention_greedy_best(probs.argmax(2), probs.max(2), charset)


def attention_greedy_best(best: np.ndarray, best_p: np.ndarray, charset: Charset = ASCII) -> list[Decoded]:
    """Attention greedy decoding from the best class per step and its probability ([B, L] each)."""
    out = []
    for ids, ps in zip(np.asarray(best), np.asarray(best_p)):
        kept_ids: list[int] = []
        kept_p: list[float] = []
        for i, p in zip(ids.tolist(), ps.tolist()):
            if i == BLANK:
                break
            kept_ids.append(i)
            kept_p.append(float(p))
        out.append(Decoded(charset.decode_ids(kept_ids), float(np.mean(kept_p)) if kept_p else 0.0, kept_p))
    return out


def decode(probs: np.ndarray, decoder: str = "ctc", charset: Charset = ASCII) -> list[Decoded]:
    """Greedy decoding for either head: ``ctc`` (blank = 0) or ``attention`` (EOS = 0)."""
    probs = _check(probs, charset)
    return decode_best(probs.argmax(axis=2), probs.max(axis=2), decoder, charset)


def decode_best(best: np.ndarray, best_p: np.ndarray, decoder: str = "ctc", charset: Charset = ASCII) -> list[Decoded]:
    """:func:`decode` from the exported graph's ``best`` / ``best_prob`` outputs (the best class per step and its
    probability), which a server moves instead of every class's probability (C = 18,710 for the full dictionary)."""
    best, best_p = np.asarray(best), np.asarray(best_p, dtype=np.float32)
    if best.ndim != 2 or best.shape != best_p.shape:
        raise ValueError(f"best and best_prob must both be [batch, steps], got {best.shape} and {best_p.shape}")
    if best.size and (best.min() < 0 or best.max() >= charset.num_classes):
        raise ValueError(f"best holds class ids outside the {charset.name} charset's {charset.num_classes} classes")
    if decoder == "attention":
        return attention_greedy_best(best, best_p, charset)
    if decoder == "ctc":
        return ctc_greedy_best(best, best_p, charset)
    raise ValueError(f"unknown decoder {decoder!r}")
