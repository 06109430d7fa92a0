"""Write `model.int8.onnx` beside a checkpoint's weights, for the app's and evaluator's onnx-int8 backend.

    python -m train.quantize [CHECKPOINT] [--dataset X] [--split validation] [--faces 1024]

Activation ranges are calibrated on a seeded random subset of the training or
validation split (never the test split). Then measure what it costs:
    python -m train.evaluate --backend onnx-int8 --tta
"""

from __future__ import annotations

import argparse
import sys
import time

from fer_demo import checkpoint as ckpt
from fer_demo.data import DEFAULT_DATASET, DataError, load_fer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", default=str(ckpt.SHIPPED_CHECKPOINT),
                   help="checkpoint folder (default: the shipped model)")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help="FER2013 Hub id or local folder")
    p.add_argument("--revision", default=None)
    p.add_argument("--split", default="validation", choices=["train", "validation"],
                   help="calibration faces come from here (default: validation)")
    p.add_argument("--faces", type=int, default=1024, help="calibration faces (default 1024)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        from fer_demo.quantize import write_int8

        folder = ckpt.resolve(args.checkpoint)
        faces = load_fer(args.dataset, (args.split,), args.revision, {args.split: args.faces}, args.seed,
                         log=lambda *a: print(*a, file=sys.stderr))[args.split]
        start = time.perf_counter()
        path = write_int8(folder, faces.images)
    except (DataError, ckpt.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; {len(faces)} {args.split} faces; "
          f"{time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
