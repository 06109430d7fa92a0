"""The live webcam's stream settings without a browser: what the Predict tab asks of Gradio and of the camera,
the fake camera's clip the browser tests and bench/webcam_fps.py play, and the bench app's options.
(The frame rate a browser sees: test_app_browser.py, slow.)"""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from bench.webcam_app import parse_args as webcam_app_args
from bench.webcam_app import stream_args
from fer_demo.ui.predict_tab import LIVE_STREAM, LiveStream, build_predict_tab

from fer_demo_testing.browser import WEBCAM_FPS, fake_webcam, webcam_frames


@pytest.fixture(scope="module")
def predict_tab(predictor):
    with gr.Blocks() as blocks:
        build_predict_tab(predictor)
    return blocks


def _component(blocks, elem_id: str):
    (found,) = [b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    return found


def test_the_stream_runs_with_the_live_settings(predict_tab):
    (live,) = [fn for fn in predict_tab.fns.values() if fn.api_name == "live_frame"]
    assert live.stream_every == LIVE_STREAM.every_s
    camera = _component(predict_tab, "live-in").webcam_options
    assert camera.constraints == {"video": {"width": {"ideal": LIVE_STREAM.width},
                                            "height": {"ideal": LIVE_STREAM.height}}}
    assert _component(predict_tab, "live-out").format == LIVE_STREAM.out_format == "jpeg"


def test_without_a_size_the_camera_keeps_its_own():
    stream = LiveStream(every_s=0.1)
    assert stream.size == "camera" and stream.webcam_options().constraints is None  # Gradio's default ask


def test_the_fake_camera_clip_changes_every_frame(tmp_path):
    frames = list(webcam_frames((320, 240), fps=10, seconds=2))
    assert len(frames) == 20 and all(f.shape == (240, 320, 3) for f in frames)
    assert not any(np.array_equal(a, b) for a, b in zip(frames, frames[1:] + frames[:1]))  # looped too
    clip = fake_webcam(tmp_path / "clip.y4m", (320, 240), fps=WEBCAM_FPS).read_bytes()
    header, _, body = clip.partition(b"\n")
    assert header == f"YUV4MPEG2 W320 H240 F{WEBCAM_FPS}:1 Ip A1:1 C420jpeg".encode()
    assert len(body) == WEBCAM_FPS * 2 * (len(b"FRAME\n") + 320 * 240 * 3 // 2)


def test_the_bench_app_takes_a_stream_and_passes_the_rest_on(tmp_path):
    stream = LiveStream(every_s=0.033, width=320, height=240, out_format="webp")
    parsed, calls, rest = webcam_app_args([*stream_args(stream), "--calls", str(tmp_path / "c"), "--port", "9"])
    assert parsed == stream and calls == tmp_path / "c" and rest == ["--port", "9"]
    assert webcam_app_args([*stream_args(LiveStream(0.1)), "--calls", "c"])[0] == LiveStream(0.1)


@pytest.mark.parametrize("option, value, says", [("--size", "640", "WIDTHxHEIGHT"), ("--size", "0x0", "16-4096"),
                                                  ("--every", "0", "seconds from 0.01"),
                                                  ("--every", "soon", "seconds from 0.01")])
def test_the_bench_app_refuses_bad_settings_in_words(capsys, option, value, says):
    options = {"--every": "0.05", "--size": "640x480", "--format": "jpeg", "--calls": "c", option: value}
    with pytest.raises(SystemExit) as exit_:
        webcam_app_args([word for pair in options.items() for word in pair])
    assert exit_.value.code == 2 and says in capsys.readouterr().err
