"""The static page (web/dist, built by `make web`) in headless Chromium: the same faces and labels as the
Python app, from a localhost server of that folder, with no request leaving it.

Runs in the session's headless Chromium (fer_demo_testing/browser.py); skips when Chromium is missing, unless
FER_REQUIRE_BROWSER=1 (CI), which makes that a failure. Builds web/dist when it is missing. Frame rates go
to tests/artifacts/web_fps.json.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_demo.inference import amp_dtype
from fer_demo.paths import EXAMPLES_DIR, REPO_ROOT

from fer_demo_testing.browser import ARTIFACTS, require_browser

pytestmark = pytest.mark.slow
DIST = REPO_ROOT / "web" / "dist"
# the real photos, and the face-free ones (tests/negatives): no face on the page exactly when the app finds none
PHOTO_DIRS = (REPO_ROOT / "tests" / "photos", EXAMPLES_DIR / "photos", REPO_ROOT / "tests" / "negatives")
PHOTOS = sorted(p for d in PHOTO_DIRS if d.is_dir() for p in d.iterdir()
                if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
FER_FACES = sorted((EXAMPLES_DIR / "fer2013").glob("*.png"))
# Photos: the page and the app cut the same crops from the same decoded pixels (no colour-profile conversion
# on either side), but resample them with different code (JS area, bilinear and Lanczos resizing vs OpenCV's
# and PIL's fixed-point versions), so a crop pixel may differ by a gray level or two. On these photos that
# moves a probability by at most 0.0045 (lin-manuel-miranda.png). 0.02 is four times that, for other JPEG
# decoders and CPUs. Labels must agree, except on a near-tie: where the Python answer's two top classes are
# closer than twice the tolerance (grace_hopper.jpg face 1: 0.005 apart), the page may give either.
PHOTO_PROB_TOL = 0.02
# The app serves the int8 copy, whose probabilities sit up to 0.062 from the float model's on these photos
# (group_collage.jpg face 3); the app's label may differ from the page's only where the float model's two top
# classes are closer than twice this.
INT8_PROB_TOL = 0.08
# A 48x48 face is used as it is (no resampling): the only difference left is arithmetic order, ONNX Runtime's
# WASM kernels vs Python ONNX Runtime's on the int8 file (1e-7 on these faces), or vs PyTorch for fp32 (2e-6).
# On a CPU with AVX-512 bf16 the Python side runs PyTorch under bf16 autocast (`inference.amp_dtype`), which
# moves a probability by up to about 0.011 (the whole test split against fp32); the page stays fp32.
FACE_PROB_TOL = 2e-2 if amp_dtype("cpu") is not None else 1e-3
LOAD_TIMEOUT_MS = 180_000
WEBCAM_WINDOW_S = 1.5  # seconds of webcam frames counted, with and without the CAM (10 or more frames here)
PHOTO_RUNS = 3  # photos timed from file to drawn result, with and without the CAM; the median is kept


def _build():
    """web/dist as `make web` leaves it (export the models, npm ci, bundle), rebuilt when missing or made from
    other weights than the shipped checkpoint's."""
    from fer_demo.backends import weights_digest
    from fer_demo.checkpoint import SHIPPED_CHECKPOINT

    config = DIST / "models" / "web_config.json"
    if (DIST / "index.html").is_file() and (DIST / "models" / "classifier.onnx").is_file() and config.is_file() \
            and json.loads(config.read_text()).get("weights_sha256") == weights_digest(SHIPPED_CHECKPOINT) \
            and "precision" in json.loads(config.read_text()):
        return DIST
    if shutil.which("npm") is None:  # like a missing browser: skips, or fails under FER_REQUIRE_BROWSER=1
        if os.environ.get("FER_REQUIRE_BROWSER") == "1":
            pytest.fail("FER_REQUIRE_BROWSER=1 but web/dist is not built and npm is not installed")
        pytest.skip("web/dist is not built and npm is not installed (make web)")
    python = REPO_ROOT / ".venv" / "bin" / "python"
    subprocess.run([str(python if python.exists() else "python"), "-m", "tools.export_web"], cwd=REPO_ROOT, check=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REPO_ROOT / "web", check=True)
    subprocess.run(["npm", "run", "build"], cwd=REPO_ROOT / "web", check=True)
    return DIST


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".onnx": "application/octet-stream"}

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def web_dist() -> Path:
    return _build()


