"""Hostile and odd uploads against the running app: each gets a clear answer, and the app keeps serving.

Sent through gradio_client to app.py (the `app_server` fixture), like any API
user would, except where a client cannot send the case (then the tab's handler
is called directly, with the shared Predictor). The loader itself is tested in
test_app_images.py (modes given as PIL images, header-only bombs, truncated
JPEG, EXIF shape); the server tests already send a .txt file, a truncated JPEG
and an over-limit upload (test_app_server.py). Here: the same kinds of files as
real uploads, end to end.
"""

from __future__ import annotations

import io
import time
import zipfile

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from fer_demo.vision.detectors import open_detector
from fer_demo.vision.faces import MAX_FACES, MAX_FACES_CLASSIFIED
from fer_demo.vision.images import load_image
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import EXAMPLES_DIR
from fer_demo.ui.explorer_tab import api_explain
from fer_demo.ui.predict_tab import api_predict, label_frame

from .test_app_images import _png_header_only

PHOTOS = EXAMPLES_DIR / "photos"
ASTRONAUT = PHOTOS / "astronaut.jpg"
FACE = EXAMPLES_DIR / "fer2013" / "happy_test2340.png"
SECONDS_PER_REQUEST = 60  # generous: a bad file must be answered at once, not after minutes of decoding


@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    return Client(app_server, verbose=False)


def _upload(path):
    from gradio_client import handle_file

    return handle_file(str(path))


def _predict(client, path, whole_image=False):
    return client.predict(_upload(path), whole_image, api_name="/predict")


def _refused(client, path, pattern, api_name="/predict", *args):
    """The request fails with a gradio error whose message matches `pattern` and leaks nothing internal."""
    from gradio_client.exceptions import AppError

    start = time.perf_counter()
    with pytest.raises(AppError, match=pattern) as info:
        if api_name == "/predict":
            client.predict(_upload(path), False, api_name=api_name)
        else:
            client.predict(_upload(path), *args, api_name=api_name)
    message = str(info.value)
    assert "Traceback" not in message and "/tmp" not in message and str(path.parent) not in message
    assert time.perf_counter() - start < SECONDS_PER_REQUEST
    return message


def _face_crop_of(photo) -> Image.Image:
    """The square around the one detected face of `photo`, 1.8 x its box: a tile for a crowd."""
    rgb = load_image(photo).rgb
    detector, note = open_detector()
    assert note == ""
    (found,) = detector.detect(rgb)
    b = found.box
    cx, cy, s = b.x + b.w / 2, b.y + b.h / 2, 1.8 * b.w
    return Image.fromarray(rgb).crop((round(cx - s / 2), round(cy - s / 2), round(cx + s / 2), round(cy + s / 2)))


def _assert_probabilities(face):
    assert set(face["probabilities"]) == set(FER_LABELS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


# --- files that are not images, or broken ones: refused with a message ----------------------------

def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("photo.jpg", ASTRONAUT.read_bytes())  # an image inside: still not an image
    return buf.getvalue()


PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] "
       b"/Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


@pytest.mark.parametrize("name, content, pattern", [
    ("empty.jpg", b"", "is empty"),
    ("notes.jpg", b"Dear colleague,\nplease find attached...\n" * 20, "not an image we can read"),
    ("report.jpg", PDF, "not an image we can read"),
    ("archive.jpg", None, "not an image we can read"),
])
def test_non_images_renamed_jpg_are_refused(client, tmp_path, name, content, pattern):
    path = tmp_path / name
    path.write_bytes(_zip_bytes() if content is None else content)
    _refused(client, path, pattern)


def test_no_upload_at_all_is_refused(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="No image was given"):
        client.predict(None, False, api_name="/predict")
    with pytest.raises(AppError, match="No face image was given"):
        client.predict(None, "GradCAM", "layer3", "predicted", False, api_name="/explain")


