"""Checkpoint folders: `model.safetensors` + `config.json`, written atomically, loaded without unpickling.

`make_config` writes config.json's schema and `read_config` checks it. A training run's folder also keeps
`train_state.safetensors` + `train_state.json` (optimizer, step, RNG, EMA) so that `--resume` continues exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .labels import FER_LABELS
from .model import create_fer_model
from .paths import SHIPPED_CHECKPOINT
from .transforms import FER_MEAN, FER_STD

MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
STATE_FILE, STATE_JSON = "train_state.safetensors", "train_state.json"
# config.json's schema version. A config without one is read as this version; another version is refused.
FORMAT = "fer-demo/1"
# What a config must hold to build the model and feed it; the other fields record where its weights came from.
MODEL_KEYS = ("arch", "stem", "input_size", "mean", "std", "labels")


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, torn, corrupt or not ours; the message says which."""


@contextmanager
def atomic_dir(target: str | Path):
    """Yield a temp folder beside `target`; on success it replaces `target` by renames.

    A run killed at any point leaves either the old folder (as `target` or
    `target.old`) or the new one, never a torn mix.
    """
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        tmp.chmod(0o755)
        yield tmp
        for f in tmp.iterdir():
            _fsync(f)
        old = target.with_name(target.name + ".old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"could not save {str(target)!r}: {e.strerror or e}; "
                              "the previous checkpoint there, if any, is intact") from None
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync(file: Path) -> None:
    with open(file, "rb") as f:
        os.fsync(f.fileno())


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from itself, a run folder (its `best/`), or a half-swapped `.old`."""
    path = Path(path)
    for candidate in (path, path / "best", path.with_name(path.name + ".old")):
        if (candidate / CONFIG_FILE).is_file() and (candidate / MODEL_FILE).is_file():
            return candidate
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {str(path)!r}: the folder does not exist")
    raise CheckpointError(f"{str(path)!r} is not a checkpoint: it needs {MODEL_FILE} and {CONFIG_FILE}")


def make_config(arch: str, stem: str, input_size: int, *, dataset: str | None = None,
                dataset_revision: str | None = None, train_args: dict | None = None, metrics: dict | None = None,
                epoch: int | None = None, step: int | None = None) -> dict:
    """A checkpoint's config.json: FORMAT; the model (MODEL_KEYS: a timm `arch` with its `stem`, taking
    `input_size`-pixel faces normalized with FER_MEAN and FER_STD, giving logits in FER_LABELS order); and,
    where given, the record of its training: the data set and the revision of it that was loaded, the
    trainer's arguments (which `--resume` reads), the validation metrics it was chosen by, epoch and step."""
    config = {"format": FORMAT, "arch": arch, "stem": stem, "input_size": int(input_size), "mean": FER_MEAN,
              "std": FER_STD, "labels": list(FER_LABELS)}
    record = {"dataset": dataset, "dataset_revision": dataset_revision, "train_args": train_args,
              "metrics": metrics, "epoch": epoch, "step": step}
    return config | {key: value for key, value in record.items() if value is not None}


def write_model(folder: Path, model: torch.nn.Module, config: dict, dtype=None) -> None:
    state = {k: v.detach().to("cpu", dtype=dtype if v.is_floating_point() and dtype else v.dtype)
             .contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / MODEL_FILE), metadata={"format": "pt"})
    write_config(folder, config)


def write_config(folder: Path, config: dict) -> None:
    (Path(folder) / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))


def read_config(path: str | Path) -> dict:
    """The validated config.json of the checkpoint at `path` (a checkpoint or run folder, see `resolve`)."""
    return config_in(resolve(path))


def config_in(folder: str | Path) -> dict:
    """The validated config.json in `folder` itself, whether or not its weights are there (a run folder
    copied from another machine may hold only its configs)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{folder / CONFIG_FILE}: not valid JSON ({e})") from None
    for key in MODEL_KEYS:
        if key not in config:
            raise CheckpointError(f"{folder / CONFIG_FILE}: not a fer-demo config (no {key!r})")
    if config.get("format", FORMAT) != FORMAT:
        raise CheckpointError(f"{folder / CONFIG_FILE}: format {config['format']!r}; this version reads {FORMAT!r}")
    return config


def load_model(path: str | Path = SHIPPED_CHECKPOINT, device="cpu") -> tuple[torch.nn.Module, dict]:
    """Build the model a checkpoint describes and load its weights, in eval mode."""
    folder = resolve(path)
    config = read_config(folder)
    model = create_fer_model(config["arch"], config["stem"])
    state = read_tensors(folder / MODEL_FILE)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as e:
        raise CheckpointError(f"{folder / MODEL_FILE}: weights do not fit {config['arch']} "
                              f"({str(e).splitlines()[0]})") from None
    # channels_last matches the layout predict_probs feeds it: about 25% faster on CPU
    return model.to(device, memory_format=torch.channels_last).eval(), config


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file}: corrupt or not a safetensors file ({e})") from None


# --- training state: nested dicts/lists of tensors and JSON scalars, without pickle ---

def _flatten(obj, tensors: dict, prefix: str):
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_flatten(k, tensors, f"{prefix}.k{i}"), _flatten(v, tensors, f"{prefix}.{i}")]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return {"__list__" if isinstance(obj, list) else "__tuple__":
                [_flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a training state")


def _unflatten(node, tensors: dict):
    if isinstance(node, dict):
        if "__tensor__" in node:
            return tensors[node["__tensor__"]]
        if "__dict__" in node:
            return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in node["__dict__"]}
        if "__list__" in node:
            return [_unflatten(v, tensors) for v in node["__list__"]]
        return tuple(_unflatten(v, tensors) for v in node["__tuple__"])
    return node


def write_state(folder: Path, state: dict) -> None:
    tensors: dict[str, torch.Tensor] = {}
    tree = _flatten(state, tensors, "s")
    save_file(tensors, str(folder / STATE_FILE))
    (folder / STATE_JSON).write_text(json.dumps(tree))


def read_state(path: str | Path) -> dict:
    folder = Path(path)
    if not (folder / STATE_FILE).is_file() or not (folder / STATE_JSON).is_file():
        raise CheckpointError(f"{str(folder)!r} holds no resumable training state "
                              f"({STATE_FILE} + {STATE_JSON})")
    tensors = read_tensors(folder / STATE_FILE)
    try:
        tree = json.loads((folder / STATE_JSON).read_text())
        return _unflatten(tree, tensors)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / STATE_JSON}: corrupt training state ({e})") from None
