"""Training entry: 2-process DDP on CPU, checkpoints, SIGKILL + resume, config handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lowres_ocr.network import load_checkpoint
from lowres_ocr.network.model import RECOGNIZER_LOSSES, SR_PATH_LOSSES
from lowres_ocr.train.trainer import apply_override, check_config, load_config, resolve_config_path
from lowres_ocr.train.commands import torchrun_command


def _overrides(pairs: Path, words: Path, **extra) -> list[str]:
    sets = [
        f"data.train=[{{path: {pairs}, weight: 0.7}}, {{path: {words}, weight: 0.3, degrade: express}}]",
        f"data.val={{path: {pairs}, holdout_every: 10, limit: 16}}",
    ]
    sets += [f"{k.replace('__', '.')}={v}" for k, v in extra.items()]
    return [a for s in sets for a in ("--set", s)]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_torchrun_two_processes_identical_weights(tmp_path, real_pairs_dir, real_words_dir):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lowres_ocr.train.launch", "--nproc-per-node", "2", "--standalone", "-m", "lowres_ocr.train",
           "--config", "small", "--output-dir", str(out), *_overrides(real_pairs_dir, real_words_dir, train__steps=6)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = load_checkpoint(out / "final.pt")
    assert ck["step"] == 6
    end = [r for r in _records(out) if r.get("event") == "end"][-1]
    assert len(end["param_checksums"]) == 2
    assert end["param_checksums"][0] == end["param_checksums"][1]
    losses = [r["loss/total"] for r in _records(out) if "loss/total" in r]
    assert len(losses) == 6 and all(map(lambda v: v == v, losses))  # finite, logged every step
    assert any("val_accuracy" in r for r in _records(out))


def test_sigkill_then_resume_continues(tmp_path, real_pairs_dir, real_words_dir):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lowres_ocr.train", "--config", "small", "--output-dir", str(out),
           *_overrides(real_pairs_dir, real_words_dir, train__steps=30, train__checkpoint_every=4, train__val_every=0)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if (out / "last.pt").exists() and (out / "metrics.jsonl").exists():
                steps = [r["step"] for r in _records(out) if "loss/total" in r]
                if steps and steps[-1] >= 10:
                    break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = load_checkpoint(out / "last.pt")["step"]
    before = {r["step"]: r["loss/total"] for r in _records(out) if "loss/total" in r}
    assert 4 <= saved < 30 and saved % 4 == 0

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    records = _records(out)
    resume = [r for r in records if r.get("event") == "resume"]
    assert resume and resume[0]["step"] == saved  # not from 0
    after = [r for r in records[records.index(resume[0]):] if "loss/total" in r]
    assert after[0]["step"] == saved + 1 and after[-1]["step"] == 30
    # the data stream is a function of the step: steps replayed after the kill give the same loss
    replayed = [r for r in after if r["step"] in before]
    assert replayed, "the kill came before any step past the checkpoint was logged"
    for r in replayed:
        assert r["loss/total"] == pytest.approx(before[r["step"]], rel=1e-3, abs=1e-4)
    assert load_checkpoint(out / "final.pt")["step"] == 30


def test_sigterm_writes_a_checkpoint(tmp_path, real_pairs_dir, real_words_dir):
    """SIGTERM to the whole process group, as torchrun sends it (loader workers included)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lowres_ocr.train", "--config", "small", "--output-dir", str(out),
           *_overrides(real_pairs_dir, real_words_dir, train__steps=100000, train__checkpoint_every=100000, train__val_every=0,
                       train__num_workers=1)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not ((out / "metrics.jsonl").exists() and len(_records(out)) >= 3):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 128 + signal.SIGTERM, proc.stderr.read().decode()[-2000:]
    assert load_checkpoint(out / "last.pt")["step"] >= 3
    assert any(r.get("event") == "sigterm" for r in _records(out))


