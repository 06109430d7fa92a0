"""Headless Chromium (Debian's) driven by Playwright, for the browser tests (test_app_browser.py,
test_video_browser.py, test_web_page.py; conftest's `chromium` fixture, one launch per session) and for
bench/webcam_fps.py.

Skips when Chromium is missing, unless FER_REQUIRE_BROWSER=1 (CI), which makes that a failure. Its fake camera
plays a 30 frames/s clip of the astronaut photo drifting a little (the webcam tests and bench); pages that use
no camera never see it. The clip is written at run time, so no video file is kept in the repository.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT

CHROMIUM = os.environ.get("FER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"  # screenshots, frame rates
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
# WebGPU or not -> the GPU flags. Off for the tests and most benches (no GPU here; the pages they load do not ask
# for one). On for bench/web_webgpu.py: with the GPU process left on, Debian's headless Chromium offers WebGPU on
# SwiftShader's software adapter (vendor google, architecture swiftshader), the only adapter a GPU-less machine has.
GPU_ARGS = {False: ["--disable-gpu"], True: ["--enable-unsafe-webgpu"]}
# The fake camera's clip: fast enough that the camera is never what caps a frame rate the tests or the bench
# see (Chromium plays the file at its own rate, looped). 640x480 for the tests; the bench plays a 1280x720 one,
# a laptop webcam's usual size, so that the size the app asks the camera for makes a difference.
WEBCAM_PHOTO = EXAMPLES_DIR / "photos" / "astronaut.jpg"
WEBCAM_SIZE = (640, 480)
WEBCAM_FPS = 30
WEBCAM_SECONDS = 2


def browser_missing() -> str | None:
    """Why the browser tests and bench cannot run here (no Playwright, no Chromium), or None if they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def require_browser():
    import pytest

    reason = browser_missing()
    if reason:
        if os.environ.get("FER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FER_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def webcam_frames(size: tuple[int, int] = WEBCAM_SIZE, fps: int = WEBCAM_FPS,
                  seconds: float = WEBCAM_SECONDS) -> Iterator[np.ndarray]:
    """The fake camera's RGB frames: the astronaut photo (5/6 of the height) on gray, drifting a pixel a frame
    right and back over the loop. Every frame differs from the last, as a real camera's do (sensor noise), so the
    app answers each with a new image: Gradio names an output file by its bytes, and the page shows an identical
    answer as no new frame."""
    w, h = size
    side = h * 5 // 6
    photo = np.asarray(Image.open(WEBCAM_PHOTO).convert("RGB").resize((side, side)))
    n = round(fps * seconds)
    top, left = (h - side) // 2, (w - side) // 2 - n // 4
    for k in range(n):
        canvas = np.full((h, w, 3), 90, np.uint8)
        x = left + min(k, n - k)
        canvas[top:top + side, x:x + side] = photo
        yield canvas


def yuv420(rgb: np.ndarray) -> bytes:
    """An RGB frame as Y4M's C420jpeg planes (full-range BT.601, chroma averaged over 2x2 pixels)."""
    h, w, _ = rgb.shape
    r, g, b = (rgb[..., c].astype(np.float32) for c in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    planes = (y, *(c.reshape(h // 2, 2, w // 2, 2).mean((1, 3)) for c in (u, v)))
    return b"".join(np.clip(p + 0.5, 0, 255).astype(np.uint8).tobytes() for p in planes)


def fake_webcam(path: Path, size: tuple[int, int] = WEBCAM_SIZE, fps: int = WEBCAM_FPS) -> Path:
    """The fake camera's clip (`webcam_frames`) written to `path` as Y4M, which Chromium loops at `fps`."""
    w, h = size
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in webcam_frames(size, fps):
            f.write(b"FRAME\n" + yuv420(frame))
    return path


@contextlib.contextmanager
def launched_chromium(webcam_dir: Path | None = None):
    """Headless Chromium (skipping or failing as `require_browser` says); with `webcam_dir`, its fake camera
    plays the astronaut clip written there."""
    require_browser()
    with chromium_browser(webcam_dir) as browser:
        yield browser


@contextlib.contextmanager
def chromium_browser(webcam_dir: Path | None = None, webcam_size: tuple[int, int] = WEBCAM_SIZE,
                     webgpu: bool = False):
    """Headless Chromium, with the fake camera playing the astronaut clip (written to `webcam_dir`, `webcam_size`)
    if given, and WebGPU if asked (GPU_ARGS); the caller has checked `browser_missing`."""
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + GPU_ARGS[webgpu]
    if webcam_dir is not None:
        clip = fake_webcam(Path(webcam_dir) / "astronaut.y4m", webcam_size)
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={clip}"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


def open_app_page(browser, url: str, timeout_ms: int = 60_000):
    """A new context (camera allowed) and page of `browser` on the app at `url`, the Predict tab loaded."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#photo input[type=file]", state="attached")
    return page


# Counts, in the page, every labelled frame the app's stream handler sends back: each one is a new image in
# #live-out, and it counts once the browser has loaded it.
WATCH_LIVE_OUT = """() => {
  window.__liveFrames = [];
  let last = null;
  document.addEventListener('load', e => {
    const img = e.target;
    if (img.tagName === 'IMG' && img.closest('#live-out') && img.src !== last) {
      last = img.src;
      window.__liveFrames.push(performance.now());
    }
  }, true);
}"""
LIVE_FRAMES_BETWEEN = "([t0, t1]) => window.__liveFrames.filter(t => t >= t0 && t < t1).length"


def start_webcam(page):
    """Open the Predict tab's live webcam, start streaming and wait until a face gets labelled."""
    page.evaluate(WATCH_LIVE_OUT)
    page.get_by_text("Live webcam").click()
    webcam = page.locator("#live-in")
    webcam.get_by_text("Click to Access Webcam").click()
    webcam.locator("button:visible", has_text="Record").click()
    page.wait_for_function("names => { const e = document.querySelector('#live-label');"
                           " return e && names.some(n => e.innerText.includes(n)); }", arg=list(FER_LABELS))


def page_clock(page) -> float:
    """The page's clock (performance.now(), ms): the time base of what it records."""
    return page.evaluate("performance.now()")


def labelled_frames(page, start_ms: float, end_ms: float) -> int:
    """Labelled frames that reached the page (loaded into #live-out) between two `page_clock` readings."""
    return page.evaluate(LIVE_FRAMES_BETWEEN, [start_ms, end_ms])


def labelled_fps(page, seconds: float) -> float:
    """Labelled frames a second that reach the page over the next `seconds`."""
    start = page_clock(page)
    time.sleep(seconds)
    end = page_clock(page)
    return labelled_frames(page, start, end) / ((end - start) / 1000)


def keep_screenshot(page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot in the test's tmp folder, copied to tests/artifacts/."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    assert shot.stat().st_size > 20_000
    return shot
