"""fer-demo web app (Hugging Face Spaces convention: `python app.py`); `fer-demo serve` runs the same.

    python app.py [--port 7860] [--checkpoint DIR] [--dataset PATH_OR_HUB_ID] [--backend auto]
                  [--detector yunet|haar] [--detector-model FILE] [--detect-side 640] [--tta 10-view|flip|none]
                  [--mcp]

Binds to 127.0.0.1:7860 unless GRADIO_SERVER_NAME / GRADIO_SERVER_PORT or --port say otherwise; --mcp (or env
FER_MCP=1) also serves the endpoints as MCP tools. The logic lives in fer_demo/ (serve.py starts the app,
ui/app.py builds the Blocks).
"""

from __future__ import annotations

import sys

from fer_demo.core.allocator import cap_malloc_arenas
from fer_demo.serve import main, parse_args, server_address

__all__ = ["main", "parse_args", "server_address"]

if __name__ == "__main__":
    cap_malloc_arenas()  # before torch, onnxruntime and gradio start their threads
    sys.exit(main())
