"""Video clips in and out: check and sample an upload, write a clip that browsers can play.

OpenCV decodes (its wheel bundles FFmpeg's decoders). It writes mp4 only as
MPEG-4 Part 2 ("mp4v"), which browsers do not play, so clips are written as
H.264 (yuv420p, moov atom first) by the static ffmpeg binary that the
imageio-ffmpeg wheel ships; nothing is fetched at run time.

Every failure raises `ClipError` (a `ValueError`) with a message that can be
shown to a user as it is.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import imageio_ffmpeg
import numpy as np
from PIL import Image, UnidentifiedImageError

from .images import MAX_FILE_BYTES, describe_bytes

MAX_SECONDS = 60.0  # longest clip accepted
DURATION_SLACK = 0.5  # seconds a container may round a clip's length up by
MAX_PIXELS = 3840 * 2160  # largest frame accepted (4K UHD)
MAX_FPS = 1000.0  # a declared frame rate above this is junk
# ffmpeg's H.264 settings for the annotated clip: fast to encode, plays in every browser, starts before it is loaded
H264_OUTPUT = ["-preset", "veryfast", "-crf", "23", "-movflags", "+faststart"]
ACCEPTED = "MP4, MOV, WebM, MKV or AVI"


class ClipError(ValueError):
    """An upload cannot be used as a video clip; the message says why, in plain words."""


@dataclass(frozen=True)
class ClipInfo:
    """What a clip's header declares: frame rate, frame count (0 when it does not say) and frame size."""

    name: str  # the file's name, for messages: "The file 'clip.mp4'"
    fps: float
    frames: int
    width: int
    height: int

    @property
    def duration(self) -> float | None:
        return self.frames / self.fps if self.frames else None

    def to_json(self) -> dict:
        duration = self.duration
        return {"width": self.width, "height": self.height, "fps": round(self.fps, 3),
                "frames": self.frames, "duration": None if duration is None else round(duration, 3)}


def too_long(name: str, seconds: float) -> ClipError:
    return ClipError(f"{name} is {seconds:.1f} s long; the limit is {MAX_SECONDS:.0f} s: trim it and try again")


def probe(path: str | Path) -> ClipInfo:
    """Open a clip's header and check it: a video, at most MAX_SECONDS long, frames at most MAX_PIXELS."""
    path = Path(path)
    name = f"The file {path.name!r}"  # how messages name it
    if not path.is_file():
        raise ClipError(f"{name} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise ClipError(f"{name} is empty")
    if size > MAX_FILE_BYTES:
        raise ClipError(f"{name} is too large ({describe_bytes(size)}); the limit is {describe_bytes(MAX_FILE_BYTES)}")
    refuse_still_image(path, name)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise ClipError(f"{name} is not a video we can play: it is broken, truncated or not a video file "
                            f"(use {ACCEPTED})")
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    if not (0 < fps <= MAX_FPS) or not math.isfinite(fps):
        raise ClipError(f"{name} declares no usable frame rate; it is broken or not a video (use {ACCEPTED})")
    if width * height > MAX_PIXELS:
        raise ClipError(f"{name} has {width}x{height} frames; the limit is 3840x2160 (4K): scale it down first")
    info = ClipInfo(name, fps, int(count) if 0 < count < 1e9 else 0, width, height)
    if info.duration is not None and info.duration > MAX_SECONDS + DURATION_SLACK:
        raise too_long(name, info.duration)
    return info


def refuse_still_image(path: Path, name: str) -> None:
    """A photo (whatever its file name says) is refused here: FFmpeg would open it as a one-frame video."""
    try:
        with Image.open(path) as img:
            kind, animated = img.format, getattr(img, "is_animated", False)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return
    if kind != "MPEG" and not animated:  # PIL names MPEG-1 streams but cannot decode them: those are video
        raise ClipError(f"{name} is a {kind} image, not a video: the Predict tab takes photos")


def sample_times(fps: float, rate: float) -> Iterator[bool]:
    """For frames 0, 1, 2, ... at `fps`: whether to take each one, so that frames `1/rate` s apart are taken."""
    half = 0.5 / fps
    due, i = 0.0, 0
    while True:
        t = i / fps
        take = t + half >= due
        while due <= t + half:
            due += 1.0 / rate
        yield take
        i += 1


def sample_frames(path: str | Path, info: ClipInfo, rate: float) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, time in s, RGB frame) for the frames closest to every `1/rate` s of the clip.

    Decodes every frame (skipped ones are grabbed, not converted); raises ClipError
    past MAX_SECONDS, for clips whose header gave no length.
    """
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        for index, take in enumerate(sample_times(info.fps, rate)):
            if not cap.grab():
                return
            t = index / info.fps
            if t > MAX_SECONDS + DURATION_SLACK:
                raise too_long(info.name, t)
            if take:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    yield index, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


@contextmanager
def h264_writer(path: str | Path, size: tuple[int, int], fps: float) -> Iterator[Callable[[np.ndarray], None]]:
    """Write RGB frames of `size` (width, height; both even) as an H.264 mp4: `with h264_writer(...) as write:`."""
    frames = imageio_ffmpeg.write_frames(str(path), size, fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         quality=None, macro_block_size=2, ffmpeg_log_level="error",
                                         output_params=H264_OUTPUT)
    frames.send(None)  # starts ffmpeg
    try:
        yield lambda rgb: frames.send(np.ascontiguousarray(rgb, dtype=np.uint8))
    finally:
        frames.close()