def test_config_presets_and_overrides():
    for preset in ("small", "default", "gpu"):
        assert resolve_config_path(preset).is_file()
    cfg = load_config("small", ["train.steps=3", "data.train.0.weight=0.5", "model.sr.blocks=2"])
    assert cfg["train"]["steps"] == 3 and cfg["data"]["train"][0]["weight"] == 0.5 and cfg["model"]["sr"]["blocks"] == 2
    with pytest.raises(ValueError, match="key.sub=value"):
        apply_override(cfg, "nonsense")
    with pytest.raises(FileNotFoundError, match="packaged configs"):
        resolve_config_path("nope")
    stage = load_config("sr_stage")  # SR through the frozen recognizer (tried, see the model card)
    assert stage["train"]["freeze"] == ["recognizer"] and stage["init_from"]
    pretrain = load_config("sr_pretrain")  # pixel losses only: nothing may route through the recognizer
    assert set(pretrain["train"]["freeze"]) == {"recognizer", "projection"}
    assert not any(pretrain["loss_weights"].get(k, 0) for k in RECOGNIZER_LOSSES)
    joint = load_config("joint_stage")  # starts from sr_pretrain's result; the feature loss would collapse here
    assert joint["init_from"] == f"{pretrain['output_dir']}/final.pt" and not joint["loss_weights"]["feature"]
    sharp = load_config("sharp_stage")  # sr_pretrain's SR, the recognizer back to its pretrained start
    assert sharp["init_from"] == joint["init_from"] and sharp["reinit"] == ["recognizer"]
    hr = load_config("hr_stage")  # the TextZoom protocol's recognizer: HR crops only, SR frozen and its output unread
    assert hr["reinit"] == ["recognizer"] and "sr" in hr["train"]["freeze"]
    assert [k for k in SR_PATH_LOSSES if hr["loss_weights"].get(k, 0)] == [] and hr["loss_weights"]["rec_hr"]
    task = load_config("sr_task_hr")  # then only the SR branch learns, through that recognizer, frozen
    assert task["init_from"] == f"{hr['output_dir']}/final.pt" and "recognizer" in task["train"]["freeze"]
    tuned = load_config("protocol_finetune")  # then the recognizer learns to read that SR output, SR frozen
    assert "sr" in tuned["train"]["freeze"] and tuned["loss_weights"]["rec"] and not tuned["loss_weights"]["sr"]
    for cfg in (hr, task, tuned):
        check_config(cfg)


def test_torchrun_command_topologies():
    single = torchrun_command("default", 2)
    assert "--standalone" in single and single[single.index("--nproc-per-node") + 1] == "2"
    assert single[single.index("-m") + 1] == "lowres_ocr.train.launch"  # its stores listen on 127.0.0.1 only
    multi = torchrun_command("gpu", 8, nnodes=2, node_rank=1, master="trainer-0:29500", overrides=["train.steps=5"])
    assert "--standalone" not in multi and multi[multi.index("-m") + 1] == "torch.distributed.run"
    assert multi[multi.index("--rdzv-endpoint") + 1] == "trainer-0:29500"
    assert ["--set", "train.steps=5"] == multi[multi.index("--set"):multi.index("--set") + 2]


def test_missing_training_source_is_named(tmp_path):
    from lowres_ocr.train.batches import SampleSource

    with pytest.raises(FileNotFoundError, match="nowhere"):
        SampleSource(tmp_path / "nowhere")


def _train_in_process(cfg: dict, pairs: Path, out: Path) -> dict:
    """Run ``cfg`` in this process on the real pairs (8 held out for validation); the final checkpoint."""
    from lowres_ocr.train.trainer import Trainer

    cfg["data"] = {"train": [{"path": str(pairs), "weight": 1.0}], "val": {"path": str(pairs), "holdout_every": 10, "limit": 8}}
    cfg["output_dir"] = str(out)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert Trainer(cfg).run() == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    return load_checkpoint(out / "final.pt")


def test_frozen_recognizer_stage_trains_only_a_wider_sr_branch(tmp_path, real_pairs_dir, real_words_dir):
    """The sr_stage recipe in miniature: init from a checkpoint, wider SR (fresh), recognizer frozen."""
    from lowres_ocr.network import build_model, save_checkpoint

    cfg = load_config("small", ["train.steps=3", "train.val_every=3", "train.checkpoint_every=3", "train.num_workers=0"])
    init = build_model(cfg["model"])
    save_checkpoint(tmp_path / "init.pt", init)
    cfg.update(init_from=str(tmp_path / "init.pt"), model_changes={"sr": {"channels": 24}})
    cfg["train"]["freeze"] = ["recognizer"]
    final = _train_in_process(cfg, real_pairs_dir, tmp_path / "run")
    assert final["config"]["sr"]["channels"] == 24
    before = init.state_dict()
    for name, tensor in final["model"].items():
        if name.startswith(("encoder.", "head.")):  # frozen: weights and BatchNorm statistics untouched
            assert torch.equal(tensor, before[name]), name
    assert final["model"]["sr.head.0.weight"].shape[0] == 24
    val = [r for r in _records(tmp_path / "run") if "val_accuracy" in r][-1]
    assert 0.0 <= val["val_bicubic_accuracy"] <= 1.0 and val["val_samples"] == 8


