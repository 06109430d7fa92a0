"""Expressions through a video clip: sample frames, find each face with the app's detector, follow it from frame
to frame (fer_demo/vision/tracking.py), classify it; write a CSV of every face in every sampled frame, the clip
with numbered boxes (H.264, see fer_demo/vision/clips.py) and a timeline of the seven probabilities per person.
"""

from __future__ import annotations

import csv
import math
import shutil
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from matplotlib.figure import Figure

from ..vision.clips import DURATION_SLACK, MAX_SECONDS, ClipError, ClipInfo, h264_writer, probe, sample_frames
from ..vision.drawing import annotate
from ..core.labels import rounded_label_probs
from .predictor import Predictor
from ..vision.tracking import Tracker
from ..core.transforms import NO_TTA

VIDEO_TTA = NO_TTA  # one view per face: the 10 views of the Predict tab would cost ten forward passes a face
CSV_DIGITS = 4  # decimals of a probability in the CSV
WORK_SIDE = 960  # frames are scaled down to this longest side (the detector sees 640 px anyway)
MIN_RATE, MAX_RATE, DEFAULT_RATE = 0.5, 10.0, 2.0  # frames analysed per second of clip
BOX_FIELDS = ("x", "y", "w", "h")  # in the clip's own pixels
PLOTTED_PERSONS = 6  # the timeline shows the persons seen in the most frames
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "fer-video"
KEEP_SECONDS = 3600  # earlier runs' files are removed (the app has copied them to its cache by then)
LABEL_COLORS = ("#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f")  # FER2013 order


class NoFaceError(ClipError):
    """A clip in which no sampled frame shows a face."""


@dataclass
class VideoResult:
    summary: dict  # the JSON answer of /video
    video_path: Path  # the annotated clip, H.264 mp4
    csv_path: Path  # one row per face per sampled frame
    rows: list[dict]  # the CSV's rows


def csv_fields(labels) -> tuple[str, ...]:
    return ("frame", "time", "person", *BOX_FIELDS, *labels)


def check_rate(rate) -> float:
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise ClipError(f"the sampling rate must be a number of frames per second, not {rate!r}") from None
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ClipError(f"the sampling rate must be between {MIN_RATE:g} and {MAX_RATE:g} frames per second, "
                        f"not {rate:g}")
    return rate


