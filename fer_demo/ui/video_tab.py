"""The Video tab: the faces of a clip followed from frame to frame, and their expressions over time.

Handlers are module-level functions of the Predictor (tests call them directly);
`build_video_tab` lays the tab out and binds them to it.
"""

from __future__ import annotations

import gradio as gr

from ..vision.clips import ACCEPTED, MAX_SECONDS, ClipError
from ..vision.images import MAX_FILE_BYTES, describe_bytes
from ..serving.predictor import Predictor
from ..vision.tracking import MAX_GAP_SECONDS
from .common import bind, errors_as_gr_error
from ..serving.video import DEFAULT_RATE, MAX_RATE, MIN_RATE, analyze_clip, read_csv, timeline_figure


@errors_as_gr_error
def api_video(predictor: Predictor, clip: str | None, rate: float = DEFAULT_RATE,
              progress=gr.Progress()) -> tuple[dict, str, str]:
    """Find, follow and classify the faces of a clip (at most 60 s) sampled at `rate` frames per second.

    Args:
        clip: the video (MP4, MOV, WebM, MKV or AVI)
        rate: frames sampled per second

    Returns:
        A summary per person (JSON), the clip with numbered boxes (H.264 mp4) and a CSV with every face in every
        sampled frame: frame, time, person, box x, y, w, h and the seven probabilities."""
    if clip is None:
        raise ClipError("No clip was given: upload a video.")
    result = analyze_clip(predictor, clip, rate, progress=lambda frac, desc: progress(frac, desc=desc))
    return result.summary, str(result.video_path), str(result.csv_path)


@errors_as_gr_error
def render_video(predictor: Predictor, result: dict | None, csv_file: str | None):
    """The message and the timeline figure for an answer of /video."""
    if not result or not csv_file:
        return "", None
    return result["message"], timeline_figure(read_csv(csv_file), predictor.labels)


def build_video_tab(predictor: Predictor) -> None:
    """The Video tab and the /video endpoint; call inside `with gr.Tabs():`."""
    with gr.Tab("Video", id="video"):
        with gr.Row():
            with gr.Column(scale=1):
                clip = gr.Video(label=f"Clip (at most {MAX_SECONDS:.0f} s)", sources=["upload"], height=320,
                                elem_id="video-in")
                rate = gr.Slider(MIN_RATE, MAX_RATE, value=DEFAULT_RATE, step=0.5, label="Frames analysed per second",
                                 elem_id="video-rate")
                run = gr.Button("Follow the faces and classify", variant="primary", elem_id="video-run")
                gr.Markdown(
                    f"Clips: {ACCEPTED}, at most {MAX_SECONDS:.0f} s and {describe_bytes(MAX_FILE_BYTES)}. "
                    f"Each sampled frame goes through the Predict tab's face detector ({predictor.detector.name}); "
                    "faces are followed from frame to frame by position, so each person keeps one number "
                    f"(P1, P2, ...); someone out of sight for more than {MAX_GAP_SECONDS:g} s comes back with a "
                    "new one. To keep up, frames are classified without test-time augmentation (the Predict tab "
                    "averages 10 views of each face: shifted and mirrored copies). The annotated clip shows the "
                    "sampled frames, at the rate they were sampled, without sound. A clip your browser cannot "
                    "preview (such as MPEG-4 Part 2 or AVI) is analysed all the same.")
            with gr.Column(scale=2):
                message = gr.Markdown(elem_id="video-message")
                annotated = gr.Video(label="Faces followed (numbered per person)", interactive=False,
                                     elem_id="video-out")
                timeline = gr.Plot(label="Expression timeline per person", elem_id="video-timeline")
                table = gr.File(label="Every face in every sampled frame (CSV)", interactive=False,
                                elem_id="video-csv")
                with gr.Accordion("JSON answer (/video)", open=False):
                    answer = gr.JSON(label="/video")
    run.click(bind(api_video, predictor), [clip, rate], [answer, annotated, table], api_name="video",
              concurrency_id="video", concurrency_limit=1).success(
        bind(render_video, predictor), [answer, table], [message, timeline], api_visibility="private")
