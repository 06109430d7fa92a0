"""Ready for a Hugging Face Space: README front matter, the requirements split, and the upload's files.

The upload's file list comes from `python -m tools.deploy_space --dry-run` (`make space-dry-run`); the slow test
starts app.py from a copy holding only those files, with a Space's settings: no local FER2013, no
FER_DATASET, and a Hub that cannot be reached here.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_demo.core.backends import BACKENDS, INT8_FILE, predictions_name, report_name
from fer_demo.core.checkpoint import MODEL_FILE, SHIPPED_CHECKPOINT
from fer_demo.core.data import DEFAULT_DATASET
from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT, YUNET_FILE


SPACE_KEYS = {"title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file", "license", "datasets",
              "short_description", "pinned"}
SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
NEVER_UPLOADED = ("tests/", "runs/", "bench/", "train/", "tools/", "fer_demo_testing/", ".venv/", ".git/",
                  ".pytest_cache/")


def _pin(requirements: str, package: str) -> str | None:
    found = re.search(rf"^{re.escape(package)}==([^\s#]+)", requirements, re.MULTILINE)
    return found and found.group(1)


def _rel(path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


@pytest.fixture(scope="module")
def front_matter() -> dict:
    from huggingface_hub import metadata_load  # the Hub client's own parser (yaml.safe_load of the block)

    meta = metadata_load(REPO_ROOT / "README.md")
    assert meta, "README.md does not start with a --- YAML block ---"
    return meta


@pytest.fixture(scope="module")
def listing() -> dict[str, int]:
    """{path: bytes} printed by the dry run, which must not need the network."""
    r = subprocess.run([sys.executable, "-m", "tools.deploy_space", "--dry-run"], cwd=REPO_ROOT, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stderr
    *rows, total = r.stdout.strip().splitlines()
    files = {path: int(size.replace(",", "")) for size, path in (row.split(maxsplit=1) for row in rows)}
    assert total.startswith(f"{len(files)} files, {sum(files.values()):,} bytes")
    return files


def test_front_matter_configures_a_gradio_space(front_matter):
    assert SPACE_KEYS <= set(front_matter)
    assert front_matter["sdk"] == "gradio" and front_matter["pinned"] is False
    assert {front_matter["colorFrom"], front_matter["colorTo"]} <= SPACE_COLORS
    assert (REPO_ROOT / front_matter["app_file"]).is_file()
    assert front_matter["license"] == "mit" and "MIT License" in (REPO_ROOT / "LICENSE").read_text()
    assert DEFAULT_DATASET in front_matter["datasets"]
    assert 0 < len(front_matter["short_description"]) <= 60


def test_sdk_version_is_the_pinned_gradio(front_matter):
    pinned = _pin((REPO_ROOT / "requirements.txt").read_text(), "gradio")
    assert pinned and str(front_matter["sdk_version"]) == pinned


def test_requirements_split_runtime_from_tests():
    runtime = (REPO_ROOT / "requirements.txt").read_text()
    dev = (REPO_ROOT / "requirements-dev.txt").read_text()
    assert [line for line in dev.splitlines() if not line.startswith("#")][0] == "-r requirements.txt"
    for package in ("pytest", "playwright"):
        assert _pin(dev, package) and not _pin(runtime, package)
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(VENV\)/\.runtime: requirements\.txt\b", makefile, re.MULTILINE)
    assert re.search(r"^\$\(VENV\)/\.dev: .*requirements-dev\.txt", makefile, re.MULTILINE)
    assert re.search(r"^run: \$\(VENV\)/\.runtime$", makefile, re.MULTILINE)
    assert re.search(r"^test: \$\(VENV\)/\.dev$", makefile, re.MULTILINE)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports(paths) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"fer_demo"}


def test_requirements_txt_installs_what_the_app_imports(listing):
    """What a Space installs (requirements.txt) covers every package the uploaded code imports."""
    from importlib.metadata import packages_distributions

    code = [REPO_ROOT / p for p in listing if p.endswith(".py")]
    pinned = {_canonical(line.split("==")[0]) for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
              if "==" in line}
    dists = packages_distributions()
    missing = {module: dists.get(module) for module in sorted(_third_party_imports(code))
               if not pinned & {_canonical(d) for d in dists.get(module, [])}}
    assert missing == {}, "imported by the app but not in requirements.txt"


def test_dry_run_lists_the_app_model_and_detector(listing):
    """Also each backend's test report and the per-face predictions behind it, which the Test set tab serves."""
    needed = ["app.py", "requirements.txt", "README.md", "LICENSE", "MODEL_CARD.md",
              _rel(SHIPPED_CHECKPOINT / MODEL_FILE), _rel(SHIPPED_CHECKPOINT / INT8_FILE),
              _rel(YUNET_FILE), _rel(YUNET_FILE.parent / "LICENSE"), "fer_demo/__init__.py",
              _rel(EXAMPLES_DIR / "README.md"), *(_rel(SHIPPED_CHECKPOINT / name("test", backend))
                                                  for backend in BACKENDS for name in (report_name, predictions_name))]
    assert [path for path in needed if path not in listing] == []
    # every module of the package, its stage folders (core/, vision/, serving/, ui/) included
    modules = [_rel(p) for p in (REPO_ROOT / "fer_demo").rglob("*.py") if "__pycache__" not in p.parts]
    assert "fer_demo/serving/predictor.py" in modules
    assert [path for path in modules if path not in listing] == []
    assert listing[_rel(SHIPPED_CHECKPOINT / MODEL_FILE)] == (SHIPPED_CHECKPOINT / MODEL_FILE).stat().st_size


