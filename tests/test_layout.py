"""Where code lives: training and its tools need neither OpenCV nor the face detectors."""

import os
import re
import subprocess
import sys

from fer_demo.core.paths import REPO_ROOT

TRAINING = tuple(f"train.{p.stem}" for p in sorted((REPO_ROOT / "train").glob("*.py")) if p.stem != "__init__")
APP_ONLY = ("cv2", "fer_demo.vision.detectors")


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


# The package's stages, lowest first: each imports only its own stage and the ones below it. The folder a module
# lives in names its stage; the top of the package (the lazy public API, the CLI, the server) sits above them all.
STAGES = ("core", "vision", "serving", "ui", "top")
TOP_MODULES = {"__init__", "__main__", "cli", "serve"}


def _stage(dotted: str) -> str:
    """fer_demo.vision.faces -> vision; fer_demo, fer_demo.cli -> top."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "top"


def _package_imports(path) -> set[str]:
    """The fer_demo modules a file imports, relative imports resolved (`from ..core import checkpoint` is
    fer_demo.core.checkpoint), wherever the import sits (module level or inside a function)."""
    import ast

    module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
    package = module.split(".")[:-1]  # fer_demo.core for fer_demo/core/labels.py and fer_demo/core/__init__.py
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fer_demo"}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            if target.split(".")[0] != "fer_demo":
                continue
            # `from ..core import checkpoint` names a module of core; `from .labels import X` names labels.
            found |= {f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names}
    return found


def _is_module(dotted: str) -> bool:
    path = REPO_ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _stage_violations() -> dict[str, list[str]]:
    bad = {}
    for path in _tracked("fer_demo/*.py"):
        rel = path.relative_to(REPO_ROOT)
        own = _stage(".".join(rel.with_suffix("").parts))
        above = sorted(m for m in _package_imports(path) if STAGES.index(_stage(m)) > STAGES.index(own))
        if above:
            bad[str(rel)] = above
    return bad


def test_each_stage_imports_only_the_stages_below_it():
    """core < vision < serving < ui < the top (fer_demo/__init__, __main__, cli, serve)."""
    assert _stage_violations() == {}


def test_every_module_sits_in_a_stage():
    """The tree shows the stages: no flat module at the top but the public API, the CLI and the server."""
    flat = {p.stem for p in _tracked("fer_demo/*.py") if p.parent == REPO_ROOT / "fer_demo"}
    assert flat == TOP_MODULES
    folders = {p.relative_to(REPO_ROOT / "fer_demo").parts[0] for p in _tracked("fer_demo/*.py")
               if p.parent != REPO_ROOT / "fer_demo"}
    assert folders == set(STAGES) - {"top"}
