"""ONNX Runtime sessions on the CPU, set up one way for every model the app runs (the int8 classifier, YuNet)."""

from __future__ import annotations

from pathlib import Path


def cpu_session(path: str | Path, threads: int):
    """An InferenceSession of `path` on `threads` intra-op threads whose idle threads sleep rather than spin:
    spinning threads take the cores from PyTorch, from the other session and from concurrent requests
    (YuNet on 2 threads that spin: 26 ms a photo under load, against 14-16 ms on one; docs/results.md, "What a /predict
    request costs").
    Raises ImportError without onnxruntime, and onnxruntime's own errors for a file it cannot load."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
