"""Training losses: CTC recognition, SR pixel + gradient profile, contrastive HR/LR feature alignment, and
distillation of a frozen teacher's CTC posteriors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lowres_ocr.core.charset import BLANK


def ctc_loss(logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Mean CTC loss; ``logits`` [B, T, C], ``targets`` concatenated class ids, ``target_lengths`` [B]."""
    log_probs = logits.float().log_softmax(2).permute(1, 0, 2)  # [T, B, C]
    input_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=BLANK, reduction="mean", zero_infinity=True)


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KL(teacher ‖ student) of the per-step class distributions, summed over classes, mean over batch and steps.

    ``student_logits`` [B, T, C]; ``teacher_probs`` [B, T, C] (a softmax, no gradient).
    """
    if student_logits.shape != teacher_probs.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_probs.shape)} posteriors differ in shape")
    teacher = teacher_probs.detach().float()
    kl = teacher * ((teacher + eps).log() - student_logits.float().log_softmax(-1))
    return kl.sum(-1).mean()


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def sr_loss(sr: torch.Tensor, hr: torch.Tensor, gradient_weight: float = 1.0) -> torch.Tensor:
    """L2 on pixels plus L1 on horizontal/vertical gradients (sharp stroke edges matter for reading)."""
    loss = F.mse_loss(sr, hr)
    if gradient_weight:
        (sx, sy), (hx, hy) = image_gradients(sr), image_gradients(hr)
        loss = loss + gradient_weight * (F.l1_loss(sx, hx) + F.l1_loss(sy, hy))
    return loss


def info_nce(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE over the batch: row i of ``query`` should match row i of ``key`` and no other row.

    ``key`` (the HR side) is the target the LR/SR features are pulled toward; pass it detached to keep
    the HR features fixed for this term.
    """
    q = F.normalize(query.float(), dim=1)
    k = F.normalize(key.float(), dim=1)
    logits = q @ k.t() / temperature
    labels = torch.arange(q.shape[0], device=q.device)
    return F.cross_entropy(logits, labels)


def attention_loss(logits: torch.Tensor, padded_targets: torch.Tensor) -> torch.Tensor:
    """Sequence cross-entropy for the attention decoder (padding = -100 is ignored)."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), padded_targets.reshape(-1), ignore_index=-100)
