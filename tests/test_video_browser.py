"""The Video tab in a real browser: upload a clip, see the annotated clip play, the timeline and the CSV.

The session's headless Chromium (fer_demo_testing/browser.py), driven by Playwright; skipped (or failed
under FER_REQUIRE_BROWSER=1) without one.
"""

from __future__ import annotations

import pytest

from fer_demo.vision.clips import h264_writer

from fer_demo_testing.browser import keep_screenshot
from .test_video import FPS, RATE, SIZE, two_people

pytestmark = pytest.mark.slow


@pytest.fixture
def page(chromium, app_server):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(app_server, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Video").click()
    page.wait_for_selector("#video-in input[type=file]", state="attached")
    yield page
    context.close()


def _video_plays(page, selector: str, size=SIZE):
    """Chromium has decoded a frame of the <video> (of the right size): it plays the file, not just loads it."""
    page.wait_for_function("([s, w, h]) => { const v = document.querySelector(s);"
                           " return v && v.readyState >= 2 && v.videoWidth === w && v.videoHeight === h; }",
                           arg=[selector, *size])


def test_upload_a_clip_and_see_the_people_followed(page, tmp_path):
    clip = tmp_path / "two_people.mp4"
    with h264_writer(clip, SIZE, FPS) as write:  # H.264, as phones record: the upload previews too
        for frame in two_people():
            write(frame)
    page.set_input_files("#video-in input[type=file]", str(clip))
    _video_plays(page, "#video-in video")
    assert page.input_value("#video-rate input[type=number]") == f"{RATE:g}"
    page.click("#video-run")
    page.wait_for_function("() => document.querySelector('#video-message')?.innerText"
                           ".includes('2 people followed through 8 frames')")
    _video_plays(page, "#video-out video")
    page.wait_for_function("() => { const i = document.querySelector('#video-timeline img');"
                           " return i && i.complete && i.naturalWidth > 500; }")
    assert page.locator("#video-csv a[href$='two_people_faces.csv']").count() == 1  # the CSV to download
    assert not page.get_by_text("Video not playable").count()
    keep_screenshot(page, tmp_path, "app_video.png")


def test_a_photo_renamed_mp4_gets_a_message_in_the_page(page, tmp_path):
    from PIL import Image

    from fer_demo.core.paths import EXAMPLES_DIR

    photo = tmp_path / "photo.mp4"
    Image.open(EXAMPLES_DIR / "photos" / "astronaut.jpg").save(photo, format="PNG")
    page.set_input_files("#video-in input[type=file]", str(photo))
    page.click("#video-run")
    page.get_by_text("is a PNG image, not a video").first.wait_for()
