"""Concurrent /explain requests against the running app give the same maps as the same requests one at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from .conftest import EXAMPLES

pytestmark = pytest.mark.slow
FACES = sorted((EXAMPLES / "fer2013").glob("*.png"))
# (face, method, layer, target, all classes): fast methods, different faces, layers and targets
REQUESTS = [
    (FACES[0], "GradCAM", "layer3", "predicted", False),
    (FACES[3], "HiResCAM", "layer2", "happy", False),
    (FACES[6], "GradCAM++", "layer3", "predicted", False),
    (FACES[9], "LayerCAM", "layer1", "sad", False),
    (FACES[12], "XGradCAM", "layer4", "predicted", False),
    (EXAMPLES / "photos" / "astronaut.jpg", "GradCAM", "layer3", "predicted", True),
]
THREADS = 3


def _explain(url, request) -> dict:
    from gradio_client import Client, handle_file

    face, method, layer, target, all_classes = request
    client = Client(url, verbose=False)  # one client per caller, as separate users would have
    return client.predict(handle_file(str(face)), method, layer, target, all_classes, api_name="/explain")


def _summary(out: dict):
    return (out["method"], out["layer"], out["target"], out["predicted"], [m["class"] for m in out["maps"]])


def test_concurrent_explanations_match_sequential_ones(app_server):
    sequential = [_explain(app_server, r) for r in REQUESTS]
    with ThreadPoolExecutor(THREADS) as pool:
        concurrent = list(pool.map(lambda r: _explain(app_server, r), REQUESTS + REQUESTS[::-1]))
    concurrent = concurrent[:len(REQUESTS)], concurrent[len(REQUESTS):][::-1]
    for round_ in concurrent:
        for request, one, many in zip(REQUESTS, sequential, round_):
            name = f"{request[0].name} {request[1]} {request[2]} {request[3]}"
            assert _summary(many) == _summary(one), name
            assert many["probabilities"] == pytest.approx(one["probabilities"], abs=1e-5), name
            a = np.array([m["cam"] for m in one["maps"]], np.float32)
            b = np.array([m["cam"] for m in many["maps"]], np.float32)
            assert a.shape == b.shape and a.shape[1:] == (48, 48), name
            assert a.std() > 0.01, f"{name}: a flat map"
            np.testing.assert_allclose(b, a, atol=2e-3, err_msg=name)  # maps are rounded to 3 decimals
            for m1, m2 in zip(one["maps"], many["maps"]):  # ROAD is seeded: the same scores
                assert m2["road"] == pytest.approx(m1["road"], abs=1e-4), name