def test_dry_run_leaves_out_tests_runs_benches_and_caches(listing):
    assert [p for p in listing if p.startswith(NEVER_UPLOADED) or "__pycache__" in p or p.endswith(".pyc")] == []
    assert sum(listing.values()) < 100e6


def test_dry_run_includes_what_the_model_card_shows(listing):
    from fer_demo.ui import model_card_files

    shown = [_rel(Path(f)) for f in model_card_files()]
    assert shown and [f for f in shown if f not in listing] == []


def test_the_app_binds_where_a_space_says():
    import app

    space = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7860"}
    assert app.server_address(app.parse_args([]), space) == ("0.0.0.0", 7860)


@pytest.mark.slow
def test_the_app_starts_from_the_listed_files_alone(listing, tmp_path):
    """The Space's copy: only the listed files, FER_DATASET unset, no local FER2013 beside it, the Hub
    unreachable. Photos are labelled, and the Test set tab says why its faces are unavailable."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from fer_demo_testing.local_app import LaunchError, launched_app

    space = tmp_path / "space"
    for path in listing:
        (space / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, space / path)
    env = {"FER_DATASET": None, "PYTHONPATH": None, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    try:
        with launched_app(env=env, root=space, log_path=tmp_path / "app.log", timeout=180) as server:
            client = Client(server.url, verbose=False)
            photo = handle_file(str(space / "examples" / "photos" / "group_collage.jpg"))
            assert client.predict(photo, False, api_name="/predict")["n_faces"] == 4
            assert client.predict(api_name="/test_report")["no_tta"]["n"] > 0
            with pytest.raises(AppError) as info:
                client.predict("angry", "sad", api_name="/confusion")
            message = str(info.value)
            assert message.startswith("Test faces unavailable") and DEFAULT_DATASET in message
            assert "OfflineModeIsEnabled" in message and "FER_DATASET" in message
            assert str(tmp_path / "shared") in message  # fer_demo was imported from the copy, not the checkout
            assert client.predict(photo, False, api_name="/predict")["n_faces"] == 4  # still serving
    except LaunchError as e:
        pytest.fail(str(e))
