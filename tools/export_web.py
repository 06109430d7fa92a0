"""Export what the static page (web/) runs in the browser: the classifier as ONNX with a second output
(layer4's feature maps, for the CAM), the YuNet face detector, and the page's settings and model-card text.

    python -m tools.export_web [--checkpoint fer_demo/assets/fer-resnet18] [--out web/models] [--precision fp32|int8]

Writes into --out:
  classifier.onnx  input `input` (N, 1, 48, 48) normalized; outputs `logits` (N, 7) and `layer4` (N, 512, 3, 3)
  yunet.onnx       the shipped YuNet file, as it is
  web_config.json  labels, mean/std, input size, the fc layer (for CAM = fc weights x layer4 maps), the
                   detector's thresholds and side, the crop geometry, and the model card's figures and text

The classifier is int8 by default: the checkpoint's own model.int8.onnx (the file the Python app serves by
default), with its input renamed and the dequantized layer4 maps, the tensor its pooling reads, added as a
second output, checked against that file; it falls back to fp32 (TorchScript exporter, checked against PyTorch
on the example faces) when the checkpoint has no int8 copy made from its weights, or with `--precision fp32`.
onnxruntime-web 1.31.1 (WASM) runs that int8 graph exactly as Python ONNX Runtime does, about 2x faster than
fp32 and in 11 MB instead of 45. Its quantized activations magnify any difference in the input, so it needs the
page's crops to equal the app's: web/src/crop.js does OpenCV's area shrink and warp to the bit (docs/web-page.md).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import DIGEST_KEY, INT8_FILE, weights_digest
from fer_demo.core.calibration import temperature_for
from fer_demo.serving.cams import default_layer
from fer_demo.vision.detectors import (DETECT_SIDE, FOCUS_RATIO, FOCUS_SIDE, MIN_FACE_FRACTION, MIN_FACE_PIXELS,
                                       YUNET_NMS, YUNET_SCORE, YUNET_STRIDES, YUNET_TOP_K)
from fer_demo.vision.drawing import PALETTE
from fer_demo.vision.faces import GEOMETRY, MAX_FACES, MAX_FACES_CLASSIFIED, SMALL_IMAGE_SIDE
from fer_demo.vision.images import MAX_FILE_BYTES, MAX_PIXELS, MAX_SIDE
from fer_demo.core.model import stage_map_sizes
from fer_demo.core.transforms import NO_TTA
from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT, YUNET_FILE

DEFAULT_OUT = REPO_ROOT / "web" / "models"
CAM_LAYER = "layer4"
# The detector's view of a webcam frame (longest side), the page's alone: on 76 webcam frames of 640x480 (every real
# photo framed as a webcam would, and the tests' fake-camera clip) 416 px finds every face the app's 640-px view
# finds and 320 all but 2 of 78, the two smallest (faces under 40 px of a 640x480 frame fall under MIN_FACE_PIXELS
# at 320). 320 halves the frame exactly, which OpenCV's area shrink (and resample.js) does with integer sums in
# about 2 ms in the page, where 416 takes its float path, 17 ms, more than YuNet saves
# (`python -m bench.web_detector_side`, docs/web-page.md).
WEBCAM_DETECT_SIDE = 320
MAX_ABS_LOGIT_ERROR = 1e-3  # fp32 ONNX Runtime vs PyTorch, or the web int8 graph vs its source, on the same faces
INT8_LAYER4 = "relu_16_DequantizeLinear_Output"  # in model.int8.onnx: the dequantized layer4 maps the pooling reads


class LogitsAndFeatures(nn.Module):
    """The classifier, returning (logits, the last stage's feature maps)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        features = self.model.forward_features(x)
        return self.model.forward_head(features), features


def model_card_text(card: Path) -> dict:
    """The intended use and the misuse paragraphs of the model card's "Uses" section, as plain text."""
    text = card.read_text(encoding="utf-8")
    match = re.search(r"^## Uses\s*\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    paragraphs = [" ".join(p.split()) for p in (match.group(1) if match else "").split("\n\n") if p.strip()]
    intended = [p for p in paragraphs if p.startswith("Intended")]
    misuse = [p for p in paragraphs if p.startswith("Not intended")]
    return {"intended": intended[0] if intended else "", "misuse": misuse[0] if misuse else ""}


def accuracy_figures(folder: Path, config: dict) -> dict:
    """Validation accuracy from config.json and test accuracy from test_report.json (no TTA, as the page runs)."""
    out = {"validation_accuracy": config.get("metrics", {}).get("accuracy")}
    report = folder / "test_report.json"
    if report.is_file():
        r = json.loads(report.read_text())
        out.update(test_accuracy=r.get("no_tta", {}).get("accuracy"), test_macro_f1=r.get("no_tta", {}).get("macro_f1"),
                   test_n=r.get("n"))
    return out


def int8_graph(folder: Path):
    """The checkpoint's int8 copy as the page runs it (input `input`, outputs `logits` and layer4), or None with
    the reason when there is none for these weights."""
    import onnx

    path = folder / INT8_FILE
    if not path.is_file():
        return None, f"no {INT8_FILE} in {folder}"
    proto = onnx.load(str(path))
    if {p.key: p.value for p in proto.metadata_props}.get(DIGEST_KEY) != weights_digest(folder):
        return None, f"{INT8_FILE} was made from other weights"
    graph = proto.graph
    if len(graph.input) != 1 or not any(INT8_LAYER4 in n.output for n in graph.node):
        return None, f"{INT8_FILE} has no tensor {INT8_LAYER4} (an older export?)"
    old = graph.input[0].name
    graph.input[0].name = "input"
    for node in graph.node:
        node.input[:] = ["input" if v == old else v for v in node.input]
    graph.node.append(onnx.helper.make_node("Identity", [INT8_LAYER4], [CAM_LAYER], name=f"{CAM_LAYER}_output"))
    maps = onnx.helper.make_tensor_value_info(CAM_LAYER, onnx.TensorProto.FLOAT, ["batch", 512, None, None])
    graph.output.append(maps)
    onnx.checker.check_model(proto)
    return proto, ""


def export(checkpoint: Path, out: Path, yunet: Path = YUNET_FILE, opset: int = 17, precision: str = "int8") -> dict:
    folder = ckpt.resolve(checkpoint)
    model, config = ckpt.load_model(folder)
    model = model.to(memory_format=torch.contiguous_format).eval()
    size = int(config["input_size"])
    map_sizes = stage_map_sizes(model, size)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "classifier.onnx"
    wrapped = LogitsAndFeatures(model).eval()
    proto, note = int8_graph(folder) if precision == "int8" else (None, "")
    if proto is not None:
        import onnx

        onnx.save(proto, str(onnx_path))
        error = check_int8(onnx_path, folder / INT8_FILE, config)
    else:
        if note:
            print(f"note: {note}; the page gets the fp32 classifier", file=sys.stderr)
        precision = "fp32"
        dummy = torch.zeros(1, 1, size, size)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: plain ops, opset 17
            torch.onnx.export(wrapped, (dummy,), str(onnx_path), dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["logits", CAM_LAYER],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, CAM_LAYER: {0: "batch"}})
        error = check(wrapped, onnx_path, config)
    shutil.copyfile(yunet, out / "yunet.onnx")
    fc = model.get_classifier()
    web_config = {
        "labels": list(config["labels"]),
        "mean": float(config["mean"]),
        "std": float(config["std"]),
        "input_size": size,
        "arch": config["arch"],
        "stem": config["stem"],
        "cam_layer": CAM_LAYER,
        "app_cam_layer": default_layer(map_sizes),  # the Python app's default Grad-CAM stage, for the page's note
        "precision": precision,  # of classifier.onnx: "int8" (the checkpoint's model.int8.onnx) or "fp32"
        "map_sizes": map_sizes,
        "fc_weight": [[float(v) for v in row] for row in fc.weight.detach().float().numpy()],
        "fc_bias": [float(v) for v in fc.bias.detach().float().numpy()],
        # the page classifies one view: its probabilities are softmax(logits / T), as the app's
        # (fer_demo/core/calibration.py)
        "temperature": temperature_for(config, NO_TTA),
        "detector": {"side": DETECT_SIDE, "webcam_side": WEBCAM_DETECT_SIDE, "score": YUNET_SCORE, "nms": YUNET_NMS,
                     "top_k": YUNET_TOP_K, "min_face_fraction": MIN_FACE_FRACTION, "min_face_pixels": MIN_FACE_PIXELS,
                     "strides": list(YUNET_STRIDES), "focus_side": FOCUS_SIDE, "focus_ratio": FOCUS_RATIO},
        "palette": [f"rgb({r},{g},{b})" for r, g, b in PALETTE],  # the boxes' colours, in face order
        "geometry": {"scale": GEOMETRY["yunet"].scale, "down": GEOMETRY["yunet"].down,
                     "align": GEOMETRY["yunet"].align},
        "limits": {"max_faces": MAX_FACES, "max_faces_classified": MAX_FACES_CLASSIFIED,
                   "small_image_side": SMALL_IMAGE_SIDE, "max_side": MAX_SIDE, "max_pixels": MAX_PIXELS,
                   "max_file_bytes": MAX_FILE_BYTES},
        "card": {**accuracy_figures(folder, config), **model_card_text(REPO_ROOT / "MODEL_CARD.md")},
        "export_check": {"max_abs_logit_error": error,
                         "against": "model.int8.onnx" if precision == "int8" else "PyTorch"},
        "weights_sha256": weights_digest(folder),  # which weights these files hold (tests rebuild a stale copy)
    }
    (out / "web_config.json").write_text(json.dumps(web_config))
    return web_config


def example_faces(config: dict) -> torch.Tensor:
    """The example faces (examples/fer2013), normalized as the model reads them."""
    from PIL import Image

    from fer_demo.core.transforms import to_model_input

    faces = [np.asarray(Image.open(p).convert("L")) for p in sorted((EXAMPLES_DIR / "fer2013").glob("*.png"))]
    faces = faces or [np.full((48, 48), 128, np.uint8)]
    return to_model_input(torch.from_numpy(np.stack(faces)), config["input_size"], config["mean"], config["std"])


def check_int8(onnx_path: Path, source: Path, config: dict) -> float:
    """Largest |logit| difference between the page's int8 graph and the int8 file it was made from, which it
    must match (only an output was added); also that its layer4 maps have the expected shape."""
    import onnxruntime as ort

    x = example_faces(config).numpy()
    want_session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    want = want_session.run(None, {want_session.get_inputs()[0].name: x})[0]
    got_logits, got_features = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})
    error = float(np.abs(got_logits - want).max())
    if error > MAX_ABS_LOGIT_ERROR or got_features.shape[:2] != (len(x), 512):
        raise RuntimeError(f"the web int8 graph disagrees with {source.name}: logits by {error:.2g}, "
                           f"{CAM_LAYER} maps of shape {got_features.shape}")
    return error


