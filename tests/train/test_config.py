"""Training configs: ``base`` inheritance, the schema (unknown keys, wrong types) and where an error was set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lowres_ocr.train.config import CONFIG_DIR, ConfigError, load_config, resolve_config, validate_config

PRESETS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
REPO = Path(__file__).resolve().parents[2]
FULL_COPIES = "50f7c6ac"  # the last commit whose presets were full copies of each other


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_every_preset_loads():
    assert len(PRESETS) >= 12 and {"default", "small", "finetune", "aspect_zh"} <= set(PRESETS)
    for name in PRESETS:
        cfg = load_config(name)
        assert cfg["train"]["steps"] > 0 and cfg["data"]["train"], name


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


#: The presets that existed as full copies (newer presets were written as ``base`` + changes from the start).
FULL_COPY_PRESETS = sorted(Path(line).stem for line in
                           (_git("ls-tree", "--name-only", f"{FULL_COPIES}:lowres_ocr/train/configs") or "").split())


@pytest.mark.skipif(not FULL_COPY_PRESETS, reason=f"no git history of {FULL_COPIES} here")
@pytest.mark.parametrize("name", FULL_COPY_PRESETS or ["default"])
def test_preset_resolves_to_what_its_full_copy_said(name):
    """Rewritten as ``base`` + changes, each preset gives the trainer the dict its full copy gave."""
    old = _git("show", f"{FULL_COPIES}:lowres_ocr/train/configs/{name}.yaml")
    assert old is not None and name in PRESETS, f"{name} existed at {FULL_COPIES} and is gone now"
    full = yaml.safe_load(old)
    assert validate_config(full) == load_config(name)
    merged, _ = resolve_config(name)
    if full.get("init_from") and "model" not in full:
        assert merged.pop("model") is None  # stated in the preset: the architecture is init_from's
    assert merged == full


def test_unknown_key_from_set_is_named_with_a_suggestion():
    with pytest.raises(ConfigError) as err:
        load_config("default", ["train.stpes=5"])
    assert str(err.value) == "train.stpes: unknown key (set by --set train.stpes=5); did you mean train.steps?"
    with pytest.raises(ConfigError, match=r"^trian: unknown key \(set by --set trian\.steps=5\); did you mean train\?$"):
        load_config("default", ["trian.steps=5"])
    with pytest.raises(ConfigError, match=r"^data\.train\.0\.x: unknown key \(set by --set data\.train\.0\.x\.y=1\)$"):
        load_config("default", ["data.train.0.x.y=1"])  # named by the --set, not by the file that set data.train.0


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = _write(tmp_path / "mine.yaml", "base: small\ntrain:\n  stpes: 5\ndata:\n  val: {limt: 3}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert f"train.stpes: unknown key (set in {path.resolve()}); did you mean train.steps?" in lines
    assert f"data.val.limt: unknown key (set in {path.resolve()}); did you mean data.val.limit?" in lines


@pytest.mark.parametrize(("assignment", "message"), [
    ("train.steps=abc", r"^train\.steps: .*integer, got 'abc' \(set by --set train\.steps=abc\)$"),
    ("train.steps=true", r"train\.steps: .*integer, got True"),
    ("data.train.0.degrade=heavy", r"data\.train\.0\.degrade: .*'seed' or 'express'"),
    ("train.freeze=[decoder]", r"train\.freeze\.0: .*'recognizer'"),
    ("model.recognizer.type=vit", r"model\.recognizer\.type: "),
    ("train.lr={sr: 1.0e-3, recognizer: 1.0e-3}", r"train\.lr\.projection: required key missing"),
    ("model.charset=latin", r"model\.charset: .*'ascii' or 'ppocr'"),
    ("model.geometry={kind: aspect, height: 24}", r"model\.geometry\.width: required key missing"),
])
def test_wrong_types_are_errors(assignment, message):
    with pytest.raises(ConfigError, match=message):
        load_config("small", [assignment])


def test_the_schema_knows_every_loss_part_of_the_network():
    from lowres_ocr.network.model import DEFAULT_LOSS_WEIGHTS
    from lowres_ocr.train.schema import LOSS_PARTS

    assert set(LOSS_PARTS) == set(DEFAULT_LOSS_WEIGHTS)


def test_wrong_type_in_a_file_names_the_file(tmp_path):
    path = _write(tmp_path / "mine.yaml", "base: small\ntrain: {batch_size: many}\n")
    with pytest.raises(ConfigError, match=rf"train\.batch_size: .*got 'many' \(set in {path.resolve()}\)"):
        load_config(path)


def test_set_paths_that_do_not_exist_are_errors():
    with pytest.raises(ConfigError, match=r"data\.train has no item 5"):
        load_config("small", ["data.train.5.weight=0.5"])
    with pytest.raises(ConfigError, match=r"train\.steps holds 20, not a section"):
        load_config("small", ["train.steps.x=1"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config("small", ["nonsense"])


def test_base_inheritance_merges_mappings_and_replaces_lists(tmp_path):
    _write(tmp_path / "parent.yaml", "base: small\nseed: 11\ntrain: {steps: 7, lr: {sr: 5.0e-4}}\n")
    child = _write(tmp_path / "child.yaml", "base: parent.yaml\noutput_dir: runs/child\n"
                   "model: {sr: {blocks: 2}, recognizer: !replace {type: resnet, widths: [8, 8, 8, 8]}}\n"
                   "data: {train: [{path: data/x}]}\n")
    small, cfg = load_config("small"), load_config(child, ["train.steps=9"])
    assert cfg["seed"] == 11 and cfg["output_dir"] == "runs/child"
    assert cfg["train"]["steps"] == 9  # --set wins over the file
    assert cfg["train"]["lr"] == {**small["train"]["lr"], "sr": 5.0e-4}  # mappings merge key by key
    assert cfg["train"]["batch_size"] == small["train"]["batch_size"]
    assert cfg["model"]["sr"] == {**small["model"]["sr"], "blocks": 2}
    assert cfg["model"]["recognizer"] == {"type": "resnet", "widths": [8, 8, 8, 8]}  # !replace: no hidden from small
    assert [e["path"] for e in cfg["data"]["train"]] == ["data/x"]  # lists replace
    assert cfg["data"]["val"] == small["data"]["val"]


def test_base_cycle_is_an_error(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_cli_refuses_an_unknown_key_before_torchrun(tmp_path, monkeypatch):
    from lowres_ocr.cli import app
    from lowres_ocr.train import commands

    launched = []
    monkeypatch.setattr(commands.subprocess, "call", lambda *a, **k: launched.append(a) or 0)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--config", "default", "--set", "train.stpes=5", "--output-dir", str(out)])
    assert result.exit_code == 2
    assert "train.stpes: unknown key (set by --set train.stpes=5); did you mean train.steps?" in result.stderr
    assert not launched and not out.exists()
    ok = CliRunner().invoke(app, ["train", "--config", "default", "--set", "train.steps=5", "--output-dir", str(out)])
    assert ok.exit_code == 0 and len(launched) == 1  # a valid config goes on to torchrun


def test_trainer_entry_validates_too(tmp_path, capsys):
    from lowres_ocr.train.trainer import main

    out = tmp_path / "run"
    assert main(["--config", "small", "--set", "train.stpes=5", "--output-dir", str(out)]) == 2
    assert "did you mean train.steps?" in capsys.readouterr().err
    assert not out.exists()


def test_the_ablation_differs_from_aspect_zh_only_by_the_multi_task_terms():
    full, plain = load_config("aspect_zh"), load_config("aspect_zh_plain")
    assert plain["model"]["sr"]["residual_scale"] == 0.0 and full["model"]["sr"]["residual_scale"] > 0
    assert plain["loss_weights"]["sr"] == plain["loss_weights"]["distill"] == 0.0
    assert full["loss_weights"]["sr"] > 0 and full["loss_weights"]["distill"] > 0
    assert plain["train"]["freeze"] == ["sr", "projection"]
    for cfg in (full, plain):  # everything else equal: data, steps, batch, learning rates, geometry, charset
        cfg["model"]["sr"].pop("residual_scale"), cfg["loss_weights"].pop("sr"), cfg["loss_weights"].pop("distill")
        cfg["train"].pop("freeze"), cfg.pop("output_dir")
    assert plain == full
