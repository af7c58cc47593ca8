"""Training faults: a rank killed with SIGKILL under torchrun --max-restarts 1; a full disk during checkpoint save."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import torch

from lowres_ocr.network import build_model, load_checkpoint, save_checkpoint


def _records(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _torchrun(out: Path, pairs: Path, words: Path, steps: int, restarts: int) -> list[str]:
    sets = [f"data.train=[{{path: {pairs}, weight: 0.7}}, {{path: {words}, weight: 0.3, degrade: express}}]",
            f"train.steps={steps}", "train.checkpoint_every=3", "train.val_every=0", "train.log_every=1"]
    return [sys.executable, "-m", "lowres_ocr.train.launch", "--nproc-per-node", "2", "--standalone",
            "--max-restarts", str(restarts), "--monitor-interval", "0.2", "-m", "lowres_ocr.train", "--config", "small",
            "--output-dir", str(out), *[a for s in sets for a in ("--set", s)]]


def _state_digest(path: Path) -> str:
    """sha256 over the bytes of every tensor of a checkpoint's model state_dict, in key order."""
    state = load_checkpoint(path)["model"]
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _rank_pids(launcher: psutil.Process) -> list[int]:
    """The worker processes torchrun started (the ones running lowres_ocr.train)."""
    return [p.pid for p in launcher.children(recursive=True) if "lowres_ocr.train" in p.cmdline()]


def _kill_one_rank_after_checkpoint(proc: subprocess.Popen, out: Path, deadline: float) -> tuple[int, int]:
    """Wait for last.pt and a logged step past it, then SIGKILL one rank; returns (checkpoint step, logged step)."""
    launcher = psutil.Process(proc.pid)
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else "torchrun exited"
        steps = [r["step"] for r in _records(out) if "loss/total" in r]
        if (out / "last.pt").exists() and steps and steps[-1] >= 4:
            pids = _rank_pids(launcher)
            if len(pids) == 2:
                os.kill(max(pids), signal.SIGKILL)
                return load_checkpoint(out / "last.pt")["step"], steps[-1]
        time.sleep(0.1)
    raise AssertionError("no checkpoint with a step past it before the deadline")


@pytest.mark.slow
def test_sigkill_of_one_rank_restarts_and_ends_like_an_uninterrupted_run(tmp_path, real_pairs_dir, real_words_dir):
    steps = 9
    plain = tmp_path / "plain"
    t0 = time.time()
    done = subprocess.run(_torchrun(plain, real_pairs_dir, real_words_dir, steps, 0), capture_output=True, text=True,
                          timeout=300, env=_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_torchrun(killed, real_pairs_dir, real_words_dir, steps, 1), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=_env(), start_new_session=True)
    try:
        saved, logged = _kill_one_rank_after_checkpoint(proc, killed, time.time() + 240)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert 3 <= saved < steps and saved % 3 == 0 and logged >= 4
    records = _records(killed)
    resumed = [r for r in records if r.get("event") == "resume"]
    assert [r["step"] for r in resumed] and resumed[0]["step"] >= saved  # restarted from a checkpoint, not from 0

    end_plain = [r for r in _records(plain) if r.get("event") == "end"][-1]
    end_killed = [r for r in records if r.get("event") == "end"][-1]
    assert end_killed["step"] == end_plain["step"] == steps
    assert end_killed["param_checksums"] == end_plain["param_checksums"]  # bit-identical, both ranks
    assert _state_digest(killed / "final.pt") == _state_digest(plain / "final.pt")
    print(f"killed a rank after checkpoint step {saved} (logged {logged}); resumed at {resumed[0]['step']}; "
          f"final parameters identical; {time.time() - t0:.0f} s")


# -- a full disk during checkpoint save -------------------------------------------------------------------------
@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (root only); unmounted on exit."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): the full-disk test needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def _fill(folder: Path, leave: int) -> None:
    """Write a filler file so that about ``leave`` bytes stay free in ``folder``'s filesystem."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def test_checkpoint_save_into_a_full_disk_fails_clearly_and_keeps_last(tmp_path):
    model = build_model({"sr": {"channels": 16, "blocks": 1}, "contrastive_dim": 32,
                         "recognizer": {"type": "resnet", "widths": [16, 32, 48, 64], "hidden": 64}})
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        last = disk / "run" / "last.pt"
        save_checkpoint(last, model, {"step": 3})
        before = _state_digest(last)
        size = last.stat().st_size
        _fill(disk, size // 2)  # room for half a checkpoint
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        with pytest.raises(OSError, match=r"(?i)no space left") as info:
            save_checkpoint(last, model, {"step": 6})
        assert str(last) in str(info.value)
        assert load_checkpoint(last)["step"] == 3 and _state_digest(last) == before
        assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]  # no partial file left
