"""What the photo pipeline (detect, align, crop, classify) loses against classifying FER2013 faces directly.

    python bench/end_to_end.py [--split test] [--faces 600] [--detectors yunet,haar] [--angles 0,20]
    python bench/end_to_end.py --split validation --fit-crop      # crop geometry per detector
    python bench/end_to_end.py --split validation --thresholds    # YuNet's score threshold
    python bench/end_to_end.py --split validation --tta-sweep     # which test-time augmentation to serve

FER2013 faces are pasted into synthetic 640x480 photos (bench/synthetic_photos.py:
upscaled to 120-220 px, on blurred-noise backgrounds, 3 to a photo, turned by up
to +-ANGLE degrees). The app's Predictor runs on each photo; a found face is a
box whose centre lies within 0.35 x the face's side of the true centre.

Reported per detector and angle: the detection rate, extra boxes (boxes on no
face), end-to-end accuracy on the faces found, and direct accuracy on the same
faces (the 48x48 originals through the same classifier and TTA). Every choice
(crop geometry, threshold, TTA) is made with --split validation; the test split
is reported once after. One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import LOCAL_FER  # noqa: E402
from bench.real_photos import face_counts  # noqa: E402
from bench.synthetic_photos import make_photos, match  # noqa: E402
from fer_demo.data import load_fer  # noqa: E402
from fer_demo.detectors import DETECT_SIDE, YuNetDetector  # noqa: E402
from fer_demo.faces import GEOMETRY, CropGeometry, extract, face_crop  # noqa: E402
from fer_demo.predict import Predictor  # noqa: E402
from fer_demo.transforms import TTA  # noqa: E402

SIDES = (640, 800, 960)
SCORES = (0.4, 0.5, 0.6, 0.7, 0.8)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=str(LOCAL_FER))
    p.add_argument("--split", default="test", choices=["validation", "test"])
    p.add_argument("--faces", type=int, default=600, help="faces of the split (seeded random subset)")
    p.add_argument("--detectors", default="yunet,haar")
    p.add_argument("--angles", default="0,20", help="largest turn of the pasted faces, degrees, per condition")
    p.add_argument("--tta", default=None, help="TTA to serve (default: the app's)")
    p.add_argument("--detect-side", type=int, default=DETECT_SIDE, help="the detector's view of each photo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fit-crop", action="store_true", help="fit each detector's crop geometry (validation)")
    p.add_argument("--thresholds", action="store_true", help="sweep YuNet's score threshold (validation)")
    p.add_argument("--tta-sweep", action="store_true", help="end-to-end accuracy for each TTA (validation)")
    return p.parse_args(argv)


def emit(**fields):
    print(json.dumps({"bench": "end_to_end", **fields}), flush=True)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean()) if len(labels) else float("nan")


def run_pipeline(predictor: Predictor, photos, tta: str):
    """[(truth index, face index, Face)] for the faces found; the count of extra boxes; seconds per photo."""
    found, extra, start = [], 0, time.perf_counter()
    for photo in photos:
        analysis = predictor.analyze(photo.rgb, tta=tta)
        pairs = match(photo.crops, [f.box for f in analysis.faces])
        extra += len(analysis.faces) - len(pairs)
        found += [(photo.faces[t], analysis.faces[b]) for t, b in pairs.items()]
    return found, extra, (time.perf_counter() - start) / max(1, len(photos))


def report(args, predictors, faces, labels):
    for angle in [float(a) for a in args.angles.split(",")]:
        photos = make_photos(faces, angle, args.seed)
        for name, predictor in predictors.items():
            tta = args.tta or predictor.tta
            found, extra, seconds = run_pipeline(predictor, photos, tta)
            idx = np.array([i for i, _ in found], dtype=int)
            e2e = np.stack([f.probs for _, f in found]) if found else np.zeros((0, 7))
            direct = predictor.classify(faces[idx], tta)
            emit(split=args.split, detector=name, detect_side=args.detect_side, max_angle=angle, tta=tta,
                 faces=len(faces),
                 detection_rate=round(len(found) / len(faces), 4), extra_boxes=extra,
                 e2e_accuracy=round(accuracy(e2e, labels[idx]), 4),
                 direct_accuracy_same_faces=round(accuracy(direct, labels[idx]), 4),
                 direct_accuracy_all=round(accuracy(predictor.classify(faces, tta), labels), 4),
                 ms_per_photo=round(seconds * 1000, 1))


def detections_per_photo(detector, photos):
    """[(photo, [(truth index, Detection)])] for a detector's matched faces."""
    out = []
    for photo in photos:
        found = detector.detect(photo.rgb)
        pairs = match(photo.crops, [d.box for d in found])
        out.append((photo, [(t, found[b]) for t, b in pairs.items()]))
    return out


