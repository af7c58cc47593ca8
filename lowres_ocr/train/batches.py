"""Training batches: a seeded mixture of LR/HR sources, addressable by step (exact resume).

Batch ``s`` of rank ``r`` is a pure function of (seed, s, r): after a restart the trainer only needs the
step count to continue with exactly the data it would have seen.

Sources (config ``data.train``, each with a ``weight``):
- any set ``lowres_ocr.data.reader`` reads: an LMDB or a dataset folder (``labels.tsv`` or a variant);
- pairs (TextZoom keys / hr+lr columns) use their real LR image;
- word crops get their LR side from ``lowres_ocr.data.degrade.degrade`` (``degrade: seed|express``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lowres_ocr.core.charset import ASCII, MAX_LABEL_LENGTH, Charset
from lowres_ocr.core.geometry import SQUEEZE, Geometry, hr_input, lr_input, resize
from lowres_ocr.core.images import decode_image
from lowres_ocr.data.reader import SetSpec, is_lmdb, load_set


@dataclass
class RawSample:
    label: str
    hr: bytes | Path  # encoded bytes or a file
    lr: bytes | Path | None  # None: synthesise from hr


def clean_label(label: str, charset: Charset = ASCII) -> str | None:
    """The label as the model's charset writes it (``Charset.clean_label``), or None if unusable for training."""
    return charset.clean_label(label, MAX_LABEL_LENGTH)


class SampleSource:
    """Random access to the usable samples of one LMDB or dataset folder."""

    def __init__(self, path: str | Path, labels: str = "labels.tsv", degrade: str = "seed", holdout_every: int = 0,
                 split: str = "train", charset: Charset = ASCII):
        """``holdout_every=N`` reserves every N-th usable sample for validation (``split="val"`` selects them)."""
        self.path = Path(path)
        self.charset = charset
        self.degrade = degrade
        if not self.path.exists():
            raise FileNotFoundError(f"training source {self.path} does not exist")
        samples = self._read(labels)
        if holdout_every:
            keep_val = split == "val"
            samples = [s for i, s in enumerate(samples) if (i % holdout_every == 0) == keep_val]
        self.samples: list[RawSample] = samples
        if not self.samples:
            raise ValueError(f"training source {self.path} has no usable samples")

    def _read(self, labels: str) -> list[RawSample]:
        """Usable samples in set order (unreadable samples and labels outside the charset are left out)."""
        variant = None if labels == "labels.tsv" or is_lmdb(self.path) else labels
        out = []
        for s in load_set(SetSpec(self.path, variant), lazy=True).samples:
            text = clean_label(s.label, self.charset)
            if text is not None and s.error is None and s.hr is not None:
                out.append(RawSample(text, s.hr, s.lr))
        return out

    def __len__(self) -> int:
        return len(self.samples)


def _open(data: bytes | Path) -> Image.Image:
    return decode_image(data)


def synthetic_lr(hr: Image.Image, rng: np.random.Generator, strength: str, geometry: Geometry) -> Image.Image:
    """An LR crop made from ``hr`` by the degradation: the HR crop is brought to the geometry at the SR scale
    (squeezed, or at its height with the aspect kept) and degraded to the size it takes in the network input."""
    from lowres_ocr.data.degrade import degrade

    hr_geometry = geometry.scaled()
    width = hr_geometry.content_width(hr.size)
    lr_size = (geometry.width if geometry.kind == "squeeze" else max(1, round(width / geometry.sr_scale)), geometry.height)
    return degrade(resize(hr, (width, hr_geometry.height)), rng, strength, size=lr_size)


class StepBatches(torch.utils.data.Dataset):
    """``dataset[step]`` → the collated batch of this rank for that step."""

    def __init__(self, sources: list[SampleSource], weights: list[float], batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, length: int = 10**9, real_lr_share: float = 0.85, hr_share: float = 0.05,
                 geometry: Geometry = SQUEEZE, charset: Charset = ASCII, hr_per_batch: int = 0):
        """``real_lr_share``: how often a pair's real LR crop is the input (else its HR crop degraded);
        ``hr_share``: how often the HR crop itself is the input (the deployed model reads HR crops too);
        ``hr_per_batch``: instead, exactly that many samples of every batch (the first ones) read their HR crop."""
        self.sources = sources
        w = np.asarray(weights, dtype=np.float64)
        self.probs = w / w.sum()
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.length = length
        self.real_lr_share = real_lr_share
        self.hr_share = hr_share
        self.geometry = geometry
        self.charset = charset
        self.hr_per_batch = hr_per_batch

    def __len__(self) -> int:
        return self.length

    def sample(self, rng: np.random.Generator, read_hr: bool | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """One (input, HR, label); ``read_hr`` forces (True) or forbids (False) the HR crop as the input."""
        src = self.sources[rng.choice(len(self.sources), p=self.probs)]
        raw = src.samples[rng.integers(len(src))]
        hr = _open(raw.hr)
        if raw.lr is not None and rng.random() < self.real_lr_share:
            lr = _open(raw.lr)
        else:  # word crops always, real pairs sometimes: synthetic degradation of the HR crop
            lr = synthetic_lr(hr, rng, src.degrade, self.geometry)
        if (rng.random() < self.hr_share) if read_hr is None else read_hr:
            lr = hr
        return lr_input(lr, self.geometry), hr_input(hr, self.geometry), raw.label

    def __getitem__(self, step: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, step, self.rank, self.world_size])
        fixed = self.hr_per_batch > 0
        lrs, hrs, labels = zip(*(self.sample(rng, (i < self.hr_per_batch) if fixed else None) for i in range(self.batch_size)))
        ids = [self.charset.encode(t) for t in labels]
        return {
            "lr": torch.from_numpy(np.stack(lrs)),
            "hr": torch.from_numpy(np.stack(hrs)),
            "targets": torch.tensor([i for seq in ids for i in seq], dtype=torch.long),
            "target_lengths": torch.tensor([len(seq) for seq in ids], dtype=torch.long),
            "labels": list(labels),
        }


def build_sources(entries: list[dict[str, Any]], root: Path, charset: Charset = ASCII) -> tuple[list[SampleSource], list[float]]:
    sources, weights = [], []
    for e in entries:
        path = Path(e["path"])
        sources.append(SampleSource(path if path.is_absolute() else root / path, e.get("labels", "labels.tsv"),
                                    e.get("degrade", "seed"), e.get("holdout_every", 0), "train", charset))
        weights.append(float(e.get("weight", 1.0)))
    return sources, weights


def load_eval_set(path: str | Path, labels: str = "labels.tsv", limit: int | None = None,
                  holdout_every: int = 0, charset: Charset = ASCII) -> tuple[list[Image.Image], list[str]]:
    """Images (LR side for pairs) and labels of a folder or LMDB (its held-out part), for validation in training."""
    src = SampleSource(path, labels, holdout_every=holdout_every, split="val", charset=charset)
    chosen = src.samples[:limit] if limit else src.samples
    return [_open(s.lr if s.lr is not None else s.hr) for s in chosen], [s.label for s in chosen]
