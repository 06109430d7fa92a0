"""app.py with other live-webcam settings, logging each call of the live handler: bench/webcam_fps.py runs it.

    python -m bench.webcam_app --every 0.05 --size 640x480 --format jpeg --calls FILE [app.py's options]

`--size camera` leaves the camera at its own size (Gradio's default ask). Each call of the stream's handler
(`ui.predict_tab.label_frame`) appends a line to FILE: "<start, epoch s> <wall s> <1 if a face was labelled>".
The app is otherwise app.py as it is (host and port: GRADIO_SERVER_NAME, GRADIO_SERVER_PORT).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING


if __name__ == "__main__":  # as app.py: before torch, onnxruntime and gradio start their threads
    from fer_demo.core.allocator import cap_malloc_arenas

    cap_malloc_arenas()

if TYPE_CHECKING:
    from fer_demo.ui.predict_tab import LiveStream

CAMERA_SIZE = "camera"


def parse_size(text: str) -> tuple[int | None, int | None]:
    """"640x480" -> (640, 480); "camera" -> (None, None). ArgumentTypeError (a clear message) otherwise."""
    if text == CAMERA_SIZE:
        return None, None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        w = h = 0
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame size: give WIDTHxHEIGHT (16-4096 each, e.g. "
                                         f"640x480) or {CAMERA_SIZE!r}")
    return w, h


def parse_every(text: str) -> float:
    try:
        every = float(text)
    except ValueError:
        every = 0.0
    if not 0.01 <= every <= 5:
        raise argparse.ArgumentTypeError(f"{text!r} is not a stream interval: give seconds from 0.01 to 5")
    return every


def stream_args(stream: LiveStream) -> list[str]:
    """The options that give `stream` (the inverse of `parse_args`' stream options)."""
    return ["--every", f"{stream.every_s:g}", "--size", stream.size, "--format", stream.out_format]


def parse_args(argv=None) -> tuple[LiveStream, Path, list[str]]:
    """(the live stream's settings, the call log, the options left for app.py)."""
    from fer_demo.ui.predict_tab import LiveStream

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--every", type=parse_every, required=True, help="seconds between the frames the page sends")
    p.add_argument("--size", type=parse_size, required=True, help=f"WIDTHxHEIGHT asked of the camera, or {CAMERA_SIZE}")
    p.add_argument("--format", choices=["jpeg", "webp", "png"], required=True, help="the labelled frames' format")
    p.add_argument("--calls", type=Path, required=True, help="file the handler's calls are appended to")
    args, rest = p.parse_known_args(argv)
    return LiveStream(args.every, *args.size, out_format=args.format), args.calls, rest


def logged(handler, log):
    """`handler` (label_frame), appending one line to `log` per call."""

    def label_frame(predictor, frame, show_cam=False):
        start, clock = time.time(), time.perf_counter()
        shown, label = handler(predictor, frame, show_cam)
        log.write(f"{start:.6f} {time.perf_counter() - clock:.6f} {int(label is not None)}\n")
        return shown, label

    return label_frame


def main(argv=None) -> int:
    stream, calls, rest = parse_args(argv)
    from fer_demo import serve
    from fer_demo.ui import predict_tab

    predict_tab.LIVE_STREAM = stream
    with open(calls, "a", buffering=1) as log:
        predict_tab.label_frame = logged(predict_tab.label_frame, log)
        return serve.main(rest)


if __name__ == "__main__":
    sys.exit(main())
