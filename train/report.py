"""Evaluation reports (JSON + confusion-matrix PNG) and training curves, shared by the trainer and evaluator."""

from __future__ import annotations

import json
from pathlib import Path

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import backend_suffix, load_classifier, predictions_name, reliability_name, report_name
from fer_demo.core.data import load_fer
from fer_demo.core.calibration import calibrate, temperature_for
from fer_demo.core.evaluation import REPORT_MODES, classification_metrics
from fer_demo.core.inference import log_mean_views, predict_view_log_probs
from fer_demo.core.transforms import FULL_TTA, NO_TTA, view_subset

# What a report keeps of the raw (temperature 1) probabilities beside the calibrated figures
RAW_KEYS = ("ece", "nll", "reliability")


def evaluate_and_report(checkpoint, dataset: str, split: str = "test", revision=None, limit=None,
                        out_dir=None, tta: bool = False, seed: int = 0, progress=None, log=print,
                        backend: str = "torch") -> dict:
    """Evaluate a checkpoint on one split, without and (optionally) with TTA.

    Writes `<split>_report.json`, the per-face `<split>_predictions.json` it was
    computed from, `<split>_confusion.png` and the reliability diagrams `<split>_reliability.png`
    into `out_dir` (default: the checkpoint folder) and returns the report; another backend than
    torch adds its name (`test_report.onnx-int8.json`). Probabilities are calibrated by the
    checkpoint's temperatures; each mode also keeps the raw ones' ECE, NLL and reliability bins.
    """
    folder = ckpt.resolve(checkpoint)
    torch_model, config = ckpt.load_model(folder)
    model, backend, _ = load_classifier(folder, torch_model, backend)
    faces = load_fer(dataset, (split,), revision, {split: limit}, seed, log=log)[split]
    modes = {mode: views for mode, views in REPORT_MODES.items() if tta or views == NO_TTA}
    scored = FULL_TTA if tta else NO_TTA  # one pass over the views of every mode
    views = predict_view_log_probs(model, faces.images, config, tta=scored, progress=progress)
    log_probs = {mode: log_mean_views(views[view_subset(scored, v)]) for mode, v in modes.items()}
    temperatures = {mode: temperature_for(config, v) for mode, v in modes.items()}
    probs = {mode: calibrate(log_probs[mode], temperatures[mode]) for mode in modes}
    report = {"checkpoint": str(folder), "dataset": dataset, "split": split, "n": len(faces), "backend": backend,
              **{mode: mode_metrics(log_probs[mode], probs[mode], faces.labels, temperatures[mode])
                 for mode in modes}}
    out_dir = Path(out_dir or folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / report_name(split, backend)).write_text(json.dumps(report, indent=2))
    (out_dir / predictions_name(split, backend)).write_text(json.dumps(predictions_record(report, faces, probs)))
    plot_confusion(report["no_tta"], out_dir / f"{split}_confusion{backend_suffix(backend)}.png",
                   title=f"{split} ({backend}): accuracy {report['no_tta']['accuracy']:.4f}, "
                         f"macro-F1 {report['no_tta']['macro_f1']:.4f} (n={len(faces)}, no TTA)")
    plot_reliability(report, out_dir / reliability_name(split, backend))
    log(f"{split} ({backend}): accuracy {report['no_tta']['accuracy']:.4f}, macro-F1 {report['no_tta']['macro_f1']:.4f}"
        + (f"; with TTA {report['tta']['accuracy']:.4f} / {report['tta']['macro_f1']:.4f}" if tta else "")
        + f" (n={len(faces)}); report in {out_dir}")
    return report


def mode_metrics(log_probs, probs, labels, temperature: float) -> dict:
    """One mode's figures from its calibrated probabilities, with its temperature and the raw probabilities'
    calibration beside them (`uncalibrated`: ECE, NLL, reliability bins at temperature 1)."""
    raw = classification_metrics(log_probs.exp(), labels)
    return classification_metrics(probs, labels) | {
        "temperature": temperature, "uncalibrated": {key: raw[key] for key in RAW_KEYS}}


PREDICTION_DIGITS = 4  # decimals of the probabilities kept per face (the predicted class is kept exactly)


def predictions_record(report: dict, faces, probs: dict) -> dict:
    """Each face's true class, predicted class and rounded probabilities per mode: the report's confusion
    matrices recount from it exactly, and the app's Test set tab reads faces per cell from it."""
    return {key: report[key] for key in ("dataset", "split", "n", "backend")} | {
        "true": faces.labels.tolist(),
        **{mode: {"pred": p.argmax(1).tolist(), "probs": p.double().numpy().round(PREDICTION_DIGITS).tolist()}
           for mode, p in probs.items()}}


def summary_line(report: dict, tta: bool) -> dict:
    """The evaluator's last stdout line: the figures of the requested mode, and no-TTA beside TTA."""
    main = report["tta" if tta else "no_tta"]
    line = {"accuracy": main["accuracy"], "macro_f1": main["macro_f1"], "ece": main["ece"], "n": report["n"],
            "split": report["split"], "tta": tta, "backend": report["backend"]}
    if tta:
        line.update(accuracy_no_tta=report["no_tta"]["accuracy"], macro_f1_no_tta=report["no_tta"]["macro_f1"])
    return line


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


MODE_TITLES = {"no_tta": "one view", "tta": "10 views (TTA)"}  # REPORT_MODES in words


def plot_reliability(report: dict, path) -> None:
    """Reliability diagrams, one panel per mode: accuracy against confidence per bin, before (temperature 1)
    and after calibration; the diagonal is a calibrated model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [mode for mode in MODE_TITLES if mode in report]
    fig, axes = plt.subplots(1, len(modes), figsize=(4.6 * len(modes), 4.4), dpi=110, squeeze=False)
    for ax, mode in zip(axes[0], modes):
        m = report[mode]
        ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="calibrated")
        for name, figures, style in (("before (T = 1)", m["uncalibrated"], "--"),
                                     (f"after (T = {m['temperature']:g})", m, "-")):
            bins = figures["reliability"]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], style, marker="o",
                    markersize=3, label=f"{name}: ECE {figures['ece']:.3f}")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy",
               title=f"{report['split']} ({report['backend']}), {MODE_TITLES[mode]}, n={m['n']}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_curves(history: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    ax1.plot(epochs, [r["train_loss"] for r in history], label="train (augmented)")
    ax1.plot(epochs, [r["val_loss"] for r in history], label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [r["train_acc"] for r in history], label="train (augmented)")
    ax2.plot(epochs, [r["val_acc"] for r in history], label="validation")
    ax2.plot(epochs, [r["val_macro_f1"] for r in history], label="validation macro-F1", linestyle="--")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
