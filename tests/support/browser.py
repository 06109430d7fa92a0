"""Headless Chromium (Debian's) driven by Playwright, for the browser tests (test_app_browser.py,
test_video_browser.py, test_web_page.py): one launch per session, conftest's `chromium` fixture.

Skips when Chromium is missing, unless FER_REQUIRE_BROWSER=1 (CI), which makes that a failure. Its fake camera
plays a clip of the astronaut photo (the webcam tests); pages that use no camera never see it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_demo.paths import EXAMPLES_DIR

CHROMIUM = os.environ.get("FER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"  # tests/artifacts: screenshots, frame rates
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def require_browser():
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


def fake_webcam(path: Path, frames: int = 20) -> Path:
    """A Y4M clip of the astronaut photo drifting by a pixel per frame (Chromium's fake camera loops it)."""
    photo = np.asarray(Image.open(EXAMPLES_DIR / "photos" / "astronaut.jpg").convert("RGB").resize((400, 400)),
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


@contextlib.contextmanager
def launched_chromium(webcam_dir: Path | None = None):
    """Headless Chromium (skipping or failing as `require_browser` says); with `webcam_dir`, its fake camera
    plays a clip of the astronaut photo written there."""
    require_browser()
    from playwright.sync_api import sync_playwright

    args = list(CHROMIUM_ARGS)
    if webcam_dir is not None:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={fake_webcam(webcam_dir / 'astronaut.y4m')}"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


def keep_screenshot(page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot in the test's tmp folder, copied to tests/artifacts/."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    assert shot.stat().st_size > 20_000
    return shot
