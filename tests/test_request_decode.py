"""A large JPEG is decoded straight at a reduced scale (libjpeg's 1/2, 1/4, 1/8), not decoded whole and shrunk."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fer_demo.vision.images import load_image


def _jpeg(tmp_path, size):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (size[1] // 64, size[0] // 64, 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(small).resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def test_a_phone_sized_jpeg_decodes_at_half_scale(tmp_path):
    path = _jpeg(tmp_path, (4096, 3072))
    loaded = load_image(path, max_side=2048)
    with Image.open(path) as img:
        img.draft("RGB", (2048, 1536))  # what libjpeg gives at 1/2 scale
        reduced = np.asarray(img.convert("RGB"))
    assert reduced.shape == (1536, 2048, 3)
    assert np.array_equal(loaded.rgb, reduced)  # no full decode and resample in between
    assert loaded.original_size == (4096, 3072) and loaded.scale == 0.5


def test_the_reduced_decode_never_falls_below_the_side_asked_for(tmp_path):
    path = _jpeg(tmp_path, (2600, 1000))  # 1/2 gives 1300 >= 1280; 1/4 would give 650
    loaded = load_image(path, max_side=1280)
    assert loaded.rgb.shape[1] == 1280 and loaded.original_size == (2600, 1000)
    assert abs(loaded.scale - 1280 / 2600) < 1e-9
    small = load_image(path, max_side=2048)  # under twice the side: decoded whole, then shrunk
    assert small.rgb.shape[1] == 2048
