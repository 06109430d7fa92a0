"""The metrics we report: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix and
expected calibration error (predictions come from `inference.predict_probs`)."""

from __future__ import annotations

import torch

from .labels import FER_LABELS, NUM_CLASSES
from .transforms import FULL_TTA, NO_TTA

ECE_BINS = 15
# An evaluation report's modes and the view set each averages (train.evaluate writes "tta" with --tta)
REPORT_MODES = {"no_tta": NO_TTA, "tta": FULL_TTA}


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, k: int = NUM_CLASSES) -> torch.Tensor:
    """Counts with rows = true class, columns = predicted class."""
    return torch.bincount(labels * k + preds, minlength=k * k).view(k, k)


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> list[dict]:
    """The top probability's equal-width bins that hold faces: each one's upper edge, face count, mean top
    probability (confidence) and accuracy. A calibrated model's accuracy equals its confidence in each bin."""
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            rows.append({"upper": hi.item(), "n": int(inside.sum()), "confidence": conf[inside].mean().item(),
                         "accuracy": correct[inside].mean().item()})
    return rows


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """The face-weighted mean gap between confidence and accuracy over `reliability_bins`."""
    n = max(len(labels), 1)
    return sum(b["n"] / n * abs(b["confidence"] - b["accuracy"]) for b in reliability_bins(probs, labels, bins))


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    """Every figure the evaluator reports, JSON-ready."""
    preds = probs.argmax(1)
    cm = confusion_matrix(labels, preds).double()
    tp, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12),
                     torch.zeros_like(tp))
    present = support > 0
    n = len(labels)
    return {
        "n": n,
        "accuracy": tp.sum().item() / max(n, 1),
        "macro_f1": f1[present].mean().item() if present.any() else 0.0,
        "ece": expected_calibration_error(probs, labels),
        "reliability": reliability_bins(probs, labels),
        "nll": torch.nn.functional.nll_loss(probs.clamp(min=1e-12).log(), labels).item() if n else 0.0,
        "per_class": {name: {"precision": precision[i].item(), "recall": recall[i].item(),
                             "f1": f1[i].item(), "support": int(support[i].item())}
                      for i, name in enumerate(FER_LABELS)},
        "labels": list(FER_LABELS),
        "confusion": cm.long().tolist(),
        "confusion_normalized": (cm / support.clamp(min=1).unsqueeze(1)).tolist(),
    }

