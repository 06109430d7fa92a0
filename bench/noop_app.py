"""Gradio's floor for /predict: the same gradio, the same photo input and queue, an endpoint that does nothing.

    python -m bench.noop_app      # serves /noop on GRADIO_SERVER_PORT (bench/request_cost.py starts it)

`/noop` takes a photo exactly as app.py's `/predict` does (fer_demo.ui.common.photo_input: the upload's
path, not decoded) and returns {} as JSON, so that a request to it costs what Gradio's transport costs.
"""

from __future__ import annotations


import gradio as gr

from fer_demo.vision.images import MAX_FILE_BYTES
from fer_demo.ui.common import photo_input


def noop(photo: str | None, whole_image: bool = False, tta: bool = True) -> dict:
    return {}


def build() -> gr.Blocks:
    with gr.Blocks(analytics_enabled=False) as demo:
        photo = photo_input(label="Photo")
        whole, tta = gr.Checkbox(value=False), gr.Checkbox(value=True)
        out = gr.JSON()
        gr.Button("Run").click(noop, [photo, whole, tta], [out], api_name="noop", concurrency_limit=2)
    return demo


if __name__ == "__main__":
    demo = build()
    demo.queue(max_size=64, default_concurrency_limit=2)  # as app.py queues
    demo.launch(max_file_size=MAX_FILE_BYTES)  # host and port: GRADIO_SERVER_NAME, GRADIO_SERVER_PORT
