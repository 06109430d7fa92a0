"""The Video tab's work: clips checked and sampled, faces followed and classified, CSV / H.264 clip / timeline
written; bad clips refused in plain words; /video through a running app.py."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import cv2
import gradio as gr
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from fer_demo.vision.clips import MAX_SECONDS, ClipError, probe, sample_times
from fer_demo.vision.detectors import Box
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import EXAMPLES_DIR
from fer_demo.ui.video_tab import api_video, render_video
from fer_demo.vision.tracking import MAX_GAP_SECONDS, Tracker
from fer_demo.serving.video import NoFaceError, analyze_clip, csv_fields, read_csv, timeline_figure


PHOTOS = EXAMPLES_DIR / "photos"
SIZE = (640, 480)
FPS = 10
FRAMES = 40  # 4 s
RATE = 2.0  # frames 0, 5, ..., 35: 8 samples


def _photo(name: str, side: int) -> np.ndarray:
    img = Image.open(PHOTOS / name).convert("RGB")
    w, h = img.size
    return np.asarray(img.crop((0, 0, min(w, h), min(w, h))).resize((side, side)))


def write_clip(path: Path, frames, fps: float = FPS, size=SIZE) -> Path:
    """Frames (RGB) as an MPEG-4 Part 2 mp4, as OpenCV writes them (what a typical upload is not: H.264)."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for rgb in frames:
        out.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    out.release()
    return path


def two_people(n: int = FRAMES):
    """The astronaut drifting right along the top, Grace Hopper drifting left along the bottom."""
    top, bottom = _photo("astronaut.jpg", 200), _photo("grace_hopper.jpg", 200)
    for k in range(n):
        canvas = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        canvas[20:220, 20 + 5 * k:220 + 5 * k] = top
        canvas[260:460, 420 - 5 * k:620 - 5 * k] = bottom
        yield canvas


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "two people.mp4", two_people())


@pytest.fixture(scope="module")
def result(predictor, clip, tmp_path_factory):
    return analyze_clip(predictor, clip, RATE, out_dir=tmp_path_factory.mktemp("out"))


# --- sampling and tracking ---


def test_sampling_takes_frames_at_the_chosen_rate():
    take = sample_times(10.0, 2.0)
    assert [i for i in range(40) if next(take)] == [0, 5, 10, 15, 20, 25, 30, 35]
    take = sample_times(25.0, 3.0)  # not a divisor: the frame nearest each 1/3 s
    assert [i for i in range(26) if next(take)] == [0, 8, 17, 25]
    take = sample_times(10.0, 30.0)  # faster than the clip: every frame
    assert all(next(take) for _ in range(20))


def test_tracker_keeps_numbers_through_reordering_and_gives_new_ones_after_a_gap():
    tracker = Tracker()
    a, b = Box(100, 100, 50, 50), Box(400, 100, 50, 50)
    assert tracker.update([a, b], 0.0) == [1, 2]
    assert tracker.update([Box(420, 110, 52, 50), Box(125, 95, 50, 50)], 0.5) == [2, 1]  # moved, listed swapped
    assert tracker.update([Box(125, 95, 50, 50)], 1.0) == [1]  # person 2 out of sight
    assert tracker.update([Box(425, 110, 50, 50), Box(130, 95, 50, 50)], 2.0) == [2, 1]  # back within the gap
    later = 2.0 + MAX_GAP_SECONDS + 0.5
    assert tracker.update([Box(130, 95, 50, 50)], later) == [3]  # unseen too long: a new person
    assert tracker.update([Box(500, 300, 50, 50), Box(135, 95, 52, 52)], later + 0.5) == [4, 3]
    assert tracker.update([Box(135, 95, 150, 150)], later + 1.0) == [5]  # three times the size: not the same face


def test_two_people_are_followed_each_with_one_number(result):
    s = result.summary
    assert s["n_persons"] == 2 and s["frames_sampled"] == 8 and s["n_faces"] == 16
    assert "2 people followed through 8 frames" in s["message"]
    by_person = {p: [r for r in result.rows if r["person"] == p] for p in (1, 2)}
    top, bottom = by_person[1], by_person[2]  # person 1 is the first in reading order: the top face
    assert all(r["y"] + r["h"] < 240 for r in top) and all(r["y"] > 240 for r in bottom)
    assert [r["x"] for r in top] == sorted(r["x"] for r in top) and top[-1]["x"] - top[0]["x"] > 120
    assert [r["x"] for r in bottom] == sorted((r["x"] for r in bottom), reverse=True)
    astronaut = s["persons"][0]
    assert astronaut["top_label"] == "happy" and astronaut["frames"] == 8
    assert (astronaut["first"], astronaut["last"]) == (0.0, 3.5)


