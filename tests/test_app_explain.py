"""fer_demo.explain and fer_demo.vision.drawing: every CAM method on real faces, hooks released, thread safety,
the shared top-class and /explain helpers, overlays."""

from __future__ import annotations

import itertools
import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from fer_demo.vision.detectors import Box
from fer_demo.vision.drawing import annotate, cam_on_photo, enlarge, overlay
from fer_demo.serving.cams import (DEFAULT_METHOD, METHOD_HINT, METHODS, SLOW_METHODS, ExplainError, compute_cams,
                                   default_layer, explain_face, explain_image, faithfulness, top_class_cams)
from fer_demo.vision.faces import Crop
from fer_demo.vision.images import ImageLoadError
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.model import CAM_LAYERS
from fer_demo.core.paths import EXAMPLES_DIR

FACE_FILE = EXAMPLES_DIR / "fer2013" / "happy_test2340.png"  # the face most tests explain
FAST_METHODS = [m for m in METHODS if m not in SLOW_METHODS]
MIN_CLASS_GAP = 0.02  # mean |difference| between two classes' maps; at least 0.023 on the test face (LayerCAM)
PERTURBATION_LAYER = "layer1"  # the fewest channels (64): ScoreCAM and AblationCAM run a forward pass per channel
ROAD_MARGIN = 0.1  # mean ROAD score of real Grad-CAM maps over their inverses; about 0.37 on the faces it is tested on


def _hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def _class_gaps(maps) -> dict[tuple[str, str], float]:
    """Mean absolute difference between the maps of every pair of classes (maps in FER_LABELS order)."""
    maps = np.asarray(maps, np.float32)
    return {(FER_LABELS[a], FER_LABELS[b]): float(np.abs(maps[a] - maps[b]).mean())
            for a, b in itertools.combinations(range(len(maps)), 2)}


def _assert_every_class_differs(maps, what: str) -> None:
    close = {pair: round(gap, 4) for pair, gap in _class_gaps(maps).items() if gap <= MIN_CLASS_GAP}
    assert not close, f"{what}: classes with (nearly) the same map: {close}"


@pytest.fixture(scope="module")
def face(example_faces):
    return example_faces[FACE_FILE.stem]


@pytest.mark.parametrize("method", FAST_METHODS)
def test_gradient_and_eigen_methods_give_a_real_map(predictor, face, method):
    cams = compute_cams(predictor, face[None], [3], method, "layer3")
    assert cams.shape == (1, 48, 48) and cams.dtype == np.float32
    assert 0.0 <= cams.min() and cams.max() <= 1.0
    assert cams.std() > 0.01, "a flat map explains nothing"
    assert _hook_count(predictor.cam_model) == 0


@pytest.mark.slow
@pytest.mark.parametrize("method", SLOW_METHODS)
def test_perturbation_methods_give_a_real_map_and_restore_the_model(predictor, face, method):
    layer_before = type(getattr(predictor.cam_model, PERTURBATION_LAYER))
    seen = []
    cams = compute_cams(predictor, face[None], [0], method, PERTURBATION_LAYER, progress=lambda f, d: seen.append(f))
    assert cams.shape == (1, 48, 48) and cams.std() > 0.01
    assert seen and seen[-1] == 1.0  # progress reported up to done
    assert type(getattr(predictor.cam_model, PERTURBATION_LAYER)) is layer_before  # AblationCAM swapped it back
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
    _assert_every_class_differs(maps, "GradCAM")
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
    """On faces the model is confident about, ROAD ranks a Grad-CAM map clearly above its negation and above a
    flat map, on average, and its scores follow the map and the face (constant scores fail)."""
    faces = fer_test_split.images[:48].numpy()
    probs = predictor.classify(faces)
    keep = np.argsort(-probs.max(1))[:4]  # 4 x 3 maps x 4 percentiles x 2: 96 sparse in-fillings
    faces, classes = faces[keep], [int(c) for c in probs[keep].argmax(1)]
    cams = compute_cams(predictor, faces, classes, "GradCAM", default_layer(predictor.map_sizes))

    def road(maps):
        return np.array([s["road"] for s in faithfulness(predictor, faces, maps, classes)])

    real, inverse, flat = road(cams), road(1.0 - cams), road(np.full_like(cams, 0.5))
    assert np.isfinite(real).all() and np.isfinite(inverse).all() and np.isfinite(flat).all()
    # here: about +0.18 for the maps, -0.18 for their inverses, 0.00 for the flat map
    assert real.mean() > inverse.mean() + ROAD_MARGIN, (real, inverse)
    assert real.mean() > flat.mean() + ROAD_MARGIN / 2, (real, flat)
    assert np.ptp(real) > ROAD_MARGIN / 2, real  # each face and map its own score


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
        assert not t.is_alive(), "a CAM or prediction loop hung"
    assert not errors, errors
    assert max(results) < 1e-4
    assert _hook_count(predictor.model) == 0 and _hook_count(predictor.cam_model) == 0


