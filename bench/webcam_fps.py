"""The live webcam's frame rate: what the frame function allows alone, and what a person sees in the browser.

    python -m bench.webcam_fps [--seconds 8] [--alternatives] [--clip-size 1280x720]

Every figure comes from this one run, for the app's live settings (`ui.predict_tab.LIVE_STREAM`) and, with
--alternatives, for each of ALTERNATIVES too; each for plain labels and with live Grad-CAM:
  CPU            the model name and the flags that matter for the int8 and bf16 kernels (/proc/cpuinfo)
  compute-only   the stream's handler (`ui.predict_tab.label_frame`) alone, in this process, on the fake
                 camera's frames at the size the browser sent: median ms a frame and the frames/s that allows
  browser        app.py on 127.0.0.1 (bench/webcam_app.py: app.py with these settings, its handler's calls
                 logged) and headless Chromium (fer_demo_testing/browser.py) whose fake camera plays a 30 frames/s
                 clip of the astronaut photo drifting a pixel a frame; over --seconds, a second each:
                 "sent" frames the page posted, "answered" frames the handler labelled (its median ms there,
                 beside the browser), "seen" labelled frames that reached the page (loaded into #live-out);
                 the CPU cores the app and the browser (Chromium and its Playwright driver) used
  faces          the share of frames in which a face was labelled (compute-only / answered in the app)

Needs Playwright and Debian's chromium (FER_CHROMIUM names another), like the browser tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import machine
from bench.webcam_app import parse_size, stream_args
from fer_demo.core.checkpoint import SHIPPED_CHECKPOINT
from fer_demo.ui.predict_tab import LIVE_STREAM, LiveStream, label_frame
from fer_demo_testing.local_app import LaunchError, launched_app
from fer_demo_testing.browser import (WEBCAM_FPS, browser_missing, chromium_browser, labelled_frames,
                                      open_app_page, page_clock, start_webcam, webcam_frames)

FLAGS_THAT_MATTER = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
MODES = {"labels": False, "live CAM": True}  # mode: the handler's show_cam
ALTERNATIVES = (  # tried beside LIVE_STREAM
    LiveStream(every_s=0.1, out_format="webp"),  # the settings before: the camera's own size, WebP answers
    LiveStream(every_s=0.1, width=640, height=480),
    LiveStream(every_s=0.033, width=640, height=480),
    LiveStream(every_s=0.05, width=640, height=480, out_format="webp"),
    LiveStream(every_s=0.05, width=320, height=240),
    LiveStream(every_s=0.05),
)
WARMUP_RUNS = 3
# Frames the page posted to the stream: Gradio's client POSTs each to .../stream/<event id>.
SENT_BETWEEN = """([t0, t1]) => performance.getEntriesByType('resource')
  .filter(e => /\\/stream\\/[^/?]+$/.test(e.name) && e.startTime >= t0 && e.startTime < t1).length"""
VIDEO_SIZE = "() => { const v = document.querySelector('#live-in video'); return [v.videoWidth, v.videoHeight]; }"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="seconds each browser figure is counted over (8)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of streaming before counting (2)")
    p.add_argument("--runs", type=int, default=40, help="frames timed for each compute-only figure (40)")
    p.add_argument("--clip-size", type=parse_size, default=(1280, 720),
                   help="the fake camera's frame size, WIDTHxHEIGHT (default 1280x720, a laptop webcam's)")
    p.add_argument("--alternatives", action="store_true", help="also measure the settings in ALTERNATIVES")
    args = p.parse_args(argv)
    if not (1 <= args.seconds <= 600 and 0 <= args.warmup <= 60 and 1 <= args.runs <= 10_000):
        p.error("--seconds must be 1-600, --warmup 0-60 and --runs 1-10000")
    w, h = args.clip_size
    if w is None or w % 2 or h % 2 or w < h or h < 240:  # the clip's 4:2:0 chroma; room for the photo to drift
        p.error("--clip-size needs WIDTHxHEIGHT with even sides, the width at least the height, at least 240 high")
    return args


# ---- the machine and the model

def cpu_line() -> str:
    """"AMD EPYC ..., 2 logical CPUs; avx2 yes, avx512_vnni no, ..." from /proc/cpuinfo."""
    return machine.cpu_line(FLAGS_THAT_MATTER)


def model_line(predictor) -> str:
    c = predictor.config
    return (f"model: {SHIPPED_CHECKPOINT.name} ({c['arch']}, stem {c.get('stem', '?')}, {c['input_size']} px); "
            f"classifier {predictor.backend}, Grad-CAM PyTorch; detector {predictor.detector.name}")


# ---- CPU time of process trees (/proc)

def process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used, user + system) for every process readable in /proc."""
    tick, table = os.sysconf("SC_CLK_TCK"), {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (name) ": state, ppid, ...
            table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return table


def tree_seconds(table: dict, roots) -> float:
    """CPU seconds of the processes `roots` and all their descendants."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0.0, list(roots)
    while stack:
        pid = stack.pop()
        total += table.get(pid, (0, 0.0))[1]
        stack += children.get(pid, [])
    return total


def cpu_split(app_pid: int) -> dict[str, float]:
    """CPU seconds so far of the app's process tree and of the browser's (this process's other children)."""
    table = process_table()
    others = [pid for pid, (parent, _) in table.items() if parent == os.getpid() and pid != app_pid]
    return {"app": tree_seconds(table, [app_pid]), "browser": tree_seconds(table, others)}


# ---- compute-only

def camera_view(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`frame` as a camera asked for `size` gives it: cropped to its aspect ratio about the centre, then scaled
    (Chromium's crop-and-scale)."""
    from PIL import Image

    w, h = size
    fh, fw = frame.shape[:2]
    cw, ch = min(fw, round(fh * w / h)), min(fh, round(fw * h / w))
    x, y = (fw - cw) // 2, (fh - ch) // 2
    return np.asarray(Image.fromarray(frame[y:y + ch, x:x + cw]).resize((w, h), Image.Resampling.BILINEAR))


def compute_only(predictor, frames: list[np.ndarray], show_cam: bool, runs: int) -> dict:
    """The handler alone on `frames` (cycled): median ms, the frames/s that allows, share with a face."""
    for frame in frames[:WARMUP_RUNS]:
        label_frame(predictor, frame, show_cam)
    seconds, faces = [], 0
    for k in range(runs):
        start = time.perf_counter()
        _, label = label_frame(predictor, frames[k % len(frames)], show_cam)
        seconds.append(time.perf_counter() - start)
        faces += label is not None
    ms = 1000 * statistics.median(seconds)
    return {"ms": ms, "fps": 1000 / ms, "faces": faces / runs}


# ---- in the browser

@dataclass
class Window:
    """One counting window: the page's clock (ms), the wall clock (s) and the CPU split at its two ends."""
    page_ms: float
    wall_s: float
    cpu: dict


def window_now(page, app_pid: int) -> Window:
    return Window(page_clock(page), time.time(), cpu_split(app_pid))


def handler_calls(calls: Path, start_s: float, end_s: float) -> list[tuple[float, bool]]:
    """(wall s, face labelled) of each handler call the app logged between two wall-clock times."""
    rows = [line.split() for line in calls.read_text().splitlines() if line.strip()]
    return [(float(wall), face == "1") for start, wall, face in rows if start_s <= float(start) < end_s]


def browser_figures(page, app_pid: int, calls: Path, seconds: float) -> dict:
    """Stream for `seconds` and count: frames sent, answered (handler ms) and seen, a second; CPU cores used."""
    first = window_now(page, app_pid)
    time.sleep(seconds)
    last = window_now(page, app_pid)
    span = (last.page_ms - first.page_ms) / 1000
    answered = handler_calls(calls, first.wall_s, last.wall_s)
    return {
        "sent": page.evaluate(SENT_BETWEEN, [first.page_ms, last.page_ms]) / span,
        "answered": len(answered) / span,
        "answer_ms": 1000 * statistics.median(w for w, _ in answered) if answered else float("nan"),
        "seen": labelled_frames(page, first.page_ms, last.page_ms) / span,
        "app_cores": (last.cpu["app"] - first.cpu["app"]) / span,
        "browser_cores": (last.cpu["browser"] - first.cpu["browser"]) / span,
        "faces": sum(f for _, f in answered) / len(answered) if answered else 0.0,
    }


def in_browser(browser, stream: LiveStream, args, workdir: Path) -> tuple[tuple[int, int], dict]:
    """Start the app with `stream`'s settings, stream the fake camera to it, and measure each of MODES.
    Returns (the frame size the page sent, {mode: figures})."""
    calls = workdir / f"calls-{stream.every_s:g}-{stream.size}-{stream.out_format}.txt"
    calls.touch()
    with launched_app(args=[*stream_args(stream), "--calls", str(calls)], module="bench.webcam_app",
                      log_path=calls.with_suffix(".log")) as app:
        page = open_app_page(browser, app.url)
        page.evaluate("performance.setResourceTimingBufferSize(1000000)")
        start_webcam(page)
        size = tuple(page.evaluate(VIDEO_SIZE))
        figures = {}
        for mode, show_cam in MODES.items():
            page.get_by_label("Live Grad-CAM").set_checked(show_cam)
            time.sleep(args.warmup)  # and after a switch, frames already on their way were drawn the other way
            figures[mode] = browser_figures(page, app.pid, calls, args.seconds)
        page.context.close()
    return size, figures


# ---- the report

def settings_name(stream: LiveStream) -> str:
    chosen = " (chosen)" if stream == LIVE_STREAM else ""
    return f"every {stream.every_s:g} s, ask {stream.size}, {stream.out_format}{chosen}"


HEADER = (f"{'settings':<40} {'mode':<9} {'frame':>9} | {'compute-only':>18} | {'sent':>5} {'answered (ms)':>15} "
          f"{'seen':>5} | {'app CPU':>7} {'browser CPU':>11} | faces")


def report_rows(stream: LiveStream, size, compute: dict, browser: dict) -> list[str]:
    rows = []
    for mode in MODES:
        c, b = compute[mode], browser[mode]
        rows.append(f"{settings_name(stream):<40} {mode:<9} {size[0]:>4}x{size[1]:<4} | "
                    f"{c['fps']:5.1f} fps ({c['ms']:5.1f} ms) | {b['sent']:5.1f} {b['answered']:5.1f} "
                    f"({b['answer_ms']:5.1f} ms) {b['seen']:5.1f} | {b['app_cores']:7.2f} {b['browser_cores']:11.2f} "
                    f"| {c['faces']:.0%} / {b['faces']:.0%}")
    return rows


def measure(predictor, browser, stream: LiveStream, clip: list[np.ndarray], args, workdir: Path) -> list[str]:
    size, browser_fig = in_browser(browser, stream, args, workdir)
    frames = [camera_view(f, size) for f in clip]
    compute = {mode: compute_only(predictor, frames, show_cam, args.runs) for mode, show_cam in MODES.items()}
    return report_rows(stream, size, compute, browser_fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    reason = browser_missing()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import Error as BrowserError

    from fer_demo.serving.predictor import Predictor

    predictor = Predictor()
    print(cpu_line())
    print(model_line(predictor))
    w, h = args.clip_size
    print(f"fake camera: {w}x{h} at {WEBCAM_FPS} frames/s; figures are frames a second, browser ones over "
          f"{args.seconds:g} s after {args.warmup:g} s; compute-only: median of {args.runs} frames")
    print(HEADER, flush=True)
    clip = list(webcam_frames(args.clip_size))
    streams = [LIVE_STREAM, *(s for s in ALTERNATIVES if s != LIVE_STREAM)] if args.alternatives else [LIVE_STREAM]
    with tempfile.TemporaryDirectory(prefix="fer-bench-webcam-") as tmp, \
            chromium_browser(Path(tmp), args.clip_size) as browser:
        for stream in streams:
            try:
                rows = measure(predictor, browser, stream, clip, args, Path(tmp))
            except LaunchError as e:
                print(f"error: the app did not start: {e}", file=sys.stderr)
                return 1
            except BrowserError as e:  # the page did not load, or the webcam never labelled a face
                print(f"error: the browser run with {settings_name(stream)} failed: {e.message}", file=sys.stderr)
                return 1
            print("\n".join(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
