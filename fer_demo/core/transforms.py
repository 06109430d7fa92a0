"""Batch tensor transforms: model input from uint8 faces, and test-time augmentation views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .labels import FACE_SIZE

# Grayscale mean and std of FER2013 train pixels (/ 255), measured over 3,000 faces.
FER_MEAN, FER_STD = 0.51, 0.30
TTA_SHIFT = 3  # pixels, at FACE_SIZE (48x48)


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
    s = max(1, round(TTA_SHIFT * x.shape[-1] / FACE_SIZE))
    crops = [x, shift(x, s, 0), shift(x, -s, 0), shift(x, 0, s), shift(x, 0, -s)]
    return crops + [c.flip(-1) for c in crops]


@dataclass(frozen=True)
class ViewSet:
    """A test-time augmentation: the views' names (what /predict reports), how to make them, in words."""

    views: tuple[str, ...]
    make: Callable[[torch.Tensor], list[torch.Tensor]]
    description: str


SHIFTS = ("", " shifted right", " shifted left", " shifted down", " shifted up")
TTA = {
    "none": ViewSet(("face",), lambda x: [x], "the face alone"),
    "flip": ViewSet(("face", "mirrored"), lambda x: [x, x.flip(-1)], "the face and its mirror image"),
    "10-view": ViewSet(tuple(f"face{s}" for s in SHIFTS) + tuple(f"mirrored{s}" for s in SHIFTS), tta_views,
                       f"the face and 4 copies shifted by {TTA_SHIFT} px, each also mirrored (10 views)"),
}
NO_TTA, FULL_TTA = "none", "10-view"  # one view; the evaluator's --tta and the Predict tab's default
TTA_ALIASES = {False: NO_TTA, True: FULL_TTA, None: NO_TTA}  # the evaluator's --tta switch


def view_subset(of: str, subset: str) -> list[int]:
    """Where the views of TTA `subset` sit among those of TTA `of` (by name): the 10 views hold the one view
    and the flip pair, so one pass of them gives all three."""
    names = TTA[tta_name(of)].views
    return [names.index(view) for view in TTA[tta_name(subset)].views]


def tta_name(tta) -> str:
    """A TTA name from a name or the evaluator's on/off switch; ValueError for an unknown one."""
    name = TTA_ALIASES.get(tta, tta) if isinstance(tta, (bool, type(None))) else str(tta)
    if name not in TTA:
        raise ValueError(f"unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA)}")
    return name
