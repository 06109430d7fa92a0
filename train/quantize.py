"""Write `model.int8.onnx` beside a checkpoint's weights, for the app's and evaluator's onnx-int8 backend.

    python -m train.quantize [CHECKPOINT] [--out DIR] [--dataset X] [--split validation] [--faces 1024]

The int8 model goes to --out (default runs/quantize/<checkpoint's name>, never the shipped checkpoint unless
named), with a copy of the checkpoint's weights and config beside it when that is another folder, so that DIR
is a checkpoint the app and the evaluator open (`--checkpoint DIR --backend onnx-int8`). To quantize a run's
checkpoint in place, name it twice: `python -m train.quantize runs/r18/best --out runs/r18/best`.

Export to ONNX, then static quantization calibrated on real faces: weights are
quantized per output channel (int8) and activations per tensor (uint8), with
ranges measured on a seeded random subset of the training or validation split
(never the test split). Then measure what it costs:
    python -m train.evaluate --backend onnx-int8 --tta
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import DIGEST_KEY, INT8_FILE, weights_digest
from fer_demo.core.data import DEFAULT_DATASET, DataError, load_fer
from fer_demo.core.transforms import to_model_input

from .outputs import default_out

CALIBRATION_BATCH = 64


def export_onnx(model: torch.nn.Module, input_size: int, path: Path) -> None:
    """fp32 ONNX with a dynamic batch axis (input "x", output "logits")."""
    model = model.float().to(memory_format=torch.contiguous_format).eval()
    example = (torch.zeros(2, 1, input_size, input_size),)
    torch.onnx.export(model, example, str(path), input_names=["x"], output_names=["logits"],
                      dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, dynamo=True,
                      optimize=True, verbose=False, report=False)


def calibration_batches(faces: torch.Tensor, config: dict) -> list[dict[str, np.ndarray]]:
    x = to_model_input(faces, config["input_size"], config["mean"], config["std"]).contiguous().numpy()
    return [{"x": x[i:i + CALIBRATION_BATCH]} for i in range(0, len(x), CALIBRATION_BATCH)]


def write_int8(folder: str | Path, faces: torch.Tensor, reduce_range: bool = True,
               out: str | Path | None = None) -> Path:
    """Quantize the checkpoint in `folder` with uint8 `faces` (N, 48, 48); writes folder/INT8_FILE.

    The model is loaded from `folder` itself, so the digest it is tagged with is that of its weights; `out`
    (default: `folder`) is where the file goes.
    `reduce_range` keeps weights to 7 bits: CPUs without VNNI (AVX2 only) multiply uint8 x int8 pairs
    into saturating 16-bit sums, which 8-bit weights overflow; with 7 bits the same file gives the
    same answers on every x86 CPU.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Faces(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration_batches(faces, config))

        def get_next(self):
            return next(self.batches, None)

    folder = Path(folder)
    model, config = ckpt.load_model(folder)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        export_onnx(model, int(config["input_size"]), fp32)
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(str(prepared), str(int8), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=reduce_range)
        proto = onnx.load(str(int8))
        onnx.helper.set_model_props(proto, {DIGEST_KEY: weights_digest(folder), "fer_demo.calibration_faces":
                                            str(len(faces)), "fer_demo.core.labels": ",".join(config["labels"])})
    out = Path(out or folder)
    staged = out / f".{INT8_FILE}.tmp"  # written beside it, then renamed: never a half-written model
    try:
        onnx.save(proto, str(staged))
        os.replace(staged, out / INT8_FILE)
    except OSError as e:
        staged.unlink(missing_ok=True)
        raise ckpt.CheckpointError(f"could not write {out / INT8_FILE}: {e.strerror or e}") from None
    return out / INT8_FILE


def checkpoint_copy(folder: Path, out: Path) -> Path:
    """`out` holding the checkpoint's weights and config (copied unless it is `folder` itself)."""
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != folder.resolve():
        for name in (ckpt.MODEL_FILE, ckpt.CONFIG_FILE):
            shutil.copy2(folder / name, out / name)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", default=str(ckpt.SHIPPED_CHECKPOINT),
                   help="checkpoint folder (default: the shipped model)")
    p.add_argument("--out", default=None,
                   help="folder for the int8 model (default: runs/quantize/<checkpoint's name>)")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help="FER2013 Hub id or local folder")
    p.add_argument("--revision", default=None)
    p.add_argument("--split", default="validation", choices=["train", "validation"],
                   help="calibration faces come from here (default: validation)")
    p.add_argument("--faces", type=int, default=1024, help="calibration faces (default 1024)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        folder = ckpt.resolve(args.checkpoint)
        faces = load_fer(args.dataset, (args.split,), args.revision, {args.split: args.faces}, args.seed,
                         log=lambda *a: print(*a, file=sys.stderr))[args.split]
        start = time.perf_counter()
        out = checkpoint_copy(folder, Path(args.out or default_out("quantize", folder)))
        path = write_int8(folder, faces.images, out=out)
    except (DataError, ckpt.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; {len(faces)} {args.split} faces; "
          f"{time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
