"""timm ResNets adapted to FER2013's 1-channel 48x48 faces. No I/O here."""

from __future__ import annotations

import timm
import torch
from torch import nn

from .inference import eval_mode
from .labels import NUM_CLASSES

# stem name -> (first conv stride, keep max-pool). A 48x48 face through timm's
# ImageNet stem leaves a 2x2 map at the last stage; dropping the max-pool (s2)
# leaves 3x3, and a stride-1 stem (s1) leaves 6x6 at 4x the compute of s2.
STEMS = {"imagenet": (2, True), "s2": (2, False), "s1": (1, False)}
CAM_LAYERS = ("layer1", "layer2", "layer3", "layer4")


def create_fer_model(
    arch: str = "resnet18",
    stem: str = "s2",
    pretrained: bool = False,
    pretrained_file: str | None = None,
    drop_rate: float = 0.0,
) -> nn.Module:
    """A timm ResNet with 1 input channel and 7 outputs.

    `pretrained` loads timm's ImageNet weights (from the Hub, or from
    `pretrained_file` when given); timm folds the RGB stem into one channel.
    """
    if not arch.startswith(("resnet", "resnext", "wide_resnet", "seresnet", "ecaresnet")):
        raise ValueError(f"{arch!r} is not a timm ResNet (e.g. resnet18, resnet18d, resnet34, resnet50)")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose from {', '.join(STEMS)}")
    kwargs = dict(pretrained=pretrained or bool(pretrained_file), in_chans=1,
                  num_classes=NUM_CLASSES, drop_rate=drop_rate)
    if pretrained_file:
        kwargs["pretrained_cfg_overlay"] = dict(file=str(pretrained_file))
    model = timm.create_model(arch, **kwargs)
    set_stem(model, stem)
    return model


def set_stem(model: nn.Module, stem: str) -> None:
    stride, keep_maxpool = STEMS[stem]
    first_conv = next(m for m in model.conv1.modules() if isinstance(m, nn.Conv2d))
    first_conv.stride = (stride, stride)
    if not keep_maxpool:
        model.maxpool = nn.Identity()


def stage_map_sizes(model: nn.Module, input_size: int) -> dict[str, int]:
    """Side of each ResNet stage's output map for a square input (for the CAM layer picker)."""
    sizes, hooks = {}, []
    for name in CAM_LAYERS:
        hooks.append(getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: sizes.__setitem__(name, o.shape[-1])))
    try:
        with eval_mode(model), torch.inference_mode():
            model(torch.zeros(1, 1, input_size, input_size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return sizes
