"""fer_demo.serving.predictor: the Predictor on real photos and real FER2013 faces."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fer_demo.core.calibration import calibrate, temperature_for
from fer_demo.vision.detectors import HaarDetector, YuNetDetector
from fer_demo.vision.faces import MAX_FACES, detector_crop
from fer_demo.vision.images import load_image
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import EXAMPLES_DIR
from fer_demo.serving.predictor import DEFAULT_TTA, WHOLE_IMAGE, Predictor
from fer_demo.core.transforms import TTA
from fer_demo.serving.pictures import caption
from fer_demo.ui.predict_tab import api_predict, predict_with_analysis

from .support.predictions import uncalibrated

PHOTOS = EXAMPLES_DIR / "photos"


def _probs(face: dict) -> np.ndarray:
    return np.array([face["probabilities"][n] for n in FER_LABELS])


def test_classify_real_faces_in_one_batch(predictor, fer_test_split):
    faces = fer_test_split.images[:64].numpy()
    probs = predictor.classify(faces)
    assert probs.shape == (64, 7) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4) and (probs >= 0).all()
    one_by_one = np.concatenate([predictor.classify(f[None]) for f in faces[:8]])
    assert np.allclose(one_by_one, probs[:8], atol=2e-2)  # bf16 autocast on CPU: small batch effects only


def test_classify_averages_the_named_views(predictor, fer_test_split):
    """Each view set averages its views' probabilities, then takes its own temperature
    (fer_demo/core/calibration.py)."""
    faces = fer_test_split.images[:16].numpy()
    t = {tta: temperature_for(predictor.config, tta) for tta in TTA}
    raw = [uncalibrated(predictor.classify(f, "none"), t["none"]) for f in (faces, faces[:, :, ::-1])]
    flip = calibrate(torch.from_numpy((raw[0] + raw[1]) / 2).log(), t["flip"]).numpy()
    np.testing.assert_allclose(predictor.classify(faces, "flip"), flip, atol=2e-2)
    plain = predictor.classify(faces, "none")
    ten = predictor.classify(faces, "10-view")
    assert ten.shape == (16, 7) and np.allclose(ten.sum(1), 1.0, atol=1e-4)
    assert np.abs(ten - plain).max() > 1e-3  # the shifted views change something
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        predictor.classify(faces, "sideways")


def _served_tta(predictor) -> dict:
    return {"name": predictor.tta, "views": list(TTA[predictor.tta].views)}


def test_the_shipped_predictor_runs_yunet_with_the_default_tta(predictor):
    assert isinstance(predictor.detector, YuNetDetector)
    assert predictor.detector_note == "" and predictor.notes == []
    assert predictor.tta == DEFAULT_TTA and DEFAULT_TTA != "none"
    assert not hasattr(predictor, "device")


def test_predict_a_portrait(predictor):
    out = predictor.predict(str(PHOTOS / "astronaut.jpg"))
    json.dumps(out)  # JSON-friendly all the way down
    assert out["n_faces"] == 1 and not out["no_face"] and not out["whole_image"]
    assert out["detector"] == predictor.detector.name and out["backend"] == predictor.backend
    assert out["tta"] == _served_tta(predictor)
    face = out["faces"][0]
    assert face["index"] == 1
    assert set(face["probabilities"]) == set(FER_LABELS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["confidence"] == pytest.approx(max(face["probabilities"].values()))
    rgb = load_image(PHOTOS / "astronaut.jpg").rgb
    (found,) = predictor.detector.detect(rgb)
    assert face["box"] == found.box.to_json()
    assert face["score"] == pytest.approx(found.score, abs=1e-4) and face["score"] >= 0.7
    assert len(face["landmarks"]) == 5
    crop = detector_crop(found, predictor.detector)
    assert face["crop"] == crop.to_json()
    assert set(face["crop"]) == {"cx", "cy", "side", "angle"}
    eyes = face["landmarks"][:2]
    half = face["crop"]["side"] / 2
    assert all(abs(x - face["crop"]["cx"]) < half and abs(y - face["crop"]["cy"]) < half for x, y in eyes)
    assert out["image_size"] == {"width": 512, "height": 512}


def test_tta_per_request(predictor):
    photo = str(PHOTOS / "astronaut.jpg")
    outs = {name: predictor.predict(photo, tta=name) for name in TTA}
    for name, out in outs.items():
        assert out["tta"] == {"name": name, "views": list(TTA[name].views)}
    assert len(outs["10-view"]["tta"]["views"]) == 10
    assert outs["none"]["faces"][0]["box"] == outs["10-view"]["faces"][0]["box"]  # same face, other views
    assert np.abs(_probs(outs["none"]["faces"][0]) - _probs(outs["10-view"]["faces"][0])).max() > 1e-4
    assert predictor.predict(photo, tta=True)["tta"]["name"] == "10-view"  # the evaluator's switch
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        predictor.predict(photo, tta="sideways")


def test_boxes_are_reported_in_the_original_photo_coordinates(predictor, tmp_path):
    small = predictor.predict(str(PHOTOS / "astronaut.jpg"))["faces"][0]
    big = Image.open(PHOTOS / "astronaut.jpg").resize((3072, 3072), Image.Resampling.BICUBIC)
    path = tmp_path / "big.jpg"
    big.save(path, quality=85)
    out = predictor.predict(str(path))
    assert out["image_size"] == {"width": 3072, "height": 3072}
    (face,) = out["faces"]
    tolerance = 0.12 * 6 * small["box"]["w"]
    for key in ("x", "y", "w", "h"):
        assert abs(face["box"][key] - 6 * small["box"][key]) <= tolerance, (key, face["box"], small["box"])
    for key in ("cx", "cy", "side"):
        assert abs(face["crop"][key] - 6 * small["crop"][key]) <= tolerance, (key, face["crop"], small["crop"])
    for (x, y), (x0, y0) in zip(face["landmarks"], small["landmarks"]):
        assert abs(x - 6 * x0) <= tolerance and abs(y - 6 * y0) <= tolerance


def test_no_face_says_so_and_whole_image_classifies_anyway(predictor):
    out = api_predict(predictor, str(PHOTOS / "coffee_no_face.jpg"))
    assert out["no_face"] and out["faces"] == [] and out["n_detected"] == 0
    assert "No face found" in out["message"] and "whole image" in out["message"]
    assert out["detector"] == predictor.detector.name
    whole = predictor.predict(str(PHOTOS / "coffee_no_face.jpg"), whole_image=True)
    assert whole["whole_image"] and whole["n_faces"] == 1 and whole["detector"] == WHOLE_IMAGE
    assert whole["image_size"] == {"width": 600, "height": 400}
    face = whole["faces"][0]
    assert face["crop"] == {"cx": 300.0, "cy": 200.0, "side": 400.0, "angle": 0.0}  # the centred square
    assert "landmarks" not in face
    assert face["box"]["x"] == 100 and face["box"]["y"] == 0


def test_the_whole_image_box_is_the_centred_square_inside_the_photo(predictor):
    face = predictor.predict(str(PHOTOS / "coffee_no_face.jpg"), whole_image=True)["faces"][0]
    assert face["box"] == {"x": 100, "y": 0, "w": 400, "h": 400}


def test_a_small_face_crop_is_classified_as_one_face(predictor, example_faces, tmp_path):
    name, face = next(iter(example_faces.items()))
    path = str(EXAMPLES_DIR / "fer2013" / f"{name}.png")
    whole = predictor.predict(path, whole_image=True)
    assert whole["n_faces"] == 1 and whole["detector"] == WHOLE_IMAGE
    assert whole["faces"][0]["crop"] == {"cx": 24.0, "cy": 24.0, "side": 48.0, "angle": 0.0}
    # the crop is the face itself, untouched: the same probabilities as classifying the array
    assert np.allclose(_probs(whole["faces"][0]), predictor.classify(face[None], predictor.tta)[0], atol=1e-5)
    alone = predictor.predict(path, whole_image=True, tta="none")
    assert np.allclose(_probs(alone["faces"][0]), predictor.classify(face[None])[0], atol=1e-5)
    blank = tmp_path / "blank.png"  # small, and no face to find in it
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(blank)
    out = api_predict(predictor, str(blank))
    assert out["n_faces"] == 1 and out["whole_image"] and out["n_detected"] == 0
    assert "The image is small, so it was taken as one face crop." in out["message"]
    for name in example_faces:  # found or taken whole, each example is one face
        assert predictor.predict(str(EXAMPLES_DIR / "fer2013" / f"{name}.png"))["n_faces"] == 1, name


def test_every_fer2013_example_is_classified_as_the_face_it_is(predictor, example_faces):
    """faces.SMALL_IMAGE_SIDE: an image this small is taken to be a face crop already (as the explorer does)."""
    recropped = []
    for name, face in example_faces.items():
        out = predictor.predict(str(EXAMPLES_DIR / "fer2013" / f"{name}.png"))
        if not (out["whole_image"] and np.allclose(_probs(out["faces"][0]),
                                                   predictor.classify(face[None], predictor.tta)[0], atol=1e-5)):
            recropped.append(name)
    assert recropped == []


def test_many_faces_are_capped_and_the_message_says_so(predictor):
    tile = np.asarray(Image.open(PHOTOS / "astronaut.jpg").resize((256, 256)))
    grid = np.concatenate([np.concatenate([tile] * 4, axis=1)] * 2, axis=0)  # 8 faces
    a = predictor.analyze(grid, max_faces=5)
    assert a.n_detected == 8 and len(a.faces) == 5
    assert "Classified the 5 largest" in a.message and "8 faces found" in a.message
    full = predictor.analyze(grid)
    assert len(full.faces) == 8 and len(full.detailed()) == MAX_FACES
    assert f"shown for the {MAX_FACES} largest" in full.message and "Classified" not in full.message
    assert [f.index for f in full.faces] == list(range(1, 9))
    xs = [f.box.centre[0] for f in full.faces[:4]]  # top row, numbered left to right
    assert xs == sorted(xs)
    for f in full.faces:
        assert f.face.shape == (48, 48) and f.face.dtype == np.uint8 and f.box == f.detection.box
        label, share = caption(full, f).split(" ")[1:]
        assert caption(full, f).startswith(f"{f.index} ") and label == FER_LABELS[int(f.probs.argmax())]
        assert share == f"{f.probs.max():.0%}"


def test_the_api_answer_is_the_analysis_with_its_message(predictor):
    """/predict's answer is Predictor.predict's (the analysis, the backend and its message in words), and the
    analysis it returns beside it (for drawing) is the one the answer was made from."""
    photo = str(PHOTOS / "grace_hopper.jpg")
    answer, analysis = predict_with_analysis(predictor, photo, tta=False)
    assert answer == {**predictor.predict(photo, tta="none"), "seconds": answer["seconds"]}
    assert answer["message"] == "1 face found." and analysis.tta == "none"
    assert answer == {**analysis.to_json(), "backend": predictor.backend, "message": answer["message"]}


def test_the_haar_fallback_still_predicts(predictor):
    haar = Predictor(detector="haar")
    assert isinstance(haar.detector, HaarDetector) and haar.detector_note == ""
    out = haar.predict(str(PHOTOS / "astronaut.jpg"))
    assert out["detector"] == haar.detector.name and out["n_faces"] == 1
    assert "landmarks" not in out["faces"][0] and out["faces"][0]["crop"]["angle"] == 0.0
    yunet_box = predictor.predict(str(PHOTOS / "astronaut.jpg"))["faces"][0]["box"]
    cx, cy = yunet_box["x"] + yunet_box["w"] / 2, yunet_box["y"] + yunet_box["h"] / 2
    b = out["faces"][0]["box"]
    assert b["x"] <= cx <= b["x"] + b["w"] and b["y"] <= cy <= b["y"] + b["h"]  # the same face


def test_a_broken_yunet_file_falls_back_with_a_note(tmp_path):
    broken = tmp_path / "yunet.onnx"
    broken.write_bytes(b"not an onnx model" * 50)
    fallback = Predictor(detector_model=broken)
    assert isinstance(fallback.detector, HaarDetector)
    assert len(fallback.notes) == 1 and fallback.notes[0].startswith("face detector: ")
    assert "Haar cascade" in fallback.notes[0] and str(broken) in fallback.notes[0]
    assert fallback.predict(str(PHOTOS / "astronaut.jpg"))["n_faces"] == 1
