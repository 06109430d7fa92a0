"""Fit a checkpoint's temperatures on the validation split and record them in its config.json.

    python -m train.calibrate CHECKPOINT [--dataset X] [--revision R] [--limit N]

One temperature per view set (fer_demo.core.calibration.TEMPERATURE_KEYS: one view, the face and its mirror, the
app's 10 views), each minimizing the validation NLL of the PyTorch model's view-averaged probabilities.
Only the validation split (PublicTest) is read; the test split plays no part. The predicted classes do not
change, so neither do accuracy and the reports' confusion matrices; score the checkpoint again
(`python -m train.evaluate`) for calibrated reports. `python -m train.release` runs this for what it packages.
The last stdout line is one JSON object: each key's temperature, and the validation NLL before and after.
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.calibration import TEMPERATURE_KEYS, fit_temperature, nll
from fer_demo.core.data import DEFAULT_DATASET, DataError, load_fer
from fer_demo.core.inference import log_mean_views, predict_view_log_probs
from fer_demo.core.transforms import FULL_TTA, view_subset

from .evaluate import face_count

SPLIT = "validation"  # the only split a temperature is fitted on


def fit_temperatures(folder, dataset: str, revision=None, limit=None, progress=None, log=print) -> dict:
    """{config key: {"temperature", "nll_before", "nll_after"}} for each view set, fitted on validation faces."""
    model, config = ckpt.load_model(folder)
    faces = load_fer(dataset, (SPLIT,), revision, {SPLIT: limit}, log=log)[SPLIT]
    views = predict_view_log_probs(model, faces.images, config, tta=FULL_TTA, progress=progress)  # one pass
    fitted = {}
    for tta, key in TEMPERATURE_KEYS.items():
        log_probs = log_mean_views(views[view_subset(FULL_TTA, tta)])
        t = fit_temperature(log_probs, faces.labels)
        fitted[key] = {"temperature": t, "nll_before": nll(log_probs, faces.labels, 1.0),
                       "nll_after": nll(log_probs, faces.labels, t)}
        log(f"{key} ({tta}): T = {t:g}, validation NLL {fitted[key]['nll_before']:.4f} -> "
            f"{fitted[key]['nll_after']:.4f} (n={len(faces)})")
    return fitted


def record_temperatures(folder, fitted: dict, dataset: str, n: int | None) -> None:
    """Write the fitted temperatures into the checkpoint's config.json, with where they were fitted."""
    config = ckpt.config_in(folder)
    config.update({key: f["temperature"] for key, f in fitted.items()})
    config["calibration"] = {"split": SPLIT, "dataset": dataset, "n": n, "objective": "nll",
                             "fits": fitted}
    ckpt.write_config(folder, config)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="checkpoint or run folder whose config.json gets the temperatures")
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    p.add_argument("--revision", default=None)
    p.add_argument("--limit", type=face_count, default=None, metavar="N",
                   help="a seeded random subset of N validation faces (default: all)")
    args = p.parse_args(argv)
    try:
        folder = ckpt.resolve(args.checkpoint)
        fitted = fit_temperatures(folder, args.dataset, args.revision, args.limit,
                                  progress=lambda it: tqdm(it, desc="validation", file=sys.stderr),
                                  log=lambda *a: print(*a, file=sys.stderr))
        record_temperatures(folder, fitted, args.dataset, args.limit)
    except (DataError, ckpt.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({key: f["temperature"] for key, f in fitted.items()}
                     | {"nll_before": {k: f["nll_before"] for k, f in fitted.items()},
                        "nll_after": {k: f["nll_after"] for k, f in fitted.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
