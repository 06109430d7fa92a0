"""onnxruntime-web's WebGPU execution provider against the WASM one the page ships, on the page's two models, in
headless Chromium with WebGPU on (fer_demo_testing/browser.py: SwiftShader's software adapter where there is no
GPU), served cross-origin isolated by the page's own server (tools/serve_web.py), so WASM runs a thread per core.

    python -m bench.web_webgpu [--runs 3] [--faces 4]

Models: the page's classifier (web/models/classifier.onnx, int8; `make web`), the fp32 classifier
(`tools.export_web --precision fp32`, exported into a temporary folder) and YuNet (web/models/yunet.onnx).
Paths (PATHS), each in a fresh page of the same browser, with the same pinned onnxruntime-web (web/package.json):
the page's WASM build, the WebGPU build (`onnxruntime-web/webgpu`, ONNX Runtime's native WebGPU EP) and the
default build (`onnxruntime-web`, its JSEP WebGPU EP).
Prints the CPU, each path's WASM binary (raw and gzipped), the WebGPU adapter, and per model and path: session
creation, the first run (shaders compiled), the median of --runs runs after it (the classifier on one face, a
webcam frame's batch; YuNet on the 2-face photo of bench/web_page.py at the page's 640 px and on a fake-camera
frame at the webcam's 320 px), the ratio to WASM, and agreement with WASM: top labels and the largest probability
difference on the first --faces FER2013 faces of examples/fer2013 in one batch; faces found, box and score
differences for YuNet (decoded as the app decodes them).
Run it alone on the machine: it measures the CPU it shares.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from bench import machine
from bench.web_page import FLAGS, two_face_photo
from fer_demo.core import checkpoint as ckpt
from fer_demo.core.calibration import calibrate
from fer_demo.core.paths import REPO_ROOT
from fer_demo.vision.detectors import decode_yunet, yunet_blob
from fer_demo_testing.browser import browser_missing, chromium_browser, webcam_frames
from tools.export_web import DEFAULT_OUT, example_faces, export
from tools.serve_web import gzipped, serving

ORT_DIST = REPO_ROOT / "web" / "node_modules" / "onnxruntime-web" / "dist"
# path -> (onnxruntime-web bundle, the glue module and WASM binary it loads, execution provider)
PATHS = {
    "WASM (the page's)": ("ort.wasm.min.mjs", ("ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"), "wasm"),
    "WebGPU (native EP)": ("ort.webgpu.min.mjs", ("ort-wasm-simd-threaded.asyncify.mjs",
                                                  "ort-wasm-simd-threaded.asyncify.wasm"), "webgpu"),
    "WebGPU (JSEP)": ("ort.min.mjs", ("ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm"),
                      "webgpu"),
}
BASELINE = "WASM (the page's)"
LOG_NOISE = re.compile(r"\x1b\[[0-9;]*m|\d{4}-\d\d-\d\d [\d:.]+ ")  # ONNX Runtime's colours and time stamps
YUNET_VIEWS = {"2-face photo at 640 px": 640, "webcam frame at 320 px": 320}  # longest side of the detector's view

ADAPTER = """async () => {
  const a = navigator.gpu && (await navigator.gpu.requestAdapter());
  if (!a) return null;
  const i = a.info || {};
  return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
           f16: a.features.has('shader-f16') };
}"""

# A path's onnxruntime-web, loaded once in its page.
LOAD_ORT = """async ({ bundle, threads }) => {
  window.ort = await import(`./ort/${bundle}`);
  ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = 'warning';
}"""
# One model on one path: its session created, the timed input's first run (shaders compiled), the check inputs
# run once (their outputs go back for comparison; a warm-up too), then `runs` timed runs of the timed input.
RUN_MODEL = """async ({ ep, model, timed, check, outputs, runs }) => {
  const load = async ({ file, dims }) =>
    new ort.Tensor('float32', new Float32Array(await (await fetch(file)).arrayBuffer()), dims);
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(model, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  const createMs = performance.now() - t0;
  const run = async (x) => {
    const t = performance.now();
    const out = await session.run({ [session.inputNames[0]]: x });
    return [performance.now() - t, out];
  };
  const x = await load(timed);
  const [firstMs] = await run(x);
  const got = [];
  for (const c of check) {
    const [, out] = await run(await load(c));
    got.push(Object.fromEntries(outputs.map((n) => [n, Array.from(out[n].data)])));
  }
  const ms = [];
  for (let i = 0; i < runs; i++) ms.push((await run(x))[0]);
  await session.release();
  return { createMs, firstMs, ms, outputs: got };
}"""


def stage(tmp: Path, n_faces: int) -> dict[str, dict]:
    """The served folder: onnxruntime-web's files for every path, the three models, and the inputs as float32
    files; returns the jobs RUN_MODEL takes (model, timed input, check inputs, outputs compared) with their kind."""
    (tmp / "ort").mkdir()
    for bundle, files, _ in PATHS.values():
        for f in (bundle, *files):
            shutil.copyfile(ORT_DIST / f, tmp / "ort" / f)
    for f in ("classifier.onnx", "yunet.onnx"):
        shutil.copyfile(DEFAULT_OUT / f, tmp / f)
    (tmp / "index.html").write_text('<!doctype html><link rel="icon" href="data:,"><title>onnxruntime-web</title>')
    config = export_fp32(tmp / "fp32")
    faces = example_faces(config).numpy()[:n_faces]
    face = {"timed": write(tmp / "face.f32", faces[:1]), "check": [write(tmp / "faces.f32", faces)],
            "outputs": ["logits"], "kind": "classifier", "temperature": config["temperature"]}
    jobs = {"classifier int8 (the page's), 1 face": {"model": "classifier.onnx", **face},
            "classifier fp32, 1 face": {"model": "fp32/classifier.onnx", **face}}
    for (view_name, side), view in zip(YUNET_VIEWS.items(), yunet_views(tmp)):
        x = write(tmp / f"view{side}.f32", yunet_blob(view)[0])
        jobs[f"YuNet, {view_name}"] = {"model": "yunet.onnx", "timed": x, "check": [x], "kind": "detector",
                                       "outputs": [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps")
                                                   for s in (8, 16, 32)]}
    return jobs


def export_fp32(out: Path) -> dict:
    torch.set_num_threads(1)
    return export(Path(ckpt.SHIPPED_CHECKPOINT), out, precision="fp32")


def yunet_views(tmp: Path) -> list[np.ndarray]:
    """The detector's views: the 2-face photo at 640 px, a 640x480 fake-camera frame at 320 px (area shrink)."""
    photo = np.asarray(Image.open(two_face_photo(tmp / "two_faces.jpg")).convert("RGB"))
    frame = next(webcam_frames())
    views = []
    for rgb, side in zip((photo, frame), YUNET_VIEWS.values()):
        f = side / max(rgb.shape[:2])
        views.append(cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA))
    return views


