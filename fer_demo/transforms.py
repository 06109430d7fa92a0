"""Batch tensor transforms: model input from uint8 faces, and test-time augmentation views."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Grayscale mean and std of FER2013 train pixels (/ 255), measured over 3,000 faces.
FER_MEAN, FER_STD = 0.51, 0.30
TTA_SHIFT = 3  # pixels, at 48x48


def to_model_input(faces: torch.Tensor, input_size: int, mean: float, std: float) -> torch.Tensor:
    """uint8 faces (N, H, W) or (N, 1, H, W) -> normalized float (N, 1, S, S)."""
    x = faces if faces.dim() == 4 else faces.unsqueeze(1)
    x = x.float().div_(255.0)
    if x.shape[-1] != input_size or x.shape[-2] != input_size:
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False,
                          antialias=True)
    return x.sub_(mean).div_(std)


def shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Translate a batch by whole pixels, filling with replicated edges (a shifted crop)."""
    p = max(abs(dx), abs(dy))
    if p == 0:
        return x
    padded = F.pad(x, (p, p, p, p), mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., p - dy: p - dy + h, p - dx: p - dx + w]


def tta_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 10 TTA views: {identity, 4 shifted crops of TTA_SHIFT px} x {as is, mirrored}."""
    s = max(1, round(TTA_SHIFT * x.shape[-1] / 48))
    crops = [x, shift(x, s, 0), shift(x, -s, 0), shift(x, 0, s), shift(x, 0, -s)]
    return crops + [c.flip(-1) for c in crops]
