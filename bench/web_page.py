"""The static page's speed (web/dist, `make web`) in headless Chromium, served by the repo's own server
(tools/serve_web.py, as `make web-serve`): one run prints the table docs/web-page.md gives.

    python -m bench.web_page [--runs 5] [--seconds 4]        # make web-bench

Prints the CPU (model and the flags WASM SIMD leans on), the page's backend and WASM thread count, whether it is
cross-origin isolated, and the bytes it downloaded (as sent: gzip where the server compresses); then
  - load: from navigation start to the models loaded, and to the first result (a 1-face photo uploaded the moment
    the page is ready);
  - photos: the page's own stage timing (decode, detect, crop, classify, cam in the worker; draw here; total from
    the request to the drawn result), median of --runs, for a 1-face and a 2-face photo of about 1 MP;
  - webcam: labelled frames a second seen over --seconds of Chromium's fake camera (fer_demo_testing/browser.py: a
    640x480, 30 frames/s clip), with and without the live CAM, and the median stage times of the last frames;
both on a thread per core (the page's default) and on one (`?threads=1`), in the same run.
Run it alone on the machine (`flock /tmp/fer-heavy.lock ...` here): it measures the CPU it shares.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from bench import machine
from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT
from fer_demo_testing.browser import browser_missing, chromium_browser
from tools.serve_web import WEB_DIST, serving

# WASM SIMD runs as SSE4.1/AVX2 code; the targets were set on an AVX-512 machine
FLAGS = ("sse4_1", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni")
ONE_FACE = REPO_ROOT / "tests" / "photos" / "img1.jpg"  # 1280x799, one face
TWO_FACES = (EXAMPLES_DIR / "photos" / "astronaut.jpg", EXAMPLES_DIR / "photos" / "grace_hopper.jpg")
STAGES = ("decode", "detect", "crop", "classify", "cam", "draw", "total")
READY = "document.body.dataset.state === 'ready'"


def two_face_photo(path: Path) -> Path:
    """A 1280x800 JPEG (1.0 MP) of two people side by side (astronaut.jpg and grace_hopper.jpg, 640 px high)."""
    canvas = Image.new("RGB", (1280, 800), (90, 90, 90))
    x = 0
    for source in TWO_FACES:
        im = Image.open(source).convert("RGB")
        im = im.resize((round(im.width * 640 / im.height), 640), Image.Resampling.LANCZOS)
        canvas.paste(im, (x + (640 - im.width) // 2, 80))
        x += 640
    canvas.save(path, quality=92)
    return path


def upload(page, path: Path) -> dict:
    runs = int(page.evaluate("document.body.dataset.runs"))
    page.set_input_files("#file", str(path))
    page.wait_for_function(f"Number(document.body.dataset.runs) > {runs} && {READY}")
    got = page.evaluate("window.fer.last")
    if "error" in got:
        raise RuntimeError(f"{path.name}: {got['error']}")
    return got


def medians(times: list[dict]) -> dict:
    return {k: statistics.median(t[k] for t in times) for k in STAGES if all(k in t for t in times)}


def stage_text(ms: dict) -> str:
    return " · ".join(f"{k} {ms[k]:.1f}" for k in STAGES if k in ms)


def open_page(browser, url: str, sizes: list[int]):
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, permissions=["camera"])
    context.on("response", lambda r: sizes.append(int(r.headers.get("content-length") or 0)))
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    return context, page


def measure_load(browser, url: str) -> dict:
    """A fresh context (empty cache): navigation start -> models loaded -> first result of a 1-face photo."""
    sizes: list[int] = []
    context, page = open_page(browser, url, sizes)
    page.wait_for_function("document.body.dataset.state !== 'loading'")
    if page.evaluate("document.body.dataset.state") != "ready":
        raise RuntimeError(page.inner_text("#message"))
    loaded = page.evaluate("performance.now()")
    upload(page, ONE_FACE)
    first = page.evaluate("window.fer.firstResultMs")
    info = {"load_ms": loaded, "first_result_ms": first, "bytes": sum(sizes), "backend": page.inner_text("#backend"),
            "threads": page.evaluate("window.fer.threads"), "isolated": page.evaluate("crossOriginIsolated")}
    context.close()
    return info


def measure_photos(page, photos: dict[str, Path], runs: int) -> dict:
    out = {}
    for name, path in photos.items():
        upload(page, path)  # warm-up
        results = [upload(page, path) for _ in range(runs)]
        out[f"photo, {name}"] = {"faces": results[0]["n_faces"], "labels": [f["label"] for f in results[0]["faces"]],
                     "ms": medians([r["times"] for r in results])}
    return out


def measure_webcam(page, seconds: float) -> dict:
    page.click("#webcam")
    page.wait_for_function("Number(document.getElementById('live-out').dataset.frames || 0) >= 3", timeout=60_000)
    out = {}
    for cam in (True, False):
        page.set_checked("#live-cam", cam)
        page.wait_for_timeout(500)
        start_frames, start = int(page.get_attribute("#live-out", "data-frames")), time.perf_counter()
        time.sleep(seconds)
        frames = int(page.get_attribute("#live-out", "data-frames")) - start_frames
        fps = frames / (time.perf_counter() - start)
        times = page.evaluate("window.fer.live.times.slice(-30)")
        faces = int(page.get_attribute("#live-out", "data-faces"))
        out[f"webcam 640x480, {'with' if cam else 'without'} CAM"] = {"fps": fps, "faces": faces, "ms": medians(times)}
    page.click("#webcam")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="uploads of each photo (median kept), after one warm-up")
    p.add_argument("--seconds", type=float, default=4.0, help="seconds of webcam frames counted, per setting")
    args = p.parse_args(argv)
    reason = browser_missing()
    if reason or not (WEB_DIST / "index.html").is_file():
        print(f"error: {reason or 'no built page in web/dist: run `make web` first'}", file=sys.stderr)
        return 2
    print(machine.cpu_line(FLAGS))
    with serving(WEB_DIST) as url, tempfile.TemporaryDirectory() as tmp:
        photos = {f"1 face ({ONE_FACE.name}, 1280x799)": ONE_FACE,
                  "2 faces (astronaut + grace_hopper, 1280x800)": two_face_photo(Path(tmp) / "two_faces.jpg")}
        with chromium_browser(Path(tmp)) as browser:
            measure_load(browser, url)  # the server compresses each file once: not part of a page's load
            load = measure_load(browser, url)
            rows = {}
            for threads, address in ((load["threads"], url), (1, url + "?threads=1")):
                context, page = open_page(browser, address, [])
                page.wait_for_function(READY)
                rows[threads] = {**measure_photos(page, photos, args.runs), **measure_webcam(page, args.seconds)}
                context.close()
    print(f"page: {load['backend']}")
    print(f"cross-origin isolated: {load['isolated']}; WASM threads: {load['threads']}; "
          f"downloaded {load['bytes'] / 1e6:.1f} MB (as sent)")
    print(f"load: models ready {load['load_ms']:.0f} ms, first result {load['first_result_ms']:.0f} ms "
          "after navigation start (localhost, empty cache)")
    print("\n| input | WASM threads | faces | frames/s | ms per stage (median) |\n| --- | ---: | ---: | ---: | --- |")
    for threads, measured in rows.items():
        for name, r in measured.items():
            rate = f"**{r['fps']:.1f}** seen" if "fps" in r else f"{1000 / r['ms']['total']:.1f}"
            print(f"| {name} | {threads} | {r['faces']} | {rate} | {stage_text(r['ms'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