def test_csv_has_one_row_per_face_per_frame(result, clip):
    with open(result.csv_path, newline="") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    assert tuple(header) == ("frame", "time", "person", "x", "y", "w", "h", *FER_LABELS) == csv_fields(FER_LABELS)
    assert len(rows) == 16
    parsed = read_csv(result.csv_path)
    assert parsed == result.rows
    assert [r["frame"] for r in parsed] == [f for f in range(0, FRAMES, 5) for _ in (1, 2)]
    assert [r["person"] for r in parsed] == [1, 2] * 8
    for r in parsed:
        assert r["time"] == pytest.approx(r["frame"] / FPS)
        assert sum(r[name] for name in FER_LABELS) == pytest.approx(1.0, abs=2e-3)
        assert 0 <= r["x"] and r["x"] + r["w"] <= SIZE[0] and 0 <= r["y"] and r["y"] + r["h"] <= SIZE[1]


def test_annotated_clip_is_browser_playable_h264(result):
    data = result.video_path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # index first: the browser can start playing at once
    frames = imageio_ffmpeg.read_frames(str(result.video_path))
    meta = next(frames)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["size"] == SIZE and meta["fps"] == RATE
    assert sum(1 for _ in frames) == 8
    cap = cv2.VideoCapture(str(result.video_path))
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape == (SIZE[1], SIZE[0], 3)
    assert (np.abs(bgr.astype(int) - [0, 200, 255][::-1]).sum(axis=2) < 60).sum() > 200  # person 1's box colour


def test_a_low_rate_samples_sparsely_and_reports_progress(predictor, clip, tmp_path):
    seen = []
    r = analyze_clip(predictor, clip, 0.5, out_dir=tmp_path, progress=lambda frac, desc: seen.append((frac, desc)))
    assert [row["frame"] for row in r.rows] == [0, 0, 20, 20]  # every 2 s of the 4 s clip
    assert r.summary["notes"] == []  # the last sample is 2 s before the end: not a sign of truncation
    assert seen == [(0.5, "frame 1 of 2"), (1.0, "frame 2 of 2")]


def test_large_frames_are_scaled_down_and_boxes_reported_in_clip_pixels(predictor, tmp_path):
    big = [cv2.resize(f, (1280, 960)) for f in two_people(12)]
    r = analyze_clip(predictor, write_clip(tmp_path / "big.mp4", big, size=(1280, 960)), 2.0, out_dir=tmp_path)
    meta = next(imageio_ffmpeg.read_frames(str(r.video_path)))
    assert meta["size"] == (960, 720)
    assert r.summary["clip"]["width"] == 1280 and r.summary["n_persons"] == 2
    assert max(row["x"] + row["w"] for row in r.rows) > 640  # the bottom face, on the right, in 1280-px pixels


def test_timeline_figure_has_one_panel_per_person(result):
    fig = timeline_figure(result.rows, FER_LABELS)
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 2 and [ax.get_ylabel() for ax in panels] == ["person 1", "person 2"]
    assert all(len(ax.lines) == 7 and len(ax.lines[0].get_xdata()) == 8 for ax in panels)
    assert [t.get_text() for t in panels[0].get_legend().get_texts()] == list(FER_LABELS)
    png = io.BytesIO()
    fig.savefig(png, format="png")
    assert Image.open(png).size[0] > 500


def test_handlers_answer_and_render(predictor, clip):
    summary, video_path, csv_path = api_video(predictor, str(clip), RATE)
    assert summary["n_persons"] == 2 and video_path.endswith(".mp4") and csv_path.endswith(".csv")
    message, fig = render_video(predictor, summary, csv_path)
    assert message == summary["message"] and len([ax for ax in fig.axes if ax.lines]) == 2
    assert render_video(predictor, None, None) == ("", None)


# --- bad input ---


def _truncated_mp4v(clip: Path, tmp_path: Path) -> Path:
    data = clip.read_bytes()  # OpenCV writes the index (moov) last: half a file has none
    assert data.find(b"moov") > data.find(b"mdat")
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.mp4"


def _renamed_png(clip: Path, tmp_path: Path) -> Path:
    Image.open(PHOTOS / "astronaut.jpg").save(tmp_path / "photo.png")
    return Path(shutil.copy(tmp_path / "photo.png", tmp_path / "photo.mp4"))


def _too_long(clip: Path, tmp_path: Path) -> Path:
    gray = np.full((48, 64, 3), 128, np.uint8)
    return write_clip(tmp_path / "long.mp4", [gray] * 62, fps=1, size=(64, 48))  # 62 s


def _no_face(clip: Path, tmp_path: Path) -> Path:
    coffee = np.asarray(Image.open(PHOTOS / "coffee_no_face.jpg").convert("RGB").resize(SIZE))
    return write_clip(tmp_path / "coffee.mp4", [np.roll(coffee, 4 * k, axis=1) for k in range(20)])


