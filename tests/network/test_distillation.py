"""Distillation from the frozen pretrained PP-OCR recognizer reading the HR crop (``loss_weights.distill``)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from lowres_ocr.network import build_model, tiny_config
from lowres_ocr.network.losses import distillation_loss


def test_distillation_loss_is_the_kl_to_the_teacher() -> None:
    torch.manual_seed(0)
    teacher = torch.rand(2, 5, 7).softmax(-1)
    assert float(distillation_loss(teacher.log(), teacher)) == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(2, 5, 7, requires_grad=True)
    loss = distillation_loss(student, teacher)
    expected = (teacher * (teacher.log() - student.log_softmax(-1))).sum(-1).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5) and float(loss) > 0
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="differ in shape"):
        distillation_loss(student, teacher[:, :4])


def test_model_needs_the_teacher_posteriors_for_distill() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config()).train()
    lr, hr = torch.rand(2, 3, 16, 64), torch.rand(2, 3, 32, 128)
    targets, lengths = torch.tensor([5, 6, 7, 8]), torch.tensor([2, 2])
    weights = {"rec": 1.0, "sr": 1.0, "distill": 0.5}
    with pytest.raises(ValueError, match="teacher"):
        model.training_losses(lr, hr, targets, lengths, weights)
    with torch.no_grad():
        teacher_probs = model.recognize(hr)
    parts = model.training_losses(lr, hr, targets, lengths, weights, teacher_probs)
    assert float(parts["distill"]) >= 0 and torch.isfinite(parts["total"])
    total = parts["rec"] + parts["sr"] + 0.5 * parts["distill"] + 0.1 * parts.get("contrastive", 0)
    assert float(parts["total"]) == pytest.approx(float(total), rel=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="the teacher is the rapidocr wheel's PP-OCR recognizer")
def test_teacher_is_the_frozen_pretrained_recognizer_with_the_students_settings() -> None:
    from lowres_ocr.core.geometry import Geometry
    from lowres_ocr.network.teacher import build_teacher

    geometry = Geometry("aspect", height=24, width=192)
    student = build_model({"charset": "ppocr", "geometry": geometry.to_config()})
    teacher = build_teacher(student)
    assert teacher.charset == student.charset and teacher.geometry == geometry
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    lr = torch.rand(1, *geometry.input_shape())
    hr = torch.rand(1, *geometry.sr_shape())
    with torch.no_grad():
        assert teacher.recognize(hr).shape == student.infer(lr)[0].shape  # same steps and classes
    for a, b in zip(teacher.encoder.parameters(), student.encoder.parameters()):
        assert torch.equal(a, b)  # the student starts from the teacher's weights
