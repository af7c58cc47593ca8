import pytest
import torch

from lowres_ocr.core.charset import NUM_CLASSES
from lowres_ocr.network import DEFAULT_LOSS_WEIGHTS, build_model, load_model, save_checkpoint, tiny_config
from lowres_ocr.network.losses import info_nce, sr_loss
from lowres_ocr.network.rectifier import TPSRectifier
from lowres_ocr.network.sr import SRBranch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(tiny_config())


def _batch(n=4):
    g = torch.Generator().manual_seed(1)
    lr, hr = torch.rand(n, 3, 16, 64, generator=g), torch.rand(n, 3, 32, 128, generator=g)
    lengths = torch.tensor([3, 1, 4, 2][:n])
    targets = torch.randint(1, NUM_CLASSES, (int(lengths.sum()),), generator=g)
    return lr, hr, targets, lengths


@torch.no_grad()
def test_inference_shapes_and_ranges(model):
    model.eval()
    probs, sr = model.infer(torch.rand(5, 3, 16, 64))
    assert sr.shape == (5, 3, 32, 128)
    assert probs.shape[0] == 5 and probs.shape[2] == NUM_CLASSES
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:2]), atol=1e-5)
    assert float(sr.detach().min()) >= 0.0 and float(sr.detach().max()) <= 1.0
    # HR input goes straight to the recognizer
    assert model.recognize(torch.rand(2, 3, 32, 128)).shape[0] == 2


def test_losses_finite_and_gradients_reach_both_branches(model):
    model.train()
    model.zero_grad()
    parts = model.training_losses(*_batch(), dict(DEFAULT_LOSS_WEIGHTS, rec_hr=0.5))
    assert {"rec", "sr", "rec_hr", "contrastive", "total"} <= set(parts)
    assert all(torch.isfinite(v) for v in parts.values())
    parts["total"].backward()
    sr_grad = sum(float(p.grad.abs().sum()) for p in model.sr.parameters() if p.grad is not None)
    rec_grad = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
    head_grad = float(model.head.weight.grad.abs().sum())
    proj_grad = sum(float(p.grad.abs().sum()) for p in model.projection.parameters() if p.grad is not None)
    assert sr_grad > 0 and rec_grad > 0 and head_grad > 0 and proj_grad > 0


def test_recognition_loss_reaches_sr_branch(model):
    """The text-focused term alone (no pixel loss) still trains the SR branch."""
    model.train()
    model.zero_grad()
    parts = model.training_losses(*_batch(), {"rec": 1.0})
    parts["total"].backward()
    assert sum(float(p.grad.abs().sum()) for p in model.sr.parameters() if p.grad is not None) > 0


def test_sr_pretraining_skips_the_recognizer(model, monkeypatch):
    """With only the SR loss weighted, training_losses never runs the recognizer (and the SR branch still learns)."""
    model.train()
    model.zero_grad()

    def no_recognizer(*args, **kwargs):
        raise AssertionError("the recognizer ran during SR pre-training")

    monkeypatch.setattr(model, "features", no_recognizer)
    parts = model.training_losses(*_batch(), {"rec": 0.0, "rec_hr": 0.0, "sr": 1.0, "contrastive": 0.0, "feature": 0.0})
    assert set(parts) == {"sr", "total"} and torch.equal(parts["total"], parts["sr"])
    parts["total"].backward()
    assert model.sr.tail.weight.grad is not None and model.sr.tail.weight.grad.abs().sum() > 0


def test_hr_only_recognizer_training_reads_only_hr(model, monkeypatch):
    """With only ``rec_hr`` weighted (the TextZoom protocol's HR recognizer), the SR output never reaches the recognizer."""
    model.train()
    lr, hr, targets, lengths = _batch()
    seen = []
    features = model.features
    monkeypatch.setattr(model, "features", lambda image: seen.append(image) or features(image))
    parts = model.training_losses(lr, hr, targets, lengths, {"rec": 0.0, "rec_hr": 1.0, "sr": 0.0, "contrastive": 0.0})
    assert set(parts) == {"sr", "rec_hr", "total"} and len(seen) == 1 and seen[0] is hr
    assert torch.isfinite(parts["total"]) and torch.equal(parts["total"], parts["rec_hr"])


def test_feature_loss_pulls_lr_path_onto_hr_features(model):
    """``feature``: MSE between SR-path and HR encoder features; zero when the LR path sees the HR content."""
    model.eval()  # BatchNorm on running statistics: the same image must give the same features on both paths
    lr, hr, targets, lengths = _batch()
    model.zero_grad()
    parts = model.training_losses(lr, hr, targets, lengths, {"rec": 0.0, "sr": 0.0, "contrastive": 0.0, "feature": 1.0})
    assert float(parts["feature"]) > 0 and torch.isfinite(parts["total"])
    parts["total"].backward()
    assert sum(float(p.grad.abs().sum()) for p in model.sr.parameters() if p.grad is not None) > 0
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in model.projection.parameters())
    with torch.no_grad():
        same = model.training_losses(lr, model.sr(lr), targets, lengths, {"rec": 0.0, "sr": 0.0, "feature": 1.0})
    assert float(same["feature"]) < 1e-10


def test_contrastive_lower_for_matched_than_shuffled_pairs():
    g = torch.Generator().manual_seed(0)
    hr = torch.randn(16, 32, generator=g)
    lr = hr + 0.3 * torch.randn(16, 32, generator=g)  # LR features: noisy versions of their HR partner
    matched = info_nce(lr, hr)
    shuffled = info_nce(lr, hr[torch.randperm(16, generator=g)])
    assert float(matched) < float(shuffled)


