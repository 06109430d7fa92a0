"""Serve the app: `python app.py` (a Space runs that), `fer-demo serve` or `python -m fer_demo serve`.

    python app.py [--port 7860] [--checkpoint DIR] [--dataset PATH_OR_HUB_ID] [--backend auto]
                  [--detector yunet|haar] [--detector-model FILE] [--detect-side 640] [--tta 10-view|flip|none]
                  [--mcp]

Binds to 127.0.0.1:7860 unless GRADIO_SERVER_NAME / GRADIO_SERVER_PORT or --port say otherwise. With --mcp
(or env FER_MCP=1) the app is also an MCP server (Gradio's mcp_server, at /gradio_api/mcp/): its public
endpoints are the tools, described by their docstrings. ui/app.py builds the Blocks.
"""

from __future__ import annotations

import argparse
import os
import sys

MCP_ENV = "FER_MCP"


def parse_args(argv=None) -> argparse.Namespace:
    from .core.backends import BACKENDS
    from .core.checkpoint import SHIPPED_CHECKPOINT
    from .vision.detectors import DEFAULT_DETECTOR, DETECT_SIDE, DETECTORS
    from .core.paths import LOCAL_DATASET
    from .serving.predictor import DEFAULT_TTA
    from .core.transforms import TTA

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=None,
                   help="port (default: env GRADIO_SERVER_PORT, else 7860)")
    p.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT),
                   help="checkpoint folder (default: the shipped fer_demo/assets/fer-resnet18)")
    p.add_argument("--dataset", default=None,
                   help="FER2013 copy for the Test set tab's faces (default: env FER_DATASET, else "
                        f"{LOCAL_DATASET} if present, else the Hub)")
    p.add_argument("--backend", default=os.environ.get("FER_BACKEND", "auto"),
                   choices=["auto", *BACKENDS],
                   help="what classifies: auto (default, env FER_BACKEND) takes the checkpoint's int8 ONNX "
                        "model when it has a fresh one, else PyTorch; Grad-CAM always runs in PyTorch")
    p.add_argument("--detector", default=os.environ.get("FER_DETECTOR", DEFAULT_DETECTOR), choices=list(DETECTORS),
                   help="face detector (default: env FER_DETECTOR, else yunet); when YuNet's model file is missing "
                        "or broken the app says so and uses the Haar cascade")
    p.add_argument("--detector-model", default=None, help="another model file for the detector")
    p.add_argument("--detect-side", type=int, default=DETECT_SIDE,
                   help=f"the detector sees the photo scaled to this longest side (default {DETECT_SIDE}); larger "
                        "finds more small or blurred faces, at a cost in time")
    p.add_argument("--tta", default=DEFAULT_TTA, choices=list(TTA),
                   help=f"test-time augmentation of each face (default {DEFAULT_TTA}); the UI and /predict can "
                        "switch it off per request")
    p.add_argument("--mcp", action="store_true", default=os.environ.get(MCP_ENV) == "1",
                   help=f"also serve the endpoints as MCP tools at /gradio_api/mcp/ (default: env {MCP_ENV}=1)")
    return p.parse_args(argv)


def server_address(args: argparse.Namespace, environ=os.environ) -> tuple[str, int]:
    """(host, port): 127.0.0.1:7860 unless GRADIO_SERVER_NAME / GRADIO_SERVER_PORT or --port say otherwise."""
    host = environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = args.port or int(environ.get("GRADIO_SERVER_PORT") or 7860)
    return host, port


def keep_mcp_answers_whole() -> None:
    """Work around Gradio 6.31's MCP server: it answers a queued tool call with gradio_client's result (wrapped in
    a list), which already leaves the event's gr.State outputs out, then removes them again by position.
    /predict's event also returns the Predict tab's analysis in a gr.State, so every MCP call of it failed ("pop
    index out of range"). A client's result is unwrapped into the outputs it holds, and State outputs are removed
    only while it still holds one value per output."""
    from gradio.mcp import GradioMCPServer

    remove_states = GradioMCPServer.pop_returned_state

    def pop_returned_state(components, data):
        if len(components) > 1 and len(data) == 1 and isinstance(data[0], (list, tuple)):
            data = list(data[0])
        return remove_states(components, data) if len(data) == len(components) else data

    GradioMCPServer.pop_returned_state = staticmethod(pop_returned_state)


def main(argv=None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
    args = parse_args(argv)
    from .core.checkpoint import CheckpointError
    from .vision.detectors import DetectorError
    from .vision.images import MAX_FILE_BYTES
    from .serving.predictor import Predictor
    from .serving.testset import HeldOutSet
    from .ui import build_app, model_card_files

    try:
        predictor = Predictor(args.checkpoint, backend=args.backend, detector=args.detector,
                              detector_model=args.detector_model, tta=args.tta, detect_side=args.detect_side)
    except (CheckpointError, DetectorError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"classifier: {predictor.backend}; face detector: {predictor.detector.name}", file=sys.stderr)
    for note in predictor.notes:
        print(note, file=sys.stderr)
    demo = build_app(predictor, HeldOutSet(predictor, args.dataset))
    if args.mcp:
        keep_mcp_answers_whole()
    demo.queue(max_size=64, default_concurrency_limit=2)
    host, port = server_address(args)
    demo.launch(server_name=host, server_port=port,
                max_file_size=MAX_FILE_BYTES, show_error=True, footer_links=["api", "gradio"],
                allowed_paths=model_card_files(), mcp_server=args.mcp)
    return 0
