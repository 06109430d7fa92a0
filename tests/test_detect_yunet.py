"""YuNet through ONNX Runtime, decoded by `detectors.decode_yunet`, finds what OpenCV's cv2.FaceDetectorYN finds."""

from __future__ import annotations

import numpy as np
import pytest

from fer_demo.vision.detectors import (DETECTORS, YuNetDetector, YuNetOpenCvDetector, decode_yunet, open_detector,
                                       yunet_blob)
from fer_demo.vision.faces import GEOMETRY, detector_crop
from fer_demo.vision.images import load_image
from fer_demo_testing.photo_sets import face_counts, make_photos, negatives


def _images() -> list[np.ndarray]:
    """Every real photo with its faces, every face-free one, and synthetic photos of random 'faces'."""
    rng = np.random.default_rng(0)
    synthetic = [p.rgb for p in make_photos(rng.integers(0, 256, (12, 48, 48), dtype=np.uint8), 20.0)]
    return [load_image(f).rgb for f in [*face_counts(), *negatives()]] + synthetic


@pytest.mark.parametrize("rules", [None, {}], ids=["with the rules", "every box"])
def test_onnx_runtime_finds_the_boxes_opencv_finds(rules):
    ours, reference = YuNetDetector(rules=rules), YuNetOpenCvDetector(rules=rules)
    n = 0
    for rgb in _images():
        got, want = ours.detect(rgb), reference.detect(rgb)
        assert [d.box for d in got] == [d.box for d in want]
        for a, b in zip(got, want):
            assert abs(a.score - b.score) < 1e-4
            assert np.allclose(a.landmarks, b.landmarks, atol=0.05)
        n += len(want)
    assert n >= 15  # the comparison saw faces, not only empty answers


def test_decoding_offsets_sizes_and_landmarks_by_cell_and_stride():
    """One confident cell of stride 16 in a 64x32 input: its box and landmarks, in input pixels."""
    pad_w, pad_h = 64, 32
    outputs = {}
    for stride in (8, 16, 32):
        cells = (pad_w // stride) * (pad_h // stride)
        outputs[f"cls_{stride}"] = np.zeros((1, cells, 1), np.float32)
        outputs[f"obj_{stride}"] = np.zeros((1, cells, 1), np.float32)
        outputs[f"bbox_{stride}"] = np.zeros((1, cells, 4), np.float32)
        outputs[f"kps_{stride}"] = np.zeros((1, cells, 10), np.float32)
    cell = 1 * (pad_w // 16) + 2  # row 1, column 2
    outputs["cls_16"][0, cell] = 0.81
    outputs["obj_16"][0, cell] = 1.0
    outputs["bbox_16"][0, cell] = [0.5, 0.25, np.log(2.0), 0.0]  # centre (2.5, 1.25) cells; 32 x 16 px
    outputs["kps_16"][0, cell] = [0, 0, 1, 0, 0.5, 0.5, 0, 1, 1, 1]
    (d,) = decode_yunet(outputs, pad_w, pad_h, score=0.5)
    assert d.score == pytest.approx(0.9)
    assert (d.box.x, d.box.y, d.box.w, d.box.h) == (24, 12, 32, 16)  # centre (40, 20)
    assert np.allclose(d.landmarks, [(32, 16), (48, 16), (40, 24), (32, 32), (48, 32)])
    assert decode_yunet(outputs, pad_w, pad_h, score=0.95) == []


def test_the_input_is_bgr_padded_to_a_multiple_of_32():
    rgb = np.zeros((33, 70, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 10, 200
    blob, pad_w, pad_h = yunet_blob(rgb)
    assert blob.shape == (1, 3, 64, 96) and (pad_w, pad_h) == (96, 64) and blob.dtype == np.float32
    assert (blob[0, 0, :33, :70] == 200).all() and (blob[0, 2, :33, :70] == 10).all()  # B first
    assert not blob[0, :, 33:].any() and not blob[0, :, :, 70:].any()


def test_both_yunet_runners_are_in_the_table_and_share_one_crop_geometry(tmp_path):
    assert DETECTORS["yunet"] is YuNetDetector and DETECTORS["yunet-opencv"] is YuNetOpenCvDetector
    rgb = load_image(next(iter(face_counts()))).rgb
    ours, reference = YuNetDetector(), YuNetOpenCvDetector()
    assert ours.model == reference.model == "yunet" and "yunet" in GEOMETRY
    (a, *_), (b, *_) = ours.detect(rgb), reference.detect(rgb)
    crop, same = detector_crop(a, ours), detector_crop(b, reference)
    assert np.allclose([crop.cx, crop.cy, crop.side, crop.angle], [same.cx, same.cy, same.side, same.angle], atol=1e-3)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    for name in ("yunet", "yunet-opencv"):
        detector, note = open_detector(name, broken)
        assert detector.key == "haar" and "is broken" in note and str(broken) in note


def test_concurrent_detections_give_each_photo_its_own_faces():
    """YuNet's session runs without the lock: threads detecting different photos at once each get their own."""
    from concurrent.futures import ThreadPoolExecutor

    detector = YuNetDetector()
    assert detector.concurrent and not YuNetOpenCvDetector.concurrent
    photos = [load_image(f).rgb for f in list(face_counts())[:6]]
    alone = [detector.detect(rgb) for rgb in photos]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(detector.detect, photos * 3))
    assert together == alone * 3
