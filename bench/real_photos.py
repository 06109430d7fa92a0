"""The real-photo benchmark: the app's detector and model on every real photo, against the truth about each.

    python -m bench.real_photos            # the table: every photo, the app's settings (docs/detection.md)
    python -m bench.real_photos --sweep    # the detector rules' settings, on real photos, negatives, the
                                           # webcam clip and validation faces pasted into photos (validation)

Photos: tests/photos, examples/photos and ../shared/photos (27), each once; the truth (faces in focus, what
else must get no box, plain expressions) is `REAL_PHOTOS` in fer_demo_testing/photo_sets.py. A face in focus is found
when a box holds its centre; every other box is extra (a blurred person, a crowd, a painting, texture).
"Stated" is the count the answer states (`n_detected`, the "N faces found" line). The top label is checked on
the broad smiles (happy) and plainly neutral faces.

--sweep runs YuNet once per detector side with no rule and applies each setting to what it drew: the focus
rule's ratio (0 = no focus rule), the score from which the box-inside and landmark rules stop judging (1.01 = they judge
every box, as before), and the side. It reports the faces in focus found and the extra boxes on the real
photos, the boxes on the 84 views of tests/negatives, the webcam clip's face kept (the tests' fake camera at
three sizes, sharp and softened: blurred and JPEG-compressed), and the share of upright validation faces
found on synthetic photos (bench/end_to_end.py's, 300 faces: on noise, on textures, small).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from bench.machine import cpu_model_and_flags
from fer_demo.vision.detectors import (DETECT_SIDE, FOCUS_RATIO, RULES, SURE_SCORE, YuNetDetector, eye_span_plausible,
                                       in_focus, landmarks_in_order, mostly_inside, plausible)
from fer_demo.vision.images import load_image
from fer_demo.core.paths import LOCAL_DATASET, SHARED_PHOTOS
from fer_demo_testing.photo_sets import (PHOTO_DIRS, REAL_PHOTOS, SMALL_FACE_SIDES, SMALL_FACES_PER_PHOTO,
                                         faces_hit, load_textures, make_photos, match, negatives, real_photo_files,
                                         soften, views)

FOCUS_RATIOS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)
SURE_SCORES = (1.01, 0.9, 0.85, 0.8)
WEBCAM_SIZES = ((320, 240), (640, 480), (1280, 720))
SYNTHETIC_FACES = 300


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep", action="store_true", help="sweep the detector rules' settings (validation faces)")
    p.add_argument("--sides", default=f"{DETECT_SIDE},960", help="--sweep: detector sides to try")
    p.add_argument("--dataset", default=str(LOCAL_DATASET), help="--sweep: the FER2013 copy (validation split)")
    return p.parse_args(argv)


def photo_files() -> dict[str, Path]:
    """Every real photo once: the repo's copy where it ships one, else ../shared/photos's."""
    dirs = PHOTO_DIRS + ((SHARED_PHOTOS,) if SHARED_PHOTOS.is_dir() else ())
    return real_photo_files(dirs)


def where(f: Path) -> str:
    return f.parent.name if f.parent.name != "photos" else f"{f.parent.parent.name}/photos"


def label_check(photo: str, labels: list[str]) -> str:
    """'happy ok' / 'neutral: got sad' for a photo with a plain expression, '' otherwise."""
    want = REAL_PHOTOS[photo].expression
    if not want:
        return ""
    return f"{want} ok" if labels[:1] == [want] else f"{want}: got {', '.join(labels) or 'no face'}"


def table() -> None:
    """One row per photo, with the app's detector and model (fer_demo.serving.predictor.Predictor)."""
    from fer_demo.serving.predictor import Predictor

    predictor = Predictor()
    files = photo_files()
    print(f"{len(files)} photos; detector {predictor.detector.name}, side {predictor.detector.side}; "
          f"shared photos {'read' if SHARED_PHOTOS.is_dir() else 'MISSING: repo photos only'}\n")
    print("| photo | from | size | faces in focus | not to box | found | extra boxes | stated | top label "
          "| label check | detect ms |")
    print("| --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- | --- | ---: |")
    totals = dict(faces=0, found=0, extra=0, wrong=0, labels=0, labels_ok=0)
    for name, f in sorted(files.items()):
        image = load_image(f)
        start = time.perf_counter()
        predictor.detector.detect(image.rgb)
        ms = (time.perf_counter() - start) * 1000
        analysis = predictor.analyze(image)  # as the app answers: its default test-time augmentation
        truth = REAL_PHOTOS[name]
        found, extra = faces_hit(name, image.rgb.shape, [face.box for face in analysis.faces])
        labels = [analysis.labels[int(face.probs.argmax())] for face in analysis.faces]
        check = label_check(name, labels)
        h, w = image.rgb.shape[:2]
        print(f"| {name} | {where(f)} | {w}x{h} | {len(truth.faces)} | {truth.not_faces} | {found} | {extra} "
              f"| {analysis.n_detected} | {', '.join(labels)} | {check} | {ms:.0f} |")
        totals["faces"] += len(truth.faces)
        totals["found"] += found
        totals["extra"] += extra
        totals["wrong"] += analysis.n_detected != len(truth.faces)
        totals["labels"] += bool(check)
        totals["labels_ok"] += check.endswith(" ok")
    print(f"\nfaces in focus found {totals['found']}/{totals['faces']}; extra boxes {totals['extra']}; "
          f"stated count wrong on {totals['wrong']} photos; top label as expected on "
          f"{totals['labels_ok']}/{totals['labels']} plain expressions (test-time augmentation: {predictor.tta})")


