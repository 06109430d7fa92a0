"""The Gradio Blocks app: Predict, Grad-CAM explorer, Test set, Video and About tabs.

Each tab has its own module (*_tab.py) with a builder and module-level handlers;
each public action is a plain function returning JSON (`/predict`, `/explain`,
`/confusion`, `/test_report`, `/video`); the UI shows its answer in a JSON panel
and a chained, private step draws the pictures from what the action returned.
"""

from __future__ import annotations

import gradio as gr

from ..serving.predictor import Predictor
from ..serving.testset import HeldOutSet
from .common import bind
from .explorer_tab import build_explorer_tab
from .model_card import model_card_markdown
from .predict_tab import build_predict_tab
from .testset_tab import api_test_report, build_testset_tab
from .video_tab import build_video_tab


def header_markdown(predictor: Predictor, heldout: HeldOutSet) -> str:
    c = predictor.config
    text = (f"# fer-demo: facial expressions and Grad-CAM\n"
            f"A `{c['arch']}` trained on FER2013 ({c['input_size']}x{c['input_size']} grayscale faces) "
            f"classifies each face as {', '.join(predictor.labels)}.")
    rows = heldout.summary_rows()
    if rows:
        text += f" Test accuracy {rows[0][1]:.1%} ({rows[0][0]}, n={rows[0][5]})."
    return text


def build_app(predictor: Predictor, heldout: HeldOutSet | None = None) -> gr.Blocks:
    heldout = heldout or HeldOutSet(predictor)
    with gr.Blocks(title="fer-demo: facial expressions + Grad-CAM", analytics_enabled=False) as demo:
        gr.Markdown(header_markdown(predictor, heldout))
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                build_predict_tab(predictor)
            with gr.Tab("Grad-CAM explorer", id="explorer"):
                build_explorer_tab(predictor, heldout)
            with gr.Tab("Test set", id="testset"):
                build_testset_tab(predictor, heldout)
            build_video_tab(predictor)
            with gr.Tab("About", id="about"):
                gr.Markdown(model_card_markdown(predictor, heldout))
        gr.api(bind(api_test_report, heldout), api_name="test_report")
    name_tools_after_endpoints(demo)
    return demo


def name_tools_after_endpoints(demo: gr.Blocks) -> None:
    """Gradio's MCP server (app.py --mcp) names each tool after its function; ours are named after their
    endpoints instead (/predict -> predict), as the API page and gradio_client know them."""
    public = {name.lstrip("/") for name in demo.get_api_info()["named_endpoints"]}
    for block_fn in demo.fns.values():
        if block_fn.api_name in public:  # each a handler bound to the Predictor (common.bind): its own object
            block_fn.fn.__name__ = block_fn.api_name
