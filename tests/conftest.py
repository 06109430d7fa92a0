"""Shared fixtures of the app tests: the shipped predictor, real FER2013 test faces, and a running app.py."""

from __future__ import annotations

import numpy as np
import pytest

from fer_demo.paths import EXAMPLES_DIR, LOCAL_DATASET

from .support.fer_samples import require_fer2013


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (a server, a browser, a whole split)")


@pytest.fixture(scope="session")
def fer2013():
    """The local FER2013 copy, for tests that need it: skips without it, fails under FER_REQUIRE_DATA=1."""
    return require_fer2013()


@pytest.fixture(scope="session")
def predictor():
    from fer_demo.predictor import Predictor

    return Predictor()


@pytest.fixture(scope="session")
def example_faces() -> dict[str, np.ndarray]:
    """The FER2013 test faces shipped in examples/fer2013, by file stem ('happy_test2340' -> 48x48 uint8)."""
    from PIL import Image

    faces = {p.stem: np.asarray(Image.open(p).convert("L")) for p in sorted((EXAMPLES_DIR / "fer2013").glob("*.png"))}
    assert faces, "examples/fer2013 is empty"
    return faces


@pytest.fixture(scope="session")
def fer_test_split(fer2013):
    """200 real FER2013 test faces from the local copy."""
    from fer_demo.data import load_fer

    return load_fer(str(fer2013), ("test",), limits={"test": 200}, log=lambda *a: None)["test"]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """`python app.py` on a free localhost port (via GRADIO_SERVER_PORT); yields its URL.

    The launching code is shared with the benches (fer_demo/local_app.py)."""
    from fer_demo.local_app import LaunchError, launched_app

    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = {"OMP_NUM_THREADS": "1", "FER_TEST_LIMIT": "300"}
    if LOCAL_DATASET.exists():
        env["FER_DATASET"] = str(LOCAL_DATASET)
    try:
        with launched_app(env=env, log_path=log_path, timeout=180) as server:
            yield server.url
    except LaunchError as e:  # raised before the yield only: app.py exited or never answered
        pytest.fail(str(e))