def check(wrapped: nn.Module, onnx_path: Path, config: dict) -> float:
    """Largest |logit| difference between ONNX Runtime and PyTorch on the example faces (and a CAM-map check)."""
    import onnxruntime as ort

    x = example_faces(config)
    with torch.no_grad():
        logits, features = wrapped(x)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got_logits, got_features = session.run(None, {"input": x.numpy()})
    error = float(np.abs(got_logits - logits.numpy()).max())
    feature_error = float(np.abs(got_features - features.numpy()).max())
    if error > MAX_ABS_LOGIT_ERROR or feature_error > MAX_ABS_LOGIT_ERROR:
        raise RuntimeError(f"the ONNX export disagrees with PyTorch: logits by {error:.2g}, "
                           f"{CAM_LAYER} maps by {feature_error:.2g}")
    return error


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ckpt.SHIPPED_CHECKPOINT))
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--precision", choices=["fp32", "int8"], default="int8",
                   help="the classifier: the checkpoint's int8 copy (default; fp32 when it has none) or fp32")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    try:
        cfg = export(Path(args.checkpoint), Path(args.out), precision=args.precision)
    except ckpt.CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    sizes = ", ".join(f"{f.name} {f.stat().st_size / 1e6:.1f} MB" for f in sorted(out.glob("*.onnx")))
    print(f"exported to {out}: {sizes}; {cfg['cam_layer']} map {cfg['map_sizes'][cfg['cam_layer']]}x"
          f"{cfg['map_sizes'][cfg['cam_layer']]}; classifier {cfg['precision']}, max |logit| error vs "
          f"{cfg['export_check']['against']} {cfg['export_check']['max_abs_logit_error']:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
