"""The evaluator's per-face predictions files (`<split>_predictions[.<backend>].json`, train/report.py), read
back: what a report's figures recount to from them."""

from __future__ import annotations

import numpy as np
import torch

from fer_demo.core.evaluation import classification_metrics
from fer_demo.core.labels import NUM_CLASSES

# The figures that follow from the confusion matrix alone: a recount from the predicted classes gives them bit
# for bit (ECE and NLL need the unrounded probabilities).
COUNTED = ("n", "accuracy", "macro_f1", "per_class", "labels", "confusion", "confusion_normalized")


def counted_figures(metrics: dict) -> dict:
    return {name: metrics[name] for name in COUNTED}


def recounted(record: dict, key: str) -> dict:
    """The counted figures of mode `key` ("no_tta", "tta") recomputed by the evaluator's own metrics from the
    file's classes, one-hot, so that nothing but the classes counts."""
    classes = torch.tensor(record[key]["pred"])
    one_hot = torch.nn.functional.one_hot(classes, NUM_CLASSES).double()
    return counted_figures(classification_metrics(one_hot, torch.tensor(record["true"])))


def uncalibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The raw probabilities behind calibrated ones (fer_demo.core.calibration): proportional to them to the power T."""
    raw = np.clip(probs.astype(np.float64), 1e-9, None) ** temperature
    return raw / raw.sum(-1, keepdims=True)
