"""fer_demo.vision.images: safe loading of whatever a user uploads."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fer_demo.vision.images import MAX_SIDE, ImageLoadError, load_image, to_gray
from fer_demo.core.paths import EXAMPLES_DIR


ASTRONAUT = EXAMPLES_DIR / "photos" / "astronaut.jpg"


def _save(img: Image.Image, path, fmt=None, **kw):
    img.save(path, fmt, **kw)
    return path


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels, with (almost) no pixel data: a bomb's shape."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + \
        chunk(b"IEND", b"")


def test_example_photo_loads_as_rgb_uint8():
    img = load_image(ASTRONAUT)
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == (512, 512, 3)
    assert img.original_size == (512, 512) and img.scale == 1.0
    assert img.rgb.std() > 20  # real content, not a blank


def test_path_bytes_pil_and_array_give_the_same_pixels():
    a = load_image(ASTRONAUT).rgb
    assert np.array_equal(load_image(ASTRONAUT.read_bytes()).rgb, a)
    assert np.array_equal(load_image(Image.open(ASTRONAUT)).rgb, a)
    assert np.array_equal(load_image(a).rgb, a)
    gray = load_image(a.mean(2) / 255.0).rgb  # float gray in [0, 1]
    assert gray.shape == a.shape and np.allclose(gray[..., 0], a.mean(2), atol=1.01)


def test_exif_orientation_is_honoured(tmp_path):
    base = Image.open(ASTRONAUT).crop((0, 0, 512, 300))  # landscape 512x300
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(base, tmp_path / "rotated.jpg", exif=exif.tobytes())
    img = load_image(path)
    assert img.rgb.shape[:2] == (512, 300)  # displayed upright: portrait
    assert img.original_size == (300, 512)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "1", "CMYK", "I;16", "I", "F"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    base = Image.open(ASTRONAUT).resize((64, 64))
    if mode == "I;16":
        img = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257))
    elif mode == "I":
        img = base.convert("L").convert("I")
    elif mode == "F":
        img = Image.fromarray(np.asarray(base.convert("L"), dtype=np.float32) / 255.0)
    else:
        img = base.convert(mode)
    out = load_image(img).rgb
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    if mode not in ("1",):
        # the gray content survives: correlation with the source's luma is high
        ref = np.asarray(base.convert("L"), dtype=float).ravel()
        assert np.corrcoef(ref, to_gray(out).astype(float).ravel())[0, 1] > 0.95, mode


def test_transparency_is_flattened_onto_white():
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent black
    assert load_image(Image.fromarray(rgba)).rgb.min() == 255


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (32, 32), c) for c in ((250, 0, 0), (0, 0, 250))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = load_image(path).rgb
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50


def test_huge_images_are_downscaled(tmp_path):
    big = Image.open(ASTRONAUT).resize((5000, 2500))
    path = _save(big, tmp_path / "big.jpg", quality=70)  # > 2 x MAX_SIDE: decoded with JPEG draft
    img = load_image(path)
    assert max(img.rgb.shape[:2]) == MAX_SIDE
    assert img.original_size == (5000, 2500)
    assert img.scale == pytest.approx(MAX_SIDE / 5000, rel=1e-3)
    png = load_image(big.resize((3000, 1500)))
    assert png.rgb.shape[:2] == (1024, 2048)


def test_arrays_are_downscaled_too_and_remember_their_size():
    """A webcam frame arrives as an array; the live stream loads it at the detector's side (640 px)."""
    rgb = load_image(ASTRONAUT).rgb
    big = np.kron(rgb, np.ones((3, 2, 1), np.uint8))  # 1536 x 1024 (h x w)
    img = load_image(big, max_side=640)
    assert img.rgb.shape == (640, 427, 3) and img.original_size == (1024, 1536)
    assert img.scale == pytest.approx(640 / 1536, rel=1e-3)
    assert np.abs(img.rgb.astype(float).mean((0, 1)) - rgb.mean((0, 1))).max() < 2  # the same picture
    assert load_image(rgb, max_side=640).scale == 1.0  # smaller: untouched


def test_decompression_bombs_are_refused():
    with pytest.raises(ImageLoadError, match="megapixels"):
        load_image(_png_header_only(12_000, 6_000))  # 72 MP: over our limit, under PIL's
    with pytest.raises(ImageLoadError, match="decompression bomb|megapixels"):
        load_image(_png_header_only(30_000, 30_000))  # 900 MP: PIL's own bomb error


def test_file_size_limit(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(ASTRONAUT.read_bytes())
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(path, max_bytes=10_000)


@pytest.mark.parametrize("content, expected", [
    (b"hello, this is a text file\n", "not an image"),
    (b"", "empty"),
    (b"GIF89a\x01\x00", "not an image|broken"),
])
def test_non_images_raise_a_readable_error(tmp_path, content, expected):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=expected) as info:
        load_image(path)
    assert "Traceback" not in str(info.value) and str(tmp_path) not in str(info.value)


def test_truncated_jpeg_raises_a_readable_error(tmp_path):
    data = ASTRONAUT.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageLoadError, match="broken or truncated"):
        load_image(path)


def test_missing_file_and_none():
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image("/nonexistent/x.png")
    with pytest.raises(ImageLoadError, match="no image"):
        load_image(None)
    assert issubclass(ImageLoadError, ValueError)


def test_bytes_roundtrip_of_a_png():
    buf = io.BytesIO()
    Image.open(ASTRONAUT).save(buf, "PNG")
    assert load_image(buf.getvalue()).rgb.shape == (512, 512, 3)
