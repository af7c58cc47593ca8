import math

import numpy as np
import pytest

from lowres_ocr.core.charset import ASCII, CHARSET, NUM_CLASSES, encode
from lowres_ocr.core.decoding import ctc_beam_search, ctc_greedy, ctc_sequence_logprob


def _probs(rows):
    """rows: list of {class_id: p}; remaining mass spread over other classes."""
    out = np.zeros((len(rows), NUM_CLASSES), dtype=np.float64)
    for t, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (NUM_CLASSES - len(row))
        out[t] = rest
        for c, p in row.items():
            out[t, c] = p
    return out


def test_greedy_merges_repeats_and_drops_blanks():
    a, b = encode("a")[0], encode("b")[0]
    probs = _probs([{a: 0.9}, {a: 0.8}, {0: 0.9}, {a: 0.7}, {b: 0.6}, {0: 0.9}])
    d = ctc_greedy(probs[None])[0]
    assert d.text == "aab"
    assert d.char_confidences == pytest.approx([0.9, 0.7, 0.6], abs=1e-3)
    assert d.confidence == pytest.approx(np.mean([0.9, 0.7, 0.6]), abs=1e-3)


def test_beam_search_at_least_as_probable_as_greedy():
    """Best path says blank,blank,blank (empty), but the label 'a' is more probable summed over alignments."""
    a = encode("a")[0]
    probs = _probs([{0: 0.4, a: 0.35}, {0: 0.4, a: 0.35}, {0: 0.4, a: 0.35}])
    greedy = ctc_greedy(probs[None])[0]
    beam = ctc_beam_search(probs[None], beam_width=8)[0]
    lp = lambda text: ctc_sequence_logprob(probs, encode(text))
    assert greedy.text == ""
    assert beam.text == "a"
    assert lp(beam.text) >= lp(greedy.text)


def test_sequence_logprob_hand_worked():
    a = encode("a")[0]
    probs = np.zeros((2, NUM_CLASSES))
    probs[:, 0], probs[:, a] = 0.5, 0.5
    # alignments of "a" over 2 steps: (a,a), (a,-), (-,a) → 3 × 0.25
    assert ctc_sequence_logprob(probs, [a]) == pytest.approx(math.log(0.75))


def test_bad_shape():
    with pytest.raises(ValueError, match="batch, steps, classes"):
        ctc_greedy(np.zeros((3, 4)))


def test_charset_is_94_printable_ascii():
    assert len(CHARSET) == 94 and " " not in CHARSET and NUM_CLASSES == 95


def test_attention_greedy_stops_at_end_of_sequence():
    from lowres_ocr.core.decoding import attention_greedy, decode

    a, b = encode("a")[0], encode("b")[0]
    probs = _probs([{a: 0.9}, {b: 0.8}, {0: 0.7}, {a: 0.9}])
    assert attention_greedy(probs[None])[0].text == "ab"
    assert decode(probs[None], "ctc")[0].text == "aba"
    with pytest.raises(ValueError, match="unknown decoder"):
        decode(probs[None], "rnn-t")


@pytest.mark.parametrize("decoder", ["ctc", "attention"])
def test_decoding_from_the_best_class_per_step_equals_decoding_the_probabilities(decoder):
    from lowres_ocr.core.decoding import decode, decode_best

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 12, ASCII.num_classes)) * 3
    probs = (np.exp(logits) / np.exp(logits).sum(2, keepdims=True)).astype(np.float32)
    probs[:, ::3, 0] += 2.0  # blanks / end of sequence now and then
    probs /= probs.sum(2, keepdims=True)
    from_best = decode_best(probs.argmax(2).astype(np.int32), probs.max(2), decoder, ASCII)
    assert from_best == decode(probs, decoder, ASCII)
    with pytest.raises(ValueError, match="outside the ascii charset"):
        decode_best(np.full((1, 3), ASCII.num_classes, np.int32), np.ones((1, 3), np.float32), decoder, ASCII)
    with pytest.raises(ValueError, match=r"\[batch, steps\]"):
        decode_best(np.zeros((1, 3), np.int32), np.ones((1, 4), np.float32), decoder, ASCII)
