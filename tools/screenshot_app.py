"""The docs' screenshots, headless Chromium on a real photo uploaded, the faces, labels and Grad-CAMs drawn, the top
of the page saved as a small JPEG: the app (app.py on a free loopback port, its Predict tab; docs/app.jpg, the
README's) or the static page (web/dist served cross-origin isolated by tools/serve_web.py, as `make web-serve`;
web/screenshot.jpg, docs/web-page.md's).

    python -m tools.screenshot_app [app|web] [--photo examples/photos/group_collage.jpg] [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT
from fer_demo_testing.browser import browser_missing, chromium_browser, open_app_page
from fer_demo_testing.local_app import LaunchError, launched_app
from tools.serve_web import WEB_DIST, serving

VIEW = {"x": 0, "y": 0, "width": 1400, "height": 1000}  # the photo, its answers and the first row of faces
QUALITY = 70


def shoot_app(photo: Path) -> bytes:
    with launched_app(env={"OMP_NUM_THREADS": "1"}) as server, chromium_browser() as browser:
        page = open_app_page(browser, server.url)
        page.set_input_files("#photo input[type=file]", str(photo))
        page.wait_for_function("() => document.querySelector('#predict-message')?.innerText.includes('found')")
        for selector in ("#boxed img", "#photo-cam img", "#cam-0 img"):
            page.wait_for_function("s => { const i = document.querySelector(s); "
                                   "return i && i.complete && i.naturalWidth > 0; }", arg=selector)
        return page.screenshot(clip=VIEW)


def shoot_web(photo: Path) -> bytes:
    if not (WEB_DIST / "index.html").is_file():
        raise LaunchError("no built page in web/dist: run `make web` first")
    with serving(WEB_DIST) as url, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": VIEW["width"], "height": VIEW["height"]})
        page.goto(url)
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=120_000)
        for run in range(2):  # the second: the stage times of a warm page, as the page's own timing shows them
            page.set_input_files("#file", str(photo))
            page.wait_for_function(f"Number(document.body.dataset.runs) > {run} && "
                                   "document.body.dataset.state === 'ready'", timeout=120_000)
        return page.screenshot(clip=VIEW)


SHOTS = {"app": (shoot_app, REPO_ROOT / "docs" / "app.jpg"), "web": (shoot_web, REPO_ROOT / "web" / "screenshot.jpg")}


def shoot(target: str, photo: Path, out: Path) -> int:
    from PIL import Image

    png = SHOTS[target][0](photo)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").save(out, quality=QUALITY, optimize=True)
    return out.stat().st_size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", choices=list(SHOTS), default="app")
    p.add_argument("--photo", type=Path, default=EXAMPLES_DIR / "photos" / "group_collage.jpg")
    p.add_argument("--out", type=Path, default=None, help="default: docs/app.jpg or web/screenshot.jpg")
    args = p.parse_args(argv)
    out = args.out or SHOTS[args.target][1]
    problem = browser_missing()
    if not problem:
        try:
            print(f"wrote {out} ({shoot(args.target, args.photo, out) / 1024:.0f} KB)")
        except LaunchError as e:
            problem = str(e)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
