"""Training entry: ``torchrun --nproc-per-node N -m lowres_ocr.train --config CONFIG [--set key=value ...]``.

Reads the standard torchrun / Kubeflow operator environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT),
picks NCCL on GPU and gloo on CPU, and resumes from ``<output_dir>/last.pt`` when it exists: model,
optimizer, scheduler, step, RNG and data position (batches are a function of the step, see batches.py).
Checkpoints are written atomically every ``checkpoint_every`` steps and on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from lowres_ocr.network import DEFAULT_LOSS_WEIGHTS, build_model, load_checkpoint, load_model, save_checkpoint
from lowres_ocr.network.encoders import PPOCREncoder
from lowres_ocr.network.model import merge
from lowres_ocr.network.teacher import build_teacher
from lowres_ocr.train.batches import StepBatches, build_sources, load_eval_set
from lowres_ocr.train.config import (  # noqa: F401 (the config API, also importable from here)
    CONFIG_DIR, ConfigError, apply_override, check_config, load_config, merge_model_config, resolve_config_path)
from lowres_ocr.train.distributed import all_any, setup_distributed
from lowres_ocr.train.validation import validate


# -- optimisation -------------------------------------------------------------------------------------
def param_groups(model: torch.nn.Module, lrs: dict[str, float], weight_decay: float) -> list[dict[str, Any]]:
    groups = {"sr": [], "recognizer": [], "projection": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("sr."):
            groups["sr"].append(p)
        elif name.startswith("projection."):
            groups["projection"].append(p)
        else:  # rectifier, encoder, head
            groups["recognizer"].append(p)
    return [{"params": ps, "lr": float(lrs[k]), "name": k, "weight_decay": weight_decay} for k, ps in groups.items() if ps]


def lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


# -- freezing and initialisation ------------------------------------------------------------------------
FREEZABLE = {"sr": ("sr",), "recognizer": ("rectifier", "encoder", "head"), "projection": ("projection",)}


def frozen_modules(model: torch.nn.Module, parts: list[str]) -> list[torch.nn.Module]:
    """The submodules named by ``train.freeze`` (``sr``, ``recognizer``, ``projection``)."""
    unknown = sorted(set(parts) - set(FREEZABLE))
    if unknown:
        raise ValueError(f"train.freeze: unknown part(s) {unknown} (expected some of {sorted(FREEZABLE)})")
    return [getattr(model, name) for part in parts for name in FREEZABLE[part]]


def set_train_mode(model: torch.nn.Module, frozen: list[torch.nn.Module]) -> None:
    """Train mode, except frozen parts stay in eval mode (their BatchNorm statistics must not drift)."""
    model.train()
    for module in frozen:
        module.eval()


def initialise_from(path: Path, changes: dict[str, Any] | None) -> tuple[torch.nn.Module, list[str]]:
    """Weights and architecture from a checkpoint (the config's ``model`` is ignored), with ``model_changes`` merged
    over that architecture. Tensors whose shape no longer matches (e.g. a wider SR branch) start fresh; their names
    are returned.
    """
    if not changes:
        return load_model(path)[0], []
    payload = load_checkpoint(path)
    model = build_model(merge(payload["config"], changes), graph_spec=payload.get("graph_spec"))
    own = model.state_dict()
    kept = {k: v for k, v in payload["model"].items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)
    return model, sorted(set(own) - set(kept))


REINITIALISABLE = ("recognizer",)


def reinitialise(model: torch.nn.Module, parts: list[str]) -> None:
    """Put ``parts`` of a model loaded with ``init_from`` back to their pretrained start (``reinit`` in the config).

    ``recognizer``: encoder + CTC head from the PP-OCR weights in the rapidocr wheel, so a recognizer can learn to read
    a pre-trained SR branch's output without having first adapted to bicubic inputs.
    """
    unknown = sorted(set(parts) - set(REINITIALISABLE))
    if unknown:
        raise ValueError(f"reinit: unknown part(s) {unknown} (expected some of {list(REINITIALISABLE)})")
    if "recognizer" in parts:
        rec = model.config["recognizer"]
        if rec.get("type") != "ppocr" or model.config.get("decoder", "ctc") != "ctc":
            raise ValueError("reinit: [recognizer] needs a PP-OCR recognizer with the CTC head (its pretrained start)")
        encoder, head = PPOCREncoder.pretrained(rec.get("width", 192))
        model.encoder.load_state_dict(encoder.state_dict())
        model.head.load_state_dict(head.state_dict())


def _leave_sigterm_to_the_trainer(worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM: torchrun (and so a PyTorchJob being stopped) signals each worker's whole
    process group, and a loader worker dying of it made the trainer crash ("DataLoader worker ... is killed by signal:
    Terminated") instead of writing its SIGTERM checkpoint. The trainer shuts its workers down when it exits."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# -- the loop -----------------------------------------------------------------------------------------
class Trainer:
    def __init__(self, cfg: dict[str, Any], root: Path = Path(".")):
        check_config(cfg)  # before any side effect (threads, process group, output folder, signal handler)
        self.cfg = cfg
        self.root = root
        self.rank, self.world, self.local_rank, self.device = setup_distributed()
        self.out = self._path(cfg["output_dir"])
        self.out.mkdir(parents=True, exist_ok=True)
        self.tcfg = cfg["train"]
        self.weights = merge(DEFAULT_LOSS_WEIGHTS, cfg.get("loss_weights"))
        self.stop_requested = False
        self.tensorboard = self._open_tensorboard()
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        self.stop_requested = True

    def log(self, record: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tensorboard is not None and "step" in record:
            for key, value in record.items():
                if key not in ("step", "time") and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def _open_tensorboard(self):
        """A SummaryWriter when ``train.tensorboard`` is on and the tensorboard package is installed."""
        if self.rank != 0 or not self.tcfg.get("tensorboard"):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("train.tensorboard is on but the tensorboard package is not installed: logging to metrics.jsonl only",
                  file=sys.stderr)
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    def build(self) -> None:
        seed = int(self.cfg.get("seed", 1))
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        init_from = self.cfg.get("init_from")
        if init_from:
            model, fresh = initialise_from(self._path(init_from), self.cfg.get("model_changes"))
            if fresh and self.rank == 0:
                print(f"init_from {init_from}: {len(fresh)} tensors start fresh (shape changed), e.g. {fresh[:3]}", flush=True)
            self.cfg["model"] = model.config
            reinitialise(model, list(self.cfg.get("reinit") or []))
        else:
            model = build_model(merge_model_config(self.cfg.get("model")))
        self.frozen = frozen_modules(model, list(self.tcfg.get("freeze") or []))
        for module in self.frozen:
            module.requires_grad_(False)
        self.model = model.to(self.device)
        set_train_mode(self.model, self.frozen)
        self.teacher = build_teacher(model) if float(self.weights.get("distill", 0)) else None
        self.ddp = (torch.nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
                    if self.world > 1 else self.model)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, self.tcfg["lr"], float(self.tcfg.get("weight_decay", 0.0))))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(int(self.tcfg.get("warmup_steps", 0)), int(self.tcfg["steps"])))
        self.step = 0
        self.best = -1.0
        last = self.out / "last.pt"
        if last.is_file():
            self._resume(last)
        elif self.cfg.get("resume_from"):
            self._resume(self._path(self.cfg["resume_from"]))

    def _path(self, value: str) -> Path:
        """A config path: absolute as given, else under the repository root."""
        path = Path(value)
        return path if path.is_absolute() else self.root / path

    def _resume(self, path: Path) -> None:
        """Continue from ``last.pt``, or from a snapshot (``export release --snapshot``: no optimizer moments, which
        then start afresh; its best validation counts only while ``best.pt`` is in the output folder)."""
        payload = load_checkpoint(path, self.device)
        if "scheduler" not in payload:
            raise ValueError(f"{path}: no training state (step, scheduler) to resume from; use init_from for a released model")
        self.model.load_state_dict(payload["model"])
        if "optimizer" in payload:
            self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.step = int(payload["step"])
        self.best = float(payload.get("best", -1.0)) if (self.out / "best.pt").is_file() else -1.0
        rng = payload.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if "numpy" in rng:
            np.random.set_state(rng["numpy"])
        if "python" in rng:
            random.setstate(rng["python"])
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}", flush=True)
        self.log({"event": "resume", "step": self.step})

    def save(self, name: str = "last.pt", extra: dict[str, Any] | None = None) -> None:
        if self.rank != 0:
            return
        payload = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "best": self.best,
            "train_config": self.cfg,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        }
        payload.update(extra or {})
        save_checkpoint(self.out / name, self.model, payload)

    def loader(self) -> torch.utils.data.DataLoader:
        data = self.cfg["data"]
        sources, weights = build_sources(data["train"], self.root, self.model.charset)
        steps = int(self.tcfg["steps"])
        batches = StepBatches(sources, weights, int(self.tcfg["batch_size"]), int(self.cfg.get("seed", 1)), self.rank, self.world,
                              steps, geometry=self.model.geometry, charset=self.model.charset, hr_per_batch=int(self.tcfg.get("hr_per_batch", 0)))
        workers = int(self.tcfg.get("num_workers", 0))
        return torch.utils.data.DataLoader(batches, batch_size=None, sampler=list(range(self.step, steps)), num_workers=workers,
                                           prefetch_factor=2 if workers else None, persistent_workers=False,
                                           worker_init_fn=_leave_sigterm_to_the_trainer)

    def run(self) -> int:
        self.build()
        steps = int(self.tcfg["steps"])
        val_cfg = self.cfg["data"].get("val")
        val = None
        if val_cfg and self.rank == 0:
            val = load_eval_set(self._path(val_cfg["path"]), val_cfg.get("labels", "labels.tsv"),
                                val_cfg.get("limit"), val_cfg.get("holdout_every", 0),
                                self.model.charset)
        use_amp = self.device.type == "cuda" and self.tcfg.get("amp", "auto") in ("auto", True, "bf16")
        log_every, ckpt_every = int(self.tcfg.get("log_every", 10)), int(self.tcfg.get("checkpoint_every", 100))
        val_every = int(self.tcfg.get("val_every", 0))
        keep_every = int(self.tcfg.get("keep_every", 0))
        samples = 0
        t0 = time.perf_counter()
        progress = _progress(self.rank == 0, self.step, steps)
        exit_code = 0
        for batch in self.loader():
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                hr = batch["hr"].to(self.device)
                teacher_probs = None
                if self.teacher is not None:
                    with torch.no_grad():
                        teacher_probs = self.teacher.recognize(hr)
                parts = self.ddp(batch["lr"].to(self.device), hr, batch["targets"], batch["target_lengths"], self.weights,
                                 teacher_probs)
            self.optimizer.zero_grad(set_to_none=True)
            parts["total"].backward()
            if self.tcfg.get("grad_clip"):
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.tcfg["grad_clip"]))
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            samples += len(batch["labels"]) * self.world
            progress.update(self.step, float(parts["total"].detach()))
            if self.step % log_every == 0 or self.step == steps:
                elapsed = time.perf_counter() - t0
                self.log({"step": self.step, **{f"loss/{k}": float(v.detach()) for k, v in parts.items()},
                          **{f"lr/{g['name']}": g["lr"] for g in self.optimizer.param_groups},
                          "samples_per_s": samples / elapsed, "time": time.time()})
            if val is not None and val_every and (self.step % val_every == 0 or self.step == steps):
                metrics = validate(self.model, *val, self.device)
                self.log({"step": self.step, **metrics})
                if metrics["val_accuracy"] > self.best:
                    self.best = metrics["val_accuracy"]
                    self.save("best.pt", {"val": metrics})
            stop = all_any(self.stop_requested, self.device)
            if self.step % ckpt_every == 0 or self.step == steps or stop:
                self.save("last.pt")
            if keep_every and self.step % keep_every == 0:
                self.save(f"step{self.step}.pt")
            if dist.is_initialized():
                dist.barrier()
            if stop:
                self.log({"event": "sigterm", "step": self.step})
                exit_code = 128 + signal.SIGTERM
                break
        progress.close()
        self.log({"event": "end", "step": self.step, "param_checksums": self.param_checksums()})
        if self.step >= steps and self.rank == 0:
            self.save("final.pt")
        return exit_code

    def param_checksums(self) -> list[float]:
        """One checksum of all parameters per rank (DDP must keep them identical)."""
        local = torch.tensor([float(sum(p.detach().double().sum() + p.detach().double().abs().sum() * 1e-3
                                        for p in self.model.parameters()))], dtype=torch.float64, device=self.device)
        if not dist.is_initialized():
            return [float(local.item())]
        gathered = [torch.zeros_like(local) for _ in range(self.world)]
        dist.all_gather(gathered, local)
        return [float(t.item()) for t in gathered]


class _progress:
    """Rich progress bar on rank 0 (plain log lines when stdout is not a terminal)."""

    def __init__(self, enabled: bool, start: int, total: int):
        self.enabled = enabled
        self.total = total
        self.tty = sys.stdout.isatty()
        self.bar = None
        if enabled and self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
                                TimeRemainingColumn())
            self.task = self.bar.add_task("train", total=total, completed=start, loss=float("nan"))
            self.bar.start()

    def update(self, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=loss)
        elif self.enabled and (step % 50 == 0 or step == self.total):
            print(f"step {step}/{self.total} loss {loss:.3f}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lowres_ocr.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML file or preset name (small, default, gpu)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.steps=100 (repeatable)")
    parser.add_argument("--output-dir", help="where checkpoints and metrics go (overrides output_dir)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides, args.output_dir)
    except (ConfigError, FileNotFoundError) as err:
        print(f"lowres_ocr.train: {err}", file=sys.stderr)
        return 2
    trainer = Trainer(cfg)
    try:
        code = trainer.run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return code


if __name__ == "__main__":
    sys.exit(main())
