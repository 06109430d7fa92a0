"""FER training augmentation on whole batches of tensors, on the batch's own device (no PIL, cheap on 2 cores).

Every random number comes from the generator passed in (the trainer's `aug_gen`, saved in `last/`), drawn on
that generator's own device: the trainer keeps it on the batch's device, so that a GPU step copies nothing from
the host and waits for nothing (a host-to-device copy of drawn parameters was a sync each step, and set the pace
on an H200). On the CPU the stream is the one a CPU generator has always drawn: a CPU run's seed and resume
are unchanged."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    shift: float = 0.1        # max translation, fraction of the side
    flip: float = 0.5         # probability of a horizontal mirror
    rotate: float = 10.0      # max rotation, degrees
    scale: float = 0.1        # max zoom in or out, fraction
    erase: float = 0.25       # probability of one random-erasing rectangle
    crop: int | None = None   # output side in pixels: a window of this many input pixels (None: the whole side)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """Random affine (shift, rotation, scale, mirror) and random erasing for a float batch (N, C, H, W).

    With `cfg.crop`, the output is a `crop`-pixel square window of the input at its own pixel
    scale, placed by the shift: a random crop, done in the same resampling step.
    """
    n, c, h, w = x.shape
    side = cfg.crop or h
    rand = randoms(gen, n)

    def uniform(lo, hi):
        return rand() * (hi - lo) + lo

    angle = uniform(-cfg.rotate, cfg.rotate) * math.pi / 180
    scale = side / h / uniform(1 - cfg.scale, 1 + cfg.scale)
    mirror = torch.where(rand() < cfg.flip, -1.0, 1.0)
    tx, ty = uniform(-cfg.shift, cfg.shift) * 2, uniform(-cfg.shift, cfg.shift) * 2
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * mirror, -sin, tx], 1),
                         torch.stack([sin * mirror, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x), [n, c, side, side], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return random_erase(out, cfg.erase, gen) if cfg.erase > 0 else out


def randoms(gen: torch.Generator | None, n: int):
    """A function drawing `n` uniform numbers in [0, 1) from `gen`, on `gen`'s device (the CPU without one)."""
    device = gen.device if gen is not None else None
    return lambda: torch.rand(n, generator=gen, device=device)


def random_erase(x: torch.Tensor, p: float, gen: torch.Generator | None = None,
                 area=(0.02, 0.2), aspect=(0.3, 3.3)) -> torch.Tensor:
    """Erase one random rectangle per chosen image with noise (timm's RandomErasing, batched)."""
    n, _, h, w = x.shape
    rand = randoms(gen, n)
    chosen = rand() < p
    target = (rand() * (area[1] - area[0]) + area[0]) * h * w
    log_r = rand() * (math.log(aspect[1]) - math.log(aspect[0])) + math.log(aspect[0])
    eh = (target * log_r.exp()).sqrt().round().clamp(1, h).long()
    ew = (target / log_r.exp()).sqrt().round().clamp(1, w).long()
    top = (rand() * (h - eh + 1)).long()
    left = (rand() * (w - ew + 1)).long()
    rows = torch.arange(h, device=top.device).view(1, h, 1)
    cols = torch.arange(w, device=top.device).view(1, 1, w)
    mask = ((rows >= top.view(-1, 1, 1)) & (rows < (top + eh).view(-1, 1, 1))
            & (cols >= left.view(-1, 1, 1)) & (cols < (left + ew).view(-1, 1, 1)) & chosen.view(-1, 1, 1))
    noise = torch.randn(x.shape, generator=gen, device=top.device).to(x)
    return torch.where(mask.unsqueeze(1).to(x.device), noise, x)