# --- the sweep ---------------------------------------------------------------------------------------------

def rules_for(sure_score: float) -> dict:
    """RULES, with the box-inside and landmark rules judging only boxes under `sure_score`."""
    return {**RULES, "mostly_inside": partial(mostly_inside, sure_score=sure_score),
            "landmarks_in_order": partial(landmarks_in_order, sure_score=sure_score),
            "eye_span": partial(eye_span_plausible, sure_score=sure_score)}


def settle(found, shape, rules: dict, ratio: float):
    """What the detector with these rules and this focus ratio keeps of the unruled boxes `found`. (The rules
    are judged in the photo's pixels, not the detector copy's: each compares the box with itself or with the
    photo's shape, so scaling both changes nothing but rounding.)"""
    return in_focus([d for d in found if plausible(d, shape, rules)], ratio)


def webcam_views() -> list[np.ndarray]:
    """Frames of the tests' fake camera (fer_demo_testing/browser.py) at each of WEBCAM_SIZES, sharp and softened."""
    from fer_demo_testing.browser import webcam_frames

    frames = [next(iter(webcam_frames(size, fps=10, seconds=1))) for size in WEBCAM_SIZES]
    return frames + [soften(f) for f in frames]


def synthetic(dataset: str) -> dict[str, list]:
    """bench/end_to_end.py --thresholds' synthetic photos of upright validation faces (seeded alike)."""
    from fer_demo.core.data import load_fer

    split = load_fer(dataset, ("validation",), limits={"validation": SYNTHETIC_FACES}, seed=0,
                     log=lambda *a: None)["validation"]
    faces = split.images.numpy()
    textures = load_textures(negatives())
    return {"noise": make_photos(faces, 0, 0), "texture": make_photos(faces, 0, 1, textures=textures),
            "small": make_photos(faces, 0, 2, per_photo=SMALL_FACES_PER_PHOTO, sides=SMALL_FACE_SIDES)}


def sweep(args) -> None:
    real = {name: load_image(f).rgb for name, f in photo_files().items()}
    negative_views = [v for f in negatives() for v in views(load_image(f).rgb)]
    webcam = webcam_views()
    photos = synthetic(args.dataset)
    print(f"{len(real)} real photos, {len(negative_views)} negative views, {len(webcam)} webcam frames, "
          f"synthetic photos {', '.join(f'{k} {len(v)}' for k, v in photos.items())}\n")
    print("| side | focus ratio | inside/landmark rules below | in focus found | extra boxes | wrong counts "
          "| boxes on negatives | webcam faces kept | synthetic found: noise / textures / small | ms per real photo |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for side in [int(v) for v in args.sides.split(",")]:
        detector = YuNetDetector(side=side, rules={}, focus_ratio=0.0)
        start = time.perf_counter()
        raw_real = {name: detector.detect(rgb) for name, rgb in real.items()}
        ms = (time.perf_counter() - start) * 1000 / len(real)
        raw_neg = [(v.shape, detector.detect(v)) for v in negative_views]
        raw_cam = [(v.shape, detector.detect(v)) for v in webcam]
        raw_syn = {k: [(p, detector.detect(p.rgb)) for p in v] for k, v in photos.items()}
        for ratio in FOCUS_RATIOS:
            for sure_score in SURE_SCORES:
                rules = rules_for(sure_score)
                hit = extra = wrong = 0
                for name, found in raw_real.items():
                    kept = settle(found, real[name].shape, rules, ratio)
                    h, e = faces_hit(name, real[name].shape, [d.box for d in kept])
                    hit, extra = hit + h, extra + e
                    wrong += len(kept) != len(REAL_PHOTOS[name].faces)
                neg = sum(len(settle(found, shape, rules, ratio)) for shape, found in raw_neg)
                cam = sum(len(settle(found, shape, rules, ratio)) == 1 for shape, found in raw_cam)
                rates = []
                for kind, pairs in raw_syn.items():
                    got = sum(len(match(p.crops, [d.box for d in settle(found, p.rgb.shape, rules, ratio)]))
                              for p, found in pairs)
                    rates.append(f"{100 * got / sum(len(p.crops) for p, _ in pairs):.1f}%")
                total = sum(len(t.faces) for n, t in REAL_PHOTOS.items() if n in real)
                print(f"| {side} | {ratio} | {sure_score} | {hit}/{total} | {extra} | {wrong} | {neg} "
                      f"| {cam}/{len(webcam)} | {' / '.join(rates)} | {ms:.0f} |", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    cpu = cpu_model_and_flags()
    print(f"CPU: {cpu[0] if cpu else 'unknown'}; shipped settings: focus ratio {FOCUS_RATIO}, "
          f"inside/landmark rules below {SURE_SCORE}, side {DETECT_SIDE}\n")
    if args.sweep:
        sweep(args)
    else:
        table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