@pytest.fixture(scope="session")
def web_url(web_dist):
    require_browser()
    dist = web_dist
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(dist)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


REQUESTS: list[str] = []  # every URL any page of this module asked for


@pytest.fixture(scope="module")
def page(chromium, web_url):
    """One page for the module (the models load once): ready, with its console errors collected."""
    context = chromium.new_context(viewport={"width": 1300, "height": 1000}, permissions=["camera"])
    context.on("request", lambda r: REQUESTS.append(r.url))
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.set_default_timeout(60_000)
    page.goto(web_url)
    page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=LOAD_TIMEOUT_MS)
    assert page.evaluate("document.body.dataset.state") == "ready", page.inner_text("#message")
    yield page
    context.close()


def _upload(page, path_or_payload) -> dict:
    """Upload a file (a path, or (name, mime, bytes)) and return the page's answer (window.fer.last)."""
    runs = int(page.evaluate("document.body.dataset.runs"))
    if isinstance(path_or_payload, tuple):
        name, mime, data = path_or_payload
        page.set_input_files("#file", files=[{"name": name, "mimeType": mime, "buffer": data}])
    else:
        page.set_input_files("#file", str(path_or_payload))
    page.wait_for_function(f"Number(document.body.dataset.runs) > {runs} && document.body.dataset.state === 'ready'")
    return page.evaluate("window.fer.last")


def _stop_webcam(page):
    if page.evaluate("!!window.fer.live"):
        page.click("#webcam")


@pytest.fixture(scope="module")
def reference():
    """The Python app's answers with TTA off: "page", the backend that runs the page's classifier (the int8 ONNX
    copy, or the fp32 PyTorch model when the page got fp32), and the app's default backend."""
    from fer_demo.predictor import Predictor

    int8 = json.loads((DIST / "models" / "web_config.json").read_text()).get("precision") == "int8"
    return {"page": Predictor(tta="none", backend="onnx-int8" if int8 else "torch"), "app": Predictor(tta="none")}


def _labels_within(probs: dict, margin: float) -> set:
    """The top label, with the runner-up when it is closer than `margin` (a near-tie either side may break)."""
    first, second = sorted(probs, key=probs.get, reverse=True)[:2]
    return {first, second} if probs[first] - probs[second] < margin else {first}


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_photos_give_the_apps_faces_and_labels(page, reference, photo):
    _stop_webcam(page)
    got = _upload(page, photo)
    assert "error" not in got, got
    want = reference["page"].predict(str(photo), tta="none")
    app = reference["app"].predict(str(photo), tta="none")
    assert got["n_faces"] == want["n_faces"] == app["n_faces"], got["message"]
    worst = 0.0
    for g, w, a in zip(got["faces"], want["faces"], app["faces"]):
        where = (photo.name, g["index"], g["probabilities"], w["probabilities"], a["probabilities"])
        assert g["label"] in _labels_within(w["probabilities"], 2 * PHOTO_PROB_TOL), where
        assert a["label"] in _labels_within(w["probabilities"], 2 * INT8_PROB_TOL), where
        diff = max(abs(g["probabilities"][k] - v) for k, v in w["probabilities"].items())
        worst = max(worst, diff)
        assert diff < PHOTO_PROB_TOL, (photo.name, g["index"], diff)
        for k in "xywh":  # the same box, in the original photo's pixels (the app rounds it when it scales back)
            assert abs(g["box"][k] - w["box"][k]) <= 2, (photo.name, g["box"], w["box"])
    print(f"{photo.name}: {got['n_faces']} faces, labels {[f['label'] for f in got['faces']]}, "
          f"max |p - p_python| {worst:.4f}")
    if got["n_faces"]:
        assert page.locator("#faces .face").count() == min(got["n_faces"], 6)
        assert page.locator("#faces .face canvas.cam").count() == min(got["n_faces"], 6)


