"""app.py as a running server, called through gradio_client like any API user would."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request

import pytest

from fer_demo.checkpoint import SHIPPED_CHECKPOINT
from fer_demo.images import MAX_FILE_BYTES
from fer_demo.labels import FER_LABELS

from .conftest import EXAMPLES, FER_DIR, REPO

pytestmark = pytest.mark.slow
PHOTOS = EXAMPLES / "photos"


@pytest.fixture(scope="module")
def client(app_server):
    from gradio_client import Client

    return Client(app_server, verbose=False)


def _file(path):
    from gradio_client import handle_file

    return handle_file(str(path))


def _assert_probabilities(face):
    assert set(face["probabilities"]) == set(FER_LABELS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)


def test_named_endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/predict", "/explain", "/confusion", "/test_report"} <= set(api)
    assert [p["parameter_name"] for p in api["/predict"]["parameters"]] == ["photo", "whole_image"]


def test_predict_a_photo_with_a_face(client):
    out = client.predict(_file(PHOTOS / "astronaut.jpg"), False, api_name="/predict")
    assert out["n_faces"] >= 1 and not out["no_face"]
    assert out["backend"] == "onnx-int8"  # the shipped int8 copy serves; Grad-CAM stays in PyTorch
    for face in out["faces"]:
        _assert_probabilities(face)
        assert set(face["box"]) == {"x", "y", "w", "h"}


def test_predict_a_group_photo(client):
    out = client.predict(_file(PHOTOS / "group_collage.jpg"), False, api_name="/predict")
    assert out["n_faces"] == 4 and [f["index"] for f in out["faces"]] == [1, 2, 3, 4]
    xs = [f["box"]["x"] for f in out["faces"]]
    assert xs == sorted(xs)


def test_no_face_gets_the_no_face_answer(client):
    out = client.predict(_file(PHOTOS / "coffee_no_face.jpg"), False, api_name="/predict")
    assert out["no_face"] is True and out["faces"] == []
    assert out["message"].startswith("No face found")
    whole = client.predict(_file(PHOTOS / "coffee_no_face.jpg"), True, api_name="/predict")
    assert whole["n_faces"] == 1 and whole["whole_image"]
    _assert_probabilities(whole["faces"][0])


def test_non_image_gets_a_clean_error_and_the_app_still_answers(client, tmp_path):
    from gradio_client.exceptions import AppError

    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a photo\n")
    with pytest.raises(AppError) as info:
        client.predict(_file(bad), False, api_name="/predict")
    message = str(info.value)
    assert "is not an image we can read" in message
    assert "Traceback" not in message and "/tmp" not in message
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((PHOTOS / "astronaut.jpg").read_bytes()[:5000])
    with pytest.raises(AppError, match="broken or truncated"):
        client.predict(_file(cut), False, api_name="/predict")
    assert client.predict(_file(PHOTOS / "astronaut.jpg"), False, api_name="/predict")["n_faces"] == 1


def test_uploads_over_the_limit_are_refused_by_the_server(app_server, tmp_path, client):
    import httpx

    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * (MAX_FILE_BYTES + 1024))
    with open(big, "rb") as f:
        r = httpx.post(app_server + "gradio_api/upload", files={"files": ("big.jpg", f, "image/jpeg")}, timeout=60)
    assert r.status_code == 413
    assert client.predict(_file(PHOTOS / "grace_hopper.jpg"), False, api_name="/predict")["n_faces"] == 1


def test_explain_one_class_and_all_seven(client):
    face = EXAMPLES / "fer2013" / sorted(p.name for p in (EXAMPLES / "fer2013").glob("surprise_*.png"))[0]
    one = client.predict(_file(face), "HiResCAM", "layer2", "predicted", False, api_name="/explain")
    assert one["method"] == "HiResCAM" and one["layer"] == "layer2" and len(one["maps"]) == 1
    assert one["maps"][0]["class"] == one["predicted"]
    cam = one["maps"][0]["cam"]
    assert len(cam) == 48 and len(cam[0]) == 48 and 0 <= min(map(min, cam)) <= max(map(max, cam)) <= 1
    assert len(one["face"]) == 48 and "whole image" in one["face_source"]
    grid = client.predict(_file(face), "GradCAM", "layer3", "predicted", True, api_name="/explain")
    assert [m["class"] for m in grid["maps"]] == list(FER_LABELS)
    assert all("road" in m for m in grid["maps"])


def test_explain_a_slow_method_and_a_photo(client):
    out = client.predict(_file(PHOTOS / "group_collage.jpg"), "ScoreCAM", "layer4", "happy", False,
                         api_name="/explain")
    assert out["target"] == "happy" and "largest of 4" in out["face_source"]


def test_confusion_cell(client):
    if not FER_DIR.exists():
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError, match="FER_DATASET"):
            client.predict("angry", "sad", api_name="/confusion")
        return
    out = client.predict("happy", "happy", api_name="/confusion")
    assert out["true"] == out["predicted"] == "happy"
    shipped_n = json.loads((SHIPPED_CHECKPOINT / "test_report.json").read_text())["n"]
    assert out["n_test"] == min(300, shipped_n)  # FER_TEST_LIMIT in the fixture, within the report's subset
    assert 0 <= out["count"] <= out["row_total"] and len(out["faces"]) == min(12, out["count"])
    for f in out["faces"]:
        assert f["label"] == "happy" and f["predicted"] == "happy"


def test_test_report_is_the_shipped_one(client):
    out = client.predict(api_name="/test_report")
    shipped = json.loads((SHIPPED_CHECKPOINT / "test_report.onnx-int8.json").read_text())  # the app's backend
    assert out["no_tta"]["accuracy"] == shipped["no_tta"]["accuracy"]
    assert out["no_tta"]["confusion"] == shipped["no_tta"]["confusion"]


def test_the_page_is_served_on_localhost(app_server):
    assert app_server.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(app_server, timeout=10) as r:
        assert "fer-demo" in r.read().decode("utf-8", "replace")


def test_address_defaults_and_overrides():
    sys.path.insert(0, str(REPO))
    import app

    args = argparse.Namespace(port=None)
    assert app.server_address(args, {}) == ("127.0.0.1", 7860)
    assert app.server_address(args, {"GRADIO_SERVER_PORT": "9000", "GRADIO_SERVER_NAME": "0.0.0.0"}) == \
        ("0.0.0.0", 9000)
    assert app.server_address(argparse.Namespace(port=8123), {"GRADIO_SERVER_PORT": "9000"})[1] == 8123
    assert app.parse_args(["--checkpoint", "x", "--dataset", "y"]).checkpoint == "x"


def test_a_bad_checkpoint_is_a_readable_startup_error(tmp_path):
    r = subprocess.run([sys.executable, "app.py", "--checkpoint", str(tmp_path / "nothing")], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "error: no checkpoint at" in r.stderr and "Traceback" not in r.stderr
