"""Batched prediction over a split and the metrics we report: accuracy, macro-F1,
per-class precision/recall/F1, confusion matrix and expected calibration error."""

from __future__ import annotations

import torch

from .labels import FER_LABELS, NUM_CLASSES
from .transforms import to_model_input, tta_views

ECE_BINS = 15


def autocast_for(device: torch.device | str):
    """bf16 autocast where the hardware runs it natively; otherwise a no-op context."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


@torch.inference_mode()
def predict_probs(model, faces: torch.Tensor, config: dict, tta: bool = False,
                  batch_size: int = 128, amp: bool = True, progress=None) -> torch.Tensor:
    """Softmax probabilities (N, 7) for uint8 faces (N, 48, 48); TTA averages `tta_views`.

    `model` is a torch module or any callable from input to logits with a `device`
    (backends.OnnxClassifier). Batches of 128 run faster here than 512: they stay in cache.
    """
    device = getattr(model, "device", None) or next(model.parameters()).device
    out = []
    batches = range(0, len(faces), batch_size)
    for start in (progress(batches) if progress else batches):
        x = to_model_input(faces[start:start + batch_size].to(device), config["input_size"],
                           config["mean"], config["std"]).contiguous(memory_format=torch.channels_last)
        views = tta_views(x) if tta else [x]
        with autocast_for(device) if amp else torch.autocast(device.type, enabled=False):
            logits = model(torch.cat(views))
        probs = logits.float().softmax(-1).view(len(views), len(x), -1).mean(0)
        out.append(probs.cpu())
    return torch.cat(out) if out else torch.empty(0, NUM_CLASSES)


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, k: int = NUM_CLASSES) -> torch.Tensor:
    """Counts with rows = true class, columns = predicted class."""
    return torch.bincount(labels * k + preds, minlength=k * k).view(k, k)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.float().mean().item() * abs(conf[inside].mean().item() - correct[inside].mean().item())
    return ece


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
        "nll": torch.nn.functional.nll_loss(probs.clamp(min=1e-12).log(), labels).item() if n else 0.0,
        "per_class": {name: {"precision": precision[i].item(), "recall": recall[i].item(),
                             "f1": f1[i].item(), "support": int(support[i].item())}
                      for i, name in enumerate(FER_LABELS)},
        "labels": list(FER_LABELS),
        "confusion": cm.long().tolist(),
        "confusion_normalized": (cm / support.clamp(min=1).unsqueeze(1)).tolist(),
    }


def plot_confusion(report: dict, path, normalized: bool = True, title: str = ""):
    """Save (or return, when `path` is None) a confusion-matrix figure from a metrics dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = report["confusion_normalized" if normalized else "confusion"]
    labels = report["labels"]
    fig, ax = plt.subplots(figsize=(6.2, 5.4), dpi=110)
    im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalized else None)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}" if normalized else str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > 0.5 * top else "black")
    ax.set_title(title or f"accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f} (n={report['n']})",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path)
    plt.close(fig)
