"""Evaluate a checkpoint on a FER2013 split.

    python -m train.evaluate [--checkpoint DIR] --dataset X --split test [--tta] [--limit N] [--backend onnx-int8]

Without --checkpoint it evaluates the checkpoint this repo ships; the report goes to --out, by default
runs/evaluate/<checkpoint's name> (never into the shipped checkpoint). TTA averages
the softmax of 10 views: the face and 4 copies shifted by 3 px (up, down,
left, right; edges replicated), each as is and mirrored.
The last stdout line is one JSON object: accuracy, macro_f1, ece, n, split, tta, backend.
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import BACKENDS
from fer_demo.core.data import DEFAULT_DATASET, DataError

from .outputs import default_out
from .report import evaluate_and_report, summary_line


def face_count(text: str) -> int:
    """--limit's type: a positive number of faces (0 would score nothing, and report an accuracy of 0)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of faces, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 face, got {n}; leave --limit out to use the "
                                         "whole split")
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="checkpoint or run folder (default: the shipped model)")
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    p.add_argument("--revision", default=None)
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--tta", action="store_true", help="also report test-time augmentation")
    p.add_argument("--limit", type=face_count, default=None, metavar="N", help="a seeded random subset of N faces")
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="torch (default), or onnx-int8: the checkpoint's model.int8.onnx (python -m train.quantize)")
    p.add_argument("--out", default=None, help="folder for the report (default: runs/evaluate/<checkpoint's name>; "
                                               "never the shipped checkpoint unless named)")
    args = p.parse_args(argv)
    checkpoint = args.checkpoint or ckpt.SHIPPED_CHECKPOINT
    args.out = args.out or default_out("evaluate", checkpoint)
    try:
        if args.checkpoint is None and not (ckpt.SHIPPED_CHECKPOINT / ckpt.MODEL_FILE).is_file():
            raise ckpt.CheckpointError(
                f"no shipped checkpoint at {ckpt.SHIPPED_CHECKPOINT} yet: pass --checkpoint DIR "
                "(a folder written by python -m train.train)")
        report = evaluate_and_report(checkpoint, args.dataset, args.split, args.revision, args.limit,
                                     args.out, args.tta, progress=lambda it: tqdm(it, desc="evaluating",
                                                                                  file=sys.stderr),
                                     log=lambda *a: print(*a, file=sys.stderr), backend=args.backend)
    except (DataError, ckpt.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary_line(report, args.tta)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