def test_truncated_png_is_refused(client, tmp_path):
    buf = io.BytesIO()
    Image.open(ASTRONAUT).save(buf, "PNG")
    data = buf.getvalue()
    for cut in (len(data) // 2, 60):  # into the pixel data; just past the header
        path = tmp_path / f"cut{cut}.png"
        path.write_bytes(data[:cut])
        _refused(client, path, "broken or truncated")


# --- sizes -----------------------------------------------------------------------------------------

def test_a_1x1_image_is_classified_as_a_face_crop(client, tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (120, 110, 100)).save(path)
    out = _predict(client, path)
    assert out["n_faces"] == 1 and out["whole_image"] and "small" in out["message"]
    assert out["image_size"] == {"width": 1, "height": 1}
    _assert_probabilities(out["faces"][0])


def test_a_20000x20000_image_is_refused_quickly(client, tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (20_000, 20_000), 1).save(path)  # 400 megapixels in ~90 KB
    assert path.stat().st_size < 1_000_000
    _refused(client, path, "megapixels")


def test_a_large_image_under_the_pixel_limit_is_downscaled(client, tmp_path):
    path = tmp_path / "large.png"
    Image.new("1", (7_000, 7_000), 1).save(path)  # 49 megapixels: decoded, then scaled to MAX_SIDE
    start = time.perf_counter()
    out = _predict(client, path)
    assert out["no_face"] and out["image_size"] == {"width": 7000, "height": 7000}
    assert time.perf_counter() - start < SECONDS_PER_REQUEST


@pytest.mark.parametrize("width, height", [(30_000, 30_000), (100_000, 100_000)])
def test_decompression_bombs_are_refused_before_decoding(client, tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(width, height))  # beyond PIL's own limit (2 x 89 megapixels)
    _refused(client, path, "decompression bomb|megapixels")


# --- modes and formats -----------------------------------------------------------------------------

def _rgba_with_transparent_border(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    alpha = np.zeros((img.height, img.width), np.uint8)
    alpha[40:-40, 40:-40] = 255
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


@pytest.mark.parametrize("kind", ["16-bit PNG", "CMYK JPEG", "RGBA PNG", "P PNG", "LA PNG", "animated GIF"])
def test_odd_modes_and_formats_find_the_face(client, tmp_path, kind):
    base = Image.open(ASTRONAUT)
    if kind == "16-bit PNG":
        path = tmp_path / "deep.png"
        Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257).save(path)
        assert Image.open(path).mode.startswith("I")
    elif kind == "CMYK JPEG":
        path = tmp_path / "print.jpg"
        base.convert("CMYK").save(path, quality=90)
        assert Image.open(path).mode == "CMYK"
    elif kind == "RGBA PNG":
        path = tmp_path / "alpha.png"
        _rgba_with_transparent_border(base).save(path)
    elif kind == "P PNG":
        path = tmp_path / "palette.png"
        base.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(path)
        assert Image.open(path).mode == "P"
    elif kind == "LA PNG":
        path = tmp_path / "gray_alpha.png"
        _rgba_with_transparent_border(base).convert("LA").save(path)
        assert Image.open(path).mode == "LA"
    else:
        path = tmp_path / "anim.gif"
        second = Image.open(PHOTOS / "coffee_no_face.jpg").resize(base.size)
        base.save(path, save_all=True, append_images=[second], duration=200, loop=0)
        assert Image.open(path).is_animated
    out = _predict(client, path)
    assert out["n_faces"] == 1, (kind, out["message"])
    assert out["image_size"] == {"width": 512, "height": 512}
    _assert_probabilities(out["faces"][0])


def test_exif_rotated_photo_is_turned_upright_and_its_face_found(client, tmp_path):
    upright = Image.open(PHOTOS / "grace_hopper.jpg")  # 512x600, her face around (265, 215)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "sideways.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(path, quality=92, exif=exif.tobytes())  # stored sideways
    assert Image.open(path).size == (600, 512)
    out = _predict(client, path)
    assert out["image_size"] == {"width": 512, "height": 600}
    assert out["n_faces"] == 1, out["message"]
    box = out["faces"][0]["box"]
    assert box["x"] <= 265 <= box["x"] + box["w"] and box["y"] <= 215 <= box["y"] + box["h"]


@pytest.mark.parametrize("level", [2, 253])
def test_near_black_and_near_white_images(client, tmp_path, level):
    noise = np.random.default_rng(level).integers(-2, 3, (480, 640, 3))
    path = tmp_path / f"flat{level}.jpg"
    Image.fromarray(np.clip(level + noise, 0, 255).astype(np.uint8)).save(path, quality=90)
    out = _predict(client, path)
    assert out["no_face"] and out["message"].startswith("No face found")
    whole = _predict(client, path, whole_image=True)
    assert whole["n_faces"] == 1 and whole["whole_image"]
    _assert_probabilities(whole["faces"][0])
    assert np.isfinite(list(whole["faces"][0]["probabilities"].values())).all()


# --- crowds: classification and explanation are capped, and the message says so ------------------

@pytest.mark.parametrize("n, tile", [(6, 160), (8, 128)])
def test_a_crowd_is_capped_and_the_message_says_so(client, tmp_path, n, tile):
    face = np.asarray(_face_crop_of(ASTRONAUT).resize((tile, tile)))
    path = tmp_path / f"crowd{n}.jpg"
    Image.fromarray(np.concatenate([np.concatenate([face] * n, axis=1)] * n, axis=0)).save(path, quality=90)
    out = _predict(client, path)
    assert out["n_detected"] == n * n, out["message"]
    assert out["n_faces"] == min(n * n, MAX_FACES_CLASSIFIED)
    assert f"{out['n_detected']} faces found" in out["message"]
    assert f"Grad-CAM are shown for the {MAX_FACES} largest" in out["message"]
    if n * n > MAX_FACES_CLASSIFIED:
        assert f"Classified the {MAX_FACES_CLASSIFIED} largest" in out["message"]
    assert [f["index"] for f in out["faces"]] == list(range(1, out["n_faces"] + 1))


# --- the Grad-CAM explorer's choices --------------------------------------------------------------

@pytest.mark.parametrize("method, layer, target, pattern", [
    ("MagicCAM", "layer3", "predicted", "MagicCAM is not in the list of choices"),
    ("GradCAM", "fc", "predicted", "'fc'.*is not in the list of choices"),
    ("GradCAM", "layer3", "7", "7 is not in the list of choices"),
    ("GradCAM", "layer3", "bored", "bored is not in the list of choices"),
])
def test_explorer_refuses_unknown_choices(client, method, layer, target, pattern):
    _refused(client, FACE, pattern, "/explain", method, layer, target, False)


def test_explorer_refuses_a_non_image(client, tmp_path):
    path = tmp_path / "report.png"
    path.write_bytes(PDF)
    _refused(client, path, "not an image we can read", "/explain", "GradCAM", "layer3", "predicted", False)


# --- the Test set tab's choices ---------------------------------------------------------------------

def test_confusion_refuses_unknown_classes_and_modes(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="'flip'.*is not in the list of choices"):
        client.predict("angry", "sad", "flip", api_name="/confusion")
    with pytest.raises(AppError, match="bored is not in the list of choices"):
        client.predict("bored", "sad", api_name="/confusion")


# --- what a client cannot send: the tabs' handlers, called directly ----------------------------------

@pytest.mark.parametrize("method, layer, target, pattern", [
    ("GradCAM", "layer3", 7, "unknown target class 7"),
    ("GradCAM", "layer3", -1, "unknown target class -1"),
    ("GradCAM", "layer3", None, None),  # no target: the predicted class
    ("MagicCAM", "layer3", "predicted", "unknown method 'MagicCAM'"),
    ("GradCAM", "conv1", "predicted", "unknown layer 'conv1'"),
])
def test_explain_handler_checks_its_arguments(predictor, method, layer, target, pattern):
    def explain():
        return api_explain(predictor, str(FACE), method, layer, target, False, progress=lambda *a, **k: None)

    if pattern is None:
        out = explain()
        assert out["target"] == out["predicted"] and len(out["maps"]) == 1
        return
    with pytest.raises(gr.Error, match=pattern):
        explain()


def test_explain_handler_refuses_a_missing_face(predictor):
    with pytest.raises(gr.Error, match="No face image was given"):
        api_explain(predictor, None, progress=lambda *a, **k: None)


def test_predict_handler_refuses_what_a_client_cannot_send(predictor, tmp_path):
    with pytest.raises(gr.Error, match="No image was given"):
        api_predict(predictor, None)
    folder = tmp_path / "photo.jpg"
    folder.mkdir()  # a path, but not a file
    with pytest.raises(gr.Error, match="does not exist") as info:
        api_predict(predictor, str(folder))
    assert "Traceback" not in str(info.value) and str(tmp_path) not in str(info.value)


ODD_FRAMES = [None, np.zeros((0, 0, 3), np.uint8), np.zeros((1, 1, 3), np.uint8), np.zeros((48, 48, 2), np.uint8),
              np.full((480, 640, 3), 0.5, np.float32), np.zeros((480, 640, 4), np.uint8),
              np.full((2000, 3000, 3), 128, np.uint8)]


@pytest.mark.parametrize("show_cam", [False, True])
def test_live_frame_handler_survives_odd_frames(predictor, show_cam):
    for frame in ODD_FRAMES:
        boxed, label = label_frame(predictor, frame, show_cam)  # never raises
        assert label is None or set(label) == set(FER_LABELS)
        assert boxed is None or (boxed.ndim == 3 and boxed.shape[2] == 3 and boxed.dtype == np.uint8)
    boxed, label = label_frame(predictor, np.asarray(Image.open(ASTRONAUT)), show_cam)
    assert boxed.shape == (512, 512, 3) and set(label) == set(FER_LABELS)


# --- after all of that ------------------------------------------------------------------------------

def test_the_app_still_answers_good_requests(client):
    out = _predict(client, ASTRONAUT)
    assert out["n_faces"] == 1 and not out["no_face"]
    _assert_probabilities(out["faces"][0])
    explained = client.predict(_upload(FACE), "GradCAM", "layer3", "predicted", False, api_name="/explain")
    assert len(explained["maps"]) == 1 and len(explained["maps"][0]["cam"]) == 48
