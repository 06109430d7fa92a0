"""What runs the classifier's forward pass: the PyTorch model, or its int8 ONNX Runtime copy.

Grad-CAM always runs in PyTorch (it needs gradients). Plain classification may
run through `model.int8.onnx`, written beside the weights by `python -m
train.quantize`: int8 convolutions use the CPU's VNNI units, about twice the
arithmetic rate of bf16 here. That file records a digest of the weights it was
made from, so a stale copy is never used for newer weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .checkpoint import MODEL_FILE, CheckpointError
from .onnx_cpu import cpu_session

INT8_FILE = "model.int8.onnx"
DIGEST_KEY = "fer_demo.weights_sha256"


def weights_digest(folder: str | Path) -> str:
    h = hashlib.sha256()
    with open(Path(folder) / MODEL_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def backend_suffix(backend: str) -> str:
    """What a backend adds to report file names: nothing for PyTorch, `.onnx-int8` for the int8 model."""
    return "" if backend == "torch" else f".{backend}"


def report_name(split: str, backend: str) -> str:
    """`test_report.json` for PyTorch, `test_report.onnx-int8.json` for the int8 model."""
    return f"{split}_report{backend_suffix(backend)}.json"


def predictions_name(split: str, backend: str) -> str:
    """The per-face predictions behind a report: `test_predictions.json`, `test_predictions.onnx-int8.json`."""
    return f"{split}_predictions{backend_suffix(backend)}.json"


def reliability_name(split: str, backend: str) -> str:
    """The reliability diagrams beside a report: `test_reliability.png`, `test_reliability.onnx-int8.png`."""
    return f"{split}_reliability{backend_suffix(backend)}.png"


class OnnxClassifier:
    """Logits from an ONNX file through ONNX Runtime on the CPU; called like the torch model."""

    device = torch.device("cpu")

    def __init__(self, path: str | Path):
        try:
            self.session = cpu_session(path, torch.get_num_threads())
        except ImportError:
            raise CheckpointError("onnxruntime is not installed") from None
        except Exception as e:  # onnxruntime raises its own Fail / InvalidGraph / NoSuchFile types
            raise CheckpointError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:300]})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = self.session.get_modelmeta().custom_metadata_map

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().to("cpu", torch.float32).contiguous()
        return torch.from_numpy(self.session.run(None, {self.input_name: x.numpy()})[0])


def open_int8(folder: str | Path) -> OnnxClassifier:
    """The folder's int8 model, or a CheckpointError that says why it cannot serve these weights."""
    path = Path(folder) / INT8_FILE
    if not path.is_file():
        raise CheckpointError(f"no {INT8_FILE} in {folder} (write one with `python -m train.quantize {folder}`)")
    classifier = OnnxClassifier(path)
    if classifier.metadata.get(DIGEST_KEY) != weights_digest(folder):
        raise CheckpointError(f"{INT8_FILE} was made from other weights than {MODEL_FILE}: "
                              f"run `python -m train.quantize {folder}` again")
    return classifier


@dataclass(frozen=True)
class Backend:
    """How to open one backend: (checkpoint folder, torch model) -> callable from normalized input to logits."""

    open: Callable[[Path, torch.nn.Module], Callable]
    cpu_only: bool = False


OPENERS = {
    "torch": Backend(lambda folder, model: model),
    "onnx-int8": Backend(lambda folder, model: open_int8(folder), cpu_only=True),
}
BACKENDS = tuple(OPENERS)
AUTO_ORDER = ("onnx-int8", "torch")  # what "auto" tries, best first, skipping those that cannot run on the device


def _open(name: str, folder: str | Path, model: torch.nn.Module, on_cpu: bool):
    backend = OPENERS[name]
    if backend.cpu_only and not on_cpu:
        raise CheckpointError("it runs on the CPU only")
    return backend.open(Path(folder), model)


def _open_auto(folder: str | Path, model: torch.nn.Module, on_cpu: bool):
    """The first backend of AUTO_ORDER that opens; the note says why the ones before it did not."""
    reasons = []
    for name in (n for n in AUTO_ORDER if on_cpu or not OPENERS[n].cpu_only):
        try:
            return _open(name, folder, model, on_cpu), name, "; ".join(reasons)
        except CheckpointError as e:
            reasons.append(str(e))
    raise CheckpointError(f"no backend could be opened: {'; '.join(reasons)}")


def load_classifier(folder: str | Path, model: torch.nn.Module, backend: str = "auto",
                    device: str | torch.device = "cpu"):
    """(callable from normalized input to logits, backend name, note).

    "auto" takes the first of AUTO_ORDER that runs on the device and opens (the
    int8 model when the device is the CPU and the model is there and fresh,
    PyTorch otherwise); the note says why it fell back.
    """
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"unknown backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    on_cpu = torch.device(device).type == "cpu"
    if backend == "auto":
        return _open_auto(folder, model, on_cpu)
    try:
        return _open(backend, folder, model, on_cpu), backend, ""
    except CheckpointError as e:
        raise CheckpointError(f"cannot use the {backend} backend: {e}") from None