def _one_frame(clip: Path, tmp_path: Path) -> Path:
    return write_clip(tmp_path / "still.mp4", [next(two_people(1))])


def _text(clip: Path, tmp_path: Path) -> Path:
    (tmp_path / "notes.mp4").write_text("not a video")
    return tmp_path / "notes.mp4"


def _empty(clip: Path, tmp_path: Path) -> Path:
    (tmp_path / "empty.mp4").write_bytes(b"")
    return tmp_path / "empty.mp4"


BAD_CLIPS = {  # name: (maker, what the message says)
    "truncated": (_truncated_mp4v, "is not a video we can play: it is broken, truncated or not a video file"),
    "renamed_png": (_renamed_png, "'photo.mp4' is a PNG image, not a video"),
    "too_long": (_too_long, f"is 62.0 s long; the limit is {MAX_SECONDS:.0f} s"),
    "no_face": (_no_face, "No face found in the 4 frames sampled"),
    "one_frame": (_one_frame, "'still.mp4' holds a single picture, not a video"),
    "text": (_text, "'notes.mp4' is not a video we can play"),
    "empty": (_empty, "'empty.mp4' is empty"),
}


@pytest.mark.parametrize("name", list(BAD_CLIPS))
def test_bad_clips_get_one_clear_line(predictor, clip, tmp_path, name):
    make, message = BAD_CLIPS[name]
    path = make(clip, tmp_path)
    with pytest.raises(ClipError) as info:
        analyze_clip(predictor, path, RATE, out_dir=tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(gr.Error) as shown:  # what the UI and the API show
        api_video(predictor, str(path), RATE)
    assert message in shown.value.message


def test_no_face_is_its_own_error(predictor, tmp_path):
    with pytest.raises(NoFaceError):
        analyze_clip(predictor, _no_face(None, tmp_path), RATE, out_dir=tmp_path)


def test_a_clip_cut_short_after_its_index_is_analysed_up_to_the_cut(predictor, result, tmp_path):
    data = result.video_path.read_bytes()  # our H.264 clips carry their index first
    cut = tmp_path / "cut_h264.mp4"
    cut.write_bytes(data[: int(len(data) * 0.75)])  # past the index and the first frames
    r = analyze_clip(predictor, cut, RATE, out_dir=tmp_path)
    assert 1 <= r.summary["frames_sampled"] < 8
    assert "(truncated?)" in r.summary["message"] and r.summary["notes"]


def test_a_header_without_length_is_still_held_to_the_limit(predictor, tmp_path, monkeypatch):
    import fer_demo.vision.clips as clips

    long_clip = _too_long(None, tmp_path)
    info = clips.ClipInfo("The file 'long.mp4'", 1.0, 0, 64, 48)  # as if the header gave no frame count
    monkeypatch.setattr("fer_demo.serving.video.probe", lambda path: info)
    with pytest.raises(ClipError, match="the limit is 60 s"):
        analyze_clip(predictor, long_clip, RATE, out_dir=tmp_path)
    assert probe(write_clip(tmp_path / "ok.mp4", [np.zeros((48, 64, 3), np.uint8)] * 60, fps=1,
                            size=(64, 48))).duration == 60.0


@pytest.mark.parametrize("rate", [0, 0.1, 11, "fast", None])
def test_rates_out_of_range_are_refused(predictor, clip, rate):
    with pytest.raises(gr.Error, match="sampling rate must be"):
        api_video(predictor, str(clip), rate)


def test_no_clip_given(predictor):
    with pytest.raises(gr.Error, match="No clip was given"):
        api_video(predictor, None, RATE)


# --- through a running app.py ---


@pytest.mark.slow
def test_video_endpoint_end_to_end_and_the_app_survives_bad_clips(app_server, clip, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(app_server, verbose=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in api["/video"]["parameters"]] == ["clip", "rate"]
    for name in ("renamed_png", "truncated", "too_long", "no_face"):
        make, message = BAD_CLIPS[name]
        with pytest.raises(AppError) as info:
            client.predict(clip=handle_file(str(make(clip, tmp_path))), rate=RATE, api_name="/video")
        assert message in str(info.value)
    summary, video, table = client.predict(clip=handle_file(str(clip)), rate=RATE, api_name="/video")
    video = video["video"] if isinstance(video, dict) else video
    assert summary["n_persons"] == 2 and summary["frames_sampled"] == 8
    assert [p["person"] for p in summary["persons"]] == [1, 2]
    assert next(imageio_ffmpeg.read_frames(video))["codec"] == "h264"
    with open(table, newline="") as f:
        assert len(list(csv.DictReader(f))) == 16
    assert client.predict(photo=handle_file(str(PHOTOS / "astronaut.jpg")), whole_image=False,
                          api_name="/predict")["n_faces"] == 1
