"""Re-score a checkpoint with none of fer_demo's code: timm, safetensors, the checkpoint's config.json and the
data set's parquet files only. A second implementation on purpose, written from the checkpoint's documented
format (docs/architecture.md, MODEL_CARD.md), so that a fault shared by the trainer, the evaluator and the app
cannot pass unseen: the figures it prints must equal the evaluator's reports.

    python -m tools.independent_rescore [CHECKPOINT] [--data ../shared/data/fer2013/data] [--split validation]
                                         [--limit N]

Prints one JSON line: per view set (one view, the app's 10 views), accuracy, and ECE (15 equal-width bins of
the top probability) at T = 1 and at the config's recorded temperature for that view set. Eval mode, fp32
(the whole validation split takes about 5 minutes on 2 idle cores; --limit N scores the first N faces).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parents[1]
# The stems the config's "stem" names (the checkpoint format): the first conv's stride, and whether timm's
# max-pool stays.
STEM_STRIDE_AND_POOL = {"imagenet": (2, True), "s2": (2, False), "s1": (1, False)}
# View sets and the config key of each one's temperature; the 10 views are the face and 4 copies shifted by 3 px
# (edges replicated), each also mirrored.
VIEW_TEMPERATURES = {"one view": "temperature", "10 views": "temperature_tta"}


def build(folder: Path) -> tuple[torch.nn.Module, dict]:
    config = json.loads((folder / "config.json").read_text())
    model = timm.create_model(config["arch"], pretrained=False, in_chans=1, num_classes=len(config["labels"]))
    stride, pool = STEM_STRIDE_AND_POOL[config["stem"]]
    first = model.conv1 if isinstance(model.conv1, torch.nn.Conv2d) else model.conv1[0]  # a deep stem's first
    first.stride = (stride, stride)
    if not pool:
        model.maxpool = torch.nn.Identity()
    state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    model.load_state_dict(state)
    return model.eval(), config


def faces_and_labels(parquet: Path, label_order: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 faces (N, 48, 48) and labels in the checkpoint's order, mapped by name from the file's ClassLabel."""
    table = pq.read_table(parquet)
    names = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]["label"]["names"]
    to_ours = np.array([label_order.index(name) for name in names])
    images = [np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("L")) for cell in table["image"].to_pylist()]
    return torch.from_numpy(np.stack(images)), torch.from_numpy(to_ours[table["label"].to_numpy()])


def views(x: torch.Tensor) -> list[torch.Tensor]:
    padded = F.pad(x, (3, 3, 3, 3), mode="replicate")
    side = x.shape[-1]
    shifted = [padded[..., 3 + dy: 3 + dy + side, 3 + dx: 3 + dx + side]
               for dx, dy in ((0, 0), (-3, 0), (3, 0), (0, -3), (0, 3))]
    return shifted + [v.flip(-1) for v in shifted]


@torch.no_grad()
def log_probs(model, config: dict, faces: torch.Tensor, all_views: bool) -> torch.Tensor:
    """log(mean over views of softmax), at T = 1."""
    out = []
    for batch in faces.split(256):
        x = (batch.unsqueeze(1).float() / 255 - config["mean"]) / config["std"]
        per_view = torch.stack([model(v).log_softmax(-1) for v in (views(x) if all_views else [x])])
        out.append(torch.logsumexp(per_view, 0) - np.log(len(per_view)))
    return torch.cat(out)


def ece(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    which = torch.clamp(torch.ceil(conf * bins).long() - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.float().mean().item() * abs(conf[inside].mean().item() - correct[inside].mean().item())
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", default=str(HERE / "fer_demo" / "assets" / "fer-resnet18"))
    p.add_argument("--data", default=str(HERE.parent / "shared" / "data" / "fer2013" / "data"))
    p.add_argument("--split", default="validation", choices=["validation", "test"])
    p.add_argument("--limit", type=int, default=None, help="the first N faces only")
    args = p.parse_args(argv)
    model, config = build(Path(args.checkpoint))
    parquet = next(Path(args.data).glob(f"{args.split}-*.parquet"))
    faces, labels = (t[:args.limit] for t in faces_and_labels(parquet, config["labels"]))
    result = {"checkpoint": args.checkpoint, "split": args.split, "n": len(labels)}
    for name, key in VIEW_TEMPERATURES.items():
        lp = log_probs(model, config, faces, all_views=name == "10 views")
        t = config.get(key, 1.0)
        result[name] = {"accuracy": (lp.argmax(1) == labels).float().mean().item(), "temperature": t,
                        "ece": ece((lp / t).softmax(-1), labels), "ece_at_t1": ece(lp.softmax(-1), labels)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
