"""The metrics we report: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix and
expected calibration error (predictions come from `predict.predict_probs`)."""

from __future__ import annotations

import torch

from .labels import FER_LABELS, NUM_CLASSES

ECE_BINS = 15


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