def write(path: Path, x: np.ndarray) -> dict:
    path.write_bytes(np.ascontiguousarray(x, np.float32).tobytes())
    return {"file": path.name, "dims": list(x.shape)}


def classifier_agreement(job: dict, got: list[dict], want: list[dict]) -> str:
    def probs(outputs):
        logits = torch.tensor(outputs[0]["logits"]).reshape(job["check"][0]["dims"][0], -1)
        return calibrate(logits, job["temperature"]).numpy()

    p, q = probs(got), probs(want)
    same = int((p.argmax(1) == q.argmax(1)).sum())
    return f"labels {same} of {len(p)} the same, largest Δp {np.abs(p - q).max():.2g}"


def yunet_agreement(job: dict, got: list[dict], want: list[dict]) -> str:
    parts = []
    for g, w, x in zip(got, want, job["check"]):
        pad_h, pad_w = x["dims"][2:]
        faces = [decode_yunet({k: np.asarray(v, np.float32) for k, v in o.items()}, pad_w, pad_h) for o in (g, w)]
        box = max((max(abs(a - b) for a, b in zip(fa.box.to_json().values(), fb.box.to_json().values()))
                   for fa, fb in zip(*faces)), default=0)
        score = max((abs(fa.score - fb.score) for fa, fb in zip(*faces)), default=0)
        parts.append(f"faces {len(faces[0])} (WASM {len(faces[1])}), boxes within {box} px, largest Δscore "
                     f"{score:.2g}")
    return "; ".join(parts)


