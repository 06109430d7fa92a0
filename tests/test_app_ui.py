"""The UI without a server: the Blocks it builds, the Predict tab's handlers called directly, error wrapping,
upload handling, model card links."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from gradio.data_classes import ImageData
from PIL import Image

from fer_demo.vision.faces import MAX_FACES
from fer_demo.vision.images import ImageLoadError, load_image
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT
from fer_demo.serving.predictor import Predictor
from fer_demo.serving.testset import HeldOutSet
from fer_demo.core.transforms import TTA
from fer_demo.ui import build_app
from fer_demo.ui.common import bind, errors_as_gr_error, example_files, photo_input
from fer_demo.ui.model_card import card_images, link_card_images
from fer_demo.ui.predict_tab import (FACES_PER_ROW, api_predict, label_frame, predict_with_analysis, render_predict,
                                     settings_text)

PHOTOS = EXAMPLES_DIR / "photos"
GROUP = str(PHOTOS / "group_collage.jpg")  # four faces
NO_FACE = str(PHOTOS / "coffee_no_face.jpg")
N_ROWS = -(-MAX_FACES // FACES_PER_ROW)


@pytest.fixture(scope="module")
def demo(predictor):
    return build_app(predictor, HeldOutSet(predictor, dataset="/nonexistent"))


def _value(update):
    """The value of a component or update a handler returned."""
    return update.get("value") if isinstance(update, dict) else getattr(update, "value", update)


def _visible(update) -> bool:
    return update.get("visible", True) if isinstance(update, dict) else update.visible


def _split(outputs):
    """render_predict's outputs: (message, boxed, photo-cam, whole-image button, rows, crops, cams, labels)."""
    message, boxed, photo_cam, whole_btn, *rest = outputs
    rows, rest = rest[:N_ROWS], rest[N_ROWS:]
    return message, boxed, photo_cam, whole_btn, rows, rest[:MAX_FACES], rest[MAX_FACES:2 * MAX_FACES], \
        rest[2 * MAX_FACES:]


def test_public_endpoints_and_everything_else_private(demo):
    fns = list(demo.fns.values())
    public = {fn.api_name for fn in fns if fn.api_visibility == "public"}
    assert public - {"video"} == {"predict", "explain", "confusion", "test_report"}  # /video: tests/test_video.py
    (live,) = [fn for fn in fns if fn.api_name == "live_frame"]
    assert live.api_visibility == "undocumented" and live.fn.__name__ == "label_frame"
    by_name = {fn.api_name: fn for fn in fns if fn.api_visibility == "public"}
    assert {name: fn.fn.func.__name__ for name, fn in by_name.items() if name != "video"} == {  # the bound handlers
        "predict": "predict_with_analysis", "explain": "api_explain", "confusion": "api_confusion",
        "test_report": "api_test_report"}
    assert all(fn.fn.__name__ == name for name, fn in by_name.items())  # named after the endpoint: the MCP tools
    cam_events = [fn for fn in fns if fn.api_name == "explain" or getattr(fn.fn, "__name__", "") in
                  ("render_predict", "render_cell")]
    assert len(cam_events) >= 3 and all(fn.concurrency_id == "cam" and fn.concurrency_limit == 1 for fn in cam_events)
    assert not list(REPO_ROOT.joinpath("fer_demo").rglob("*.pyi")), "building the app must not write stub files"


def test_api_parameters_and_their_defaults(demo):
    api = demo.get_api_info()["named_endpoints"]

    def params(name):
        return [(p["parameter_name"], p["parameter_has_default"] and p["parameter_default"]) for p in
                api[name]["parameters"]]

    assert params("/predict") == [("photo", False), ("whole_image", False), ("tta", True)]
    assert [r["component"] for r in api["/predict"]["returns"]] == ["Json"]  # the analysis (a State) stays home
    assert [p for p, _ in params("/confusion")] == ["true", "predicted", "mode"]
    assert params("/confusion")[2] == ("mode", "no TTA")
    assert [p for p, _ in params("/explain")] == ["face_image", "method", "layer", "target", "all_classes"]
    assert params("/test_report") == []
    assert "/live_frame" not in api and "/live_frame" in demo.get_api_info(all_endpoints=True)["named_endpoints"]


