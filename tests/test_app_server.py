"""app.py as a running server, called through gradio_client like any API user would."""

from __future__ import annotations

import argparse
import json
import os
import urllib.request

import pytest

from fer_demo.core.backends import report_name
from fer_demo.core.checkpoint import SHIPPED_CHECKPOINT
from fer_demo.vision.images import MAX_FILE_BYTES
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import EXAMPLES_DIR
from fer_demo.serving.predictor import DEFAULT_TTA
from fer_demo.core.transforms import TTA


PHOTOS = EXAMPLES_DIR / "photos"
SERVED_REPORT = SHIPPED_CHECKPOINT / report_name("test", "onnx-int8")  # the figures of the backend app.py serves


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
    assert "/live_frame" not in api  # the webcam stream's endpoint is undocumented
    assert [p["parameter_name"] for p in api["/predict"]["parameters"]] == ["photo", "whole_image", "tta"]
    assert [p["parameter_name"] for p in api["/confusion"]["parameters"]] == ["true", "predicted", "mode"]


def test_predict_a_photo_with_a_face(client):
    out = client.predict(_file(PHOTOS / "astronaut.jpg"), False, api_name="/predict")
    assert out["n_faces"] == 1 and not out["no_face"]
    assert out["backend"] == "onnx-int8"  # the shipped int8 copy serves; Grad-CAM stays in PyTorch
    assert out["detector"].startswith("YuNet")
    assert out["tta"] == {"name": DEFAULT_TTA, "views": list(TTA[DEFAULT_TTA].views)}  # app.py's default
    for face in out["faces"]:
        _assert_probabilities(face)
        assert set(face["box"]) == {"x", "y", "w", "h"}
        assert set(face["crop"]) == {"cx", "cy", "side", "angle"} and len(face["landmarks"]) == 5
        assert 0.7 <= face["score"] <= 1


def test_predict_without_tta_classifies_the_face_alone(client):
    photo = _file(PHOTOS / "grace_hopper.jpg")
    default = client.predict(photo, False, api_name="/predict")
    assert default == {**client.predict(photo, False, True, api_name="/predict"), "seconds": default["seconds"]}
    alone = client.predict(photo, False, False, api_name="/predict")
    assert alone["tta"] == {"name": "none", "views": ["face"]}
    assert [f["box"] for f in alone["faces"]] == [f["box"] for f in default["faces"]]
    assert [f["probabilities"] for f in alone["faces"]] != [f["probabilities"] for f in default["faces"]]
    _assert_probabilities(alone["faces"][0])


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
    face = EXAMPLES_DIR / "fer2013" / sorted(p.name for p in (EXAMPLES_DIR / "fer2013").glob("surprise_*.png"))[0]
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
    out = client.predict(_file(PHOTOS / "group_collage.jpg"), "ScoreCAM", "layer1", "happy", False,
                         api_name="/explain")  # layer1: 64 channels, a forward pass each
    assert out["target"] == "happy" and out["layer"] == "layer1" and "largest of 4" in out["face_source"]


def test_confusion_cell(client, fer2013):
    shipped = json.loads(SERVED_REPORT.read_text())
    out = client.predict("happy", "happy", api_name="/confusion")
    assert out["true"] == out["predicted"] == "happy" and out["mode"] == "no TTA"
    assert out["n_test"] == shipped["n"]  # the report's faces, with the predictions that ship beside it
    assert 0 < out["count"] <= out["row_total"] and len(out["faces"]) == min(12, out["count"])
    assert out["count"] == out["report_count"] == shipped["no_tta"]["confusion"][3][3]
    for f in out["faces"]:
        assert f["label"] == "happy" and f["predicted"] == "happy"
    rows = {}
    for mode in ("no TTA", "TTA"):
        rows[mode] = [client.predict("fear", p, mode, api_name="/confusion") for p in FER_LABELS]
        assert {r["mode"] for r in rows[mode]} == {mode}
        assert sum(r["count"] for r in rows[mode]) == rows[mode][0]["row_total"]  # the row's cells partition it
        assert [r["count"] for r in rows[mode]] == [r["report_count"] for r in rows[mode]] == \
            shipped[{"no TTA": "no_tta", "TTA": "tta"}[mode]]["confusion"][2]
    probabilities = {mode: [f["probabilities"] for r in rows[mode] for f in r["faces"]] for mode in rows}
    assert probabilities["TTA"] != probabilities["no TTA"]  # the ten views were averaged


def test_test_report_is_the_shipped_one(client):
    out = client.predict(api_name="/test_report")
    shipped = json.loads(SERVED_REPORT.read_text())
    assert out["no_tta"]["accuracy"] == shipped["no_tta"]["accuracy"]
    assert out["no_tta"]["confusion"] == shipped["no_tta"]["confusion"]


def test_the_page_is_served_on_localhost(app_server):
    assert app_server.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(app_server, timeout=10) as r:
        assert "fer-demo" in r.read().decode("utf-8", "replace")


def test_tests_that_use_the_app_run_on_one_worker(app_server, request):
    """Under `make test` (pytest-xdist, --dist loadgroup) every test that uses the app server or Chromium carries
    conftest's xdist group, so that one worker runs them all and starts each once. A pytest whose node ids xdist
    cannot tag (9.2: pytest-dev/pytest-xdist#1386) spreads them, and two app servers start, silently."""
    group = request.node.get_closest_marker("xdist_group")
    assert group is not None, "conftest did not put this test in the app's group"
    if os.environ.get("PYTEST_XDIST_WORKER") and request.config.getvalue("loadgroup"):
        assert request.node.nodeid.endswith(f"@{group.args[0]}"), request.node.nodeid


def test_address_defaults_and_overrides():
    import app

    args = argparse.Namespace(port=None)
    assert app.server_address(args, {}) == ("127.0.0.1", 7860)
    assert app.server_address(args, {"GRADIO_SERVER_PORT": "9000", "GRADIO_SERVER_NAME": "0.0.0.0"}) == \
        ("0.0.0.0", 9000)
    assert app.server_address(argparse.Namespace(port=8123), {"GRADIO_SERVER_PORT": "9000"})[1] == 8123
    assert app.parse_args(["--checkpoint", "x", "--dataset", "y"]).checkpoint == "x"


def test_a_bad_checkpoint_is_a_readable_startup_error(tmp_path, capsys):
    import app

    assert app.main(["--checkpoint", str(tmp_path / "nothing")]) == 2  # app.py exits with it
    err = capsys.readouterr().err
    assert "error: no checkpoint at" in err and "Traceback" not in err