def test_a_direct_read_model_without_sr_branch_trains(tmp_path, real_pairs_dir):
    """``sr: {kind: none}`` with ``sr_scale`` 1: crops read at the recognizer's resolution, nothing to train in SR."""
    cfg = load_config("small", ["train.steps=2", "train.val_every=2", "train.checkpoint_every=2", "train.num_workers=0",
                                "loss_weights.sr=0", "loss_weights.contrastive=0", "train.keep_every=1"])
    cfg["model"].update(sr={"kind": "none"}, geometry={"kind": "aspect", "height": 32, "width": 128, "sr_scale": 1})
    cfg["train"]["freeze"] = ["sr", "projection"]
    final = _train_in_process(cfg, real_pairs_dir, tmp_path / "run")
    kept = {n: torch.load(tmp_path / "run" / f"step{n}.pt", weights_only=False) for n in (1, 2)}  # keep_every: 1
    assert [kept[n]["step"] for n in (1, 2)] == [1, 2]
    assert all(torch.equal(kept[2]["model"][k], final["model"][k]) for k in final["model"])
    assert final["config"]["sr"]["kind"] == "none" and not any(k.startswith("sr.") for k in final["model"])
    val = [r for r in _records(tmp_path / "run") if "val_accuracy" in r][-1]
    assert val["val_accuracy"] == val["val_bicubic_accuracy"]  # the SR image is the input itself


def test_freeze_rejects_unknown_parts():
    from lowres_ocr.network import build_model
    from lowres_ocr.train.trainer import frozen_modules

    with pytest.raises(ValueError, match="decoder"):
        frozen_modules(build_model(load_config("small")["model"]), ["decoder"])


def test_validation_leaves_frozen_parts_in_eval_mode(real_pairs_dir):
    """validate() puts every module back as it found it: frozen BatchNorm must not start tracking statistics."""
    from lowres_ocr.network import build_model
    from lowres_ocr.train.trainer import frozen_modules, set_train_mode, validate
    from lowres_ocr.train.batches import load_eval_set

    model = build_model(load_config("small")["model"])
    frozen = frozen_modules(model, ["recognizer"])
    set_train_mode(model, frozen)
    metrics = validate(model, *load_eval_set(real_pairs_dir, "labels.tsv", 4, 0), torch.device("cpu"))
    assert set(metrics) == {"val_accuracy", "val_bicubic_accuracy", "val_samples"}
    assert model.sr.training and model.projection.training
    assert not model.encoder.training and not any(m.training for m in model.encoder.modules())


