"""``lowres-ocr export release``: a run's checkpoint without training state, with provenance, that loads."""

from __future__ import annotations

from pathlib import Path

import torch
from typer.testing import CliRunner

from lowres_ocr.cli import app
from lowres_ocr.network import build_model, load_model, save_checkpoint, tiny_config


def _run_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(path, model, {"optimizer": optimizer.state_dict(), "scheduler": {"last_epoch": 7}, "rng": {"x": 1},
                                  "best": 0.5, "step": 7, "val": {"val_accuracy": 0.5}})
    return path


def test_release_drops_training_state_and_keeps_the_weights(tmp_path):
    ckpt = _run_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "model" / "released.pt"
    result = CliRunner().invoke(app, ["export", "release", str(ckpt), "--out", str(out), "--command", "lowres-ocr train x",
                                      "--note", "best on validation"])
    assert result.exit_code == 0, result.output
    assert "step 7" in result.output
    released = torch.load(out, weights_only=False)
    assert not {"optimizer", "scheduler", "rng", "best"} & set(released)
    assert released["provenance"] == {"checkpoint": str(ckpt), "step": 7, "command": "lowres-ocr train x",
                                      "note": "best on validation"}
    assert released["val"] == {"val_accuracy": 0.5}
    a, b = load_model(ckpt)[0].state_dict(), load_model(out)[0].state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_release_of_a_broken_checkpoint_writes_nothing(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "released.pt"
    result = CliRunner().invoke(app, ["export", "release", str(bad), "--out", str(out), "--command", "x"])
    assert result.exit_code == 1 and not out.exists()
    assert f"release FAIL: checkpoint {bad} cannot be read" in result.output


def test_snapshot_keeps_the_training_state_but_the_optimizer(tmp_path):
    ckpt = _run_checkpoint(tmp_path / "last.pt")
    out = tmp_path / "snapshot.pt"
    runner = CliRunner()
    refused = runner.invoke(app, ["export", "release", str(ckpt), "--snapshot", "--command", "x"])
    assert refused.exit_code == 2 and "give --out" in refused.output
    result = runner.invoke(app, ["export", "release", str(ckpt), "--snapshot", "--out", str(out), "--command", "x"])
    assert result.exit_code == 0, result.output
    assert "snapshot" in result.output and "step 7, best validation 0.5" in result.output
    snap = torch.load(out, weights_only=False)
    assert "optimizer" not in snap
    assert snap["scheduler"] == {"last_epoch": 7} and snap["rng"] == {"x": 1} and snap["best"] == 0.5 and snap["step"] == 7
    released = tmp_path / "released.pt"
    assert runner.invoke(app, ["export", "release", str(ckpt), "--out", str(released), "--command", "x"]).exit_code == 0
    again = runner.invoke(app, ["export", "release", str(released), "--snapshot", "--out", str(tmp_path / "s2.pt"), "--command", "x"])
    assert again.exit_code == 1 and "holds no training state" in again.output


def test_direct_read_release_drops_an_idle_sr_branch_and_reads_at_the_recognizer_resolution(tmp_path):
    from lowres_ocr.core.geometry import Geometry
    from lowres_ocr.network.sr import bicubic_upsample

    torch.manual_seed(0)
    cfg = tiny_config()
    cfg["sr"]["residual_scale"] = 0.0
    cfg["geometry"] = {"kind": "aspect", "height": 16, "width": 64, "sr_scale": 2}
    model = build_model(cfg).eval()
    ckpt = tmp_path / "idle_sr.pt"
    save_checkpoint(ckpt, model, {"step": 3})
    out = tmp_path / "direct.pt"
    result = CliRunner().invoke(app, ["export", "release", str(ckpt), "--out", str(out), "--command", "x", "--direct-read"])
    assert result.exit_code == 0, result.output
    direct, payload = load_model(out)
    assert direct.geometry == Geometry("aspect", 32, 128, 1)
    assert payload["config"]["sr"] == {"kind": "none"} and not any(k.startswith("sr.") for k in payload["model"])
    assert payload["provenance"]["read_path"].startswith("direct")
    lr = torch.rand(2, 3, 16, 64)
    with torch.no_grad():
        x = bicubic_upsample(lr)
        probs, sr = direct.infer(x)  # the input is the SR image; the recognizer is unchanged
        torch.testing.assert_close(sr, x)
        torch.testing.assert_close(probs, model.infer(lr)[0])


def test_direct_read_refuses_a_trained_sr_branch(tmp_path):
    ckpt = _run_checkpoint(tmp_path / "best.pt")  # residual_scale 1: the SR branch changes what the recognizer reads
    out = tmp_path / "direct.pt"
    result = CliRunner().invoke(app, ["export", "release", str(ckpt), "--out", str(out), "--command", "x", "--direct-read"])
    assert result.exit_code == 1 and not out.exists()
    assert "SR branch is trained (residual_scale 1.0)" in result.output


def test_blend_with_the_pretrained_recognizer_interpolates_encoder_and_head(tmp_path):
    import pytest

    pytest.importorskip("rapidocr", reason="the pretrained recognizer comes from the rapidocr wheel")
    from lowres_ocr.export.release import blend_pretrained
    from lowres_ocr.network.model import DEFAULT_MODEL, merge

    cfg = merge(DEFAULT_MODEL, {"sr": {"residual_scale": 0.0}})
    start = build_model(cfg).state_dict()
    tuned = {k: (v + 1.0 if v.is_floating_point() else v) for k, v in start.items()}  # "fine-tuned": every float +1
    payload = {"config": build_model(cfg).config, "model": tuned}
    half = blend_pretrained(payload, 0.5)["model"]
    key = next(k for k in start if k.startswith("encoder.") and start[k].is_floating_point())
    torch.testing.assert_close(half[key], start[key] + 0.5)
    torch.testing.assert_close(half["head.weight"], start["head.weight"] + 0.5)
    assert torch.equal(half["projection.0.weight"], tuned["projection.0.weight"])  # not part of the recognizer
    assert all(torch.equal(blend_pretrained(payload, 1.0)["model"][k], tuned[k]) for k in tuned)
    with pytest.raises(ValueError, match="alpha must lie in"):
        blend_pretrained(payload, 1.5)
    with pytest.raises(ValueError, match="ppocr recognizer"):
        blend_pretrained({"config": tiny_config(), "model": {}}, 0.5)


def test_release_averages_checkpoints_of_one_run(tmp_path):
    first = _run_checkpoint(tmp_path / "step250.pt")
    payload = torch.load(first, weights_only=False)
    shifted = {k: (v + 2.0 if v.is_floating_point() else v) for k, v in payload["model"].items()}
    second = tmp_path / "step500.pt"
    torch.save({**payload, "model": shifted}, second)
    out = tmp_path / "mean.pt"
    result = CliRunner().invoke(app, ["export", "release", str(second), "--out", str(out), "--command", "x",
                                      "--average-with", str(first)])
    assert result.exit_code == 0, result.output
    released = torch.load(out, weights_only=False)
    assert released["provenance"]["averaged_with"] == [str(first)]
    for key, value in payload["model"].items():
        expected = value + 1.0 if value.is_floating_point() else value  # the mean of +0 and +2
        torch.testing.assert_close(released["model"][key], expected)
    other = tmp_path / "other.pt"
    torch.save({**payload, "config": {**payload["config"], "contrastive_dim": 7}}, other)
    result = CliRunner().invoke(app, ["export", "release", str(second), "--out", str(tmp_path / "bad.pt"),
                                      "--command", "x", "--average-with", str(other)])
    assert result.exit_code == 1 and "checkpoint 2 of the average has another architecture" in result.output
    assert not (tmp_path / "bad.pt").exists()
