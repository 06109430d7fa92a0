"""Where things are: the repo root, the shipped checkpoint, the examples, YuNet's model file and the local
FER2013 copy. Each path is named here once; the app, the trainer, the benches, the tools and the tests
import it. Nothing but pathlib, so that anything may import it cheaply."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CHECKPOINT = REPO_ROOT / "checkpoints" / "fer-resnet18"
EXAMPLES_DIR = REPO_ROOT / "examples"
YUNET_FILE = REPO_ROOT / "models" / "yunet" / "face_detection_yunet_2026may.onnx"
# The local copy of FER2013 beside the repo (`hf download <data.DEFAULT_DATASET> --repo-type dataset
# --local-dir` it) that the app's Test set tab, the tests, CI and the benches read when it is there.
LOCAL_DATASET = REPO_ROOT.parent / "shared" / "data" / "fer2013"
# The shared real photos (27, with their faces in focus in its README): the real-photo benchmark and tests read
# them; the repo ships the ones its tests need in tests/photos.
SHARED_PHOTOS = REPO_ROOT.parent / "shared" / "photos"
