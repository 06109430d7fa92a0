"""The public API: fer_demo.predict and fer_demo.explain give what /predict and /explain give over HTTP, for
the same inputs (a path, bytes, a PIL image, an RGB array; lists); the Predictor class is exported at the top."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import fer_demo
from fer_demo.core.paths import EXAMPLES_DIR

PHOTOS = EXAMPLES_DIR / "photos"
FACE = EXAMPLES_DIR / "fer2013" / "happy_test2340.png"
TIMED = "seconds"  # the one field that differs between two runs: how long this one took


def _same(a, b, where="answer"):
    """Equal, except for the timing field; floats to the last digit the answers keep (the app's process and this
    one may sum in another order)."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            if key != TIMED:
                _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=2e-3), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    return Client(app_server, verbose=False)


def _file(path):
    from gradio_client import handle_file

    return handle_file(str(path))


@pytest.mark.parametrize("photo, whole_image, tta", [("group_collage.jpg", False, True),
                                                     ("grace_hopper.jpg", False, False),
                                                     ("coffee_no_face.jpg", False, True),
                                                     ("coffee_no_face.jpg", True, False)])
def test_predict_is_the_predict_endpoint(client, photo, whole_image, tta):
    served = client.predict(_file(PHOTOS / photo), whole_image, tta, api_name="/predict")
    local = fer_demo.predict(str(PHOTOS / photo), whole_image=whole_image, tta=tta)
    _same(local, served)
    assert served["n_faces"] == len(local["faces"]) and "message" in local


@pytest.mark.parametrize("face, method, layer, target, all_classes", [
    (FACE, "GradCAM", None, "predicted", False),
    (FACE, "GradCAM++", "layer4", "predicted", False),
    (FACE, "HiResCAM", "layer3", "sad", False),
    (PHOTOS / "grace_hopper.jpg", "GradCAM", "layer2", "predicted", True),
])
def test_explain_is_the_explain_endpoint(client, face, method, layer, target, all_classes):
    served = client.predict(_file(face), method, layer, target, all_classes, api_name="/explain")
    local = fer_demo.explain(str(face), method=method, layer=layer, target=target, all_classes=all_classes)
    _same(local, served)
    assert local["method"] == method and len(local["maps"]) == (7 if all_classes else 1)


def test_any_image_form_gives_the_same_answer():
    path = PHOTOS / "astronaut.jpg"
    rgb = np.asarray(Image.open(path).convert("RGB"))
    answers = [fer_demo.predict(x) for x in (str(path), path, path.read_bytes(), Image.open(path), rgb)]
    for other in answers[1:]:
        _same(other, answers[0])
    assert answers[0]["n_faces"] == 1 and answers[0]["faces"][0]["label"] in fer_demo.Predictor().labels


def test_a_list_gives_a_list_and_a_long_one_a_progress_bar(capsys):
    from fer_demo.serving.api import PROGRESS_FROM

    photos = [str(PHOTOS / "astronaut.jpg"), str(PHOTOS / "group_collage.jpg")]
    answers = fer_demo.predict(photos, tta=False)
    assert [a["n_faces"] for a in answers] == [1, 4]
    assert "predict" not in capsys.readouterr().err  # short: no bar
    faces = [str(FACE)] * PROGRESS_FROM
    cams = fer_demo.explain(faces)
    assert len(cams) == PROGRESS_FROM and all(c["maps"][0]["cam"] == cams[0]["maps"][0]["cam"] for c in cams)
    assert f"{PROGRESS_FROM}/{PROGRESS_FROM}" in capsys.readouterr().err  # tqdm's bar, on stderr


def test_bad_input_is_a_value_error_with_a_message():
    from fer_demo.vision.images import ImageLoadError

    with pytest.raises(ImageLoadError, match="does not exist"):
        fer_demo.predict("no-such-photo.jpg")
    with pytest.raises(ValueError, match="unknown|choose|method"):
        fer_demo.explain(str(FACE), method="NoSuchCAM")


def test_a_predictor_of_its_own_is_used_and_documented():
    p = fer_demo.Predictor(backend="torch", tta="none")
    answer = fer_demo.predict(str(FACE), predictor=p)
    assert answer["backend"] == "torch" and answer["tta"]["name"] == "none"
    assert answer == {**p.predict(str(FACE)), TIMED: answer[TIMED]}
    assert ">>> " in fer_demo.Predictor.__doc__ and "fer_demo.predict" in fer_demo.Predictor.__doc__