def test_the_page_names_its_classifier_and_an_int8_one_is_the_checkpoints_file(page, web_dist):
    """The page says which classifier it runs (fp32 by default); an int8 one (`tools.export_web --precision int8`)
    is model.int8.onnx itself, input renamed and the layer4 maps added as an output."""
    import onnxruntime as ort

    from fer_demo.backends import open_int8
    from fer_demo.checkpoint import SHIPPED_CHECKPOINT

    config = json.loads((web_dist / "models" / "web_config.json").read_text())
    assert f"{config['precision']} classifier" in page.inner_text("#backend")
    x = np.random.default_rng(0).normal(size=(3, 1, 48, 48)).astype(np.float32)
    logits, maps = ort.InferenceSession(str(web_dist / "models" / "classifier.onnx")).run(None, {"input": x})
    assert maps.shape == (3, 512, config["map_sizes"]["layer4"], config["map_sizes"]["layer4"])
    if config["precision"] == "int8":
        source = open_int8(SHIPPED_CHECKPOINT).session
        assert np.array_equal(logits, source.run(None, {source.get_inputs()[0].name: x})[0])


def test_no_face_message_and_the_whole_image(page):
    _stop_webcam(page)
    got = _upload(page, EXAMPLES_DIR / "photos" / "coffee_no_face.jpg")
    assert got["n_faces"] == 0 and "No face found" in page.inner_text("#message")
    runs = int(page.evaluate("document.body.dataset.runs"))
    page.check("#whole")
    page.wait_for_function(f"Number(document.body.dataset.runs) > {runs} && document.body.dataset.state === 'ready'")
    got = page.evaluate("window.fer.last")
    page.uncheck("#whole")
    assert got["n_faces"] == 1 and got["whole_image"] and "whole image" in page.inner_text("#message")


def test_fer2013_faces_get_the_python_label(page, reference):
    _stop_webcam(page)
    predictor = reference["page"]
    for path in FER_FACES:
        face = np.asarray(Image.open(path).convert("L"))
        assert face.shape == (48, 48)
        got = _upload(page, path)
        assert got["n_faces"] == 1 and got["whole_image"], got.get("message")
        assert np.array_equal(np.array(got["faces"][0]["face"], np.uint8).reshape(48, 48), face), path.name
        want = predictor.classify(face[None])[0]
        probs = np.array([got["faces"][0]["probabilities"][k] for k in predictor.labels])
        assert got["faces"][0]["label"] == predictor.labels[int(want.argmax())], path.name
        assert np.abs(probs - want).max() < FACE_PROB_TOL, (path.name, np.abs(probs - want).max())


DROP_OR_PASTE = """async ([how, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], 'photo.jpg', { type: 'image/jpeg' }));
  const init = { bubbles: true, cancelable: true };
  const drop = document.getElementById('drop');
  if (how === 'drop') drop.dispatchEvent(new DragEvent('drop', { ...init, dataTransfer: dt }));
  else document.dispatchEvent(new ClipboardEvent('paste', { ...init, clipboardData: dt }));
}"""


@pytest.mark.parametrize("how", ["drop", "paste"])
def test_drop_and_paste_a_photo(page, reference, how):
    import base64

    _stop_webcam(page)
    runs = int(page.evaluate("document.body.dataset.runs"))
    photo = EXAMPLES_DIR / "photos" / "group_collage.jpg"
    want = [f["label"] for f in reference["page"].predict(str(photo), tta="none")["faces"]]
    data = base64.b64encode(photo.read_bytes()).decode()
    page.evaluate(DROP_OR_PASTE, [how, data])
    page.wait_for_function(f"Number(document.body.dataset.runs) > {runs} && document.body.dataset.state === 'ready'")
    got = page.evaluate("window.fer.last")
    assert got["n_faces"] == len(want) == 4 and [f["label"] for f in got["faces"]] == want


def _png(size, mode="RGB", color=120) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


