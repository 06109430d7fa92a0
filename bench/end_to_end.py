"""What the photo pipeline (detect, align, crop, classify) loses against classifying FER2013 faces directly.

    python -m bench.end_to_end [--split test] [--faces 600] [--detectors yunet,haar] [--angles 0,20]
    python -m bench.end_to_end --split validation --fit-crop      # crop geometry per detector
    python -m bench.end_to_end --split validation --thresholds    # YuNet's thresholds and plausibility rules
    python -m bench.end_to_end --split validation --tta-sweep     # which test-time augmentation to serve

FER2013 faces are pasted into synthetic 640x480 photos (fer_demo_testing/photo_sets.py:
upscaled to 120-220 px, on blurred-noise backgrounds, 3 to a photo, turned by up
to +-ANGLE degrees). The app's Predictor runs on each photo; a found face is a
box whose centre lies within 0.35 x the face's side of the true centre.

Reported per detector and angle: the detection rate, extra boxes (boxes on no
face), end-to-end accuracy on the faces found, and direct accuracy on the same
faces (the 48x48 originals through the same classifier and TTA). Every choice
(crop geometry, threshold, TTA) is made with --split validation; the test split
is reported once after. One JSON line per figure.

--thresholds also pastes the faces onto real photos with no face in them
(tests/negatives: brick, gravel, a cat, a concrete wall...) and small (40-100
px, 8 to a photo), and counts the boxes drawn on those negatives themselves
and the real photos whose face count comes out wrong (fer_demo_testing/photo_sets.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from fer_demo.core.data import load_fer
from fer_demo.vision.detectors import (DETECT_SIDE, EYE_SPAN, RULES, YuNetDetector, eye_span_plausible, in_focus,
                                       mostly_inside, plausible, small_box_confident)
from fer_demo.vision.faces import GEOMETRY, CropGeometry, extract, face_crop
from fer_demo.core.paths import LOCAL_DATASET
from fer_demo_testing.photo_sets import (SMALL_FACE_SIDES, SMALL_FACES_PER_PHOTO, count_is_right, face_counts,
                                         load_textures, make_photos, match, negatives, views)
from fer_demo.serving.predictor import Predictor
from fer_demo.core.transforms import TTA

SCORES = (0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)
NMS_VALUES = (0.2, 0.3, 0.4, 0.5, 0.6)
INSIDE_VALUES = (0.8, 0.9)  # the inside rule's smallest fraction
SMALL_RULES = [(f, s) for f in (0.1, 0.15) for s in (0.7, 0.8, 0.9)]  # the small-box rule's (fraction, score)
EYE_SPAN_LOWS = (0.1, 0.15, 0.2)  # the eye-span rule's lower limit (EYE_SPAN[0])
RAW_SCORE = min(SCORES)  # the sweep's detector keeps every box from this score, unsuppressed


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=str(LOCAL_DATASET))
    p.add_argument("--split", default="test", choices=["validation", "test"])
    p.add_argument("--faces", type=int, default=600, help="faces of the split (seeded random subset)")
    p.add_argument("--detectors", default="yunet,haar")
    p.add_argument("--angles", default="0,20", help="largest turn of the pasted faces, degrees, per condition")
    p.add_argument("--tta", default=None, help="TTA to serve (default: the app's)")
    p.add_argument("--detect-side", type=int, default=DETECT_SIDE, help="the detector's view of each photo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fit-crop", action="store_true", help="fit each detector's crop geometry (validation)")
    p.add_argument("--thresholds", action="store_true",
                   help="sweep YuNet's score and NMS thresholds and the plausibility rules (validation)")
    p.add_argument("--sides", default=str(DETECT_SIDE), help="--thresholds: detector sides to try, e.g. 640,800")
    p.add_argument("--negatives", default=None,
                   help="--thresholds: a folder of JPEGs with no face (default: tests/negatives)")
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
        current = GEOMETRY[predictor.detector.model]
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
    """(file name, RGB, file) of the real photos in the repo (their face counts: fer_demo_testing/photo_sets.py)."""
    from fer_demo.vision.images import load_image

    return [(f.name, load_image(f).rgb, f) for f in face_counts()]


def rule_sets() -> dict[str, dict]:
    """The plausibility rules the sweep tries: none (as before); the geometry rules (box inside, landmark
    order, eye span) with each of INSIDE_VALUES; with the strictest, the small-box rule at each of
    SMALL_RULES (fraction of the shorter side, score); and the shipped rules with each of EYE_SPAN_LOWS."""
    def geometry(inside):
        return {"mostly_inside": partial(mostly_inside, min_inside=inside),
                "landmarks_in_order": RULES["landmarks_in_order"], "eye_span": RULES["eye_span"]}

    sets = {"none": {}}
    sets.update({f"geometry(inside {v})": geometry(v) for v in INSIDE_VALUES})
    for fraction, score in SMALL_RULES:
        sets[f"geometry(inside {max(INSIDE_VALUES)})+small({fraction}, {score})"] = {
            **geometry(max(INSIDE_VALUES)),
            "small_box_confident": partial(small_box_confident, fraction=fraction, score=score)}
    for low in EYE_SPAN_LOWS:  # the eye-span rule's lower limit, with the shipped small-box rule
        sets[f"geometry(inside {max(INSIDE_VALUES)}, eyes {low}-{EYE_SPAN[1]})+small"] = {
            **geometry(max(INSIDE_VALUES)), "eye_span": partial(eye_span_plausible, limits=(low, EYE_SPAN[1])),
            "small_box_confident": RULES["small_box_confident"]}
    return sets


def settle(found, shape, score: float, nms: float, rules: dict):
    """What a YuNetDetector(score, nms, rules) keeps of the raw boxes `found` (score >= RAW_SCORE, no
    suppression): non-maximum suppression as cv2.FaceDetectorYN does it, the score threshold, the rules.
    (Suppressing at RAW_SCORE and then dropping low scores is the same as suppressing at `score`:
    a box can only suppress boxes that score lower.) Then the shipped focus rule, on the boxes kept (its own
    settings are chosen with python -m bench.real_photos --sweep)."""
    if not found:
        return []
    keep = cv2.dnn.NMSBoxes([[d.box.x, d.box.y, d.box.w, d.box.h] for d in found], [d.score for d in found],
                            RAW_SCORE, nms)
    return in_focus([d for d in (found[i] for i in np.asarray(keep, dtype=int).ravel())
                     if d.score >= score and plausible(d, shape, rules)])


def thresholds(args, faces):
    """Per detector side, NMS threshold, score threshold and rule set: the detection rate and extra
    boxes on synthetic photos (FER2013 faces on blurred noise, on real face-free textures, and small
    faces 40-100 px, 8 to a photo), the boxes on real photos with no face (each seen whole, mirrored
    and as five 60% crops: photo_sets.views), and the real photos whose face count is
    wrong; with YuNet's time per synthetic photo. Ends with the settings that put no box on any
    negative and no wrong count on any real photo, most faces found first."""
    angles = [float(a) for a in args.angles.split(",")]
    negative_files = negatives() if args.negatives is None else sorted(Path(args.negatives).glob("*.jpg"))
    textures = load_textures(negative_files)
    conditions = {
        "noise": [p for a in angles for p in make_photos(faces, a, args.seed)],
        "texture": [p for a in angles for p in make_photos(faces, a, args.seed + 1, textures=textures)],
        "small": [p for a in angles for p in make_photos(faces, a, args.seed + 2, per_photo=SMALL_FACES_PER_PHOTO,
                                                         sides=SMALL_FACE_SIDES)],
    }
    upright = {name: [p for p in photos if all(c.angle == 0 for c in p.crops)] for name, photos in conditions.items()}
    negative_views = [(f.name, v) for f, rgb in zip(negative_files, textures) for v in views(rgb)]
    real = real_photos()
    sweep, candidates = [], []
    for side in [int(v) for v in args.sides.split(",")]:
        detector = YuNetDetector(side=side, score=RAW_SCORE, nms=1.0, rules={}, focus_ratio=0.0)
        start = time.perf_counter()
        raw = {name: [(p, detector.detect(p.rgb)) for p in photos] for name, photos in conditions.items()}
        ms = (time.perf_counter() - start) * 1000 / sum(len(p) for p in conditions.values())
        raw_neg = [(name, v.shape, detector.detect(v)) for name, v in negative_views]
        raw_real = [(name, rgb.shape, detector.detect(rgb), f) for name, rgb, f in real]
        for nms in NMS_VALUES:
            for score in SCORES:
                for rules_name, rules in rule_sets().items():
                    row = dict(split=args.split, side=side, nms=nms, threshold=score, rules=rules_name)
                    for name, photos in raw.items():
                        hits = extra = hits_up = n_up = 0
                        for photo, found in photos:
                            kept = settle(found, photo.rgb.shape, score, nms, rules)
                            pairs = match(photo.crops, [d.box for d in kept])
                            hits += len(pairs)
                            extra += len(kept) - len(pairs)
                            if all(c.angle == 0 for c in photo.crops):
                                hits_up, n_up = hits_up + len(pairs), n_up + len(photo.crops)
                        n = sum(len(p.crops) for p, _ in photos)
                        row[f"{name}_found"] = round(hits / n, 4)
                        row[f"{name}_found_upright"] = round(hits_up / max(1, n_up), 4)
                        row[f"{name}_extra"] = extra
                    neg_boxes = [(name, len(settle(found, shape, score, nms, rules))) for name, shape, found in raw_neg]
                    row["negative_boxes"] = sum(k for _, k in neg_boxes)
                    row["negatives_with_a_box"] = sorted({name for name, k in neg_boxes if k})
                    wrong = [name for name, shape, found, f in raw_real
                             if not count_is_right(f, len(settle(found, shape, score, nms, rules)))]
                    row["real_photos_wrong_count"] = wrong
                    row["detect_ms"] = round(ms, 1)
                    emit(**row)
                    sweep.append(row)
                    if not row["negative_boxes"] and not wrong:
                        candidates.append(row)
    emit(synthetic_photos={k: len(v) for k, v in conditions.items()},
         synthetic_faces={k: sum(len(p.crops) for p in v) for k, v in conditions.items()},
         upright_photos={k: len(v) for k, v in upright.items()}, negatives=len(negative_files),
         negative_views=len(negative_views), real_photos=len(real))
    for row in sorted(candidates, key=lambda r: (-r["noise_found"] - r["texture_found"], -r["small_found"],
                                                 r["noise_extra"] + r["texture_extra"] + r["small_extra"]))[:8]:
        emit(candidate=True, **row)


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