def test_untrained_sr_branch_is_bicubic():
    lr = torch.rand(2, 3, 16, 64)
    out = SRBranch(channels=8, blocks=1)(lr)
    ref = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    assert torch.allclose(out, ref, atol=1e-6)


def _drift_after_one_adam_step(branch: SRBranch) -> float:
    """Mean |SR − bicubic| after one Adam step (lr 1e-3) on a pixel loss, from a fresh branch."""
    torch.manual_seed(0)
    lr, hr = torch.rand(8, 3, 16, 64), torch.rand(8, 3, 32, 128)
    opt = torch.optim.Adam(branch.parameters(), lr=1e-3)
    sr_loss(branch(lr), hr).backward()
    opt.step()
    with torch.no_grad():
        bicubic = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
        return float((branch(lr) - bicubic).abs().mean())


def test_small_scaled_tail_keeps_a_fresh_wide_branch_near_bicubic():
    """The zero-initialised tail: its first Adam step must not wreck the image (see SRBranch's docstring)."""
    wide = dict(channels=64, blocks=1, sequence=False)
    assert _drift_after_one_adam_step(SRBranch(**wide, tail_kernel=3, residual_scale=0.1)) < 0.01
    assert _drift_after_one_adam_step(SRBranch(**wide)) > 0.05  # the 9×9 unscaled tail of stage 1 does not


def test_sr_loss_zero_for_identical_images():
    x = torch.rand(2, 3, 32, 128)
    assert float(sr_loss(x, x)) == 0.0
    assert float(sr_loss(x, 1 - x)) > 0.0


def test_tps_rectifier_starts_as_identity():
    x = torch.rand(2, 3, 32, 128)
    out = TPSRectifier()(x)
    assert out.shape == x.shape
    assert float((out - x).abs().mean()) < 0.02


def test_rectifier_switch(tmp_path):
    cfg = dict(tiny_config(), rectifier=True)
    m = build_model(cfg).eval()
    assert isinstance(m.rectifier, TPSRectifier)
    probs, _ = m.infer(torch.rand(1, 3, 16, 64))
    assert probs.shape[-1] == NUM_CLASSES


def test_checkpoint_round_trip(tmp_path, model):
    model.eval()
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model, {"step": 7})
    again, payload = load_model(path)
    x = torch.rand(2, 3, 16, 64)
    assert payload["step"] == 7
    assert torch.equal(again.infer(x)[0], model.infer(x)[0])


def test_bad_checkpoint_is_named(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pt"):
        load_model(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")


def test_unknown_recognizer_type():
    with pytest.raises(ValueError, match="unknown recognizer type"):
        build_model(dict(tiny_config(), recognizer={"type": "vit"}))


def test_attention_decoder_trains_and_decodes():
    torch.manual_seed(0)
    m = build_model(dict(tiny_config(), decoder="attention"))
    m.train()
    parts = m.training_losses(*_batch(), DEFAULT_LOSS_WEIGHTS)
    assert torch.isfinite(parts["rec"])
    parts["total"].backward()
    assert sum(float(p.grad.abs().sum()) for p in m.sr.parameters() if p.grad is not None) > 0
    m.eval()
    with torch.no_grad():
        probs, _ = m.infer(torch.rand(2, 3, 16, 64))
    assert probs.shape == (2, m.head.max_len + 1, NUM_CLASSES)


def test_attention_beam_search_not_worse_than_greedy():
    """On a fixed toy decoder, the beam's best hypothesis scores at least the greedy sequence's log-probability."""
    from lowres_ocr.network.attention import AttentionDecoder

    torch.manual_seed(3)
    dec = AttentionDecoder(in_dim=8, hidden=16, embed=8, num_classes=6, max_len=5).eval()
    feats = torch.randn(3, 7, 8)

    def seq_logprob(f, ids):
        keys, h, prev, total = dec.key(f), f.new_zeros(1, dec.hidden), torch.tensor([dec.start]), 0.0
        for c in ids + [0]:
            lg, h = dec.step(f, keys, h, prev)
            total += float(torch.log_softmax(lg, -1)[0, c])
            prev = torch.tensor([c])
        return total

    with torch.no_grad():
        greedy = dec.greedy(feats).argmax(-1)
        beams = dec.beam_search(feats, beam_width=4)
        for i in range(3):
            g = greedy[i].tolist()
            g = g[:g.index(0)] if 0 in g else g
            assert beams[i][1] >= seq_logprob(feats[i:i + 1], g) - 1e-5


def test_a_zero_scaled_branch_is_skipped_at_inference_with_the_same_image(monkeypatch):
    """residual_scale 0 (the ablation's SR branch): in eval mode the branch is not run and the image is unchanged."""
    torch.manual_seed(0)
    branch = SRBranch(channels=8, blocks=1, tail_kernel=3, residual_scale=0.0)
    torch.nn.init.normal_(branch.tail.weight)  # a trained tail: its residual is not zero, only scaled to zero
    lr = torch.rand(2, 3, 24, 96)
    full = branch.train()(lr)
    calls = []
    monkeypatch.setattr(branch.head, "forward", lambda x: calls.append(x) or torch.zeros(1))
    skipped = branch.eval()(lr)
    assert calls == [] and torch.equal(skipped, full.detach())