def fit_crop(args, predictors, faces, labels):
    """The crop geometry that puts a detector's crop where the pasted FER2013 square is (medians),
    then end-to-end accuracy for a small grid around it."""
    angle = max(float(a) for a in args.angles.split(","))
    photos = make_photos(faces, angle, args.seed)
    for name, predictor in predictors.items():
        matched = detections_per_photo(predictor.detector, photos)
        scales, downs = [], []
        for photo, pairs in matched:
            for t, d in pairs:
                truth = photo.crops[t]
                scales.append(truth.side / max(d.box.w, d.box.h))
                a = math.radians(d.eye_angle)
                dx, dy = truth.cx - d.box.centre[0], truth.cy - d.box.centre[1]
                downs.append((-dx * math.sin(a) + dy * math.cos(a)) / truth.side)
        scale, down = float(np.median(scales)), float(np.median(downs))
        emit(split=args.split, detector=name, fitted_scale=round(scale, 3), fitted_down=round(down, 3),
             scale_iqr=[round(float(q), 3) for q in np.percentile(scales, [25, 75])], n=len(scales))
        current = GEOMETRY[predictor.detector.key]
        grid = [CropGeometry(round(scale * k, 3), round(down + dd, 3), current.align)
                for k in (0.94, 1.0, 1.06) for dd in (-0.03, 0.0, 0.03)]
        grid += [current, CropGeometry(current.scale, current.down, not current.align)]
        for geometry in grid:
            crops, idx = [], []
            for photo, pairs in matched:
                for t, d in pairs:
                    crops.append(extract(photo.rgb, face_crop(d, geometry)))
                    idx.append(photo.faces[t])
            probs = predictor.classify(np.stack(crops), "none")
            emit(split=args.split, detector=name, max_angle=angle, scale=geometry.scale, down=geometry.down,
                 align=geometry.align, e2e_accuracy_no_tta=round(accuracy(probs, labels[idx]), 4),
                 direct_no_tta=round(accuracy(predictor.classify(faces[idx], "none"), labels[idx]), 4))


def real_photos():
    """(RGB, face count) of the real photos in the repo: one face each, but for the two named."""
    from fer_demo.images import load_image

    return [(load_image(f).rgb, count) for f, count in face_counts().items()]


def thresholds(args, faces):
    """Per detector side and score threshold: the detection rate and extra boxes on synthetic photos,
    and the photos whose face count is wrong among the real ones; with detection time per photo."""
    photos = [p for a in args.angles.split(",") for p in make_photos(faces, float(a), args.seed)]
    real = real_photos()
    n = sum(len(p.crops) for p in photos)
    for side in SIDES:
        detector = YuNetDetector(side=side, score=min(SCORES))
        start = time.perf_counter()
        synthetic = [(p, detector.detect(p.rgb)) for p in photos]
        ms = (time.perf_counter() - start) * 1000 / len(photos)
        on_real = [(detector.detect(rgb), count) for rgb, count in real]
        for t in SCORES:
            hits = extra = 0
            for photo, found in synthetic:
                kept = [d for d in found if d.score >= t]
                pairs = match(photo.crops, [d.box for d in kept])
                hits += len(pairs)
                extra += len(kept) - len(pairs)
            real_found = [(sum(d.score >= t for d in found), count) for found, count in on_real]
            emit(split=args.split, side=side, threshold=t, detection_rate=round(hits / n, 4),
                 extra_boxes_synthetic=extra, synthetic_photos=len(photos),
                 real_photos_wrong_count=sum(f != c for f, c in real_found), real_photos=len(real),
                 real_extra_boxes=sum(max(0, f - c) for f, c in real_found), detect_ms=round(ms, 1))


def tta_sweep(args, predictors, faces, labels):
    angles = [float(a) for a in args.angles.split(",")]
    for tta in TTA:
        for name, predictor in predictors.items():
            for angle in angles:
                found, _, seconds = run_pipeline(predictor, make_photos(faces, angle, args.seed), tta)
                idx = np.array([i for i, _ in found], dtype=int)
                e2e = np.stack([f.probs for _, f in found])
                emit(split=args.split, detector=name, max_angle=angle, tta=tta,
                     e2e_accuracy=round(accuracy(e2e, labels[idx]), 4),
                     direct_accuracy_same_faces=round(accuracy(predictor.classify(faces[idx], tta), labels[idx]), 4),
                     ms_per_photo=round(seconds * 1000, 1))


def main(argv=None) -> int:
    args = parse_args(argv)
    if (args.fit_crop or args.thresholds or args.tta_sweep) and args.split != "validation":
        print("error: choices are made on the validation split: add --split validation", file=sys.stderr)
        return 2
    split = load_fer(args.dataset, (args.split,), limits={args.split: args.faces}, seed=args.seed,
                     log=lambda *a: None)[args.split]
    faces, labels = split.images.numpy(), split.labels.numpy()
    if args.thresholds:
        thresholds(args, faces)
        return 0
    predictors = {name: Predictor(detector=name, detect_side=args.detect_side) for name in args.detectors.split(",")}
    if args.fit_crop:
        fit_crop(args, predictors, faces, labels)
    elif args.tta_sweep:
        tta_sweep(args, predictors, faces, labels)
    else:
        report(args, predictors, faces, labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
