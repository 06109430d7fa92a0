"""What every tab of the UI shares: the photo input, readable errors, handler binding, examples."""

from __future__ import annotations

import functools
import sys
import traceback

import gradio as gr

from ..core.checkpoint import CheckpointError
from ..core.paths import EXAMPLES_DIR
from ..serving.testset import DatasetUnavailable



def photo_input(**kwargs) -> gr.Image:
    """A gr.Image (type="filepath") that hands our loader the uploaded file untouched.

    gr.Image opens uploads with PIL before the event function runs, so a broken
    or hostile file would fail there with PIL's message. This one keeps the image
    front end but leaves decoding to `images.load_image`, which checks size,
    pixel count and format and says what is wrong in plain words. (An instance
    override: subclassing a gradio component would write a .pyi stub here.)
    """
    image = gr.Image(type="filepath", image_mode=None, format="png", **kwargs)
    original = image.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        url = getattr(payload, "url", None) or ""
        path = getattr(payload, "path", None)
        if path and not url.startswith("data:"):
            return str(path)
        try:
            return original(payload)
        except Exception:
            raise gr.Error("The image could not be read: it is not an image file we can decode.",
                           print_exception=False) from None

    image.preprocess = preprocess
    return image


def errors_as_gr_error(fn):
    """Raise every exception of `fn` as a gr.Error with a readable message (never a stack trace)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, DatasetUnavailable, CheckpointError) as e:  # ImageLoadError, ExplainError, ...
            raise gr.Error(str(e)[:1000], print_exception=False) from None
        except Exception as e:
            print(f"error in {fn.__name__}:\n{traceback.format_exc()}", file=sys.stderr)
            raise gr.Error(f"Something went wrong ({type(e).__name__}); the server log has the details.",
                           print_exception=False) from None

    return wrapper


def example_files(sub: str) -> list[str]:
    folder = EXAMPLES_DIR / sub
    return sorted(str(p) for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))


def bind(fn, *args):
    """`fn` with its first arguments fixed (the Predictor, the held-out set) as a gradio event handler:
    gradio reads the remaining parameters for the API page; the name and docstring stay `fn`'s."""
    bound = functools.partial(fn, *args)
    bound.__name__, bound.__doc__, bound.__module__ = fn.__name__, fn.__doc__, fn.__module__
    return bound