@pytest.mark.parametrize("method", FAST_METHODS)
def test_class_dependence_is_what_the_method_table_says(predictor, face, method):
    """A class-agnostic method gives all 7 classes one map; any other gives each class its own."""
    cams = compute_cams(predictor, np.repeat(face[None], 7, axis=0), list(range(7)), method,
                        default_layer(predictor.map_sizes))
    if METHODS[method].class_agnostic:
        assert max(_class_gaps(cams).values()) < 1e-6
    else:
        _assert_every_class_differs(cams, method)


def test_the_method_table_drives_the_slow_list_and_the_hint():
    assert DEFAULT_METHOD in METHODS
    assert SLOW_METHODS == ("ScoreCAM", "AblationCAM")
    assert METHOD_HINT == "ScoreCAM and AblationCAM run one forward pass per channel: slower"


def test_top_class_cams_are_the_default_method_for_each_faces_class(predictor, example_faces):
    faces = np.stack([example_faces[k] for k in sorted(example_faces)[:4]])
    top = [int(c) for c in predictor.classify(faces).argmax(1)]
    layer = default_layer(predictor.map_sizes)
    cams = top_class_cams(predictor, faces)
    assert cams.shape == (4, 48, 48) and cams.std() > 0.01
    np.testing.assert_allclose(cams, compute_cams(predictor, faces, top, DEFAULT_METHOD, layer), atol=1e-5)
    other = [(c + 1) % 7 for c in top]
    np.testing.assert_allclose(top_class_cams(predictor, faces, other, "layer2"),
                               compute_cams(predictor, faces, other, DEFAULT_METHOD, "layer2"), atol=1e-5)
    assert top_class_cams(predictor, faces[:0]).shape == (0, 48, 48)  # no faces, no maps
    assert _hook_count(predictor.cam_model) == 0


def test_explain_image_of_a_face_crop_is_the_explanation_of_that_face(predictor, face):
    out = explain_image(predictor, str(FACE_FILE), "GradCAM++", "layer2", "sad")
    json.dumps(out)
    np.testing.assert_array_equal(np.array(out["face"]), face)
    assert out["face_source"] == "the whole image (a face crop)"
    direct = explain_face(predictor, face, "GradCAM++", "layer2", "sad")
    assert list(out) == [*direct, "face", "face_source"]
    assert {k: v for k, v in out.items() if k not in ("seconds", "face", "face_source")} == \
        {k: v for k, v in direct.items() if k != "seconds"}
    assert out["target"] == "sad" and out["layer"] == "layer2" and out["method"] == "GradCAM++"


def test_explain_image_of_a_photo_explains_its_face_for_all_classes(predictor):
    rgb = np.asarray(Image.open(EXAMPLES_DIR / "photos" / "grace_hopper.jpg").convert("RGB"))
    out = explain_image(predictor, rgb, all_classes=True, target="sad")  # all_classes wins over target
    assert out["method"] == DEFAULT_METHOD and out["layer"] == default_layer(predictor.map_sizes)
    assert out["target"] == "all" and [m["class"] for m in out["maps"]] == list(FER_LABELS)
    assert np.array(out["face"]).shape == (48, 48) and "detected face" in out["face_source"]
    with pytest.raises(ImageLoadError, match="No face image"):
        explain_image(predictor, None)
    with pytest.raises(ExplainError, match="unknown method"):
        explain_image(predictor, rgb, "MagicCAM")


def test_overlays(face):
    cam = np.zeros((48, 48), np.float32)
    cam[10:20, 10:20] = 1.0
    out = overlay(face, cam, 0.5, 96)
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    assert out[30, 30].tolist() != out[90, 90].tolist()
    plain = overlay(face, cam, 0.0, 96)
    assert np.abs(plain[..., 0].astype(int) - plain[..., 2].astype(int)).max() <= 1  # no heat: gray

    photo = np.full((200, 300, 3), 128, np.uint8)
    mapped = cam_on_photo(photo, [Crop(148, 98, 96)], [cam], 0.6)  # the square x 100-196, y 50-146
    assert (mapped[:50] == 128).all() and (mapped[:, :100] == 128).all()  # outside the face: untouched
    assert (mapped[50:146, 100:196] != 128).any()

    boxed = annotate(photo, [Box(10, 40, 50, 50)], ["1 happy 90%"])
    assert (boxed != photo).any() and boxed.shape == photo.shape

    big = enlarge(face, 96)
    assert big.shape == (96, 96, 3) and (big[..., 0] == big[..., 2]).all()
