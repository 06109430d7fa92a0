"""Where code lives: training and its tools need neither OpenCV nor the face detectors."""

import os
import subprocess
import sys

from fer_demo.paths import REPO_ROOT

TRAINING = tuple(f"train.{p.stem}" for p in sorted((REPO_ROOT / "train").glob("*.py")) if p.stem != "__init__")
APP_ONLY = ("cv2", "fer_demo.detectors")


def test_training_imports_neither_opencv_nor_the_detectors():
    """Every module of train/, in a fresh interpreter, so that nothing another test imported counts."""
    assert {"train.train", "train.evaluate", "train.quantize", "train.augment"} <= set(TRAINING)
    code = (f"import sys; import {', '.join(TRAINING)}; "
            f"print(sorted(m for m in {APP_ONLY!r} if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "[]", "imported by train/"
