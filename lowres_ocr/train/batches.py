"""Training batches: a seeded mixture of LR/HR sources, addressable by step (exact resume).

Batch ``s`` of rank ``r`` is a pure function of (seed, s, r): after a restart the trainer only needs the
step count to continue with exactly the data it would have seen.

Sources (config ``data.train``, each with a ``weight``):
- an LMDB (``lowres_ocr.data.lmdb_io.LmdbReader``) or a dataset folder (``labels.tsv``);
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

from lowres_ocr.core.charset import MAX_LABEL_LENGTH, encode, fold_to_ascii, outside_charset
from lowres_ocr.core.geometry import HR_SIZE, LR_SIZE, to_array
from lowres_ocr.core.images import decode_image


@dataclass
class RawSample:
    label: str
    hr: bytes | str  # encoded bytes or a file path
    lr: bytes | str | None  # None: synthesise from hr


def clean_label(label: str) -> str | None:
    """Label in the 94-char charset (accents folded, spaces dropped), or None if unusable for training."""
    text = fold_to_ascii(label)
    if not text or len(text) > MAX_LABEL_LENGTH or outside_charset(text):
        return None
    return text


class SampleSource:
    """Random access to the usable samples of one LMDB or dataset folder."""

    def __init__(self, path: str | Path, labels: str = "labels.tsv", degrade: str = "seed", holdout_every: int = 0,
                 split: str = "train"):
        """``holdout_every=N`` reserves every N-th usable sample for validation (``split="val"`` selects them)."""
        self.path = Path(path)
        self.degrade = degrade
        if not self.path.exists():
            raise FileNotFoundError(f"training source {self.path} does not exist")
        samples = self._read_folder(labels) if not (self.path / "data.mdb").exists() else self._read_lmdb()
        if holdout_every:
            keep_val = split == "val"
            samples = [s for i, s in enumerate(samples) if (i % holdout_every == 0) == keep_val]
        self.samples: list[RawSample] = samples
        if not self.samples:
            raise ValueError(f"training source {self.path} has no usable samples")

    def _read_folder(self, labels: str) -> list[RawSample]:
        from lowres_ocr.data.datasets import read_folder

        ds = read_folder(self.path, labels)  # malformed / duplicate lines are skipped there
        out = []
        for row in ds.rows:
            text = clean_label(row.label)
            if text is not None:
                lr = str(ds.file(row.paths[1])) if len(row.paths) == 2 else None
                out.append(RawSample(text, str(ds.file(row.paths[0])), lr))
        return out

    def _read_lmdb(self) -> list[RawSample]:
        from lowres_ocr.data.lmdb_io import LmdbReader

        reader = LmdbReader(self.path)
        out = []
        for i in range(len(reader)):
            s = reader[i]
            text = clean_label(s.label)
            if text is None:
                continue
            if reader.kind == "pairs":
                out.append(RawSample(text, s.hr, s.lr))
            else:
                out.append(RawSample(text, s.image, None))
        return out

    def __len__(self) -> int:
        return len(self.samples)


def _open(data: bytes | str) -> Image.Image:
    return decode_image(Path(data) if isinstance(data, str) else data)


def _degrade(hr: Image.Image, rng: np.random.Generator, strength: str) -> Image.Image:
    from lowres_ocr.data.degrade import degrade

    return degrade(hr, rng, strength)


class StepBatches(torch.utils.data.Dataset):
    """``dataset[step]`` → the collated batch of this rank for that step."""

    def __init__(self, sources: list[SampleSource], weights: list[float], batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, length: int = 10**9):
        self.sources = sources
        w = np.asarray(weights, dtype=np.float64)
        self.probs = w / w.sum()
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.length = length

    def __len__(self) -> int:
        return self.length

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
        src = self.sources[rng.choice(len(self.sources), p=self.probs)]
        raw = src.samples[rng.integers(len(src))]
        hr = _open(raw.hr)
        if raw.lr is not None and rng.random() < 0.85:
            lr = _open(raw.lr)
        else:  # word crops always, real pairs sometimes: synthetic degradation of the HR crop
            lr = _degrade(hr.resize(HR_SIZE, Image.BICUBIC), rng, src.degrade)
        if rng.random() < 0.05:  # the deployed model must read HR input too
            lr = hr
        return to_array(lr, LR_SIZE), to_array(hr, HR_SIZE), raw.label

    def __getitem__(self, step: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, step, self.rank, self.world_size])
        lrs, hrs, labels = zip(*(self.sample(rng) for _ in range(self.batch_size)))
        ids = [encode(t) for t in labels]
        return {
            "lr": torch.from_numpy(np.stack(lrs)),
            "hr": torch.from_numpy(np.stack(hrs)),
            "targets": torch.tensor([i for seq in ids for i in seq], dtype=torch.long),
            "target_lengths": torch.tensor([len(seq) for seq in ids], dtype=torch.long),
            "labels": list(labels),
        }


def build_sources(entries: list[dict[str, Any]], root: Path) -> tuple[list[SampleSource], list[float]]:
    sources, weights = [], []
    for e in entries:
        path = Path(e["path"])
        sources.append(SampleSource(path if path.is_absolute() else root / path, e.get("labels", "labels.tsv"),
                                    e.get("degrade", "seed"), e.get("holdout_every", 0), "train"))
        weights.append(float(e.get("weight", 1.0)))
    return sources, weights


def load_eval_set(path: str | Path, labels: str = "labels.tsv", limit: int | None = None,
                  holdout_every: int = 0) -> tuple[list[Image.Image], list[str]]:
    """Images (LR side for pairs) and labels of a folder or LMDB (its held-out part), for validation in training."""
    src = SampleSource(path, labels, holdout_every=holdout_every, split="val")
    chosen = src.samples[:limit] if limit else src.samples
    return [_open(s.lr if s.lr is not None else s.hr) for s in chosen], [s.label for s in chosen]
