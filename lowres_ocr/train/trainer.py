"""Training entry: ``torchrun --nproc-per-node N -m lowres_ocr.train --config CONFIG [--set key=value ...]``.

Reads the standard torchrun / Kubeflow operator environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT),
picks NCCL on GPU and gloo on CPU, and resumes from ``<output_dir>/last.pt`` when it exists: model,
optimizer, scheduler, step, RNG and data position (batches are a function of the step, see train_data).
Checkpoints are written atomically every ``checkpoint_every`` steps and on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml

from lowres_ocr.core.charset import normalize_36
from lowres_ocr.network import DEFAULT_LOSS_WEIGHTS, build_model, load_checkpoint, load_model, save_checkpoint
from lowres_ocr.network.encoders import PPOCREncoder
from lowres_ocr.network.model import merge
from lowres_ocr.network.sr import bicubic_upsample
from lowres_ocr.train.batches import StepBatches, build_sources, load_eval_set

CONFIG_DIR = Path(__file__).parent / "configs"


# -- configuration ------------------------------------------------------------------------------------
def resolve_config_path(name: str | Path) -> Path:
    """A YAML path, or the name of a packaged config in lowres_ocr/train/configs (the error for an unknown name lists them)."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = CONFIG_DIR / f"{name}.yaml"
    if packaged.is_file():
        return packaged
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"config {name!r} is neither a file nor one of the packaged configs {names}")


def apply_override(cfg: dict[str, Any], assignment: str) -> None:
    """``a.b.c=value`` (value parsed as YAML) into ``cfg``."""
    if "=" not in assignment:
        raise ValueError(f"override {assignment!r} must look like key.sub=value")
    key, raw = assignment.split("=", 1)
    node: Any = cfg
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = yaml.safe_load(raw)
    else:
        node[last] = yaml.safe_load(raw)


def load_config(name: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    cfg = yaml.safe_load(resolve_config_path(name).read_text())
    for assignment in overrides or []:
        apply_override(cfg, assignment)
    return cfg


# -- distributed --------------------------------------------------------------------------------------
def setup_distributed() -> tuple[int, int, int, torch.device]:
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        # an explicit OMP_NUM_THREADS wins (e.g. two single-process runs sharing the cores); else split the cores
        threads = os.environ.get("OMP_NUM_THREADS", "")
        torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0
                              else max(1, (os.cpu_count() or 1) // max(1, local_world)))
        backend = "gloo"
    if world > 1:
        dist.init_process_group(backend=backend)
    return rank, world, local_rank, device


def _all_any(flag: bool, device: torch.device) -> bool:
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


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


# -- validation ---------------------------------------------------------------------------------------
@torch.no_grad()
def validate(model, images, labels, device: torch.device, batch_size: int = 64) -> dict[str, float]:
    from lowres_ocr.core.decoding import ctc_greedy
    from lowres_ocr.core.geometry import LR_SIZE, batch_arrays

    modes = [(m, m.training) for m in model.modules()]  # restored as they were: frozen parts stay in eval mode
    model.eval()
    # val_bicubic_accuracy: the same recognizer fed bicubic-upsampled LR, i.e. what the SR branch has to beat
    paths = {"val_accuracy": model.sr, "val_bicubic_accuracy": bicubic_upsample}
    correct = dict.fromkeys(paths, 0)
    for i in range(0, len(images), batch_size):
        lr = torch.from_numpy(batch_arrays(images[i:i + batch_size], LR_SIZE)).to(device)
        truth = [normalize_36(gt) for gt in labels[i:i + batch_size]]
        for key, upsample in paths.items():
            decoded = ctc_greedy(model.recognize(upsample(lr)).float().cpu().numpy())
            correct[key] += sum(normalize_36(d.text) == t for d, t in zip(decoded, truth))
    for module, training in modes:
        module.train(training)
    n = max(1, len(images))
    return {**{key: c / n for key, c in correct.items()}, "val_samples": float(len(images))}


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


def check_config(cfg: dict[str, Any]) -> None:
    """Refuse combinations that cannot work, before the trainer has side effects.

    - ``loss_weights.feature`` unless the recognizer is frozen. Measured: against a trainable encoder the MSE is cut by
      shrinking both sides' features (validation fell from 78.5 % to 68 % in 100 steps); it needs the fixed HR features
      of a frozen recognizer.
    - ``reinit`` without ``init_from``: there is no loaded checkpoint to reset parts of.
    """
    if (cfg.get("loss_weights") or {}).get("feature") and "recognizer" not in (cfg["train"].get("freeze") or []):
        raise ValueError("loss_weights.feature needs train.freeze to include 'recognizer': against a trainable "
                         "encoder the feature MSE collapses the features instead of improving the SR path")
    if cfg.get("reinit") and not cfg.get("init_from"):
        raise ValueError("reinit needs init_from: it resets parts of a loaded checkpoint")


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
        self.out = Path(cfg["output_dir"])
        if not self.out.is_absolute():
            self.out = root / self.out
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
            model, fresh = initialise_from(self.root / init_from if not Path(init_from).is_absolute() else init_from,
                                           self.cfg.get("model_changes"))
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
        self.ddp = (torch.nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
                    if self.world > 1 else self.model)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, self.tcfg["lr"], float(self.tcfg.get("weight_decay", 0.0))))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(int(self.tcfg.get("warmup_steps", 0)), int(self.tcfg["steps"])))
        self.step = 0
        self.best = -1.0
        last = self.out / "last.pt"
        if last.is_file():
            self._resume(last)

    def _resume(self, path: Path) -> None:
        payload = load_checkpoint(path, self.device)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.step = int(payload["step"])
        self.best = float(payload.get("best", -1.0))
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
        sources, weights = build_sources(data["train"], self.root)
        steps = int(self.tcfg["steps"])
        batches = StepBatches(sources, weights, int(self.tcfg["batch_size"]), int(self.cfg.get("seed", 1)), self.rank, self.world, steps)
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
            path = Path(val_cfg["path"])
            val = load_eval_set(path if path.is_absolute() else self.root / path, val_cfg.get("labels", "labels.tsv"),
                                val_cfg.get("limit"), val_cfg.get("holdout_every", 0))
        use_amp = self.device.type == "cuda" and self.tcfg.get("amp", "auto") in ("auto", True, "bf16")
        log_every, ckpt_every = int(self.tcfg.get("log_every", 10)), int(self.tcfg.get("checkpoint_every", 100))
        val_every = int(self.tcfg.get("val_every", 0))
        samples = 0
        t0 = time.perf_counter()
        progress = _progress(self.rank == 0, self.step, steps)
        exit_code = 0
        for batch in self.loader():
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                parts = self.ddp(batch["lr"].to(self.device), batch["hr"].to(self.device), batch["targets"],
                                 batch["target_lengths"], self.weights)
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
            stop = _all_any(self.stop_requested, self.device)
            if self.step % ckpt_every == 0 or self.step == steps or stop:
                self.save("last.pt")
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


def merge_model_config(model_cfg: dict[str, Any] | None) -> dict[str, Any]:
    from lowres_ocr.network import DEFAULT_MODEL

    return merge(DEFAULT_MODEL, model_cfg)


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
    cfg = load_config(args.config, args.overrides)
    if args.output_dir:
        cfg["output_dir"] = args.output_dir
    trainer = Trainer(cfg)
    try:
        code = trainer.run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return code


if __name__ == "__main__":
    sys.exit(main())