AGREEMENT = {"classifier": classifier_agreement, "detector": yunet_agreement}  # a job's kind -> its comparison


def run_path(browser, url: str, path: str, jobs: dict, runs: int, threads: int) -> tuple[dict, list[str]]:
    """Every model on one path, in a fresh page; and the warnings and errors the page logged."""
    bundle, _, ep = PATHS[path]
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(600_000)
    notes: list[str] = []
    page.on("console", lambda m: notes.append(m.text) if m.type in ("warning", "error") else None)
    page.goto(url)
    page.evaluate(LOAD_ORT, {"bundle": bundle, "threads": threads})
    measured = {}
    for name, job in jobs.items():
        start = time.perf_counter()
        measured[name] = page.evaluate(RUN_MODEL, {"ep": ep, "runs": runs,
                                                   **{k: job[k] for k in ("model", "timed", "check", "outputs")}})
        print(f"  {path}, {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    context.close()
    return measured, notes


def print_table(jobs: dict, measured: dict[str, dict]) -> None:
    print("\n| model | path | session ms | first run ms | ms per run (median) | vs WASM | outputs vs WASM |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for name, job in jobs.items():
        base = measured[BASELINE][name]
        for path, results in measured.items():
            r = results[name]
            median = statistics.median(r["ms"])
            ratio = median / statistics.median(base["ms"])
            agrees = "(reference)" if path == BASELINE else AGREEMENT[job["kind"]](job, r["outputs"], base["outputs"])
            print(f"| {name} | {path} | {r['createMs']:.0f} | {r['firstMs']:.1f} | {median:.1f} | {ratio:.2f}x "
                  f"| {agrees} |")


def binary_sizes() -> str:
    """Each path's WASM binary, raw and as the page's server sends it (gzip)."""
    sizes = []
    for path, (_, files, _) in PATHS.items():
        data = (ORT_DIST / files[1]).read_bytes()
        sizes.append(f"{path} {files[1]} {len(data) / 1e6:.1f} MB ({len(gzipped(data)) / 1e6:.1f} gzipped)")
    return "WASM binaries: " + "; ".join(sizes)


def console_lines(notes: dict[str, list[str]]) -> list[str]:
    """The pages' warnings and errors, once each, without ONNX Runtime's colour codes and time stamps."""
    lines = {f"console ({path}): {LOG_NOISE.sub('', line)[:300]}": None for path, ls in notes.items() for line in ls}
    return list(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="timed runs of each model, after the first and the checks")
    p.add_argument("--faces", type=int, default=4,
                   help="FER2013 faces classified in one batch for the comparison (14: all of examples/fer2013; "
                        "on a software adapter each costs seconds)")
    args = p.parse_args(argv)
    reason = browser_missing()
    missing = [f for f in ("classifier.onnx", "yunet.onnx") if not (DEFAULT_OUT / f).is_file()]
    if reason or missing or not ORT_DIST.is_dir():
        print(f"error: {reason or 'no web/models or web/node_modules: run `make web` first'}", file=sys.stderr)
        return 2
    print(machine.cpu_line(FLAGS))
    print(binary_sizes())
    with tempfile.TemporaryDirectory() as tmp:
        jobs = stage(Path(tmp), args.faces)
        with serving(Path(tmp)) as url, chromium_browser(webgpu=True) as browser:
            page = browser.new_page()
            page.goto(url)
            adapter, threads = page.evaluate(ADAPTER), page.evaluate("navigator.hardwareConcurrency")
            isolated = page.evaluate("crossOriginIsolated")
            page.close()
            measured, notes = {}, {}
            for path in PATHS:
                measured[path], notes[path] = run_path(browser, url, path, jobs, args.runs, threads)
    print(f"WebGPU adapter: {adapter}")
    print(f"cross-origin isolated: {isolated}; WASM threads: {threads}; onnxruntime-web "
          f"{json.loads((ORT_DIST.parent / 'package.json').read_text())['version']}")
    n = jobs["classifier fp32, 1 face"]["check"][0]["dims"][0]
    print(f"timed: median of {args.runs} runs after the first; compared: {n} FER2013 faces in one batch "
          f"(probabilities at the page's temperature), each detector view decoded as the app does")
    print_table(jobs, measured)
    for line in console_lines(notes):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
