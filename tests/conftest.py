"""Shared fixtures, one of each per session (per worker under pytest-xdist): the shipped predictor, the local
FER2013 copy (read and decoded once), a running app.py and a headless Chromium."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fer_demo.core.paths import EXAMPLES_DIR, LOCAL_DATASET

from .support.fer_samples import LOCAL_FER2013, LocalFer2013, require_fer2013


SLOW_FIXTURES = ("app_server", "chromium")  # a test that needs one is slow, wherever it is
SERVED_GROUP = "app-and-browser"  # the xdist group of those tests: one worker runs them all, in collection order
# Modules that take longest for their number of tests (subprocess trainers, exports, perturbation CAMs). They are
# queued right after the app-and-browser group, so that no worker is left alone with one of them at the end
# (`make test` has xdist hand the groups out in collection order: --no-loadscope-reorder).
LONG_MODULES = ("test_train.py", "test_release_chain.py", "test_faults.py", "test_backends.py", "test_space.py",
                "test_app_explain.py", "test_shipped_predictions.py", "test_eval.py", "test_layout.py")


def pytest_configure(config):
    """Under pytest-xdist, each worker's PyTorch gets its share of the cores (the workers run at once, and more
    threads than cores make each slower); the subprocesses the tests start inherit it through OMP_NUM_THREADS."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    """Marks every test that uses the app server or the browser slow, and puts them in one xdist group, so that
    the session's app server and Chromium start once, on one worker; every other test is grouped with its module,
    so that a module's fixtures (a training run, a decoded split) are built once too. Runs the browser tests last,
    together: the session's one Chromium (and its Playwright event loop) is started for them alone. (Under xdist,
    last in their group: the worker that ran them may go on with other modules' tests.)"""
    for item in items:
        served = _served(item)
        if served:
            item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.xdist_group(SERVED_GROUP if served else item.nodeid.split("::")[0]))
    items.sort(key=_queue_position)  # stable: file order kept otherwise


def _served(item) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for name in SLOW_FIXTURES)


def _queue_position(item) -> tuple:
    """The app-and-browser group first, then LONG_MODULES, then the rest, and the browser tests last: the group's
    place in xdist's queue is that of its first test."""
    if "chromium" in getattr(item, "fixturenames", ()):
        return (3,)
    if _served(item):
        return (0,)
    module = item.path.name
    return (1, LONG_MODULES.index(module)) if module in LONG_MODULES else (2,)


@pytest.fixture
def private_datasets_cache(tmp_path, monkeypatch):
    """A `datasets` cache of the test's own, here and in the processes it starts: `datasets` caches a local
    folder by its name and layout, and would serve another test's copy named `fer2013` (seen with two copies of
    different faces)."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


@pytest.fixture(scope="session")
def fer2013():
    """The local FER2013 copy, for tests that need it: skips without it, fails under FER_REQUIRE_DATA=1."""
    return require_fer2013()


@pytest.fixture(scope="session")
def predictor():
    from fer_demo.serving.predictor import Predictor

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

    The launching code is shared with the benches (fer_demo_testing/local_app.py)."""
    from fer_demo_testing.local_app import LaunchError, launched_app

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
    from fer_demo_testing.browser import launched_chromium

    with launched_chromium(tmp_path_factory.mktemp("webcam")) as browser:
        yield browser


@pytest.fixture(scope="session")
def shared_photos():
    """../shared/photos (the 27 real photos of the real-photo benchmark), which CI has: a test that reads it
    fails without it, never skips (the repo ships in tests/photos only the photos its other tests need)."""
    from fer_demo.core.paths import SHARED_PHOTOS

    if not SHARED_PHOTOS.is_dir():
        pytest.fail(f"the shared real photos are missing: no folder {SHARED_PHOTOS}")
    return SHARED_PHOTOS
