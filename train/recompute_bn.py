"""Recompute a checkpoint's BatchNorm statistics from the training split and record its validation score.

    python -m train.recompute_bn SOURCE DEST [--dataset ../shared/data/fer2013]

BatchNorm's running statistics must come from training data only. A model
scored in training mode during validation ends up with statistics of the
validation faces instead; this repairs such a checkpoint without training it:
the weights stay as they are, and the statistics become the exact average over
one pass of the un-augmented training faces (torch's `swa_utils.update_bn`).
DEST gets the new weights (in SOURCE's storage dtype), SOURCE's training logs,
and a config whose validation metrics are an eval-mode re-score of DEST's own
file. Nothing here looks at the test split.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from torch.optim.swa_utils import update_bn

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.data import DEFAULT_DATASET, DataError, load_fer
from fer_demo.core.evaluation import classification_metrics
from fer_demo.core.inference import predict_probs
from fer_demo.core.transforms import to_model_input

BATCH = 256
CARRIED = ("*.jsonl", "*curves.png")  # training logs that stay true for the repaired weights


def recompute(model: torch.nn.Module, faces: torch.Tensor, config: dict) -> None:
    """Set every BatchNorm's running statistics to their average over `faces` (uint8, N x 48 x 48)."""
    batches = [to_model_input(faces[i:i + BATCH], config["input_size"], config["mean"], config["std"])
               for i in range(0, len(faces), BATCH)]
    with torch.no_grad():
        update_bn(batches, model)
    model.eval()


def validation_metrics(folder: Path, faces) -> dict:
    """Eval-mode metrics of the checkpoint as saved in `folder` (a re-score of the file, not of memory)."""
    model, config = ckpt.load_model(folder)
    return classification_metrics(predict_probs(model, faces.images, config), faces.labels)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    args = p.parse_args(argv)
    try:
        source = ckpt.resolve(args.source)
        model, config = ckpt.load_model(source)
        dtype = next(v.dtype for v in ckpt.read_tensors(source / ckpt.MODEL_FILE).values() if v.is_floating_point())
        splits = load_fer(args.dataset, ("train", "validation"), log=lambda *a: print(*a, file=sys.stderr))
        before = validation_metrics(source, splits["validation"])
        recompute(model, splits["train"].images, config)
        dest = Path(args.dest)
        config["bn_statistics"] = {"split": "train", "faces": len(splits["train"]), "augmented": False}
        with ckpt.atomic_dir(dest) as tmp:
            ckpt.write_model(tmp, model, config, dtype=dtype)
            for pattern in CARRIED:
                for f in source.glob(pattern):
                    shutil.copy2(f, tmp / f.name)
        after = validation_metrics(dest, splits["validation"])
        config["metrics"] = {**config.get("metrics", {}), "split": "validation", "accuracy": after["accuracy"],
                             "macro_f1": after["macro_f1"], "ece": after["ece"], "n": after["n"]}
        (dest / ckpt.CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
        (dest / "validation_report.json").write_text(json.dumps(after, indent=2))
    except (DataError, ckpt.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"validation_accuracy_before": before["accuracy"], "validation_accuracy": after["accuracy"],
                      "macro_f1": after["macro_f1"], "dest": str(dest)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
