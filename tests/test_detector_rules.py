"""The detector's plausibility rules (fer_demo/detectors.py), each against a case it removes, and YuNet
on real photos with no face in them (tests/negatives) and beside face-like texture."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fer_demo.detectors import (EYE_SPAN, MIN_INSIDE, RULES, SMALL_FACE_FRACTION, SMALL_FACE_SCORE, Box, Detection,
                                FaceDetector, YuNetDetector, eye_span_plausible, failed_rules, inside_fraction,
                                landmarks_in_order, mostly_inside, plausible, small_box_confident)
from fer_demo.images import load_image
from fer_demo_testing.photo_sets import CANVAS, face_counts, load_textures, make_photos, negatives, views

SHAPE = (480, 640, 3)  # a detector copy: 640 x 480
# A frontal face, 100 x 130 px: eyes 40 px apart (0.4 of the width), nose below them, mouth below the nose.
FACE_BOX = Box(200, 100, 100, 130)
FACE_POINTS = ((230.0, 150.0), (270.0, 150.0), (250.0, 175.0), (235.0, 200.0), (265.0, 200.0))
NEGATIVES = {f.name: f for f in negatives()}


def face(box: Box = FACE_BOX, points=FACE_POINTS, score: float = 0.9) -> Detection:
    return Detection(box, score, None if points is None else tuple(points))


def turned(points, degrees: float, centre=(250.0, 165.0)):
    """The landmarks turned by `degrees` about `centre` (positive: clockwise on screen)."""
    t = math.radians(degrees)
    cx, cy = centre
    return tuple((cx + (x - cx) * math.cos(t) - (y - cy) * math.sin(t),
                  cy + (x - cx) * math.sin(t) + (y - cy) * math.cos(t)) for x, y in points)


@pytest.fixture(scope="module")
def yunet():
    return YuNetDetector()


# --- each rule, against a case it removes -------------------------------------------------------------------

def test_a_plain_frontal_face_passes_every_rule():
    assert failed_rules(face(), SHAPE) == [] and plausible(face(), SHAPE)


def test_inside_fraction():
    assert inside_fraction(FACE_BOX, SHAPE) == 1.0
    assert inside_fraction(Box(-50, 0, 100, 100), SHAPE) == pytest.approx(0.5)
    assert inside_fraction(Box(600, 440, 80, 80), SHAPE) == pytest.approx(40 * 40 / 6400)
    assert inside_fraction(Box(700, 0, 50, 50), SHAPE) == 0.0


def test_mostly_inside_removes_a_large_box_past_the_left_edge():
    """The reported case: large boxes on a painting, each reaching past the photo's left edge."""
    past_edge = face(Box(-90, 60, 300, 340), ((20, 180), (130, 180), (75, 240), (30, 300), (120, 300)), 0.7)
    assert not mostly_inside(past_edge, SHAPE)
    assert failed_rules(past_edge, SHAPE) == ["mostly_inside"]
    assert not plausible(past_edge, SHAPE)


def test_mostly_inside_keeps_a_face_cut_a_little_by_the_edge():
    grazing = face(Box(-5, 100, 100, 130), [(x - 205, y) for x, y in FACE_POINTS])
    assert inside_fraction(grazing.box, SHAPE) >= MIN_INSIDE and mostly_inside(grazing, SHAPE)
    assert mostly_inside(face(Box(-5, 100, 100, 130)), SHAPE, min_inside=0.96) is False  # the limit is a parameter


def test_landmarks_in_order_removes_eyes_swapped():
    """The subject's right eye on the image's right: a face seen upside down, or no face."""
    (right, left), rest = FACE_POINTS[:2], FACE_POINTS[2:]
    swapped = face(points=(left, right, *rest))
    assert not landmarks_in_order(swapped, SHAPE) and "landmarks_in_order" in failed_rules(swapped, SHAPE)


def test_landmarks_in_order_removes_a_nose_above_the_eyes():
    right, left, (nx, _), mr, ml = FACE_POINTS
    assert not landmarks_in_order(face(points=(right, left, (nx, 140.0), mr, ml)), SHAPE)


def test_landmarks_in_order_removes_a_mouth_above_the_nose():
    right, left, nose, (mrx, _), (mlx, _) = FACE_POINTS
    assert not landmarks_in_order(face(points=(right, left, nose, (mrx, 165.0), (mlx, 165.0))), SHAPE)


def test_landmarks_in_order_removes_mouth_corners_swapped():
    right, left, nose, mr, ml = FACE_POINTS
    assert not landmarks_in_order(face(points=(right, left, nose, ml, mr)), SHAPE)


@pytest.mark.parametrize("degrees", [-45, -20, 20, 45])
def test_landmarks_in_order_keeps_a_tilted_face(degrees):
    """The order is read in the face's own frame: a head tilted by up to MAX_TILT passes."""
    assert landmarks_in_order(face(points=turned(FACE_POINTS, degrees)), SHAPE)


def test_landmarks_in_order_removes_a_face_turned_past_the_tilt_limit():
    assert not landmarks_in_order(face(points=turned(FACE_POINTS, 120)), SHAPE)


