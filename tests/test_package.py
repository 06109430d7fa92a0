"""Installed from its wheel, outside the clone: `fer_demo` labels a real photo with the model and face detector
the wheel carries, through the API, `python -m fer_demo` and the `fer-demo` script, and reads no file of the clone.

The wheel is built from the clone's files (`pip wheel --no-build-isolation`) and installed with --no-deps into a
fresh venv whose .pth line points at this environment's site-packages (torch and the rest, not reinstalled).
An audit hook in that venv (a .pth that imports it at start) records every file and folder Python opens."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT

pytestmark = pytest.mark.slow  # a wheel built and installed into a fresh venv
PHOTO = EXAMPLES_DIR / "photos" / "group_collage.jpg"
AUDIT_MODULE = '''"""Records the paths Python opens or lists, into env FER_AUDIT_LOG at exit (tests/test_package.py)."""
import atexit, json, os, sys

LOG = os.environ.get("FER_AUDIT_LOG")
SEEN = set()
EVENTS = ("open", "os.listdir", "os.scandir", "glob.glob")


def _hook(event, args):
    if event in EVENTS and args and isinstance(args[0], (str, bytes, os.PathLike)):
        SEEN.add(os.path.realpath(os.fsdecode(args[0])))


def _write():
    paths = sorted(SEEN)
    with open(LOG, "a") as f:
        f.write(json.dumps(paths) + "\\n")


if LOG:
    sys.addaudithook(_hook)
    atexit.register(_write)
'''


def _tracked_files() -> list[str]:
    r = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                       capture_output=True, text=True, check=True)
    return [p for p in r.stdout.splitlines() if (REPO_ROOT / p).is_file()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """{"wheel": the built wheel, "python": the venv's python, "bin": its scripts, "work": a folder outside the
    clone holding a copy of the photo}."""
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"  # the clone's files alone: the build writes its build/ and egg-info here
    for path in _tracked_files():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, source / path)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "wheel"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp / "wheel").glob("fer_demo-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "fer_audit.py").write_text(AUDIT_MODULE)
    (site / "fer_audit.pth").write_text("import fer_audit\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    shutil.rmtree(source)
    work = tmp / "work"
    work.mkdir()
    shutil.copy2(PHOTO, work / PHOTO.name)
    return {"wheel": wheel, "python": python, "bin": env_dir / "bin", "site": site, "work": work}


def _run(installed, argv: list[str], audit_log: Path) -> str:
    """Run argv in the work folder with the venv's environment alone; returns stdout. Fails on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "FER_DATASET")}
    env.update(FER_AUDIT_LOG=str(audit_log), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PATH=f"{installed['bin']}{os.pathsep}{env.get('PATH', '')}")
    r = subprocess.run(argv, cwd=installed["work"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def _clone_paths_read(audit_log: Path) -> list[str]:
    """Paths under the clone that the runs opened or listed (the environment's own site-packages aside: in a
    clone whose venv lives inside it, that is where torch comes from)."""
    repo = os.path.realpath(REPO_ROOT) + os.sep
    outer = os.path.realpath(sysconfig.get_paths()["purelib"]) + os.sep
    read = {p for line in audit_log.read_text().splitlines() for p in json.loads(line)}
    return sorted(p for p in read if (p + os.sep).startswith(repo) and not (p + os.sep).startswith(outer))


def test_the_wheel_holds_the_package_model_and_detector_and_no_helpers(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"fer_demo", installed["wheel"].name.split("-py3")[0] + ".dist-info"}, tops
    for asset in ("fer-resnet18/model.safetensors", "fer-resnet18/model.int8.onnx", "fer-resnet18/config.json",
                  "fer-resnet18/test_report.json", "fer-resnet18/test_predictions.onnx-int8.json",
                  "yunet/face_detection_yunet_2026may.onnx", "yunet/LICENSE"):
        assert f"fer_demo/assets/{asset}" in names, asset
    modules = [p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "fer_demo").rglob("*.py")]
    assert "fer_demo/serving/predictor.py" in modules
    assert [m for m in modules if m not in names] == []  # the stage subpackages (core/, vision/, ...) included
    assert not [n for n in names if "__pycache__" in n or n.startswith(("fer_demo_testing", "train", "tests"))]


def test_installed_outside_the_clone_it_labels_a_photo_and_reads_nothing_of_the_clone(installed, tmp_path):
    log = tmp_path / "audit.jsonl"
    code = ("import json, fer_demo, fer_demo.core.paths as p; a = fer_demo.predict('group_collage.jpg'); "
            "print(json.dumps({'faces': a['faces'], 'backend': a['backend'], 'detector': a['detector'], "
            "'files': [fer_demo.__file__, str(p.SHIPPED_CHECKPOINT), str(p.YUNET_FILE)]}))")
    api = json.loads(_run(installed, [str(installed["python"]), "-c", code], log))
    for path in api["files"]:
        assert Path(path).resolve().is_relative_to(installed["site"].resolve()), path
    assert api["backend"] == "onnx-int8" and "YuNet" in api["detector"]  # the wheel's int8 copy and YuNet
    assert len(api["faces"]) == 4 and {f["label"] for f in api["faces"]} <= {"angry", "disgust", "fear", "happy",
                                                                             "sad", "surprise", "neutral"}
    module = json.loads(_run(installed, [str(installed["python"]), "-m", "fer_demo", "predict", PHOTO.name,
                                         "--json"], log))
    script = json.loads(_run(installed, [str(installed["bin"] / "fer-demo"), "predict", PHOTO.name, "--json"], log))
    assert module["faces"] == script["faces"] == api["faces"]
    assert len(log.read_text().splitlines()) == 3  # each run was audited
    assert _clone_paths_read(log) == []
