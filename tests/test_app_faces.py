"""Face detection on real photos (YuNet and the Haar fallback), eye-level alignment, FER-like crops."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fer_demo.vision.detectors import DETECTORS, Box, Detection, HaarDetector, YuNetDetector, open_detector
from fer_demo.vision.faces import (GEOMETRY, Crop, crop_region, detector_crop, extract, face_crop, reading_order,
                                   single_face, whole_image_crop)
from fer_demo.vision.images import load_image
from fer_demo.core.paths import EXAMPLES_DIR, YUNET_FILE
from fer_demo_testing.photo_sets import REAL_PHOTOS, face_counts, faces_hit, real_photo_files

PHOTOS = EXAMPLES_DIR / "photos"
PHOTO_FILES = {path.name: path for path in face_counts()}
FACE_COUNTS = {path.name: count for path, count in face_counts().items()}


def _photo(name: str) -> np.ndarray:
    return load_image(PHOTO_FILES[name]).rgb


@pytest.fixture(scope="module")
def yunet():
    return YuNetDetector()


def _inside(box: Box, x: float, y: float) -> bool:
    return box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h


@pytest.mark.parametrize("name", sorted(FACE_COUNTS))
def test_yunet_finds_every_face_and_nothing_else(yunet, name):
    rgb = _photo(name)
    found = yunet.detect(rgb)
    # each face in focus boxed (a box holds its centre), no box on anything else (people out of focus behind)
    assert faces_hit(name, rgb.shape, [d.box for d in found]) == (FACE_COUNTS[name], 0), [d.box for d in found]
    for d in found:
        assert d.landmarks is not None and len(d.landmarks) == 5
        assert all(_inside(d.box, x, y) for x, y in d.landmarks[:3])  # eyes and nose inside the box


def test_every_shared_photo_gets_its_faces_in_focus_and_states_their_count(predictor, shared_photos):
    """The real-photo benchmark's photos (bench/real_photos.py): on each, the app's answer boxes every face
    in focus, puts no box on anything else (blurred people, a crowd, a painted poster, a statuette, a logo),
    and states the count of faces in focus."""
    files = real_photo_files((shared_photos,))
    assert len(files) == 27 and set(files) <= set(REAL_PHOTOS)
    wrong = {}
    for name, path in files.items():
        analysis = predictor.analyze(path, tta="none")
        faces = len(REAL_PHOTOS[name].faces)
        got = faces_hit(name, analysis.image.rgb.shape, [f.box for f in analysis.faces]), analysis.n_detected
        if got != ((faces, 0), faces):
            wrong[name] = got
    assert not wrong, wrong


def test_boxes_land_on_the_faces(yunet):
    (astronaut,) = yunet.detect(_photo("astronaut.jpg"))
    assert _inside(astronaut.box, 222, 115) and 70 <= astronaut.box.w <= 160  # between her eyes and mouth
    (hopper,) = yunet.detect(_photo("grace_hopper.jpg"))
    assert _inside(hopper.box, 265, 215)


def test_group_photo_has_four_faces_one_per_tile(yunet):
    rgb = _photo("group_collage.jpg")
    found = reading_order(yunet.detect(rgb))
    tile = rgb.shape[1] / 4
    assert [int(d.box.centre[0] // tile) for d in found] == [0, 1, 2, 3]


def test_a_turned_head_is_found_by_yunet_and_missed_by_the_cascade(yunet):
    """A head turned away (a mirrored, sheared copy of the portrait, turned 30 degrees) defeats the frontal cascade."""
    rgb = _photo("grace_hopper.jpg")
    h, w = rgb.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2.6), 30, 1.0)
    turned = cv2.warpAffine(rgb, turn, (w, h), borderMode=cv2.BORDER_REFLECT)
    (found,) = yunet.detect(turned)
    assert abs(found.eye_angle + 30) < 8  # YuNet's eyes see the 30-degree turn
    near = [d for d in HaarDetector().detect(turned)
            if math.dist(d.box.centre, found.box.centre) < found.box.w / 2]
    assert near == []  # the cascade does not see this face


def test_detection_is_scale_invariant_through_the_detector_copy(yunet):
    rgb = _photo("astronaut.jpg")
    big = np.kron(rgb, np.ones((3, 3, 1), np.uint8))  # 1536 px: the detector sees a 640 px copy
    (small,), (large,) = yunet.detect(rgb), yunet.detect(big)
    assert abs(large.box.x / 3 - small.box.x) < 6 and abs(large.box.w / 3 - small.box.w) < 6


def _eye_angle_in(face: np.ndarray, detector) -> float:
    """The eye angle YuNet reads in a crop (framed in grey so the detector sees the whole head)."""
    framed = cv2.copyMakeBorder(face, 80, 80, 80, 80, cv2.BORDER_CONSTANT, value=128)
    (found,) = detector.detect(np.repeat(framed[..., None], 3, axis=2))
    return found.eye_angle


@pytest.mark.parametrize("name", ["grace_hopper.jpg"])
@pytest.mark.parametrize("angle", [-20, 20])
def test_alignment_turns_a_tilted_face_upright(yunet, name, angle):
    """A portrait turned by `angle` comes out of the aligned crop with level eyes; a plain crop stays tilted."""
    rgb = _photo(name)
    (upright,) = yunet.detect(rgb)
    h, w = rgb.shape[:2]
    turned = cv2.warpAffine(rgb, cv2.getRotationMatrix2D(upright.box.centre, angle, 1.0), (w, h),
                            borderMode=cv2.BORDER_REFLECT)
    (found,) = yunet.detect(turned)
    crop = detector_crop(found, yunet)
    assert abs(crop.angle - (upright.eye_angle - angle)) < 8  # the crop turns back by the tilt
    aligned = _eye_angle_in(extract(turned, crop, 160), yunet)
    plain = _eye_angle_in(extract(turned, Crop(crop.cx, crop.cy, crop.side, 0.0), 160), yunet)
    assert abs(aligned) < 10 and abs(plain) > abs(aligned) + 5, (aligned, plain)


def test_extract_takes_exactly_the_turned_square():
    face = np.zeros((48, 48), np.uint8)
    face[10:20, 5:15] = 255  # a bright block near the top-left of the face
    canvas = np.zeros((300, 300), np.uint8)
    crop = Crop(150, 140, 96, 30.0)
    m = crop.matrix(48)
    canvas = cv2.warpAffine(face, m, (300, 300), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    back = extract(canvas, crop)
    assert back[12:18, 7:13].mean() > 200 and back[30:, 30:].mean() < 30


def test_face_crop_follows_the_geometry():
    d = Detection(Box(100, 100, 80, 100), 0.9, ((120, 130), (160, 130), (140, 150), (125, 170), (155, 170)))
    crop = face_crop(d, GEOMETRY["yunet"])
    assert crop.side == pytest.approx(100 * GEOMETRY["yunet"].scale)
    assert crop.angle == pytest.approx(0.0)
    assert crop.cy == pytest.approx(150 + GEOMETRY["yunet"].down * crop.side)
    tilted = Detection(d.box, 0.9, ((120, 130), (160, 150), *d.landmarks[2:]))
    assert face_crop(tilted, GEOMETRY["yunet"]).angle == pytest.approx(math.degrees(math.atan2(20, 40)))
    assert face_crop(tilted, GEOMETRY["haar"]).side == pytest.approx(100 * GEOMETRY["haar"].scale)


def test_every_detector_has_a_crop_geometry():
    """One geometry per model: the two runners of YuNet's file draw the same boxes and share one."""
    assert set(GEOMETRY) == {cls.model for cls in DETECTORS.values()} == {"yunet", "haar"}