def test_eye_span_removes_eyes_too_close_or_too_far_for_the_box():
    rest = FACE_POINTS[2:]
    close = face(points=((246.0, 150.0), (254.0, 150.0), *rest))  # 8 px apart in a 100 px box
    wide = face(points=((205.0, 150.0), (295.0, 150.0), *rest))  # 90 px apart
    assert 8 / 100 < EYE_SPAN[0] and not eye_span_plausible(close, SHAPE)
    assert 90 / 100 > EYE_SPAN[1] and not eye_span_plausible(wide, SHAPE)
    assert failed_rules(close, SHAPE) == ["eye_span"]
    assert eye_span_plausible(face(), SHAPE)


def test_small_box_confident_removes_a_small_box_with_a_middling_score():
    side = int(SMALL_FACE_FRACTION * SHAPE[0]) - 4  # just under the small-box limit
    small = Box(300, 200, side, side)
    points = ((300 + 0.3 * side, 200 + 0.4 * side), (300 + 0.7 * side, 200 + 0.4 * side),
              (300 + 0.5 * side, 200 + 0.6 * side), (300 + 0.35 * side, 200 + 0.8 * side),
              (300 + 0.65 * side, 200 + 0.8 * side))
    grain = face(small, points, score=SMALL_FACE_SCORE - 0.1)
    assert not small_box_confident(grain, SHAPE) and failed_rules(grain, SHAPE) == ["small_box_confident"]
    assert small_box_confident(face(small, points, score=SMALL_FACE_SCORE + 0.05), SHAPE)  # a sure small face
    assert small_box_confident(face(score=0.55), SHAPE)  # a large box needs only the detector's threshold


def test_rules_without_landmarks_judge_the_box_only():
    """The Haar cascade gives no landmarks (and score 1): only the box rules apply."""
    assert landmarks_in_order(face(points=None), SHAPE) and eye_span_plausible(face(points=None), SHAPE)
    assert plausible(Detection(FACE_BOX), SHAPE)
    assert not plausible(Detection(Box(-200, 0, 300, 300)), SHAPE)


def test_every_rule_is_a_documented_function():
    assert set(RULES) == {"mostly_inside", "landmarks_in_order", "eye_span", "small_box_confident"}
    assert all(callable(rule) and rule.__doc__ for rule in RULES.values())


class _FixedDetector(FaceDetector):
    """Returns the same detections (in detector-copy pixels) for any photo."""

    key = "fixed"

    def __init__(self, found, **kw):
        super().__init__(**kw)
        self.found = found

    def _detect(self, small, min_side):
        return list(self.found)


def test_the_detector_drops_what_the_rules_remove():
    past_edge = face(Box(-90, 60, 300, 340), score=0.7)
    detector = _FixedDetector([face(), past_edge])
    rgb = np.zeros(SHAPE, np.uint8)  # already 640 px: the copy is the photo
    assert [d.box for d in detector.detect(rgb)] == [FACE_BOX]
    assert len(_FixedDetector([face(), past_edge], rules={}).detect(rgb)) == 2  # no rules: every box


# --- YuNet on real photos with no face, and beside face-like texture -------------------------------------------

def test_the_negatives_are_there():
    assert len(NEGATIVES) >= 10


@pytest.mark.parametrize("name", sorted(NEGATIVES))
def test_no_face_on_a_photo_with_no_face(yunet, name):
    """Each negative, whole, mirrored and as five 60% crops (the views the thresholds were chosen on)."""
    rgb = load_image(NEGATIVES[name]).rgb
    for i, view in enumerate(views(rgb)):
        found = yunet.detect(view)
        assert found == [], (i, [(d.box, round(d.score, 3)) for d in found])


def face_counts_path(name: str):
    return next(p for p in face_counts() if p.name == name)


def test_a_portrait_beside_a_cat_has_one_face(yunet):
    """A portrait with face-like texture beside it (a cat's head filling its half): YuNet alone boxes the
    cat at about 0.6, above its score threshold; the rules leave the one face."""
    cat = views(load_image(NEGATIVES["chelsea_cat.jpg"]).rgb)[3]  # the bottom-right 60%: the cat's head
    person = load_image(face_counts_path("deepface_img20.jpg")).rgb
    h = cat.shape[0]
    person = cv2.resize(person, (round(person.shape[1] * h / person.shape[0]), h), interpolation=cv2.INTER_AREA)
    photo = np.concatenate([cat, person], axis=1)
    unruled = YuNetDetector(rules={}).detect(photo)
    assert len(unruled) == 2 and min(d.score for d in unruled) >= 0.5
    (found,) = yunet.detect(photo)
    assert found.box.x >= cat.shape[1] and found.score > 0.9  # the person's face, in the right half


def test_synthetic_photos_on_real_textures():
    textures = load_textures(list(NEGATIVES.values())[:3])
    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    photos = make_photos(faces, 20, seed=1, textures=textures)
    assert sum(len(p.crops) for p in photos) == 6
    assert all(p.rgb.shape == (CANVAS[1], CANVAS[0], 3) for p in photos)
    again = make_photos(faces, 20, seed=1, textures=textures)
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(photos, again))  # seeded
    plain = make_photos(faces, 20, seed=1)
    assert not np.array_equal(plain[0].rgb, photos[0].rgb)
