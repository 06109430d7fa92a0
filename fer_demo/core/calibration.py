"""Temperature scaling: probabilities that mean what they say.

Label smoothing leaves the model underconfident, and averaging TTA views lowers its confidence further. One
temperature per view set, fitted on the validation split's negative log-likelihood (`python -m train.calibrate`),
rescales the log of the view-averaged probabilities: `softmax(log(mean_v softmax(z_v)) / T)`. For one view that
is `softmax(z / T)`. Dividing by a positive number keeps the order of the classes, so the predicted class (and
with it accuracy and Grad-CAM's target) never changes. A checkpoint without temperatures gets T = 1: the raw
probabilities, as before.
"""

from __future__ import annotations

import math

import torch

from .transforms import tta_name

# config.json's key for each view set's temperature (transforms.TTA): one for a single view, one for the app's
# 10-view average, one for the face and its mirror.
TEMPERATURE_KEYS = {"none": "temperature", "flip": "temperature_flip", "10-view": "temperature_tta"}
# The search interval and precision of the fit; the fitted values are recorded rounded to TEMPERATURE_DIGITS.
T_RANGE = (0.05, 20.0)
TEMPERATURE_DIGITS = 4


def temperature_for(config: dict, tta) -> float:
    """The checkpoint's temperature for a view set (a `transforms.TTA` name or the evaluator's switch); 1 if none."""
    return float(config.get(TEMPERATURE_KEYS[tta_name(tta)], 1.0))


def calibrate(log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities from the log of (view-averaged) probabilities (N, K) at a temperature."""
    return (log_probs / temperature).softmax(-1)


def nll(log_probs: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of the labels at a temperature: what the fit minimizes."""
    return torch.nn.functional.cross_entropy(log_probs.double() / temperature, labels).item()


def fit_temperature(log_probs: torch.Tensor, labels: torch.Tensor, tol: float = 1e-5) -> float:
    """The temperature in T_RANGE that minimizes the NLL of `labels` (golden-section search on log T: the NLL is
    convex in 1/T for one view, and unimodal for view averages in practice). Fit it on validation faces only."""
    lo, hi = (math.log(t) for t in T_RANGE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(log_probs, labels, math.exp(a)), nll(log_probs, labels, math.exp(b))
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(log_probs, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(log_probs, labels, math.exp(b))
    return round(math.exp((lo + hi) / 2), TEMPERATURE_DIGITS)
