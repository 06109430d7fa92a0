"""Predictions made at the same time, on different photos, equal the same predictions made one at a time.

`/predict` runs up to two requests in parallel (concurrency limit 2: gradio calls its handler from worker
threads), so this is where requests can race: detection, cropping and classification of one photo must never
see another's. Checked on the handler itself (`api_predict`, what the endpoint answers), from more threads than
the app uses, and through a running app.py. (`/explain` is queued one at a time.)
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from fer_demo.core.paths import EXAMPLES_DIR
from fer_demo.ui.predict_tab import api_predict

# (photo, classify the whole image as one face): several faces, one face, no face, face crops
REQUESTS = [
    (EXAMPLES_DIR / "photos" / "group_collage.jpg", False),
    (EXAMPLES_DIR / "photos" / "astronaut.jpg", False),
    (EXAMPLES_DIR / "photos" / "coffee_no_face.jpg", False),
    (EXAMPLES_DIR / "photos" / "grace_hopper.jpg", False),
    (EXAMPLES_DIR / "photos" / "grace_hopper.jpg", True),
    *((face, False) for face in sorted((EXAMPLES_DIR / "fer2013").glob("*.png"))[::4]),
]
THREADS = 4
ROUNDS = 2  # each request this many times, in a shuffled order


def _comparable(answer: dict) -> dict:
    """A /predict answer without its timing."""
    return {k: v for k, v in answer.items() if k != "seconds"}


def _check_concurrent_answers_match(ask):
    """Run `ask(request)` for every request one at a time, then all of them ROUNDS times from THREADS threads."""
    sequential = [_comparable(ask(r)) for r in REQUESTS]
    order = [i for _ in range(ROUNDS) for i in range(len(REQUESTS))]
    random.Random(0).shuffle(order)
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda i: _comparable(ask(REQUESTS[i])), order))
    assert any(a["n_faces"] > 1 for a in sequential) and any(a["no_face"] for a in sequential)
    for i, answer in zip(order, answers):
        assert answer == sequential[i], f"{REQUESTS[i][0].name} (whole image: {REQUESTS[i][1]})"


def test_concurrent_predict_handler_calls_match_sequential_ones(predictor):
    _check_concurrent_answers_match(lambda r: api_predict(predictor, str(r[0]), r[1]))


def test_concurrent_predict_requests_match_sequential_ones(app_server):  # slow: it uses the app server
    from gradio_client import Client, handle_file

    local = threading.local()  # one client per thread, as separate users would have

    def ask(request):
        if not hasattr(local, "client"):
            local.client = Client(app_server, verbose=False)
        photo, whole_image = request
        return local.client.predict(handle_file(str(photo)), whole_image, api_name="/predict")

    _check_concurrent_answers_match(ask)
