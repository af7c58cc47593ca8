"""ASTER-style attention decoder: a GRU that attends over the encoder sequence, one character per step.

Class 0 is end-of-sequence here (the CTC blank id is reused, so the 95-class layout is the same).
``greedy`` runs a fixed ``max_len + 1`` steps with no data-dependent exit, so it exports to ONNX; the
output is per-step probabilities, decoded by ``lowres_ocr.core.decoding.attention_greedy``. ``beam_search`` is
for in-process use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lowres_ocr.core.charset import MAX_LABEL_LENGTH, NUM_CLASSES

EOS = 0


class AttentionDecoder(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 256, embed: int = 64, num_classes: int = NUM_CLASSES,
                 max_len: int = MAX_LABEL_LENGTH):
        super().__init__()
        self.num_classes = num_classes
        self.max_len = max_len
        self.start = num_classes  # extra embedding row for <start>
        self.hidden = hidden
        self.embed = nn.Embedding(num_classes + 1, embed)
        self.key = nn.Linear(in_dim, hidden)
        self.query = nn.Linear(hidden, hidden)
        self.score = nn.Linear(hidden, 1)
        self.cell = nn.GRUCell(in_dim + embed, hidden)
        self.out = nn.Linear(hidden + in_dim, num_classes)

    def step(self, feats: torch.Tensor, keys: torch.Tensor, h: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        energy = self.score(torch.tanh(keys + self.query(h)[:, None, :])).squeeze(-1)  # [B, T]
        context = (energy.softmax(-1)[..., None] * feats).sum(1)
        h = self.cell(torch.cat([context, self.embed(prev)], -1), h)
        return self.out(torch.cat([h, context], -1)), h

    def forward(self, feats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``targets`` [B, L] (label ids then EOS, padded with -100) → logits [B, L, C]."""
        b, steps = targets.shape
        keys = self.key(feats)
        h = feats.new_zeros(b, self.hidden)
        prev = torch.full((b,), self.start, dtype=torch.long, device=feats.device)
        logits = []
        for t in range(steps):
            lg, h = self.step(feats, keys, h, prev)
            logits.append(lg)
            prev = targets[:, t].clamp(min=0)
        return torch.stack(logits, 1)

    def greedy(self, feats: torch.Tensor) -> torch.Tensor:
        """Probabilities [B, max_len + 1, C] from feeding back the best class at each step."""
        b = feats.shape[0]
        keys = self.key(feats)
        h = feats.new_zeros(b, self.hidden)
        prev = torch.full((b,), self.start, dtype=torch.long, device=feats.device)
        probs = []
        for _ in range(self.max_len + 1):
            lg, h = self.step(feats, keys, h, prev)
            p = lg.softmax(-1)
            probs.append(p)
            prev = p.argmax(-1)
        return torch.stack(probs, 1)

    @torch.no_grad()
    def beam_search(self, feats: torch.Tensor, beam_width: int = 5) -> list[tuple[list[int], float]]:
        """Per sample, the (class ids, log-probability) of the best finished hypothesis."""
        results = []
        for i in range(feats.shape[0]):
            f = feats[i:i + 1]
            keys = self.key(f)
            beams = [([], 0.0, f.new_zeros(1, self.hidden), self.start)]
            finished: list[tuple[list[int], float]] = []
            for _ in range(self.max_len + 1):
                candidates = []
                for ids, score, h, prev in beams:
                    lg, h2 = self.step(f, keys, h, torch.tensor([prev], device=f.device))
                    logp = F.log_softmax(lg, -1)[0]
                    top = torch.topk(logp, beam_width)
                    for lp, c in zip(top.values.tolist(), top.indices.tolist()):
                        if c == EOS:
                            finished.append((ids, score + lp))
                        else:
                            candidates.append((ids + [c], score + lp, h2, c))
                beams = sorted(candidates, key=lambda x: x[1], reverse=True)[:beam_width]
                if not beams or (finished and max(s for _, s in finished) > beams[0][1]):
                    break
            best = max(finished, key=lambda x: x[1]) if finished else (beams[0][0], beams[0][1])
            results.append(best)
        return results


def attention_targets(targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Concatenated CTC-style targets → padded [B, max(len)+1] with EOS after each label, -100 padding."""
    b = lengths.shape[0]
    out = torch.full((b, int(lengths.max()) + 1), -100, dtype=torch.long)
    offset = 0
    for i, n in enumerate(lengths.tolist()):
        out[i, :n] = targets[offset:offset + n]
        out[i, n] = EOS
        offset += n
    return out
