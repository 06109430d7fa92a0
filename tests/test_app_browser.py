"""The app in a real browser: headless Chromium (Debian's) driven by Playwright.

Skips when Chromium is missing, unless FER_REQUIRE_BROWSER=1 (CI), which makes
that a failure. Screenshots go to the test's tmp folder and tests/artifacts/.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_demo.labels import FER_LABELS

from .conftest import EXAMPLES

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("FER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MIN_WEBCAM_FPS = 2.0


def _require_browser():
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed"
    if reason is None and not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if reason:
        if os.environ.get("FER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FER_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def _fake_webcam(path: Path, frames: int = 20) -> Path:
    """A Y4M clip of the astronaut photo drifting by a pixel per frame (Chromium's fake camera loops it)."""
    photo = np.asarray(Image.open(EXAMPLES / "photos" / "astronaut.jpg").convert("RGB").resize((400, 400)),
                       dtype=np.float32)
    w, h = 640, 480
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for k in range(frames):
            canvas = np.full((h, w, 3), 90.0, np.float32)
            x = 100 + (k if k < frames // 2 else frames - k)
            canvas[40:440, x:x + 400] = photo
            r, g, b = canvas[..., 0], canvas[..., 1], canvas[..., 2]
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
            v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean((1, 3))  # noqa: E731
            f.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                f.write(np.clip(plane, 0, 255).astype(np.uint8).tobytes())
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    _require_browser()
    from playwright.sync_api import sync_playwright

    clip = _fake_webcam(tmp_path_factory.mktemp("webcam") / "astronaut.y4m")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + [
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"])
        yield b
        b.close()


@pytest.fixture
def page(browser, app_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_server, wait_until="domcontentloaded")
    page.wait_for_selector("#photo input[type=file]", state="attached")
    yield page
    context.close()


def _keep(page, tmp_path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    assert shot.stat().st_size > 20_000
    return shot


def _wait_for_image(page, selector: str):
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector)


def _label_text(page, selector: str) -> str:
    page.wait_for_function(
        "([s, names]) => { const e = document.querySelector(s); return e && names.some(n => e.innerText.includes(n)); }",
        arg=[selector, list(FER_LABELS)])
    return page.inner_text(selector)


def test_upload_a_photo_and_see_labels_and_heatmaps(page, tmp_path):
    page.set_input_files("#photo input[type=file]", str(EXAMPLES / "photos" / "astronaut.jpg"))
    text = _label_text(page, "#label-0")
    assert "Face 1" in text and sum(name in text for name in FER_LABELS) == 7
    for selector in ("#boxed img", "#photo-cam img", "#crop-0 img", "#cam-0 img"):
        _wait_for_image(page, selector)
    assert not page.is_visible("#label-1")  # one face, one slot
    assert "1 face found" in page.inner_text("#predict-message")
    _keep(page, tmp_path, "app_predict.png")


def test_a_photo_without_a_face_offers_the_whole_image(page):
    page.set_input_files("#photo input[type=file]", str(EXAMPLES / "photos" / "coffee_no_face.jpg"))
    page.wait_for_function("() => document.querySelector('#predict-message')?.innerText.includes('No face found')")
    page.get_by_role("button", name="Classify the whole image as one face").click()
    assert "Face 1" in _label_text(page, "#label-0")
    assert "whole image" in page.inner_text("#predict-message")


def test_explorer_grid_of_seven_maps(page, tmp_path):
    page.get_by_role("tab", name="Grad-CAM explorer").click()
    face = sorted((EXAMPLES / "fer2013").glob("happy_*.png"))[0]
    page.set_input_files("#ex-input input[type=file]", str(face))
    _wait_for_image(page, "#ex-overlay img")
    _label_text(page, "#ex-probs")
    page.get_by_label("All seven classes at once (grid)").check()
    page.wait_for_function("() => { const imgs = [...document.querySelectorAll('#ex-grid img')];"
                           " return imgs.length >= 7 && imgs.every(i => i.complete && i.naturalWidth > 0); }")
    assert "GradCAM" in page.inner_text("#explain-message")
    _keep(page, tmp_path, "app_explorer.png")


def test_live_webcam_labels_faces_fast_enough(page, tmp_path):
    page.get_by_text("Live webcam").click()
    webcam = page.locator("#live-in")
    webcam.get_by_text("Click to Access Webcam").click()
    webcam.locator("button:visible", has_text="Record").click()
    _label_text(page, "#live-label")  # the fake camera shows the astronaut: a face gets labelled
    changes, last, start = 0, None, time.time()
    while time.time() - start < 6.0:
        src = page.get_attribute("#live-out img", "src")
        if src and src != last:
            changes, last = changes + 1, src
        page.wait_for_timeout(30)
    fps = changes / (time.time() - start)
    print(f"live webcam: {fps:.1f} labelled frames/s")
    _keep(page, tmp_path, "app_webcam.png")
    assert fps >= MIN_WEBCAM_FPS, f"live webcam mode ran at {fps:.1f} labelled frames/s"