def test_the_page_names_the_elements_the_browser_tests_use(demo):
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"photo", "tta", "predict-message", "boxed", "photo-cam", "live-cam", "live-in", "live-out",
            "live-label", "predict-settings", "confusion-matrix", "cell-true", "cell-pred", "cell-gallery",
            "cell-message"} <= ids
    assert {f"{kind}-{i}" for kind in ("crop", "cam", "label") for i in range(MAX_FACES)} <= ids
    (tta,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "tta"]
    assert isinstance(tta, gr.Checkbox) and tta.value is True
    (live_cam,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "live-cam"]
    assert isinstance(live_cam, gr.Checkbox) and live_cam.value is False and live_cam.label == "Live Grad-CAM"
    (matrix,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "confusion-matrix"]
    assert isinstance(matrix, gr.Dataframe) and not matrix.interactive


def test_api_predict_with_and_without_tta(predictor):
    on = api_predict(predictor, GROUP)
    off = api_predict(predictor, GROUP, False, False)
    assert on["tta"] == {"name": predictor.tta, "views": list(TTA[predictor.tta].views)} and predictor.tta != "none"
    assert off["tta"] == {"name": "none", "views": ["face"]}
    assert on["n_faces"] == off["n_faces"] == 4
    assert [f["box"] for f in on["faces"]] == [f["box"] for f in off["faces"]]
    assert on["faces"] != off["faces"]  # the other views change the probabilities
    whole = api_predict(predictor, GROUP, True)
    assert whole["whole_image"] and whole["n_faces"] == 1
    with pytest.raises(gr.Error, match="No image was given"):
        api_predict(predictor, None)
    with pytest.raises(gr.Error, match="not an image we can read"):
        api_predict(predictor, str(REPO_ROOT / "README.md"))


def test_render_predict_draws_the_answer(predictor):
    result, analysis = predict_with_analysis(predictor, GROUP)
    message, boxed, photo_cam, whole_btn, rows, crops, cams, labels = _split(
        render_predict(predictor, result, analysis, 0.5))
    assert message.startswith("4 faces found.") and predictor.detector.name in message
    assert f"views averaged: {', '.join(TTA[predictor.tta].views)}." in message
    rgb = load_image(GROUP).rgb
    assert boxed.shape == photo_cam.shape == rgb.shape
    assert np.abs(boxed.astype(int) - photo_cam).mean() > 1  # the heatmaps are on the photo
    assert not _visible(whole_btn)
    assert [_visible(r) for r in rows] == [first < 4 for first in range(0, MAX_FACES, FACES_PER_ROW)]
    assert [_visible(c) for c in crops] == [i < 4 for i in range(MAX_FACES)]
    assert [_visible(c) for c in cams] == [i < 4 for i in range(MAX_FACES)]
    for i, (label, face) in enumerate(zip(labels[:4], result["faces"])):
        assert label.label == f"Face {face['index']}"
        shown = _value(label)
        confidences = {c["label"]: c["confidence"] for c in shown["confidences"]} if "confidences" in shown else shown
        assert set(confidences) == set(FER_LABELS)
        assert max(confidences, key=confidences.get) == face["label"]
        crop, cam = _value(crops[i]), _value(cams[i])
        assert crop is not None and cam is not None


def test_render_predict_offers_the_whole_image_when_no_face_is_found(predictor):
    result, analysis = predict_with_analysis(predictor, NO_FACE)
    message, boxed, photo_cam, whole_btn, rows, crops, cams, labels = _split(
        render_predict(predictor, result, analysis, 0.5))
    assert message.startswith("No face found") and photo_cam is None and boxed is not None
    assert _visible(whole_btn)
    assert not any(_visible(x) for x in [*rows, *crops, *cams, *labels])
    nothing = render_predict(predictor, None, None, 0.5)
    assert nothing[0] == "" and nothing[1] is None and not any(_visible(x) for x in nothing[3:])


def test_render_predict_follows_the_tta_box(predictor):
    message = render_predict(predictor, *predict_with_analysis(predictor, GROUP, False, False), 0.5)[0]
    assert "views averaged: face." in message


def _frame() -> np.ndarray:
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[40:440, 100:500] = np.asarray(Image.open(PHOTOS / "astronaut.jpg").convert("RGB").resize((400, 400)))
    return canvas


