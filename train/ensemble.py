"""An ensemble of checkpoints: its score on the validation split, and its soft targets for distillation.

    python -m train.ensemble score DIR [DIR ...] [--dataset X] [--out ensemble.json]
    python -m train.ensemble targets DIR [DIR ...] [--dataset X] --out targets.safetensors [--views 10-view]

A face's answer is the log of the members' softmax probabilities averaged over members and views, as the app
averages its views, before any temperature (each member at T = 1).
- `score`: accuracy, macro-F1 and NLL of the first k members, for every k, with one view, the flip and the 10
  views, on the validation split (PublicTest). It chooses the teacher count; the test split is not loaded.
- `targets`: the ensemble's log-probabilities for every training face on the fixed `--views`, in the trainer's
  order, for `python -m train.train --teacher-targets` (train/teachers.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.calibration import nll
from fer_demo.core.data import DEFAULT_DATASET, DataError, FaceSplit, load_fer
from fer_demo.core.evaluation import classification_metrics
from fer_demo.core.inference import log_mean_views, predict_view_log_probs
from fer_demo.core.transforms import FULL_TTA, TTA, tta_name, view_subset

from .teachers import write_targets

SPLITS = ("train", "validation")  # loaded together, as the trainer loads them (a set without validation
# carves it out of train), so that the training faces come in the trainer's order


def member_views(folders: list[str], faces: FaceSplit, views: str, log=print) -> list[torch.Tensor]:
    """Each member's per-view log-probabilities (V, N, 7) on `faces`, at T = 1."""
    out = []
    for folder in folders:
        model, config = ckpt.load_model(folder)
        log(f"{folder}: {len(faces)} faces x {len(TTA[views].views)} views")
        out.append(predict_view_log_probs(model, faces.images, config, tta=views,
                                          progress=lambda it: tqdm(it, file=sys.stderr, leave=False)))
    return out


def ensemble_log_probs(members: list[torch.Tensor], views: str = FULL_TTA, of: str = FULL_TTA) -> torch.Tensor:
    """The ensemble's log-probabilities (N, 7) over `views`, from members' log-probabilities over the views `of`."""
    picked = view_subset(of, views)
    return log_mean_views(torch.cat([member[picked] for member in members]))


def score(members: list[torch.Tensor], labels: torch.Tensor) -> dict:
    """{k: {view set: accuracy, macro_f1, nll}} for the first k members, every k."""
    table = {}
    for k in range(1, len(members) + 1):
        table[str(k)] = {}
        for views in TTA:
            log_probs = ensemble_log_probs(members[:k], views)
            metrics = classification_metrics(log_probs.exp(), labels)
            table[str(k)][views] = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                                    "nll": nll(log_probs, labels, 1.0)}
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["score", "targets"])
    p.add_argument("members", nargs="+", help="checkpoint or run folders (a run folder means its best/)")
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    p.add_argument("--revision", default=None)
    p.add_argument("--views", default=FULL_TTA, type=tta_name, help=f"targets: the fixed views ({', '.join(TTA)})")
    p.add_argument("--limit-train", type=int, default=None, help="targets: as the student's --limit-train")
    p.add_argument("--seed", type=int, default=0, help="targets: as the student's --seed (with --limit-train)")
    p.add_argument("--out", default=None, help="score: a JSON file; targets: the .safetensors file (required)")
    args = p.parse_args(argv)
    log = lambda *a: print(*a, file=sys.stderr)  # noqa: E731
    try:
        folders = [str(ckpt.resolve(m)) for m in args.members]
        if args.command == "score":
            faces = load_fer(args.dataset, SPLITS, args.revision, log=log)["validation"]
            table = score(member_views(folders, faces, FULL_TTA, log), faces.labels)
            result = {"split": "validation", "n": len(faces), "members": folders, "by_count": table}
            if args.out:
                Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps(result))
            return 0
        if not args.out:
            raise ValueError("targets needs --out FILE.safetensors")
        faces = load_fer(args.dataset, SPLITS, args.revision, {"train": args.limit_train}, args.seed, log)["train"]
        log_probs = ensemble_log_probs(member_views(folders, faces, args.views, log), args.views, args.views)
        write_targets(args.out, log_probs, faces.labels, {"members": json.dumps(folders), "views": args.views,
                                                          "dataset": args.dataset})
        log(f"wrote {args.out}: {len(faces)} faces, {len(folders)} members x {args.views}")
        return 0
    except (DataError, ckpt.CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
