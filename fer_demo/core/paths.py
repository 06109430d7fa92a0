"""Where things are: the package's own files (the shipped checkpoint and YuNet's model, under fer_demo/assets, which
the wheel carries), and, in a clone, the repo root, the examples and the local FER2013 copy. Each path is named here
once; the app, the trainer, the benches, the tools and the tests import it. Nothing but pathlib, so that anything
may import it cheaply."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # fer_demo/, above core/
ASSETS_DIR = PACKAGE_DIR / "assets"
# Read-only data: only `python -m train.release` writes here, on purpose (evaluation and quantization write to
# an output folder of their own, under runs/ by default).
SHIPPED_CHECKPOINT = ASSETS_DIR / "fer-resnet18"
YUNET_FILE = ASSETS_DIR / "yunet" / "face_detection_yunet_2026may.onnx"
# The clone's root when fer_demo runs from a clone. Installed from the wheel, the folders below do not exist
# and what reads them goes without (the app offers no example photos, the Test set tab reads the Hub).
REPO_ROOT = PACKAGE_DIR.parent
EXAMPLES_DIR = REPO_ROOT / "examples"
MODEL_CARD = REPO_ROOT / "MODEL_CARD.md"
# The local copy of FER2013 beside the repo (`hf download <data.DEFAULT_DATASET> --repo-type dataset
# --local-dir` it) that the app's Test set tab, the tests, CI and the benches read when it is there.
LOCAL_DATASET = REPO_ROOT.parent / "shared" / "data" / "fer2013"
# The shared real photos (27, with their faces in focus in its README): the real-photo benchmark and tests read
# them; the repo ships the ones its tests need in tests/photos.
SHARED_PHOTOS = REPO_ROOT.parent / "shared" / "photos"
