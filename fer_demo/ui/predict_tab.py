"""The Predict tab: a photo's faces with their expressions and Grad-CAMs, and the live webcam.

Handlers are module-level functions of the Predictor (tests call them directly);
`build_predict_tab` lays the tab out and binds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..vision.drawing import enlarge, overlay
from ..serving.cams import DEFAULT_METHOD, default_layer
from ..vision.faces import MAX_FACES
from ..vision.images import MAX_FILE_BYTES, MAX_SIDE, ImageLoadError, describe_bytes, load_image
from ..core.labels import FACE_SIZE, NUM_CLASSES, label_probs
from ..serving.pictures import face_cams, labelled, photo_with_cams
from ..serving.predictor import Analysis, Predictor
from ..core.transforms import NO_TTA, TTA
from .common import bind, errors_as_gr_error, example_files, photo_input

FACES_PER_ROW = 3
LIVE_OPACITY = 0.45
LIVE_TTA = NO_TTA  # one view per face: a stream needs frames more than the last point of accuracy
ANALYSIS_TTL_S = 3600  # a session's last analysis (the photo and its faces) is dropped after an hour


@dataclass(frozen=True)
class LiveStream:
    """How the live webcam streams. Every `every_s` seconds the page grabs the camera's current frame, encodes it
    as JPEG and posts it; the app labels the latest frame it has whenever it is free (frames that arrive while it
    is busy are skipped) and sends the labelled frame back as an `out_format` file. The camera is asked for
    `width` x `height` (it gives the nearest it has, scaled down from its own; None: Gradio's default ask, up to
    1920x1440, i.e. the camera's full size)."""

    every_s: float
    width: int | None = None
    height: int | None = None
    out_format: str = "jpeg"  # a 640x480 frame encodes in under 1 ms; as WebP, Gradio's default, in about 18

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}" if self.width and self.height else "camera"

    def webcam_options(self) -> gr.WebcamOptions:
        ask = {"video": {"width": {"ideal": self.width}, "height": {"ideal": self.height}}} \
            if self.width and self.height else None
        return gr.WebcamOptions(mirror=True, constraints=ask)


# Chosen with bench/webcam_fps.py (docs/results.md, "The live webcam's frame rate"): 0.05 s lets the page see about 19
# labelled frames a second on 2 cores, 0.1 s capped it at 10; 640x480 keeps the faces' pixels for the crops.
LIVE_STREAM = LiveStream(every_s=0.05, width=640, height=480)


@errors_as_gr_error
def predict_with_analysis(predictor: Predictor, photo: str | None, whole_image: bool = False,
                          tta: bool = True) -> tuple[dict, Analysis]:
    """Find the faces in a photo and classify each: box, eye landmarks, crop, top label and the 7 probabilities.

    Args:
        photo: the photo (JPEG, PNG, WebP, GIF, BMP or TIFF)
        whole_image: classify the whole image (its centred square) as one face instead of finding faces
        tta: average each face with its views (the answer's "tta" names them); false classifies the face alone

    Returns:
        The JSON answer: the faces, their boxes, labels and probabilities, and a message in words. (The Predict tab
        also keeps the analysis it draws its pictures from, in a gr.State that API clients do not see.)"""
    if photo is None:
        raise ImageLoadError("No image was given: upload a photo, paste one, or take one with the webcam.")
    a = predictor.analyze(photo, bool(whole_image), tta=predictor.serving_tta(tta))
    return predictor.answer(a), a


def api_predict(predictor: Predictor, photo: str | None, whole_image: bool = False, tta: bool = True) -> dict:
    """/predict's JSON answer alone: what an API client receives."""
    return predict_with_analysis(predictor, photo, whole_image, tta)[0]


def ui_predict(predictor: Predictor, photo, whole_image, tta):
    return (None, None) if photo is None else predict_with_analysis(predictor, photo, whole_image, tta)