# name -> (a function making (file name, mime type, bytes), a phrase the message must hold)
BAD_INPUTS = {
    "text": (lambda: ("notes.txt", "text/plain", b"hello, not an image\n" * 20), "not an image"),
    "truncated jpeg": (lambda: ("cut.jpg", "image/jpeg",
                                (EXAMPLES_DIR / "photos" / "astronaut.jpg").read_bytes()[:20_000]),
                       "broken or truncated"),
    "1x1": (lambda: ("dot.png", "image/png", _png((1, 1))), "too small"),
    # a real 81-megapixel PNG (1-bit, so it stays small here); the limit is 50 megapixels
    "huge": (lambda: ("huge.png", "image/png", _png((9000, 9000), "1", 0)), "megapixels"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gets_a_message_and_the_page_keeps_working(page, name):
    _stop_webcam(page)
    make, phrase = BAD_INPUTS[name]
    got = _upload(page, make())
    assert "error" in got and phrase in got["error"], got
    assert phrase in page.inner_text("#message")
    assert page.evaluate("document.getElementById('message').className").endswith("error")
    again = _upload(page, EXAMPLES_DIR / "photos" / "astronaut.jpg")
    assert again["n_faces"] == 1 and again["faces"][0]["label"] == "happy"
    assert not page.errors, page.errors


BLUE_SHARE = """() => {
  const c = document.getElementById('live-out');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let blue = 0;
  for (let k = 0; k < d.length; k += 4) if (d[k + 2] > d[k] + 60 && d[k + 2] > d[k + 1] + 60) blue++;
  return blue / (d.length / 4);
}"""


def _watch_webcam(page, seconds: float) -> tuple[float, float, int]:
    """(labelled frames a second seen by the test, the page's own fps figure, faces in the last frame)."""
    start_frames = int(page.get_attribute("#live-out", "data-frames") or 0)
    start = time.time()
    page.wait_for_timeout(seconds * 1000)
    frames = int(page.get_attribute("#live-out", "data-frames") or 0) - start_frames
    return frames / (time.time() - start), float(page.get_attribute("#live-out", "data-fps")), \
        int(page.get_attribute("#live-out", "data-faces"))


def test_webcam_shows_labelled_frames_and_reports_fps(page):
    page.click("#webcam")
    page.wait_for_function("Number(document.getElementById('live-out').dataset.frames || 0) >= 3", timeout=60_000)
    assert any(name in page.inner_text("#live-label") for name in ("happy", "neutral", "surprise"))
    rates = {}
    for cam in (True, False):
        page.set_checked("#live-cam", cam)
        page.wait_for_timeout(500)  # frames already on their way were drawn as before
        seen, reported, faces = _watch_webcam(page, WEBCAM_WINDOW_S)
        assert faces == 1 and seen > 0.3, (cam, seen, faces)
        times = page.evaluate("window.fer.live.times.slice(-20)")
        rates["webcam_with_cam" if cam else "webcam_without_cam"] = {
            "fps_seen": round(seen, 2), "fps_reported": round(reported, 2), "stages_ms": _medians(times),
            "blue_share": page.evaluate(BLUE_SHARE)}
        assert "fps" in page.inner_text("#live-stats") and "classify" in page.inner_text("#live-stats")
    # the CAM's cold end (deep blue) covers most of the face square when it is drawn, hardly anything otherwise
    assert rates["webcam_with_cam"]["blue_share"] > 3 * rates["webcam_without_cam"]["blue_share"] + 0.002, rates
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_webcam.png"))
    page.click("#webcam")
    rates.update(_photo_rates(page))
    print("web page frame rates:", json.dumps(rates))
    (ARTIFACTS / "web_fps.json").write_text(json.dumps({"backend": page.inner_text("#backend"), **rates}, indent=2))


def _medians(times: list[dict]) -> dict:
    return {k: round(float(np.median([t[k] for t in times])), 1) for k in times[0]}


def _photo_rates(page, photo: Path = EXAMPLES_DIR / "photos" / "astronaut.jpg", n: int = PHOTO_RUNS) -> dict:
    """Photos a second from file to drawn result (median of n runs), with and without the CAMs."""
    out = {}
    for cam in (True, False):
        page.set_checked("#cam", cam)
        runs = [_upload(page, photo)["times"] for _ in range(n)]
        ms = float(np.median([sum(t.values()) for t in runs]))
        out["photo_with_cam" if cam else "photo_without_cam"] = {"ms": round(ms, 1), "fps": round(1000 / ms, 2),
                                                                  "stages_ms": _medians(runs)}
    page.set_checked("#cam", True)
    return out


def test_page_states_privacy_layer_and_model_card(page, predictor):
    """The CAM's stage (the last) and its map size, the app's default stage beside it, and the shipped test
    accuracy (no TTA), as the Python side has them."""
    from fer_demo.backends import report_name
    from fer_demo.checkpoint import SHIPPED_CHECKPOINT
    from fer_demo.cams import default_layer
    from fer_demo.model import CAM_LAYERS

    sizes, last, app = predictor.map_sizes, CAM_LAYERS[-1], default_layer(predictor.map_sizes)
    accuracy = json.loads((SHIPPED_CHECKPOINT / report_name("test", "torch")).read_text())["no_tta"]["accuracy"]
    text = page.inner_text("body")
    assert "Nothing is uploaded" in text
    assert f"{last}, a {sizes[last]}x{sizes[last]} map" in text
    assert ("defaults to the same stage" if app == last else f"{app} ({sizes[app]}x{sizes[app]})") in text
    assert "Not intended" in text and "test accuracy" in text and f"{accuracy:.1%}" in text


def test_no_request_leaves_the_origin(page, web_url):
    """Run last: every request this module's pages made (models, wasm, script) was to the page's own server."""
    _stop_webcam(page)
    _upload(page, EXAMPLES_DIR / "photos" / "grace_hopper.jpg")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_page.png"), full_page=True)
    assert REQUESTS, "no requests recorded"
    outside = [u for u in REQUESTS if not (u.startswith(web_url) or u.startswith(("data:", "blob:")))]
    assert not outside, outside
    assert any(u.endswith(".wasm") for u in REQUESTS) and any(u.endswith("classifier.onnx") for u in REQUESTS)


def test_static_space_uploads_what_its_dry_run_lists(web_dist, monkeypatch):
    """`deploy_space.py --static`: the dry run lists web/dist plus a README with `sdk: static`, and the upload
    sends exactly those files (a stand-in HfApi records what upload_folder would have sent)."""
    import importlib.util

    from huggingface_hub.utils import filter_repo_objects

    spec = importlib.util.spec_from_file_location("deploy_space", REPO_ROOT / "tools" / "deploy_space.py")
    deploy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "deploy_space", deploy)  # its dataclasses look their module up
    spec.loader.exec_module(deploy)
    listed = deploy.space_files(target=deploy.STATIC)
    names = [path for path, _ in listed]
    assert {"index.html", "app.js", "README.md", "models/classifier.onnx", "models/yunet.onnx",
            "models/web_config.json", "ort/ort-wasm-simd-threaded.asyncify.wasm"} <= set(names)
    sent = {}

    class FakeApi:
        def create_repo(self, repo_id, **kw):
            sent["sdk"] = kw["space_sdk"]
            return f"https://huggingface.co/spaces/{repo_id}"

        def upload_folder(self, folder_path, allow_patterns, ignore_patterns, **kw):
            root = Path(folder_path)
            paths = sorted(p.relative_to(root).as_posix() for p in root.glob("**/*") if p.is_file())
            sent["files"] = sorted(filter_repo_objects(paths, allow_patterns=allow_patterns,
                                                       ignore_patterns=ignore_patterns))
            sent["readme"] = (root / "README.md").read_text()

    monkeypatch.setattr(deploy, "HfApi", FakeApi)
    assert deploy.main(["--static", "user/fer-web"]) == 0
    assert sent["sdk"] == "static" and sent["files"] == names
    assert "\nsdk: static\n" in sent["readme"] and "app_file: index.html" in sent["readme"]


def test_a_large_photo_within_the_limits_is_scaled_down_and_read(page, reference, tmp_path):
    """25 megapixels: decoded, scaled to 2048 px as the app does, one face with the app's label."""
    _stop_webcam(page)
    big = tmp_path / "astronaut_5000.jpg"
    photo = Image.open(EXAMPLES_DIR / "photos" / "astronaut.jpg")
    photo.resize((5000, 5000), Image.Resampling.BICUBIC).save(big, quality=90)
    got = _upload(page, big)
    want = reference["page"].predict(str(big), tta="none")
    assert got["n_faces"] == want["n_faces"] == 1, got.get("message", got)
    assert got["faces"][0]["label"] == want["faces"][0]["label"]
    assert got["times"]["decode"] < 30_000
