"""The batched forward pass that serving, evaluation, training and the BatchNorm repair share:
eval mode restored after, the autocast dtype the hardware runs natively, softmax averaged over TTA views,
then the checkpoint's temperature (calibration.py)."""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from .calibration import calibrate, temperature_for
from .labels import NUM_CLASSES
from .transforms import TTA, to_model_input, tta_name


AMP_MODES = ("auto", "bf16", "fp16", "off")  # the trainer's --amp choices
_FIXED_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def amp_dtype(device: torch.device | str, mode: str = "auto") -> torch.dtype | None:
    """The autocast dtype for an AMP mode, None for fp32. "auto" is what `device` runs natively: bf16 on
    CUDA cards that have it and on CPUs with AVX-512 bf16, fp16 on older CUDA cards (whose training then
    needs a GradScaler), fp32 elsewhere."""
    if mode != "auto":
        return _FIXED_DTYPES[mode]
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


def autocast_for(device: torch.device | str, mode: str = "auto"):
    """Autocast to `amp_dtype(device, mode)`; a no-op context when that is fp32."""
    device = torch.device(device)
    dtype = amp_dtype(device, mode)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


@contextmanager
def eval_mode(model):
    """Run `model` in eval mode and restore the mode it was in: scoring never changes a model
    (in training mode BatchNorm would use batch statistics and update its running ones)."""
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    try:
        yield model
    finally:
        if was_training is not None:
            model.train(was_training)


@torch.inference_mode()
def predict_probs(model, faces: torch.Tensor, config: dict, tta: bool | str = False,
                  batch_size: int = 128, progress=None) -> torch.Tensor:
    """Calibrated probabilities (N, 7) for uint8 faces (N, 48, 48): `predict_log_probs` at the checkpoint's
    temperature for the view set (calibration.py; 1 for a checkpoint without one)."""
    log_probs = predict_log_probs(model, faces, config, tta, batch_size, progress)
    return calibrate(log_probs, temperature_for(config, tta))


@torch.inference_mode()
def predict_log_probs(model, faces: torch.Tensor, config: dict, tta: bool | str = False,
                      batch_size: int = 128, progress=None) -> torch.Tensor:
    """The log of the softmax probabilities averaged over the views of `tta`, before any temperature: (N, 7)."""
    return log_mean_views(predict_view_log_probs(model, faces, config, tta, batch_size, progress))


def log_mean_views(view_log_probs: torch.Tensor) -> torch.Tensor:
    """(V, N, K) log-probabilities of V views -> the log of their mean probabilities (N, K)."""
    return torch.logsumexp(view_log_probs, 0) - math.log(len(view_log_probs))


@torch.inference_mode()
def predict_view_log_probs(model, faces: torch.Tensor, config: dict, tta: bool | str = False,
                           batch_size: int = 128, progress=None) -> torch.Tensor:
    """Each view's log-softmax (V, N, 7) for the views of `tta` (a `transforms.TTA` name, or True for the
    evaluator's 10 views), in `TTA[tta].views` order; `transforms.view_subset` picks a smaller view set's
    views out of them. Runs under `autocast_for`.

    `model` is a torch module or any callable from input to logits with a `device`
    (backends.OnnxClassifier). The default batch of 128 faces, which evaluation and training use, ran
    faster on CPU than 512 (it stays in cache). `Predictor.classify` passes all of its faces as one batch
    instead: a photo's faces, or the 512 at a time that the Test set tab (fer_demo/serving/testset.py) hands it.
    """
    device = getattr(model, "device", None) or next(model.parameters()).device
    with eval_mode(model):
        return _predict_batches(model, faces, config, tta, batch_size, progress, device)


def _predict_batches(model, faces, config, tta, batch_size, progress, device) -> torch.Tensor:
    views = TTA[tta_name(tta)]
    out = []
    batches = range(0, len(faces), batch_size)
    for start in (progress(batches) if progress else batches):
        x = to_model_input(faces[start:start + batch_size].to(device), config["input_size"],
                           config["mean"], config["std"]).contiguous(memory_format=torch.channels_last)
        with autocast_for(device):
            logits = model(torch.cat(views.make(x)))
        out.append(logits.float().log_softmax(-1).view(len(views.views), len(x), -1).cpu())
    return torch.cat(out, 1) if out else torch.empty(len(views.views), 0, NUM_CLASSES)
