"""Latency of each stage of the app on this CPU, after warm-up: one JSON line per figure.

    python -m bench.latency [--runs 50 --slow-runs 10 --warmup 3] [--only classify,gradcam] [--no-server]

Stages (median and p95 over --runs timed runs, each after --warmup untimed ones):
  detect_1mp_<name>   face detection on a 1155x866 (1 MP) photo, for each detector (YuNet, the app's default;
                      the Haar cascade, its fallback)
  classify_1 / _8     classification of one face / a batch of 8 (Predictor.classify, the app's backend:
                      int8 ONNX Runtime when the checkpoint has it); classify_*_torch: the PyTorch model
  gradcam_1 / _7      GradCAM of one face / of one face for all 7 classes at once (compute_cams)
  explain_face        the /explain work for one face: GradCAM + ROAD and CAM x image scores
  cam_<method>        every other method of the explorer, one face (ScoreCAM, AblationCAM: --slow-runs)
  predict_1mp         Predictor.predict on the 1 MP JPEG (load, detect, align and crop, classify with the
                      app's TTA), in process
  predict_request_1mp a whole /predict request through gradio_client to app.py (launched on a free
                      127.0.0.1 port, see fer_demo_testing/local_app.py), upload and JSON included
  webcam_frame        one 640x480 frame through the live stream's handler (ui.predict_tab.label_frame); + fps
  webcam_frame_cam    the same with live Grad-CAM on every face; + fps
  evaluation_<backend> fer_demo.core.inference.predict_probs over the FER2013 test split (../shared/data/fer2013,
                      or random faces if absent), batch 128, for torch (bf16) and onnx-int8; img_s over
                      --eval-passes passes

Each line: {"bench": "latency", "stage": ..., "median_ms": ..., "p95_ms": ..., "runs": N, ...}
(throughput figures add "fps" or give "img_s"). Goals: detect_1mp_yunet <= 15 ms, classify_1 <= 5 ms,
gradcam_1 <= 40 ms, predict_request_1mp <= 120 ms median, webcam >= 25 fps, webcam with Grad-CAM >= 10 fps,
evaluation >= 1500 img/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_demo_testing.local_app import launched_app
from fer_demo.core.paths import EXAMPLES_DIR, LOCAL_DATASET

PHOTO = EXAMPLES_DIR / "photos" / "astronaut.jpg"
ONE_MP = (1155, 866)
WEBCAM = (640, 480)
EVAL_BATCH = 128


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=50, help="timed runs per stage (default 50)")
    p.add_argument("--slow-runs", type=int, default=10, help="timed runs for ScoreCAM / AblationCAM (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before each stage (default 3)")
    p.add_argument("--eval-passes", type=int, default=3, help="passes over the test split (default 3)")
    p.add_argument("--eval-limit", type=int, default=None, help="test faces at most (default: all)")
    p.add_argument("--only", default="", help="comma-separated stage name prefixes to run (default: all)")
    p.add_argument("--no-server", action="store_true", help="skip predict_request_1mp (no app.py launch)")
    p.add_argument("--threads", type=int, default=None, help="torch threads here and in the launched app")
    return p.parse_args(argv)


def photo_1mp() -> np.ndarray:
    """The astronaut portrait cropped to 4:3 around her face and scaled to 1155x866 (1.0 MP)."""
    from PIL import Image

    img = Image.open(PHOTO).convert("RGB")
    w, h = img.size
    return np.asarray(img.crop((0, 0, w, round(w * 3 / 4))).resize(ONE_MP, Image.Resampling.LANCZOS))


def timed(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def line(stage: str, seconds: list[float], **extra) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"bench": "latency", "stage": stage, "median_ms": round(float(np.median(ms)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2), "runs": len(ms), **extra}


def eval_faces(limit: int | None):
    import torch

    if LOCAL_DATASET.exists():
        from fer_demo.core.data import load_fer

        split = load_fer(str(LOCAL_DATASET), ("test",), limits={"test": limit}, log=lambda *a: None)["test"]
        return split.images, "FER2013 test split"
    n = limit or 3589
    return torch.randint(0, 256, (n, 48, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)), \
        "random faces (no local FER2013)"


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from PIL import Image

    from fer_demo.core.inference import predict_probs
    from fer_demo.serving.cams import METHODS, SLOW_METHODS, compute_cams, default_layer, explain_face
    from fer_demo.vision.detectors import DETECTORS
    from fer_demo.vision.faces import detector_crop, extract
    from fer_demo.serving.predictor import Predictor
    from fer_demo.ui.predict_tab import label_frame

    wanted = [s for s in args.only.split(",") if s]

    def want(stage):
        return not wanted or any(stage.startswith(w) for w in wanted)

    def emit(d):
        print(json.dumps({**d, "threads": torch.get_num_threads()}), flush=True)

    predictor = Predictor()
    by_backend = {predictor.backend: predictor}
    if predictor.backend != "torch":
        by_backend["torch"] = Predictor(backend="torch")
    layer = default_layer(predictor.map_sizes)
    big = photo_1mp()
    found = predictor.detector.detect(big)
    face = extract(big, detector_crop(found[0], predictor.detector)) if found else \
        np.asarray(Image.open(PHOTO).convert("L").resize((48, 48)))
    fer = sorted((EXAMPLES_DIR / "fer2013").glob("*.png"))
    faces8 = np.stack([np.asarray(Image.open(p).convert("L")) for p in fer[:8]])
    cls = int(predictor.classify(face[None])[0].argmax())
    runs, warm = args.runs, args.warmup

    if want("detect"):
        for name, detector in DETECTORS.items():
            d = detector()
            emit(line(f"detect_1mp_{name}", timed(lambda: d.detect(big), runs, warm), faces=len(d.detect(big)),
                      size=f"{ONE_MP[0]}x{ONE_MP[1]}", detector_side=d.side))
    if want("classify"):
        for backend, p in by_backend.items():
            suffix = "" if p is predictor else f"_{backend}"
            emit(line(f"classify_1{suffix}", timed(lambda: p.classify(face[None]), runs, warm), backend=backend))
            emit(line(f"classify_8{suffix}", timed(lambda: p.classify(faces8), runs, warm), backend=backend))
    if want("gradcam"):
        emit(line("gradcam_1", timed(lambda: compute_cams(predictor, face[None], [cls], "GradCAM", layer),
                                     runs, warm), layer=layer))
        seven = np.repeat(face[None], 7, axis=0)
        emit(line("gradcam_7", timed(lambda: compute_cams(predictor, seven, list(range(7)), "GradCAM", layer),
                                     runs, warm), layer=layer))
    if want("explain"):
        emit(line("explain_face", timed(lambda: explain_face(predictor, face, "GradCAM", layer), runs, warm),
                  layer=layer, note="GradCAM + ROAD + CAM x image scores, as /explain computes (no image I/O)"))
    for method in METHODS:
        if method == "GradCAM" or not want(f"cam_{method}"):
            continue
        slow = method in SLOW_METHODS
        n, w = (args.slow_runs, min(warm, 1)) if slow else (runs, warm)
        emit(line(f"cam_{method}", timed(lambda: compute_cams(predictor, face[None], [cls], method, layer), n, w),
                  layer=layer, **({"note": "fewer runs (--slow-runs): one forward pass per channel"} if slow else {})))

    with tempfile.TemporaryDirectory() as tmp:
        jpeg = Path(tmp) / "photo_1mp.jpg"
        Image.fromarray(big).save(jpeg, quality=90)
        if want("predict_1mp"):
            emit(line("predict_1mp", timed(lambda: predictor.predict(str(jpeg)), runs, warm),
                      file_kb=round(jpeg.stat().st_size / 1024)))
        if want("predict_request") and not args.no_server:
            from gradio_client import Client, handle_file

            env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}
            with launched_app(env=env) as server:
                client = Client(server.url, verbose=False)
                emit(line("predict_request_1mp",
                          timed(lambda: client.predict(handle_file(str(jpeg)), False, api_name="/predict"),
                                runs, warm), note="gradio_client -> app.py on 127.0.0.1, upload + JSON"))

    if want("webcam"):
        frame = np.asarray(Image.fromarray(big).resize(WEBCAM, Image.Resampling.BILINEAR))
        for stage, show_cam in (("webcam_frame", False), ("webcam_frame_cam", True)):
            seconds = timed(lambda: label_frame(predictor, frame, show_cam), runs, warm)
            emit(line(stage, seconds, fps=round(1 / float(np.median(seconds)), 1),
                      note=f"{WEBCAM[0]}x{WEBCAM[1]} frame through ui.predict_tab.label_frame; gradio's streaming "
                           "transport and image encoding not included"))
    if want("evaluation"):
        images, source = eval_faces(args.eval_limit)
        for backend, p in by_backend.items():
            predict_probs(p.classifier, images[:512], p.config)  # warm-up
            rates = []
            for _ in range(max(1, args.eval_passes)):
                start = time.perf_counter()
                predict_probs(p.classifier, images, p.config, batch_size=EVAL_BATCH)
                rates.append(len(images) / (time.perf_counter() - start))
            emit({"bench": "latency", "stage": f"evaluation_{backend}", "img_s": round(float(np.median(rates)), 1),
                  "runs": len(rates), "images": len(images), "source": source, "batch_size": EVAL_BATCH})
    return 0


if __name__ == "__main__":
    sys.exit(main())
