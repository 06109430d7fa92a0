"""Shared fixtures of the app tests: the shipped predictor, real FER2013 test faces, and a running app.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
FER_DIR = REPO.parent / "shared" / "data" / "fer2013"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (a server, a browser, a whole split)")


@pytest.fixture(scope="session")
def predictor():
    from fer_demo.predict import Predictor

    return Predictor()


@pytest.fixture(scope="session")
def example_faces() -> dict[str, np.ndarray]:
    """The FER2013 test faces shipped in examples/fer2013, by file stem ('happy_test2340' -> 48x48 uint8)."""
    from PIL import Image

    faces = {p.stem: np.asarray(Image.open(p).convert("L")) for p in sorted((EXAMPLES / "fer2013").glob("*.png"))}
    assert faces, "examples/fer2013 is empty"
    return faces


@pytest.fixture(scope="session")
def fer_test_split():
    """200 real FER2013 test faces from the local copy (skips when it is absent)."""
    if not FER_DIR.exists():
        pytest.skip(f"FER2013 is not at {FER_DIR}")
    from fer_demo.data import load_fer

    return load_fer(str(FER_DIR), ("test",), limits={"test": 200}, log=lambda *a: None)["test"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """`python app.py` on a free localhost port (via GRADIO_SERVER_PORT); yields its URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1",
               GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1", FER_TEST_LIMIT="300",
               PYTHONUNBUFFERED="1")
    if FER_DIR.exists():
        env["FER_DATASET"] = str(FER_DIR)
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"app.py did not answer on {url} within 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
