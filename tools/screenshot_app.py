"""The README's screenshot of the app: app.py on a free loopback port, headless Chromium on its Predict tab with a
real photo uploaded, the faces, labels and Grad-CAMs drawn; the top of the page saved as a small JPEG.

    python -m tools.screenshot_app [--photo examples/photos/group_collage.jpg] [--out docs/app.jpg]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT
from fer_demo_testing.browser import browser_missing, chromium_browser, open_app_page
from fer_demo_testing.local_app import LaunchError, launched_app

VIEW = {"x": 0, "y": 0, "width": 1400, "height": 1000}  # the Predict tab's photo, answers and first face row
QUALITY = 70


def shoot(photo: Path, out: Path) -> int:
    from PIL import Image

    with launched_app(env={"OMP_NUM_THREADS": "1"}) as server, chromium_browser() as browser:
        page = open_app_page(browser, server.url)
        page.set_input_files("#photo input[type=file]", str(photo))
        page.wait_for_function("() => document.querySelector('#predict-message')?.innerText.includes('found')")
        for selector in ("#boxed img", "#photo-cam img", "#cam-0 img"):
            page.wait_for_function("s => { const i = document.querySelector(s); "
                                   "return i && i.complete && i.naturalWidth > 0; }", arg=selector)
        png = page.screenshot(clip=VIEW)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").save(out, quality=QUALITY, optimize=True)
    return out.stat().st_size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo", type=Path, default=EXAMPLES_DIR / "photos" / "group_collage.jpg")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "app.jpg")
    args = p.parse_args(argv)
    problem = browser_missing()
    if not problem:
        try:
            print(f"wrote {args.out} ({shoot(args.photo, args.out) / 1024:.0f} KB)")
        except LaunchError as e:
            problem = str(e)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