def face_slots(a: Analysis, cams, opacity: float) -> list:
    """Updates for the MAX_FACES crop / Grad-CAM / label slots (shown for the detailed faces, hidden after)."""
    detailed = a.detailed()
    crops, overlays, labels = [], [], []
    for slot in range(MAX_FACES):
        if slot < len(detailed):
            f = detailed[slot]
            crops.append(gr.Image(value=enlarge(f.face, 160), visible=True))
            overlays.append(gr.Image(value=overlay(f.face, cams[slot], opacity, 160), visible=True))
            labels.append(gr.Label(value=label_probs(f.probs, a.labels), label=f"Face {f.index}", visible=True))
        else:
            crops.append(gr.Image(value=None, visible=False))
            overlays.append(gr.Image(value=None, visible=False))
            labels.append(gr.Label(value=None, visible=False))
    rows = [gr.update(visible=first < len(detailed)) for first in range(0, MAX_FACES, FACES_PER_ROW)]
    return [*rows, *crops, *overlays, *labels]


@errors_as_gr_error
def render_predict(predictor: Predictor, result: dict | None, a: Analysis | None, opacity):
    """Draw /predict's answer from the analysis it came from: boxed photo, Grad-CAMs on the photo, and one
    slot per detailed face."""
    if not result or a is None:
        hidden = [gr.update(visible=False)] * (-(-MAX_FACES // FACES_PER_ROW)) + \
                 [gr.update(value=None, visible=False)] * (3 * MAX_FACES)
        return ["", None, None, gr.update(visible=False), *hidden]
    boxed = labelled(a)
    cams = face_cams(predictor, a)
    photo_cam = photo_with_cams(predictor, a, opacity, cams) if a.faces else None
    message = result["message"]
    if a.faces:
        message += (f" Detector: {result['detector']}; views averaged: {', '.join(result['tta']['views'])}. "
                    f"{DEFAULT_METHOD} ({default_layer(predictor.map_sizes)}) is for each face's top label; "
                    "the Grad-CAM explorer tab has more methods.")
    return [message, boxed, photo_cam, gr.update(visible=a.no_face), *face_slots(a, cams, opacity)]


def label_frame(predictor: Predictor, frame, show_cam: bool = False):
    """One webcam frame -> (the frame with numbered boxes and top labels, and with `show_cam` each face's
    Grad-CAM; the largest face's probabilities). (None, None) for a missing or unreadable frame.

    What the live stream shows, and what bench/latency.py times."""
    if frame is None:
        return None, None
    try:
        a = predictor.analyze(load_image(frame, max_side=predictor.detector.side), tta=LIVE_TTA)
    except ImageLoadError:
        return None, None
    shown = photo_with_cams(predictor, a, LIVE_OPACITY) if show_cam and a.faces else \
        labelled(a)
    top = a.detailed(1)
    return shown, (label_probs(top[0].probs, a.labels) if top else None)


def settings_text(predictor: Predictor) -> str:
    d = predictor.detector
    text = (f"Detector: {d.name}, on a copy {d.side} px on its longest side. Each face is turned so that its eyes "
            f"are level, cropped square like FER2013, grayscale, {FACE_SIZE}x{FACE_SIZE}, and classified with "
            f"test-time augmentation: {TTA[predictor.tta].description}, averaged. "
            f"Uploads: at most {describe_bytes(MAX_FILE_BYTES)}; larger photos are scaled to {MAX_SIDE} px.")
    return text + "".join(f"\n\n**Note:** {n}" for n in predictor.notes)


def build_predict_tab(predictor: Predictor) -> None:
    photos, fer_faces = example_files("photos"), example_files("fer2013")
    with gr.Row():
        with gr.Column(scale=1):
            photo = photo_input(label="Photo", sources=["upload", "webcam", "clipboard"], height=360, elem_id="photo")
            whole = gr.Checkbox(label="Classify the whole image as one face", value=False)
            tta = gr.Checkbox(label=f"Test-time augmentation ({TTA[predictor.tta].description})", value=True,
                              elem_id="tta")
            with gr.Row():
                run = gr.Button("Find faces and classify", variant="primary")
                opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity")
            if photos:
                gr.Examples([[p] for p in photos], inputs=[photo], label="Photos", api_visibility="private")
            if fer_faces:
                gr.Examples([[p] for p in fer_faces], inputs=[photo], label="FER2013 test faces",
                            examples_per_page=14, api_visibility="private")
        with gr.Column(scale=1):
            message = gr.Markdown(elem_id="predict-message")
            whole_btn = gr.Button("Classify the whole image as one face", visible=False)
            boxed = gr.Image(label="Faces (numbered) and top labels", interactive=False, elem_id="boxed",
                             format="jpeg")
            photo_cam = gr.Image(label="Grad-CAM mapped back onto the photo", interactive=False,
                                 elem_id="photo-cam", format="jpeg")
    rows, crops, overlays, label_slots = [], [], [], []
    for first in range(0, MAX_FACES, FACES_PER_ROW):
        with gr.Row(visible=False, equal_height=False) as row:
            for i in range(first, min(first + FACES_PER_ROW, MAX_FACES)):
                with gr.Column(min_width=320):
                    with gr.Row():
                        crops.append(gr.Image(label=f"Face crop ({FACE_SIZE}x{FACE_SIZE})", interactive=False,
                                              height=170, format="png", elem_id=f"crop-{i}"))
                        overlays.append(gr.Image(label="Grad-CAM, top label", interactive=False, height=170,
                                                 format="png", elem_id=f"cam-{i}"))
                    label_slots.append(gr.Label(num_top_classes=NUM_CLASSES, elem_id=f"label-{i}"))
        rows.append(row)
    with gr.Accordion("Live webcam", open=False):
        gr.Markdown(f"Labels every face in the webcam stream ({TTA[LIVE_TTA].description}, to keep up); tick the "
                    "box to see each face's Grad-CAM live too.")
        live_cam = gr.Checkbox(label="Live Grad-CAM", value=False, elem_id="live-cam")
        with gr.Row():
            live_in = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="live-in",
                               webcam_options=LIVE_STREAM.webcam_options())
            live_out = gr.Image(label="Live labels", interactive=False, elem_id="live-out",
                                format=LIVE_STREAM.out_format)
            live_label = gr.Label(num_top_classes=3, label="Largest face", elem_id="live-label")
    with gr.Accordion("JSON answer (/predict)", open=False):
        predict_json = gr.JSON(label="/predict")
    analysis = gr.State(time_to_live=ANALYSIS_TTL_S)  # what the pictures are drawn from, per browser session
    gr.Markdown(settings_text(predictor), elem_id="predict-settings")

    inputs = [photo, whole, tta]
    answer = [predict_json, analysis]
    render_inputs = [predict_json, analysis, opacity]
    outputs = [message, boxed, photo_cam, whole_btn, *rows, *crops, *overlays, *label_slots]
    render = dict(fn=bind(render_predict, predictor), inputs=render_inputs, outputs=outputs,
                  api_visibility="private", concurrency_id="cam", concurrency_limit=1)
    run.click(bind(predict_with_analysis, predictor), inputs, answer, api_name="predict",
              concurrency_id="predict", concurrency_limit=2).success(**render)
    gr.on([photo.change, whole.change, tta.change], bind(ui_predict, predictor), inputs, answer,
          api_visibility="private", concurrency_id="predict", concurrency_limit=2,
          trigger_mode="always_last").success(**render)
    opacity.release(**render)
    whole_btn.click(lambda: True, None, [whole], api_visibility="private", queue=False)
    live_in.stream(bind(label_frame, predictor), [live_in, live_cam], [live_out, live_label], api_name="live_frame",
                   api_visibility="undocumented", stream_every=LIVE_STREAM.every_s, time_limit=600,
                   concurrency_id="live", concurrency_limit=4, show_progress="hidden")
