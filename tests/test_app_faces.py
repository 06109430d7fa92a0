"""fer_demo.faces: Haar detection on real photos and FER2013-style crops."""

from __future__ import annotations

import numpy as np
import pytest

from fer_demo.faces import (FACE_MARGIN, Box, crop_box, crop_face, crop_region, detect_faces, reading_order,
                            single_face, whole_image_region)
from fer_demo.images import load_image

from .conftest import EXAMPLES

PHOTOS = EXAMPLES / "photos"


def _inside(box: Box, x: float, y: float) -> bool:
    return box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h


def test_one_face_in_each_portrait():
    astronaut = detect_faces(load_image(PHOTOS / "astronaut.jpg").rgb)
    assert len(astronaut) == 1
    assert _inside(astronaut[0], 222, 115)  # between Eileen Collins' eyes and mouth
    assert 70 <= astronaut[0].w <= 140
    hopper = detect_faces(load_image(PHOTOS / "grace_hopper.jpg").rgb)
    assert len(hopper) == 1 and _inside(hopper[0], 265, 215)


def test_group_photo_has_four_faces_one_per_tile():
    rgb = load_image(PHOTOS / "group_collage.jpg").rgb
    boxes = reading_order(detect_faces(rgb))
    assert len(boxes) == 4
    tile = rgb.shape[1] / 4
    assert [int((b.x + b.w / 2) // tile) for b in boxes] == [0, 1, 2, 3]


def test_no_face_in_coffee():
    assert detect_faces(load_image(PHOTOS / "coffee_no_face.jpg").rgb) == []


def test_detection_is_scale_invariant_through_the_downscaled_copy():
    rgb = load_image(PHOTOS / "astronaut.jpg").rgb
    big = np.kron(rgb, np.ones((3, 3, 1), np.uint8))  # 1536 px: detector sees a 640 px copy
    (small_box,), (big_box,) = detect_faces(rgb), detect_faces(big)
    assert abs(big_box.x / 3 - small_box.x) < 12 and abs(big_box.w / 3 - small_box.w) < 15


def test_crop_is_square_gray_48_with_margin():
    rgb = load_image(PHOTOS / "grace_hopper.jpg").rgb
    (box,) = detect_faces(rgb)
    face = crop_face(rgb, box)
    assert face.shape == (48, 48) and face.dtype == np.uint8 and face.std() > 20
    region = crop_box(box)
    assert region.w == region.h == round(box.w * (1 + 2 * FACE_MARGIN))
    assert abs((region.x + region.w / 2) - (box.x + box.w / 2)) <= 1


def test_crop_past_the_border_replicates_edges():
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, :50] = 200
    out = crop_region(img, Box(-20, -20, 60, 60))
    assert out.shape == (60, 60, 3)
    assert (out[:, :20] == 200).all()  # left of the image: the edge column repeated


def test_single_face_for_the_explorer(example_faces):
    face48 = next(iter(example_faces.values()))
    rgb = np.repeat(face48[..., None], 3, axis=2)
    face, how = single_face(rgb)
    assert np.array_equal(face, face48) and "whole image" in how
    face, how = single_face(load_image(PHOTOS / "group_collage.jpg").rgb)
    assert face.shape == (48, 48) and "largest of 4" in how
    face, how = single_face(load_image(PHOTOS / "coffee_no_face.jpg").rgb)
    assert "no face" in how


def test_whole_image_region_is_the_centred_square():
    assert whole_image_region(np.zeros((400, 600, 3), np.uint8)) == Box(100, 0, 400, 400)


@pytest.mark.parametrize("boxes, order", [
    ([Box(300, 0, 10, 10), Box(0, 0, 50, 50), Box(150, 0, 20, 20)], [1, 2, 0]),
])
def test_reading_order(boxes, order):
    assert reading_order(boxes) == [boxes[i] for i in order]
