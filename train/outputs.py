"""Where evaluation, quantization and export write when not told: runs/<step>/<checkpoint's name>, under the
working folder as train.train's runs are. The shipped checkpoint is read-only data: only train.release writes
into it, naming it as the output on purpose."""

from __future__ import annotations

from pathlib import Path

RUNS = Path("runs")


def default_out(step: str, checkpoint: str | Path) -> Path:
    """runs/<step>/<name of the checkpoint folder> ("runs/evaluate/fer-resnet18")."""
    return RUNS / step / Path(checkpoint).resolve().name
