"""Shared fixtures, one of each per session: the shipped predictor, the local FER2013 copy (read and decoded
once), a running app.py and a headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest

from fer_demo.paths import EXAMPLES_DIR, LOCAL_DATASET

from .support.fer_samples import LOCAL_FER2013, LocalFer2013, require_fer2013


SLOW_FIXTURES = ("app_server", "chromium")  # a test that needs one is slow, wherever it is


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    """Marks every test that uses the app server or the browser slow, and runs the browser tests last,
    together: the session's one Chromium (and its Playwright event loop) is started for them alone, and no
    other test runs while it is open."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in SLOW_FIXTURES):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: "chromium" in getattr(item, "fixturenames", ()))  # stable: order kept otherwise


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
def fer_data(fer2013) -> LocalFer2013:
    """The local FER2013 copy, read once: `.split(name, n, seed)` / `.arrays(...)` give a split or a seeded
    subset of it as `load_fer` would, decoded once each (tests/support/fer_samples.py)."""
    return LOCAL_FER2013


@pytest.fixture(scope="session")
def fer_test_split(fer_data):
    """200 real FER2013 test faces from the local copy."""
    return fer_data.split("test", 200)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """`python app.py` on a free localhost port (via GRADIO_SERVER_PORT); yields its URL.

    The launching code is shared with the benches (fer_demo/local_app.py)."""
    from fer_demo.local_app import LaunchError, launched_app

    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = {"OMP_NUM_THREADS": "1"}
    if LOCAL_DATASET.exists():
        env["FER_DATASET"] = str(LOCAL_DATASET)
    try:
        with launched_app(env=env, log_path=log_path, timeout=180) as server:
            yield server.url
    except LaunchError as e:  # raised before the yield only: app.py exited or never answered
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """One headless Chromium for every browser test (the app's page, its Video tab, the static page), with
    a fake camera playing the astronaut clip for the webcam tests; each test opens its own context in it."""
    from .support.browser import launched_chromium

    with launched_chromium(tmp_path_factory.mktemp("webcam")) as browser:
        yield browser
