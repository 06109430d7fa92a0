"""The command line: `fer-demo` (installed) or `python -m fer_demo`.

    fer-demo predict PHOTO... [--json] [--out DIR] [--whole-image] [--no-tta]   # faces and expressions
    fer-demo video CLIP [--rate 2] [--out DIR] [--json]     # the CSV and the annotated clip of a video
    fer-demo serve [app.py's options]                       # the web app (python app.py)

`predict` prints each photo's faces (with --json, its /predict answer, one JSON object a line); --out DIR also
writes, per photo, the answer (STEM.json), the photo with numbered boxes and labels (STEM.faces.jpg) and with
each face's Grad-CAM (STEM.cams.jpg). Bad input gets a one-line message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

BAD_INPUT = 2
CAM_OPACITY = 0.5


def predictor_options() -> argparse.ArgumentParser:
    """The options that choose the Predictor (shared by predict and video)."""
    from .core.backends import BACKENDS
    from .vision.detectors import DEFAULT_DETECTOR, DETECTORS
    from .serving.predictor import DEFAULT_TTA
    from .core.transforms import TTA

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                   help="auto (default): the int8 ONNX copy when fresh, else torch")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    p.add_argument("--tta", default=DEFAULT_TTA, choices=list(TTA), help=f"test-time augmentation ({DEFAULT_TTA})")
    return p


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fer-demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{predict,video,serve}")
    common = predictor_options()
    pr = sub.add_parser("predict", parents=[common], help="the faces and expressions of photos")
    pr.add_argument("photos", nargs="+", metavar="PHOTO")
    pr.add_argument("--json", action="store_true", help="print each photo's /predict answer as one JSON line")
    pr.add_argument("--out", type=Path, default=None, help="write STEM.json, STEM.faces.jpg and STEM.cams.jpg here")
    pr.add_argument("--whole-image", action="store_true", help="classify each whole image as one face")
    pr.add_argument("--no-tta", action="store_true", help="classify each face alone (no test-time augmentation)")
    vi = sub.add_parser("video", parents=[common], help="follow and classify the faces of a clip")
    vi.add_argument("clip", metavar="CLIP")
    vi.add_argument("--rate", type=float, default=None, help="frames sampled per second (default: the app's)")
    vi.add_argument("--out", type=Path, default=Path("."), help="folder for the CSV and the annotated clip (.)")
    vi.add_argument("--json", action="store_true", help="print the /video summary as JSON")
    sub.add_parser("serve", add_help=False, help="the web app; the options are app.py's (serve --help)")
    return p


def make_predictor(args):
    from .serving.predictor import Predictor

    kwargs = dict(device=args.device, backend=args.backend, detector=args.detector, tta=args.tta)
    return Predictor(args.checkpoint, **kwargs) if args.checkpoint else Predictor(**kwargs)


def face_lines(answer: dict) -> list[str]:
    """A photo's faces in words: "  1 happy 0.93  box x=10 y=20 w=80 h=80"."""
    return [f"  {f['index']} {f['label']} {f['confidence']:.2f}  box "
            + " ".join(f"{k}={f['box'][k]}" for k in "xywh") for f in answer["faces"]]


def write_pictures(predictor, analysis, answer: dict, out: Path, stem: str) -> None:
    from PIL import Image

    from .serving.pictures import labelled, photo_with_cams

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(answer, indent=1))
    Image.fromarray(labelled(analysis)).save(out / f"{stem}.faces.jpg", quality=90)
    if analysis.faces:
        Image.fromarray(photo_with_cams(predictor, analysis, CAM_OPACITY)).save(out / f"{stem}.cams.jpg", quality=90)


def run_predict(args) -> int:
    predictor = make_predictor(args)
    failed = 0
    for photo in args.photos:
        try:
            a = predictor.analyze(photo, args.whole_image, tta=predictor.serving_tta(not args.no_tta))
        except ValueError as e:  # ImageLoadError: the file is missing, too large, or not an image
            print(f"error: {photo}: {e}", file=sys.stderr)
            failed += 1
            continue
        answer = predictor.answer(a)
        print(json.dumps(answer) if args.json else "\n".join([f"{photo}: {answer['message']}", *face_lines(answer)]),
              flush=True)
        if args.out:
            write_pictures(predictor, a, answer, args.out, Path(photo).stem)
    return BAD_INPUT if failed else 0


def run_video(args) -> int:
    from .serving.video import DEFAULT_RATE, analyze_clip

    predictor = make_predictor(args)
    args.out.mkdir(parents=True, exist_ok=True)
    rate = DEFAULT_RATE if args.rate is None else args.rate
    result = analyze_clip(predictor, args.clip, rate, out_dir=args.out)
    print(json.dumps(result.summary) if args.json else result.summary.get("message", ""))
    print(f"wrote {result.csv_path} and {result.video_path}", file=sys.stderr)
    return 0


def run_serve(args) -> int:
    from .serve import main as serve

    return serve(args.options)


COMMANDS = {"predict": run_predict, "video": run_video, "serve": run_serve}


def is_bad_input(e: BaseException) -> bool:
    """A missing or unreadable file, a bad option value, a broken checkpoint or detector model: what the user can
    fix, said in one line. (Imported here, after the command raised: nothing heavy before `serve` starts.)"""
    from .core.checkpoint import CheckpointError
    from .vision.detectors import DetectorError

    return isinstance(e, (ValueError, OSError, CheckpointError, DetectorError))  # ImageLoadError, ClipError, ...


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:  # as app.py does: before torch, onnxruntime and gradio are imported
        from .core.allocator import cap_malloc_arenas

        cap_malloc_arenas()
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # a clip OpenCV cannot open: our one line, not its warning
    p = parser()
    args, rest = p.parse_known_args(argv)
    if args.command != "serve" and rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    args.options = rest  # serve's: app.py's own parser reads them
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if not is_bad_input(e):
            raise
        print(f"error: {e}", file=sys.stderr)
        return BAD_INPUT
