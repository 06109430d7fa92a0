"""Speed of the Video tab's analysis on this CPU: frames analysed per second for a 640x480 clip.

    python -m bench.video [--seconds 10] [--fps 25] [--rate 10] [--threads N]

The clip is made here: two portraits (examples/photos) drifting across a 640x480
canvas, written as H.264 like a phone's clip. Stages, one JSON line each:
  decode         sampling alone: decode the clip, convert the sampled frames to RGB
  analyze_clip   the whole /video work (fer_demo.serving.video.analyze_clip): decode, detect, follow, classify,
                 draw, encode the annotated H.264 clip, write the CSV; "fps" = sampled frames per second
Each line: {"bench": "video", "stage": ..., "frames": N, "seconds": ..., "fps": ..., ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_demo.core.paths import EXAMPLES_DIR

PHOTOS = EXAMPLES_DIR / "photos"
SIZE = (640, 480)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    p.add_argument("--fps", type=float, default=25.0, help="the clip's frame rate (default 25)")
    p.add_argument("--rate", type=float, default=10.0, help="frames analysed per second of clip (default 10)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    return p.parse_args(argv)


def portrait(name: str, side: int) -> np.ndarray:
    from PIL import Image

    img = Image.open(PHOTOS / name).convert("RGB")
    s = min(img.size)
    return np.asarray(img.crop((0, 0, s, s)).resize((side, side)))


def make_clip(path: Path, seconds: float, fps: float) -> Path:
    from fer_demo.vision.clips import h264_writer

    a, b = portrait("astronaut.jpg", 200), portrait("grace_hopper.jpg", 200)
    n = round(seconds * fps)
    with h264_writer(path, SIZE, fps) as write:
        for k in range(n):
            x = round(400 * k / max(n - 1, 1))
            canvas = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
            canvas[20:220, 20 + x // 2:220 + x // 2] = a
            canvas[260:460, 420 - x:620 - x] = b
            write(canvas)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from fer_demo.vision.clips import probe, sample_frames
    from fer_demo.serving.predictor import Predictor
    from fer_demo.serving.video import analyze_clip

    def emit(stage, frames, seconds, **extra):
        print(json.dumps({"bench": "video", "stage": stage, "size": f"{SIZE[0]}x{SIZE[1]}", "frames": frames,
                          "seconds": round(seconds, 3), "fps": round(frames / seconds, 2), "clip_fps": args.fps,
                          "rate": args.rate, **extra, "threads": torch.get_num_threads()}), flush=True)

    predictor = Predictor()
    with tempfile.TemporaryDirectory(prefix="fer-bench-video-") as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds, args.fps)
        predictor.analyze(np.zeros((SIZE[1], SIZE[0], 3), np.uint8), tta="none")  # warm-up: first run allocates
        info = probe(clip)
        start = time.perf_counter()
        frames = sum(1 for _ in sample_frames(clip, info, args.rate))
        emit("decode", frames, time.perf_counter() - start)
        start = time.perf_counter()
        result = analyze_clip(predictor, clip, args.rate, out_dir=tmp)
        emit("analyze_clip", result.summary["frames_sampled"], time.perf_counter() - start,
             faces=result.summary["n_faces"], persons=result.summary["n_persons"], backend=predictor.backend,
             detector=predictor.detector.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
