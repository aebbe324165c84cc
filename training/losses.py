"""The paper's voice-encoder loss (Sec. 3.2), each term's weight configurable.

L = |f_dec(v_f) - f_dec(v_s)|_1 + lambda1 |v_f/|v_f| - v_s/|v_s||_2^2 + lambda2 L_distill(f_VGG(v_f), f_VGG(v_s))
with f_dec the face decoder's first layer, f_VGG the face encoder's classifier, and
L_distill(a, b) = -sum_i softmax(a/T)_i log softmax(b/T)_i at temperature T.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class LossWeights:
    decoder_l1: float = 1.0
    lambda1: float = 0.025      # normalised-feature squared L2
    lambda2: float = 200.0      # distillation
    temperature: float = 2.0


def distillation(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    teacher = F.softmax(teacher_logits / temperature, dim=1)
    return -(teacher * F.log_softmax(student_logits / temperature, dim=1)).sum(dim=1).mean()


def speech2face_loss(
    voice_feature: torch.Tensor,
    face_feature: torch.Tensor,
    decoder_first_layer: nn.Module,
    face_classifier: nn.Module,
    weights: LossWeights = LossWeights(),
) -> dict[str, torch.Tensor]:
    """Returns every term and their weighted sum under 'total'; the frozen layers get no gradient."""
    l1 = (decoder_first_layer(face_feature) - decoder_first_layer(voice_feature)).abs().sum(dim=1).mean()
    l2 = (F.normalize(face_feature, dim=1) - F.normalize(voice_feature, dim=1)).pow(2).sum(dim=1).mean()
    kd = distillation(face_classifier(face_feature), face_classifier(voice_feature), weights.temperature)
    total = weights.decoder_l1 * l1 + weights.lambda1 * l2 + weights.lambda2 * kd
    return {"total": total, "decoder_l1": l1, "feature_l2": l2, "distillation": kd}
