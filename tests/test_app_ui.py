"""fer_demo.ui without a server: the Blocks it builds, error wrapping, upload handling, model card links."""

from __future__ import annotations

import gradio as gr
import pytest
from gradio.data_classes import ImageData

from fer_demo.images import ImageLoadError
from fer_demo.testset import HeldOutSet
from fer_demo.ui import build_app, card_images, link_card_images, photo_input, readable

from .conftest import REPO


@pytest.fixture(scope="module")
def demo(predictor):
    return build_app(predictor, HeldOutSet(predictor, dataset="/nonexistent"))


def test_public_endpoints_and_everything_else_private(demo):
    public = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert public == {"predict", "explain", "confusion", "test_report"}
    cam_events = [fn for fn in demo.fns.values() if fn.api_name == "explain"]
    assert cam_events and all(fn.concurrency_id == "cam" and fn.concurrency_limit == 1 for fn in cam_events)
    assert not list(REPO.joinpath("fer_demo").glob("*.pyi")), "building the app must not write stub files"


def test_readable_turns_exceptions_into_gr_errors():
    @readable
    def bad_image():
        raise ImageLoadError("the file 'x.txt' is not an image we can read")

    @readable
    def crash():
        raise KeyError("internal detail")

    with pytest.raises(gr.Error, match="not an image"):
        bad_image()
    with pytest.raises(gr.Error) as info:
        crash()
    assert "KeyError" in str(info.value) and "internal detail" not in str(info.value)


def test_photo_input_passes_the_upload_through_unopened(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    with gr.Blocks():
        image = photo_input(label="x")
    assert image.preprocess(ImageData(path=str(bad), orig_name="notes.txt")) == str(bad)
    assert image.preprocess(None) is None
    with pytest.raises(gr.Error, match="could not be read"):
        image.preprocess(ImageData(url="data:image/png;base64,AAAA"))


def test_model_card_image_links(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "cm.png").write_bytes(b"\x89PNG")
    text = ('![confusion](plots/cm.png "test")\n![remote](https://example.org/a.png)\n'
            "![missing](plots/none.png)\n![escape](../../etc/passwd.png)")
    assert set(card_images(text, tmp_path)) == {"plots/cm.png"}
    out = link_card_images(text, tmp_path)
    assert f"![confusion](/gradio_api/file={tmp_path / 'plots' / 'cm.png'} \"test\")" in out
    assert "![remote](https://example.org/a.png)" in out and "![missing](plots/none.png)" in out