def _deep_blue_share(rgb: np.ndarray) -> float:
    """Share of deep-blue pixels: the cold end of the jet colour map, which the photo hardly has."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return float(((b > r + 60) & (b > g + 60)).mean())


def test_live_frame_labels_faces_and_draws_grad_cam_on_request(predictor):
    frame = _frame()
    plain, probs = label_frame(predictor, frame)
    cam, cam_probs = label_frame(predictor, frame, show_cam=True)
    assert plain.shape == cam.shape == frame.shape
    assert set(probs) == set(FER_LABELS) and probs == cam_probs
    (face,) = predictor.analyze(frame).faces
    b = face.crop.bounds()
    outside = np.ones(frame.shape[:2], bool)
    outside[max(b.y, 0):b.y + b.h, max(b.x, 0):b.x + b.w] = False
    assert np.array_equal(plain[outside], cam[outside])  # the heatmap stays on the face's crop square
    assert _deep_blue_share(plain) < 0.001 and _deep_blue_share(cam) > 0.003
    assert label_frame(predictor, None) == (None, None)


def test_settings_text_names_the_detector_and_views(predictor, tmp_path):
    """The shipped settings, written out here (not rebuilt from the values the text is made of); other settings
    and a fallback's note change the text with them."""
    shipped = settings_text(predictor)
    for fact in ("Detector: YuNet", "640 px", "48x48", "4 copies shifted by 3 px, each also mirrored "
                 "(10 views)", "at most 20 MB", "scaled to 2048 px"):
        assert fact in shipped, fact
    assert "**Note:**" not in shipped
    broken = tmp_path / "yunet.onnx"
    broken.write_bytes(b"not an onnx model" * 50)
    fallback = Predictor(detector_model=broken, tta="flip", detect_side=320)  # the Haar cascade, with a note
    text, _, note = settings_text(fallback).partition("\n\n**Note:** ")
    detector = text.split(". ")[0]  # "Detector: <name>, on a copy <side> px on its longest side"
    assert detector.startswith("Detector: ") and "Haar cascade" in detector and "320 px" in detector
    assert "YuNet" not in detector and "640 px" not in text
    assert "the face and its mirror image" in text and "10 views" not in text
    assert note == fallback.notes[0] and "Haar cascade" in note and "**Note:**" not in note


def test_bind_fixes_the_first_arguments_and_keeps_the_name():
    def handler(owner, photo, flag=False):
        """Doc."""
        return owner, photo, flag

    bound = bind(handler, "predictor")
    assert bound("x", True) == ("predictor", "x", True)
    assert (bound.__name__, bound.__doc__) == ("handler", "Doc.")


def test_example_files_are_the_images_of_a_folder():
    photos = example_files("photos")
    assert photos == sorted(photos) and {p.rsplit("/", 1)[1] for p in photos} >= {"astronaut.jpg", "group_collage.jpg"}
    assert all(p.lower().endswith((".png", ".jpg", ".jpeg", ".webp")) for p in photos)
    assert example_files("no-such-folder") == []


def test_errors_as_gr_error_turns_every_exception_into_a_readable_gr_error():
    @errors_as_gr_error
    def bad_image():
        raise ImageLoadError("the file 'x.txt' is not an image we can read")

    @errors_as_gr_error
    def crash():
        raise KeyError("internal detail")

    with pytest.raises(gr.Error, match="not an image"):
        bad_image()
    with pytest.raises(gr.Error) as info:
        crash()
    assert "KeyError" in str(info.value) and "internal detail" not in str(info.value)


def test_photo_input_passes_the_upload_through_unopened(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    with gr.Blocks():
        image = photo_input(label="x")
    assert image.preprocess(ImageData(path=str(bad), orig_name="notes.txt")) == str(bad)
    assert image.preprocess(None) is None
    with pytest.raises(gr.Error, match="could not be read"):
        image.preprocess(ImageData(url="data:image/png;base64,AAAA"))


def test_model_card_image_links(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "cm.png").write_bytes(b"\x89PNG")
    text = ('![confusion](plots/cm.png "test")\n![remote](https://example.org/a.png)\n'
            "![missing](plots/none.png)\n![escape](../../etc/passwd.png)")
    assert set(card_images(text, tmp_path)) == {"plots/cm.png"}
    out = link_card_images(text, tmp_path)
    assert f"![confusion](/gradio_api/file={tmp_path / 'plots' / 'cm.png'} \"test\")" in out
    assert "![remote](https://example.org/a.png)" in out and "![missing](plots/none.png)" in out
