"""Safe image loading for user uploads: size limits, EXIF orientation, any mode to 8-bit RGB.

Every failure raises `ImageLoadError` (a `ValueError`) whose message can be shown
to a user as it is: it never contains a stack trace or a server path.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 20 * 1024 * 1024  # the upload limit; app.py passes the same to gradio's launch()
MAX_PIXELS = 50_000_000  # width x height that we agree to decode (a 50-megapixel photo)
MAX_SIDE = 2048  # larger images are downscaled to this longest side


class ImageLoadError(ValueError):
    """An upload cannot be used as an image; the message says why, in plain words."""


@dataclass
class LoadedImage:
    """An 8-bit RGB image (H, W, 3), and how it relates to the file it came from."""

    rgb: np.ndarray
    original_size: tuple[int, int]  # (width, height) after EXIF rotation, before downscaling
    scale: float  # rgb side / original side (1.0 unless downscaled)


def describe_bytes(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def load_image(source, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS,
               max_bytes: int = MAX_FILE_BYTES) -> LoadedImage:
    """Open a path, bytes, PIL image or numpy array as 8-bit RGB, safely.

    Honours EXIF orientation, takes the first frame of an animation, flattens
    transparency onto white, scales 16-bit and float images to 8 bits, and
    downscales to `max_side`. Raises `ImageLoadError` for anything else.
    """
    if source is None:
        raise ImageLoadError("no image was given: upload a photo, paste one, or take one with the webcam")
    if isinstance(source, np.ndarray):
        return _from_array(source, max_side)
    if isinstance(source, Image.Image):
        return _from_pil(source, max_side, max_pixels)
    if isinstance(source, (bytes, bytearray)):
        if len(source) > max_bytes:
            raise ImageLoadError(f"the file is too large ({describe_bytes(len(source))}); "
                                 f"the limit is {describe_bytes(max_bytes)}")
        stream, name = io.BytesIO(bytes(source)), "the upload"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = repr(path.name)
        if not path.is_file():
            raise ImageLoadError(f"the file {name} does not exist")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageLoadError(f"the file {name} is too large ({describe_bytes(size)}); "
                                 f"the limit is {describe_bytes(max_bytes)}")
        if size == 0:
            raise ImageLoadError(f"the file {name} is empty")
        stream = path
    else:
        raise ImageLoadError(f"cannot read an image from a {type(source).__name__}")
    try:
        # Image.open reads the header only; _from_pil checks the pixel count before decoding.
        with Image.open(stream) as img:
            return _from_pil(img, max_side, max_pixels, name)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError:
        raise ImageLoadError(f"{_cap(name)} declares far too many pixels (a decompression bomb?); "
                             f"the limit is {max_pixels / 1e6:.0f} megapixels") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{_cap(name)} is not an image we can read (use JPEG, PNG, WebP, GIF, "
                             "BMP or TIFF)") from None
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, MemoryError, IndexError) as e:
        raise ImageLoadError(f"{_cap(name)} is broken or truncated and cannot be decoded "
                             f"({type(e).__name__})") from None


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s.startswith("the") else f"The file {s}"


def _from_pil(img: Image.Image, max_side: int, max_pixels: int, name: str = "the image") -> LoadedImage:
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageLoadError(f"{_cap(name)} has no pixels")
    if w * h > max_pixels:
        raise ImageLoadError(f"{_cap(name)} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); "
                             f"the limit is {max_pixels / 1e6:.0f} megapixels")
    if getattr(img, "is_animated", False):
        img.seek(0)
    if img.format == "JPEG" and max(w, h) >= 2 * max_side:
        # JPEG decodes at 1/2, 1/4 or 1/8 scale directly, far faster: the largest reduction that keeps the
        # longest side at least max_side (draft keeps both sides at least the size asked for).
        f = max_side / max(w, h)
        img.draft("RGB", (math.ceil(w * f), math.ceil(h * f)))
    img.load()
    factor = img.size[0] / w  # < 1 when draft() shrank the decode
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block: keep the pixels as stored
        pass
    original = (round(img.size[0] / factor), round(img.size[1] / factor))
    rgb = _to_rgb(img)
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    arr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    return LoadedImage(arr, original, arr.shape[1] / original[0])


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB: transparency over white, 16-bit/float scaled to 0-255."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            a = a / 257.0
        elif a.size and (a.max() > 255 or a.min() < 0):
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) / max(hi - lo, 1e-12) * 255.0
        elif mode == "F" and a.size and a.max() <= 1.0:
            a = a * 255.0
        return Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    try:
        return img.convert("RGB")
    except (ValueError, OSError):
        return img.convert("L").convert("RGB")


def _from_array(arr: np.ndarray, max_side: int) -> LoadedImage:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.size == 0 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageLoadError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if a.max() <= 1.0:
            a = a * 255.0
        a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    return _from_pil(Image.fromarray(np.ascontiguousarray(a)), max_side, a.shape[0] * a.shape[1])


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 -> grayscale uint8 with PIL's ITU-R 601-2 luma, as FER2013's faces are stored."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"), dtype=np.uint8)