def work_size(width: int, height: int) -> tuple[int, int]:
    """The (even) frame size the analysis and the annotated clip use: at most WORK_SIDE on the longest side."""
    scale = min(1.0, WORK_SIDE / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def output_folder(root: Path = OUTPUT_ROOT) -> Path:
    """A new folder for one run's files; runs older than KEEP_SECONDS are removed."""
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        try:
            if old.is_dir() and time.time() - old.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # another run removed it first
            pass
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


def analyze_clip(predictor: Predictor, path: str | Path, rate: float = DEFAULT_RATE, out_dir: str | Path | None = None,
                 progress: Callable[[float, str], None] | None = None) -> VideoResult:
    """Sample `path` at `rate` frames/s; detect, follow and classify the faces; write the CSV and annotated clip."""
    rate = check_rate(rate)
    info = probe(path)
    out = Path(out_dir) if out_dir else output_folder()
    stem = Path(path).stem[:60] or "clip"
    video_path, csv_path = out / f"{stem}_faces.mp4", out / f"{stem}_faces.csv"
    expected = expected_samples(info, rate)
    tracker, rows, sampled, last_time = Tracker(), [], 0, 0.0
    start = time.perf_counter()
    with closing(sample_frames(path, info, rate)) as frames:
        first = next(frames, None)
        if first is None:
            raise ClipError(f"{info.name} has no frame we can decode; it is broken or truncated")
        size = work_size(first[2].shape[1], first[2].shape[0])
        with h264_writer(video_path, size, min(rate, info.fps)) as write:
            for index, t, rgb in chain([first], frames):
                frame_rows, boxed = analyze_frame(predictor, tracker, index, t, rgb, size)
                rows += frame_rows
                write(boxed)
                sampled, last_time = sampled + 1, t
                if progress:
                    progress(min(sampled / expected, 1.0), f"frame {sampled} of {expected}")
    seconds = time.perf_counter() - start
    if sampled == 1 and info.frames <= 1:
        raise ClipError(f"{info.name} holds a single picture, not a video")
    if not rows:
        raise NoFaceError(f"No face found in the {sampled} frames sampled from {info.name} "
                          f"({rate:g} per second); faces should be upright, well lit and at least about "
                          "40 px tall")
    write_csv(csv_path, rows, csv_fields(predictor.labels))
    summary = summarize(rows, predictor.labels, info, rate, sampled, last_time, seconds)
    summary["detector"] = predictor.detector.name
    return VideoResult(summary, video_path, csv_path, rows)


def analyze_frame(predictor: Predictor, tracker: Tracker, index: int, t: float, rgb: np.ndarray,
                  size: tuple[int, int]) -> tuple[list[dict], np.ndarray]:
    """One sampled frame -> (its CSV rows, in person order; the frame at `size` with numbered boxes)."""
    frame = rgb if rgb.shape[1::-1] == size else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    faces = predictor.analyze(frame, tta=VIDEO_TTA).faces
    persons = tracker.update([f.box for f in faces], t)
    ordered = sorted(zip(persons, faces), key=lambda pf: pf[0])  # also keeps each person's box colour steady
    back = rgb.shape[1] / size[0]  # work pixels -> the clip's own pixels
    labels = predictor.labels
    rows = [{"frame": index, "time": round(t, 3), "person": person, **f.box.scaled(back).to_json(),
             **rounded_label_probs(f.probs, labels, CSV_DIGITS)} for person, f in ordered]
    boxed = annotate(frame, [f.box for _, f in ordered],
                     [f"P{p} {labels[int(f.probs.argmax())]} {f.probs.max():.0%}" for p, f in ordered])
    return rows, boxed


def expected_samples(info: ClipInfo, rate: float) -> int:
    """About how many frames will be sampled (for the progress bar)."""
    duration = info.duration or MAX_SECONDS
    return max(1, math.ceil(duration * min(rate, info.fps) - 1e-6))


def write_csv(path: Path, rows: list[dict], fields) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: str | Path) -> list[dict]:
    """The rows of a CSV that `analyze_clip` wrote, with numbers as numbers."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: (int(v) if k in ("frame", "person", *BOX_FIELDS) else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]


def summarize(rows: list[dict], labels, info: ClipInfo, rate: float, sampled: int, last_time: float,
              seconds: float) -> dict:
    """The /video answer: per person, when they were seen and their mean probabilities; the clip; the timing."""
    persons = []
    for person in sorted({r["person"] for r in rows}):
        mine = [r for r in rows if r["person"] == person]
        mean = {name: round(float(np.mean([r[name] for r in mine])), 4) for name in labels}
        persons.append({"person": person, "frames": len(mine), "first": mine[0]["time"], "last": mine[-1]["time"],
                        "top_label": max(mean, key=mean.get), "mean_probabilities": mean})
    n = len(persons)
    notes = []
    if info.duration and last_time + 1 / rate < info.duration - DURATION_SLACK:  # a sample is missing at the end
        notes.append(f"The clip stops at {last_time:.1f} s of the {info.duration:.1f} s its header declares "
                     "(truncated?); the frames up to there were analysed.")
    message = (f"{n} {'person' if n == 1 else 'people'} followed through {sampled} frames "
               f"({rate:g} per second over {last_time:.1f} s), analysed at {sampled / seconds:.1f} "
               f"frames per second.")
    return {"message": " ".join([message, *notes]), "n_persons": n, "persons": persons,
            "frames_sampled": sampled, "n_faces": len(rows), "sample_rate": rate, "clip": info.to_json(),
            "tta": VIDEO_TTA, "seconds": round(seconds, 3), "analysis_fps": round(sampled / seconds, 2),
            "notes": notes}


def timeline_figure(rows: list[dict], labels) -> Figure:
    """One panel per person (the PLOTTED_PERSONS seen most): the seven probabilities against time."""
    seen = sorted({r["person"] for r in rows}, key=lambda p: -sum(r["person"] == p for r in rows))
    shown = sorted(seen[:PLOTTED_PERSONS])
    fig = Figure(figsize=(9, 1.2 + 1.9 * max(1, len(shown))), dpi=100, layout="constrained")
    axes = fig.subplots(max(1, len(shown)), 1, sharex=True, squeeze=False)[:, 0]
    for ax, person in zip(axes, shown):
        mine = [r for r in rows if r["person"] == person]
        t = [r["time"] for r in mine]
        for name, color in zip(labels, LABEL_COLORS):
            ax.plot(t, [r[name] for r in mine], marker=".", markersize=4, linewidth=1.4, color=color, label=name)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"person {person}")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    if shown:
        axes[0].legend(ncols=len(labels), loc="lower left", bbox_to_anchor=(0, 1.02), fontsize=8, frameon=False)
    title = "Expression probabilities per person"
    if len(seen) > len(shown):
        title += f" (the {len(shown)} of {len(seen)} seen most)"
    fig.suptitle(title, fontsize=10)
    return fig
