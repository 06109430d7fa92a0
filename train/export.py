"""Package a run's selected checkpoint for shipping: fp16 weights, config, reports, curves, metrics log.

    python -m train.export RUN [DEST] [--fp32]      # e.g. python -m train.export runs/r18 runs/export/r18

DEST defaults to runs/export/<run's name>; train.release names the shipped fer_demo/assets/fer-resnet18 on purpose.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from fer_demo.core import checkpoint as ckpt

from .outputs import default_out

RUN_FILES = ("metrics.jsonl", "curves.png")
REPORT_GLOBS = ("*_report.json", "*_confusion.png")


def export(run: Path, dest: Path, fp16: bool = True) -> Path:
    best = ckpt.resolve(run)
    model, config = ckpt.load_model(best)  # the weights file records its own dtype
    with ckpt.atomic_dir(dest) as tmp:
        ckpt.write_model(tmp, model, config, dtype=torch.float16 if fp16 else None)
        for pattern in REPORT_GLOBS:
            for f in best.glob(pattern):
                shutil.copy2(f, tmp / f.name)
        for name in RUN_FILES:
            if (run / name).is_file():
                shutil.copy2(run / name, tmp / name)
    return dest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a run folder (its best/ is exported) or a checkpoint folder")
    p.add_argument("dest", nargs="?", default=None, help="default: runs/export/<run's name>")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (default: float16 storage)")
    args = p.parse_args(argv)
    try:
        dest = export(Path(args.run), Path(args.dest or default_out("export", args.run)), fp16=not args.fp32)
    except ckpt.CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"exported to {dest} ({(dest / ckpt.MODEL_FILE).stat().st_size / 1e6:.1f} MB of weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
