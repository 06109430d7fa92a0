"""The trainer's losses: cross-entropy on soft label targets, and knowledge distillation from teachers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fer_demo.core.labels import NUM_CLASSES


@dataclass(frozen=True)
class KDConfig:
    """Distillation: soften the teachers and the student by `temperature`; `weight` of the loss goes to the
    teachers, the rest to the labels."""

    temperature: float = 1.0
    weight: float = 0.5


def soft_targets(y: torch.Tensor, smoothing: float) -> torch.Tensor:
    off = smoothing / NUM_CLASSES
    return torch.full((len(y), NUM_CLASSES), off, device=y.device).scatter_(1, y.unsqueeze(1), 1 - smoothing + off)


def weighted_soft_ce(logits, targets, class_weights=None):
    """Cross-entropy with soft targets; class weights weigh each sample by its target mass."""
    loss = -(targets * F.log_softmax(logits.float(), -1)).sum(-1)
    if class_weights is None:
        return loss.mean()
    w = targets @ class_weights
    return (loss * w).sum() / w.sum()


def distill_loss(logits, label_targets, teacher_log_probs, kd: KDConfig, class_weights=None):
    """(1 - w) * CE(labels, student) + w * T^2 * CE(softmax(teacher / T), softmax(student / T)).

    The soft term is the KL divergence of Hinton et al. (2015) up to the teachers' entropy, a constant, so its
    gradients are the KL's; T^2 keeps them on the label term's scale whatever T is. Class weights weigh the
    label term only: the teachers' targets already carry their own class balance."""
    temperature = kd.temperature
    teacher = (teacher_log_probs.float() / temperature).softmax(-1)
    hard = weighted_soft_ce(logits, label_targets, class_weights)
    soft = weighted_soft_ce(logits.float() / temperature, teacher)
    return (1 - kd.weight) * hard + kd.weight * temperature**2 * soft
