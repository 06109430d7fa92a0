"""What one /predict request costs, and how much of it is the app's: Gradio's floor, the request, and the
work in process stage by stage, in one run on this CPU.

    python -m bench.request_cost [--runs 40 --warmup 5] [--photo FILE]

The photo (default): the astronaut and Grace Hopper side by side on a gray 1280x892 canvas, a JPEG of two
faces. Printed, one JSON line each (medians over --runs, after --warmup):
  floor              a request to bench/noop_app.py: the same gradio, photo input and queue, returning {}
  predict_request    the same photo to app.py's /predict (both servers started here, requests interleaved)
  stage_*            the app's work in this process: decode (images.load_image), detect (the Predictor's
                     YuNet), crop (align and cut each face), classify (the app's backend and TTA), json
  work               the stages together, and api_predict (the /predict function) as a whole
  bare_work          the reference pipeline, done bare: cv2.imdecode, OpenCV's cv2.FaceDetectorYN at 640 px,
                     the same crops, the int8 classifier on 10 views each
  detect_opencv_dnn  YuNet through cv2.FaceDetectorYN, as the app ran it before: against detect (ONNX Runtime)
  summary            app_share = predict_request - floor, and its ratio to bare_work (goal <= 0.9);
                     detect over detect_opencv_dnn (goal: 15 ms from 31 ms, <= 0.48)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bench.machine import cpu_model_and_flags
from fer_demo.vision.detectors import YuNetOpenCvDetector
from fer_demo.vision.faces import detector_crop, extract
from fer_demo.vision.images import load_image
from fer_demo_testing.local_app import launched_app
from fer_demo.core.paths import EXAMPLES_DIR
from fer_demo.core.transforms import FULL_TTA

CANVAS = (1280, 892)
NOOP_APP = "bench.noop_app"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--photo", default=None, help="a photo file instead of the two-face canvas")
    return p.parse_args(argv)


def two_face_jpeg(path: Path) -> Path:
    canvas = Image.new("RGB", CANVAS, (128, 128, 128))
    for name, x in (("astronaut.jpg", 0), ("grace_hopper.jpg", CANVAS[0] // 2)):
        face = Image.open(EXAMPLES_DIR / "photos" / name).convert("RGB")
        face.thumbnail((CANVAS[0] // 2, CANVAS[1]), Image.Resampling.LANCZOS)
        canvas.paste(face, (x + (CANVAS[0] // 2 - face.width) // 2, (CANVAS[1] - face.height) // 2))
    canvas.save(path, quality=90)
    return path


def cpu_name() -> str:
    """The CPU's model name and whether it has AVX-512 (from /proc/cpuinfo), else what platform says."""
    cpu = cpu_model_and_flags()
    if cpu is None:
        return platform.processor() or platform.machine()
    name, flags = cpu
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name or platform.machine()}, {vector}"


def interleaved(calls: dict, runs: int, warmup: int) -> dict[str, float]:
    """Median ms of each call, timed in turn within every round, so that load on the machine falls alike on all."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    times = {name: [] for name in calls}
    for _ in range(runs):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: round(float(np.median(t)) * 1000, 2) for name, t in times.items()}


def emit(**fields):
    print(json.dumps({"bench": "request_cost", **fields}), flush=True)


STAGES = ("decode", "detect", "crop", "classify", "json")


def work_calls(predictor, photo: Path) -> dict:
    """The app's work on `photo` stage by stage and whole (api_predict, the /predict function), the bare
    reference pipeline (cv2.imdecode, cv2.FaceDetectorYN at 640 px, the same crops, the int8 classifier on
    10 views each), and detection through OpenCV's DNN module alone."""
    from fer_demo.ui.predict_tab import api_predict

    image = load_image(photo)
    found = predictor.detector.detect(image.rgb)
    faces = np.stack([extract(image.rgb, detector_crop(d, predictor.detector)) for d in found])
    analysis = predictor.analyze(image)
    data, opencv = photo.read_bytes(), YuNetOpenCvDetector()

    def bare():
        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        crops = np.stack([extract(rgb, detector_crop(d, opencv)) for d in opencv.detect(rgb)])
        return predictor.classify(crops, FULL_TTA)

    return {
        "decode": lambda: load_image(photo),
        "detect": lambda: predictor.detector.detect(image.rgb),
        "crop": lambda: [extract(image.rgb, detector_crop(d, predictor.detector)) for d in found],
        "classify": lambda: predictor.classify(faces, predictor.tta),
        "json": lambda: json.dumps({**analysis.to_json(), "backend": predictor.backend}),
        "api_predict": lambda: api_predict(predictor, str(photo)),
        "bare_work": bare,
        "detect_opencv_dnn": lambda: opencv.detect(image.rgb),
    }


def requests(photo: Path, runs: int, warmup: int) -> tuple[float, float]:
    """(floor ms, /predict ms): both servers up at once, one request to each in turn."""
    from gradio_client import Client, handle_file

    with launched_app() as app, launched_app(module=NOOP_APP) as noop:
        app_client, noop_client = Client(app.url, verbose=False), Client(noop.url, verbose=False)
        calls = {"floor": lambda: noop_client.predict(handle_file(str(photo)), False, True, api_name="/noop"),
                 "predict_request": lambda: app_client.predict(handle_file(str(photo)), False, api_name="/predict")}
        answer = calls["predict_request"]()
        assert answer["n_faces"] >= 1, answer
        medians = interleaved(calls, runs, warmup)
    return medians["floor"], medians["predict_request"]


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from fer_demo.serving.predictor import Predictor

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(args.photo) if args.photo else two_face_jpeg(Path(tmp) / "two_faces.jpg")
        predictor = Predictor()
        size = Image.open(photo).size
        n_faces = len(predictor.analyze(photo).faces)
        emit(cpu=cpu_name(), photo=photo.name, size=f"{size[0]}x{size[1]}",
             kb=round(photo.stat().st_size / 1024), faces=n_faces,
             backend=predictor.backend, tta=predictor.tta, detector=predictor.detector.name, runs=args.runs,
             torch_threads=torch.get_num_threads())
        floor, request = requests(photo, args.runs, args.warmup)
        emit(stage="floor", median_ms=floor)
        emit(stage="predict_request", median_ms=request)
        work = interleaved(work_calls(predictor, photo), args.runs, args.warmup)
        for name in STAGES:
            emit(stage=f"stage_{name}", median_ms=work[name])
        emit(stage="work", stages_ms=round(sum(work[n] for n in STAGES), 2), api_predict_ms=work["api_predict"])
        bare = work["bare_work"]
        emit(stage="bare_work", median_ms=bare)
        emit(stage="detect_opencv_dnn", median_ms=work["detect_opencv_dnn"])
        share = request - floor
        emit(stage="summary", app_share_ms=round(share, 2), app_share_over_bare=round(share / bare, 3),
             detect_over_opencv_dnn=round(work["detect"] / work["detect_opencv_dnn"], 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
