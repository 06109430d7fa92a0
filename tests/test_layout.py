"""Where code lives: training and its tools need neither OpenCV nor the face detectors."""

import os
import re
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


def _tracked(pattern: str) -> list:
    r = subprocess.run(["git", "ls-files", pattern], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return [REPO_ROOT / p for p in r.stdout.splitlines() if (REPO_ROOT / p).is_file()]


def _imported(path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_tracked_file_edits_sys_path():
    """Benches, tools and examples run as modules (python -m bench.latency) or from the installed package."""
    edit = re.compile(r"^\s*sys\.path\.(insert|append)\(", re.MULTILINE)
    assert [str(p.relative_to(REPO_ROOT)) for p in _tracked("*.py") if edit.search(p.read_text())] == []


def test_helpers_stay_out_of_the_runtime_package_and_bench_out_of_tests():
    """fer_demo (what the wheel and the Space carry) imports no test or bench helper; bench/ imports nothing from
    tests/ (the shared helpers live in fer_demo_testing/)."""
    runtime = {str(p.relative_to(REPO_ROOT)): sorted(m for m in _imported(p)
                                                     if m.split(".")[0] in ("fer_demo_testing", "tests", "bench"))
               for p in _tracked("fer_demo/*.py")}
    assert {path: mods for path, mods in runtime.items() if mods} == {}
    bench = {str(p.relative_to(REPO_ROOT)): [m for m in _imported(p) if m.split(".")[0] == "tests"]
             for p in _tracked("bench/*.py")}
    assert {path: mods for path, mods in bench.items() if mods} == {}


def test_importing_fer_demo_is_cheap():
    """`import fer_demo` loads neither torch, gradio nor OpenCV: the API imports them on first use."""
    code = "import sys, fer_demo; print(sorted(m for m in ('torch', 'gradio', 'cv2') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "[]"