@pytest.mark.parametrize("content", [None, b"", b"not an onnx model at all" * 100, "truncated"])
def test_a_missing_or_broken_yunet_file_falls_back_to_the_cascade(tmp_path, content):
    path = tmp_path / "yunet.onnx"
    if content == "truncated":
        path.write_bytes(YUNET_FILE.read_bytes()[:50_000])
    elif content is not None:
        path.write_bytes(content)
    detector, note = open_detector("yunet", path)
    assert isinstance(detector, HaarDetector)
    assert "YuNet" in note and "Haar cascade" in note and "\n" not in note
    assert len(detector.detect(_photo("astronaut.jpg"))) == 1  # and it still finds faces


def test_the_shipped_yunet_opens_without_a_note():
    detector, note = open_detector()
    assert isinstance(detector, YuNetDetector) and note == ""


def test_crop_past_the_border_replicates_edges():
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, :50] = 200
    out = crop_region(img, Box(-20, -20, 60, 60))
    assert out.shape == (60, 60, 3)
    assert (out[:, :20] == 200).all()  # left of the image: the edge column repeated


def test_single_face_for_the_explorer(example_faces, yunet):
    face48 = next(iter(example_faces.values()))
    rgb = np.repeat(face48[..., None], 3, axis=2)
    face, how = single_face(rgb, yunet)
    assert np.array_equal(face, face48) and "whole image" in how
    face, how = single_face(_photo("group_collage.jpg"), yunet)
    assert face.shape == (48, 48) and "largest of 4" in how
    face, how = single_face(_photo("coffee_no_face.jpg"), yunet)
    assert "no face" in how


