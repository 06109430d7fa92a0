"""fer_demo.predict: the Predictor on real photos and real FER2013 faces."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fer_demo.backends import report_name
from fer_demo.faces import MAX_FACES, detect_faces
from fer_demo.images import load_image
from fer_demo.labels import FER_LABELS

from .conftest import EXAMPLES, FER_DIR

PHOTOS = EXAMPLES / "photos"


def test_classify_real_faces_in_one_batch(predictor, fer_test_split):
    faces = fer_test_split.images[:64].numpy()
    probs = predictor.classify(faces)
    assert probs.shape == (64, 7) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4) and (probs >= 0).all()
    one_by_one = np.concatenate([predictor.classify(f[None]) for f in faces[:8]])
    assert np.allclose(one_by_one, probs[:8], atol=2e-2)  # bf16 autocast on CPU: small batch effects only


def test_predict_a_portrait(predictor):
    out = predictor.predict(str(PHOTOS / "astronaut.jpg"))
    json.dumps(out)  # JSON-friendly all the way down
    assert out["n_faces"] == 1 and not out["no_face"] and not out["whole_image"]
    face = out["faces"][0]
    assert face["index"] == 1
    assert set(face["probabilities"]) == set(FER_LABELS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["confidence"] == pytest.approx(max(face["probabilities"].values()))
    (box,) = detect_faces(load_image(PHOTOS / "astronaut.jpg").rgb)
    assert face["box"] == box.to_json()
    assert out["image_size"] == {"width": 512, "height": 512}


def test_boxes_are_reported_in_the_original_photo_coordinates(predictor, tmp_path):
    small = predictor.predict(str(PHOTOS / "astronaut.jpg"))["faces"][0]["box"]
    big = Image.open(PHOTOS / "astronaut.jpg").resize((3072, 3072), Image.Resampling.BICUBIC)
    path = tmp_path / "big.jpg"
    big.save(path, quality=85)
    out = predictor.predict(str(path))
    assert out["image_size"] == {"width": 3072, "height": 3072}
    (box,) = [f["box"] for f in out["faces"]]
    for key in ("x", "y", "w", "h"):
        assert abs(box[key] - 6 * small[key]) <= 0.12 * 6 * small["w"], (key, box, small)


def test_no_face_says_so_and_whole_image_classifies_anyway(predictor):
    out = predictor.predict(str(PHOTOS / "coffee_no_face.jpg"))
    assert out["no_face"] and out["faces"] == [] and out["n_detected"] == 0
    assert "No face found" in out["message"] and "whole image" in out["message"]
    whole = predictor.predict(str(PHOTOS / "coffee_no_face.jpg"), whole_image=True)
    assert whole["whole_image"] and whole["n_faces"] == 1
    assert whole["faces"][0]["box"] == {"x": 100, "y": 0, "w": 400, "h": 400}


def test_a_small_face_crop_is_classified_as_one_face(predictor, example_faces):
    name, face = next(iter(example_faces.items()))
    out = predictor.predict(str(EXAMPLES / "fer2013" / f"{name}.png"))
    assert out["n_faces"] == 1 and out["whole_image"] and "face crop" in out["message"]
    direct = predictor.classify(face[None])[0]
    got = np.array([out["faces"][0]["probabilities"][n] for n in FER_LABELS])
    assert np.allclose(got, direct, atol=1e-5)  # the crop is the face itself, untouched


def test_many_faces_are_capped_and_the_message_says_so(predictor):
    tile = np.asarray(Image.open(PHOTOS / "astronaut.jpg").resize((256, 256)))
    grid = np.concatenate([np.concatenate([tile] * 4, axis=1)] * 2, axis=0)  # 8 faces
    a = predictor.analyze(grid, max_faces=5)
    assert a.n_detected == 8 and len(a.faces) == 5
    assert "largest" in a.message()
    full = predictor.analyze(grid)
    assert len(full.faces) == 8 and len(full.detailed()) == MAX_FACES
    assert f"shown for the {MAX_FACES} largest" in full.message()
    assert [f.index for f in full.faces] == list(range(1, 9))


@pytest.mark.slow
def test_app_preprocessing_reproduces_the_shipped_test_report(predictor):
    """The app's path from uint8 face to probabilities matches the evaluator's figures."""
    report_path = predictor.folder / report_name("test", predictor.backend)
    if not FER_DIR.exists() or not report_path.is_file():
        pytest.skip(f"needs the local FER2013 copy and the shipped {report_path.name}")
    from fer_demo.data import load_fer

    report = json.loads(report_path.read_text())
    split = load_fer(str(FER_DIR), ("test",), limits={"test": report["n"]}, log=lambda *a: None)["test"]
    probs = np.concatenate([predictor.classify(split.images[i:i + 512].numpy())
                            for i in range(0, len(split), 512)])
    accuracy = float((probs.argmax(1) == split.labels.numpy()).mean())
    assert len(split) == report["n"]
    assert report["backend"] == predictor.backend
    assert accuracy == pytest.approx(report["no_tta"]["accuracy"], abs=0.002)  # at most 7 of 3,589 faces differ
