"""fer_demo.explain: every CAM method on real faces, hooks released, thread safety, overlays."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from fer_demo.explain import (METHODS, SLOW_METHODS, ExplainError, annotate, cam_on_photo, compute_cams,
                              default_layer, explain_face, faithfulness, overlay)
from fer_demo.faces import Box
from fer_demo.labels import FER_LABELS
from fer_demo.model import CAM_LAYERS


def _hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def face(example_faces):
    return example_faces[sorted(k for k in example_faces if k.startswith("happy"))[0]]


@pytest.mark.parametrize("method", [m for m in METHODS if m not in SLOW_METHODS])
def test_gradient_and_eigen_methods_give_a_real_map(predictor, face, method):
    cams = compute_cams(predictor, face[None], [3], method, "layer3")
    assert cams.shape == (1, 48, 48) and cams.dtype == np.float32
    assert 0.0 <= cams.min() and cams.max() <= 1.0
    assert cams.std() > 0.01, "a flat map explains nothing"
    assert _hook_count(predictor.cam_model) == 0


@pytest.mark.slow
@pytest.mark.parametrize("method", SLOW_METHODS)
def test_perturbation_methods_give_a_real_map_and_restore_the_model(predictor, face, method):
    layer_before = type(predictor.cam_model.layer4)
    seen = []
    cams = compute_cams(predictor, face[None], [0], method, "layer4", progress=lambda f, d: seen.append(f))
    assert cams.shape == (1, 48, 48) and cams.std() > 0.01
    assert seen and seen[-1] == 1.0  # progress reported up to done
    assert type(predictor.cam_model.layer4) is layer_before  # AblationCAM swapped it back
    assert _hook_count(predictor.cam_model) == 0


def test_each_layer_has_its_own_resolution(predictor, face):
    sizes = predictor.map_sizes
    assert list(sizes) == list(CAM_LAYERS) and sizes["layer1"] > sizes["layer4"]
    assert default_layer(sizes) in CAM_LAYERS and sizes[default_layer(sizes)] >= min(6, sizes["layer1"])
    fine = compute_cams(predictor, face[None], [3], "GradCAM", "layer1")[0]
    coarse = compute_cams(predictor, face[None], [3], "GradCAM", "layer4")[0]
    # a coarse map upsampled from few cells varies more smoothly than a fine one
    roughness = lambda m: np.abs(np.diff(m, axis=1)).mean()  # noqa: E731
    assert roughness(coarse) < roughness(fine)


def test_works_when_the_caller_is_inside_inference_mode(predictor, face):
    with torch.inference_mode():
        cams = compute_cams(predictor, face[None], [3], "GradCAM", "layer3")
    with torch.no_grad():
        again = compute_cams(predictor, face[None], [3], "GradCAM", "layer3")
    assert cams.std() > 0.01 and np.allclose(cams, again, atol=1e-5)


def test_all_seven_classes_give_seven_different_maps(predictor, face):
    out = explain_face(predictor, face, "GradCAM", "layer3", target="all")
    json.dumps(out)
    assert [m["class"] for m in out["maps"]] == list(FER_LABELS)
    maps = np.array([m["cam"] for m in out["maps"]])
    assert maps.shape == (7, 48, 48)
    assert len({m.tobytes() for m in np.round(maps, 2)}) > 1, "every class got the same map"
    for m in out["maps"]:
        assert np.isfinite(m["road"]) and np.isfinite(m["cam_x_image_change"])
    assert out["predicted"] == max(out["probabilities"], key=out["probabilities"].get)


def test_target_class_choice(predictor, face):
    pred = explain_face(predictor, face, "GradCAM++", None, "predicted", with_faithfulness=False)
    assert pred["target"] == pred["predicted"] and len(pred["maps"]) == 1
    sad = explain_face(predictor, face, "GradCAM++", None, "sad", with_faithfulness=False)
    assert sad["target"] == "sad" and sad["maps"][0]["class"] == "sad"
    eigen = explain_face(predictor, face, "EigenCAM", None, "sad", with_faithfulness=False)
    assert eigen["notes"], "EigenCAM should say it ignores the class"


def test_bad_arguments_are_readable_errors(predictor, face):
    with pytest.raises(ExplainError, match="unknown method"):
        explain_face(predictor, face, "MagicCAM")
    with pytest.raises(ExplainError, match="unknown layer"):
        explain_face(predictor, face, "GradCAM", "fc")
    with pytest.raises(ExplainError, match="unknown target class"):
        explain_face(predictor, face, "GradCAM", None, "bored")
    assert _hook_count(predictor.cam_model) == 0


def test_faithfulness_prefers_the_real_map_over_its_inverse(predictor, fer_test_split):
    """On faces the model is confident about, ROAD ranks a Grad-CAM map above its negation on average."""
    faces = fer_test_split.images[:48].numpy()
    probs = predictor.classify(faces)
    keep = np.argsort(-probs.max(1))[:6]
    faces, classes = faces[keep], [int(c) for c in probs[keep].argmax(1)]
    cams = compute_cams(predictor, faces, classes, "GradCAM", "layer3")
    real = np.array([s["road"] for s in faithfulness(predictor, faces, cams, classes)])
    inverse = np.array([s["road"] for s in faithfulness(predictor, faces, 1.0 - cams, classes)])
    assert np.isfinite(real).all() and np.isfinite(inverse).all()
    assert real.mean() >= inverse.mean() - 1e-3


def test_concurrent_predictions_and_explanations_do_not_interfere(predictor, face, example_faces):
    faces = np.stack(list(example_faces.values()))
    expected = predictor.classify(faces)
    reference = compute_cams(predictor, face[None], [3], "LayerCAM", "layer2")
    errors, results = [], []

    def predict_loop():
        try:
            for _ in range(15):
                results.append(np.abs(predictor.classify(faces) - expected).max())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def explain_loop():
        try:
            for _ in range(6):
                results.append(np.abs(compute_cams(predictor, face[None], [3], "LayerCAM", "layer2")
                                       - reference).max())
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=f) for f in (predict_loop, explain_loop, explain_loop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert max(results) < 1e-4
    assert _hook_count(predictor.model) == 0 and _hook_count(predictor.cam_model) == 0


def test_overlays(face):
    cam = np.zeros((48, 48), np.float32)
    cam[10:20, 10:20] = 1.0
    out = overlay(face, cam, 0.5, 96)
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    assert out[30, 30].tolist() != out[90, 90].tolist()
    plain = overlay(face, cam, 0.0, 96)
    assert np.abs(plain[..., 0].astype(int) - plain[..., 2].astype(int)).max() <= 1  # no heat: gray

    photo = np.full((200, 300, 3), 128, np.uint8)
    mapped = cam_on_photo(photo, [Box(100, 50, 96, 96)], [cam], 0.6)
    assert (mapped[:50] == 128).all() and (mapped[:, :100] == 128).all()  # outside the face: untouched
    assert (mapped[50:146, 100:196] != 128).any()

    boxed = annotate(photo, [Box(10, 40, 50, 50)], ["1 happy 90%"])
    assert (boxed != photo).any() and boxed.shape == photo.shape