def test_whole_image_crop_is_the_centred_square():
    assert whole_image_crop(np.zeros((400, 600, 3), np.uint8)).bounds() == Box(100, 0, 401, 401)


def test_reading_order():
    ds = [Detection(Box(300, 0, 10, 10)), Detection(Box(0, 0, 50, 50)), Detection(Box(150, 0, 20, 20))]
    assert reading_order(ds) == [ds[1], ds[2], ds[0]]


def test_alignment_levels_turned_fer2013_faces(yunet, fer_data):
    """FER2013 faces pasted into photos turned by up to 20 degrees: the crops turn them back to within a few
    degrees (typically), and come out closer to the original face than unturned crops."""
    from fer_demo_testing.photo_sets import make_photos, match

    faces, _ = fer_data.arrays("validation", 60)
    errors, similar, similar_plain = [], [], []
    original = lambda i: faces[i].astype(float).ravel()  # noqa: E731
    for photo in make_photos(faces, 20, seed=3):
        found = yunet.detect(photo.rgb)
        for t, b in match(photo.crops, [d.box for d in found]).items():
            crop = detector_crop(found[b], yunet)
            errors.append(abs(crop.angle - photo.crops[t].angle))
            plain = Crop(crop.cx, crop.cy, crop.side, 0.0)
            for out, c in ((similar, crop), (similar_plain, plain)):
                out.append(np.corrcoef(extract(photo.rgb, c).astype(float).ravel(), original(photo.faces[t]))[0, 1])
    assert len(errors) >= 45
    assert np.median(errors) < 7 and np.percentile(errors, 90) < 15  # FER2013 faces have tilts of their own
    assert np.median(similar) > 0.45 and np.median(similar) > np.median(similar_plain) + 0.03


def test_the_app_with_a_broken_yunet_file_says_so_and_serves_with_the_cascade(tmp_path, monkeypatch, capsys):
    """app.py's main() with a broken --detector-model, in-process up to the launch (recorded instead of served):
    one line at start says what happened, /predict's handler runs the cascade, and the page's config names it."""

    import gradio as gr

    from fer_demo.vision.images import MAX_FILE_BYTES

    import app

    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda demo, **kwargs: launched.update(demo=demo, **kwargs))
    broken = tmp_path / "yunet.onnx"
    broken.write_bytes(YUNET_FILE.read_bytes()[:30_000])
    assert app.main(["--detector-model", str(broken)]) == 0
    log = capsys.readouterr().err
    demo = launched["demo"]
    assert launched["max_file_size"] == MAX_FILE_BYTES
    (predict,) = [fn for fn in demo.fns.values() if fn.api_name == "predict"]
    answer, _ = predict.fn(str(PHOTOS / "group_collage.jpg"), False)
    assert answer["detector"] == HaarDetector.name and answer["n_faces"] == 4
    notes = [line for line in log.splitlines() if "YuNet" in line and "Haar cascade" in line]
    assert len(notes) == 1 and "broken" in notes[0]  # one line at start says what happened
    # the page (its config, as /config serves it) names the detector that runs, and the note
    (settings,) = [c["props"]["value"] for c in demo.config["components"]
                   if c.get("props", {}).get("elem_id") == "predict-settings"]
    assert f"Detector: {HaarDetector.name}" in settings and f"**Note:** {notes[0]}" in settings
