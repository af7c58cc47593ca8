"""The distillation teacher: the pretrained PP-OCR recognizer, frozen, reading the HR crop.

It keeps what the backbone knows about clean text while the student learns to read LR crops through its SR
branch: the student's CTC posteriors on the SR path are pulled toward the teacher's on the HR crop
(``loss_weights.distill``, ``lowres_ocr.network.losses.distillation_loss``).
"""

from __future__ import annotations

import torch

from lowres_ocr.network.model import DEFAULT_MODEL, LowResOCR, build_model, merge


def build_teacher(student: LowResOCR) -> LowResOCR:
    """PP-OCR weights from the rapidocr wheel with the student's charset and geometry; frozen, in eval mode.

    Its SR branch is never used (``recognize`` on HR crops only). It lives outside the student, so it is
    neither trained, nor wrapped by DDP, nor saved in checkpoints.
    """
    student = getattr(student, "module", student)
    if student.config.get("recognizer", {}).get("type") != "ppocr":
        raise ValueError("loss_weights.distill needs a ppocr recognizer: the teacher is the pretrained PP-OCR one")
    cfg = merge(DEFAULT_MODEL, {"charset": student.config.get("charset", "ascii"), "decoder": "ctc"})
    if "geometry" in student.config:
        cfg["geometry"] = student.config["geometry"]
    teacher = build_model(cfg).eval()
    if teacher.charset != student.charset:
        raise ValueError(f"teacher charset {teacher.charset} differs from the student's {student.charset}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    device = next(student.parameters()).device
    return teacher.to(device, memory_format=torch.channels_last)