@pytest.mark.parametrize("env, expected", [({"OMP_NUM_THREADS": "1"}, 1), ({"LOCAL_WORLD_SIZE": "2"}, max(1, (os.cpu_count() or 1) // 2))])
def test_cpu_threads_follow_omp_num_threads_else_split_cores(monkeypatch, env, expected):
    from lowres_ocr.train.trainer import setup_distributed

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = torch.get_num_threads()
    try:
        setup_distributed()
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


def test_feature_loss_with_a_trainable_recognizer_is_refused(tmp_path):
    """The feature MSE against a trainable encoder collapses features: the trainer says so before training."""
    from lowres_ocr.train.trainer import Trainer

    with pytest.raises(ValueError, match="freeze.*recognizer"):
        Trainer(load_config("small", [f"output_dir={tmp_path / 'run'}", "loss_weights.feature=1"]))
    assert not (tmp_path / "run").exists()  # refused before anything was set up
    check_config(load_config("small", ["loss_weights.feature=1", "train.freeze=[recognizer]"]))


def test_reinit_puts_the_recognizer_back_to_its_pretrained_weights():
    """``reinit: [recognizer]`` (sharp_stage): encoder and CTC head back to the wheel's PP-OCR weights, SR kept."""
    from lowres_ocr.network import build_model
    from lowres_ocr.network.encoders import PPOCREncoder
    from lowres_ocr.train.trainer import reinitialise

    model = build_model(load_config("default")["model"])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    sr_before = {k: v.clone() for k, v in model.sr.state_dict().items()}
    reinitialise(model, ["recognizer"])
    encoder, head = PPOCREncoder.pretrained(model.config["recognizer"]["width"])
    for mine, pretrained in ((model.encoder, encoder), (model.head, head)):
        for (name, a), b in zip(mine.state_dict().items(), pretrained.state_dict().values()):
            assert torch.equal(a, b), name
    assert all(torch.equal(v, sr_before[k]) for k, v in model.sr.state_dict().items())
    with pytest.raises(ValueError, match="unknown part"):
        reinitialise(model, ["sr"])
    with pytest.raises(ValueError, match="PP-OCR"):
        reinitialise(build_model(load_config("small")["model"]), ["recognizer"])


def test_reinit_without_init_from_is_refused(tmp_path):
    from lowres_ocr.train.trainer import Trainer

    with pytest.raises(ValueError, match="reinit needs init_from"):
        Trainer(load_config("small", [f"output_dir={tmp_path / 'run'}", "reinit=[recognizer]"]))
    assert not (tmp_path / "run").exists()  # refused before anything was set up


def test_resume_from_a_snapshot_continues_the_step_and_schedule(tmp_path, real_pairs_dir, real_words_dir):
    """A run folder lost with its machine: the next run continues from the committed snapshot (no optimizer moments)
    at the snapshot's step and data position, with the schedule of the full run."""
    first = tmp_path / "first"
    base = [sys.executable, "-m", "lowres_ocr.train", "--config", "small"]
    sets = _overrides(real_pairs_dir, real_words_dir, train__steps=8, train__checkpoint_every=4, train__val_every=0,
                      train__warmup_steps=0)
    short = [*sets, "--set", "train.steps=4"]
    assert subprocess.run([*base, "--output-dir", str(first), *short], capture_output=True, timeout=300, env=_env()).returncode == 0
    snapshot = tmp_path / "snapshot.pt"
    from typer.testing import CliRunner

    from lowres_ocr.cli import app
    result = CliRunner().invoke(app, ["export", "release", str(first / "last.pt"), "--snapshot", "--out", str(snapshot),
                                      "--command", "test"])
    assert result.exit_code == 0, result.output
    assert "optimizer" not in torch.load(snapshot, weights_only=False)

    full = tmp_path / "full"  # the usual resume: the whole last.pt in the output folder
    full.mkdir()
    (full / "last.pt").write_bytes((first / "last.pt").read_bytes())
    from_snapshot = tmp_path / "from_snapshot"
    for out, extra in ((full, []), (from_snapshot, ["--set", f"resume_from={snapshot}"])):
        proc = subprocess.run([*base, "--output-dir", str(out), *sets, *extra], capture_output=True, text=True, timeout=300, env=_env())
        assert proc.returncode == 0, proc.stderr[-3000:]
    records = _records(from_snapshot)
    assert [r["step"] for r in records if r.get("event") == "resume"] == [4]
    steps = {r["step"]: r for r in records if "loss/total" in r}
    assert sorted(steps) == [5, 6, 7, 8] and load_checkpoint(from_snapshot / "final.pt")["step"] == 8
    usual = {r["step"]: r for r in _records(full) if "loss/total" in r}
    # same weights and the same batch at step 5; the learning rate follows the 8-step schedule in both
    assert steps[5]["loss/total"] == pytest.approx(usual[5]["loss/total"], rel=1e-4, abs=1e-5)
    assert steps[5]["lr/sr"] == pytest.approx(usual[5]["lr/sr"])


def test_resume_from_a_released_model_is_refused(tmp_path, real_pairs_dir, real_words_dir):
    from lowres_ocr.network import build_model, save_checkpoint, tiny_config

    released = tmp_path / "released.pt"
    save_checkpoint(released, build_model(tiny_config()), {"step": 3})
    proc = subprocess.run([sys.executable, "-m", "lowres_ocr.train", "--config", "small", "--output-dir", str(tmp_path / "run"),
                           *_overrides(real_pairs_dir, real_words_dir, train__steps=2), "--set", f"resume_from={released}"],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode != 0
    assert f"{released}: no training state (step, scheduler) to resume from" in proc.stderr
