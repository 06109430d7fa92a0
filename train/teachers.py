"""Teachers for distillation, speaking as one ensemble: the log of their mean softmax probabilities, as
`inference.log_mean_views` averages a face's views. Two sources of the ensemble's answer for a training batch:

- `TargetFile` (--teacher-targets): computed once, offline, on fixed views of every training face
  (`python -m train.ensemble targets`), and looked up by the faces' indices; no teacher runs while the student
  trains, which on a CPU is what makes distillation cheap;
- `OnlineTeachers` (--teachers): the teachers run on each augmented batch the student sees, in eval mode.
"""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.data import FaceSplit
from fer_demo.core.inference import eval_mode, log_mean_views

TARGET_KEYS = ("log_probs", "labels")  # a target file's tensors: (N, 7) float32 and the faces' (N,) labels


def write_targets(path, log_probs: torch.Tensor, labels: torch.Tensor, metadata: dict[str, str]) -> None:
    save_file({"log_probs": log_probs.float().contiguous(), "labels": labels.long().contiguous()}, str(path),
              metadata=metadata)


class TargetFile:
    """The ensemble's log-probabilities for every face of the training split, from a file."""

    def __init__(self, path, train_set: FaceSplit, device: torch.device):
        tensors = load_file(str(path))
        if set(tensors) != set(TARGET_KEYS):
            raise ValueError(f"{path}: not a teacher-target file (python -m train.ensemble targets writes one)")
        if not torch.equal(tensors["labels"], train_set.labels.long()):
            raise ValueError(f"{path}: its {len(tensors['labels'])} faces are not this run's {len(train_set)} "
                             "training faces in this order (another dataset, or --limit-train)")
        self.log_probs = tensors["log_probs"].to(device)

    def __call__(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.log_probs[idx]


class OnlineTeachers:
    """The teachers' ensemble on the student's own augmented batch."""

    def __init__(self, folders: list[str], model_config: dict, device: torch.device, autocast):
        self.models, self.autocast = [], autocast
        for folder in folders:
            model, config = ckpt.load_model(folder, device)
            mismatched = [k for k in ("input_size", "mean", "std") if config[k] != model_config[k]]
            if mismatched:
                raise ValueError(f"teacher {folder} was trained on other inputs ({', '.join(mismatched)})")
            self.models.append(model.to(memory_format=torch.channels_last))

    @torch.no_grad()
    def __call__(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with self.autocast:
            views = []
            for model in self.models:
                with eval_mode(model):
                    views.append(model(x).float().log_softmax(-1))
        return log_mean_views(torch.stack(views))
