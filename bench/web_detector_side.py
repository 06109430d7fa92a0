"""How small a view YuNet can take of a 640x480 webcam frame and still find the faces it finds at 640 px (the
side the app and the page use): for each candidate side, faces found, faces of the 640-px view matched (IoU >= 0.5)
and the detector's time per frame (the app's YuNet, Python ONNX Runtime: the ratio between sides
is what carries over to the page).

    python -m bench.web_detector_side [--sides 640 480 416 320 256]

Frames: every real photo (tests/photos, examples/photos) fitted into 640x480 on gray, as a webcam would frame
that person, and the 60 frames of the tests' fake-camera clip (fer_demo_testing/browser.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from bench import machine
from fer_demo.vision.detectors import YuNetDetector
from fer_demo.vision.images import load_image
from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT
from fer_demo_testing.browser import webcam_frames

FRAME = (640, 480)
PHOTO_DIRS = (REPO_ROOT / "tests" / "photos", EXAMPLES_DIR / "photos")


def webcam_framed(rgb: np.ndarray) -> np.ndarray:
    """The photo scaled to fit 640x480, centred on gray."""
    w, h = FRAME
    f = min(w / rgb.shape[1], h / rgb.shape[0])
    small = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
    out = np.full((h, w, 3), 90, np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    return out


def frames() -> list[np.ndarray]:
    photos = sorted(p for d in PHOTO_DIRS for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [webcam_framed(load_image(str(p)).rgb) for p in photos] + list(webcam_frames())


def iou(a, b) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a.w * a.h + b.w * b.h - inter)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sides", type=int, nargs="+", default=[640, 480, 416, 320, 256])
    args = p.parse_args(argv)
    print(machine.cpu_line(("avx2", "avx512f")))
    views = frames()
    reference = [YuNetDetector(side=640).detect(f) for f in views]
    print(f"{len(views)} frames of 640x480, {sum(map(len, reference))} faces at 640 px\n")
    print("| detector side | faces found | faces of the 640-px view matched | ms per frame (median) |")
    print("| ---: | ---: | ---: | ---: |")
    for side in args.sides:
        detector, found, matched, ms = YuNetDetector(side=side), 0, 0, []
        for frame, want in zip(views, reference):
            t = time.perf_counter()
            got = detector.detect(frame)
            ms.append(1000 * (time.perf_counter() - t))
            found += len(got)
            matched += sum(any(iou(w.box, g.box) >= 0.5 for g in got) for w in want)
        print(f"| {side} | {found} | {matched} of {sum(map(len, reference))} | {statistics.median(ms):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
