"""The held-out test split in the app: figures from the shipped report, and faces per confusion cell.

Figures (confusion matrix, per-class table, accuracy / macro-F1 / ECE with and
without TTA) come from the checkpoint's `test_report.json` (`test_report.onnx-int8.json` when the
int8 backend serves), so they load at once.
The faces of a cell need the data set itself: it is loaded lazily, once, from
`--dataset` / env FER_DATASET / `../shared/data/fer2013` (or the Hub), and its
predictions are computed once and cached.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from .backends import report_name
from .checkpoint import REPO_ROOT
from .data import DEFAULT_DATASET
from .predict import Predictor

LOCAL_DATASET = REPO_ROOT.parent / "shared" / "data" / "fer2013"
MODES = {"no TTA": "no_tta", "TTA": "tta"}


class DatasetUnavailable(RuntimeError):
    """The test split cannot be loaded; the message says how to get it."""


def resolve_dataset(dataset: str | None = None) -> str:
    """--dataset, else env FER_DATASET, else the local copy beside the repo if present, else the Hub id."""
    if dataset:
        return str(dataset)
    if os.environ.get("FER_DATASET"):
        return os.environ["FER_DATASET"]
    return str(LOCAL_DATASET) if LOCAL_DATASET.exists() else DEFAULT_DATASET


def how_to_get(dataset: str) -> str:
    return (f"The FER2013 test split could not be loaded from {dataset!r}. To browse test faces, put a copy "
            f"in {LOCAL_DATASET.relative_to(REPO_ROOT.parent)!s} (beside the repo), e.g. "
            f"`hf download {DEFAULT_DATASET} --repo-type dataset --local-dir ../shared/data/fer2013`, "
            "or point env FER_DATASET / `python app.py --dataset` at a local folder, the Kaggle fer2013.csv, "
            "or a Hub id. The figures above do not need it.")


class HeldOutSet:
    """Report figures at once; the test faces, their predictions and per-cell lists on first use."""

    def __init__(self, predictor: Predictor, dataset: str | None = None, limit: int | None = None):
        self.predictor = predictor
        self.dataset = resolve_dataset(dataset)
        env_limit = os.environ.get("FER_TEST_LIMIT")
        self.limit = limit if limit is not None else (int(env_limit) if env_limit else None)
        self.report_file = report_name("test", predictor.backend)  # the figures of the backend that serves
        self.report = self._read_report(Path(predictor.folder) / self.report_file)
        self._lock = threading.Lock()
        self._faces = None  # (images uint8 (N,48,48), labels (N,), probs (N,7))
        self._error: str | None = None

    @staticmethod
    def _read_report(path: Path) -> dict | None:
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return report if isinstance(report, dict) and "no_tta" in report else None

    # --- figures from the report ---

    def modes(self) -> list[str]:
        return [m for m, key in MODES.items() if self.report and key in self.report]

    def metrics(self, mode: str = "no TTA") -> dict:
        if not self.report:
            raise DatasetUnavailable(f"no {self.report_file} beside the checkpoint {self.predictor.folder}: "
                                     f"run `python -m train.evaluate --tta --backend {self.predictor.backend}` "
                                     "to write one")
        key = MODES.get(mode, mode)
        if key not in self.report:
            raise DatasetUnavailable(f"the test report has no {mode!r} figures")
        return self.report[key]

    def summary_rows(self) -> list[list]:
        rows = []
        for mode in self.modes():
            m = self.metrics(mode)
            rows.append([mode, round(m["accuracy"], 4), round(m["macro_f1"], 4), round(m["ece"], 4),
                         round(m.get("nll", float("nan")), 4), int(m["n"])])
        return rows

    def per_class_rows(self, mode: str = "no TTA") -> list[list]:
        m = self.metrics(mode)
        return [[name, round(v["precision"], 4), round(v["recall"], 4), round(v["f1"], 4), int(v["support"])]
                for name, v in m["per_class"].items()]

    def figure(self, mode: str = "no TTA", normalized: bool = True):
        from .evaluation import plot_confusion

        m = self.metrics(mode)
        what = "row-normalized" if normalized else "counts"
        title = (f"test split, {mode}, {what}\naccuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, "
                 f"n={m['n']}")
        return plot_confusion(m, None, normalized=normalized, title=title)

    def most_confused(self, mode: str = "no TTA") -> tuple[int, int]:
        """The off-diagonal cell (true, predicted) with the largest row-normalized share."""
        try:
            norm = np.asarray(self.metrics(mode)["confusion_normalized"], dtype=float)
        except (DatasetUnavailable, KeyError):
            return 0, 1
        np.fill_diagonal(norm, -1.0)
        t, p = np.unravel_index(int(norm.argmax()), norm.shape)
        return int(t), int(p)

    def report_count(self, true: int, pred: int, mode: str = "no TTA") -> int | None:
        try:
            return int(self.metrics(mode)["confusion"][true][pred])
        except (DatasetUnavailable, KeyError, IndexError, TypeError):
            return None

    # --- the faces themselves ---

    def faces(self, progress=None):
        """(images, labels, probs) of the test split, loaded and predicted once."""
        with self._lock:
            if self._faces is None:
                if self._error:
                    raise DatasetUnavailable(self._error)
                from .data import load_fer

                n = self.report.get("n") if self.report else None
                limit = min(x for x in (n, self.limit) if x) if (n or self.limit) else None
                if progress:
                    progress(0.05, f"loading the test split of {self.dataset}")
                try:
                    split = load_fer(self.dataset, ("test",), limits={"test": limit}, log=lambda *a: None)["test"]
                except Exception as e:  # no copy, no network, or not FER2013
                    self._error = f"{how_to_get(self.dataset)} ({type(e).__name__}: {str(e)[:300]})"
                    raise DatasetUnavailable(self._error) from None
                images = split.images.numpy()
                probs = np.zeros((len(images), len(self.predictor.labels)), np.float32)
                step = 512
                for start in range(0, len(images), step):
                    if progress:
                        progress(0.1 + 0.9 * start / max(len(images), 1),
                                 f"predicting test faces {start}/{len(images)}")
                    probs[start:start + step] = self.predictor.classify(images[start:start + step])
                self._faces = (images, split.labels.numpy(), probs)
            return self._faces

    def cell(self, true: str, predicted: str, max_faces: int = 12, progress=None) -> dict:
        """The `/confusion` answer: test faces of true class `true` that the model predicts as `predicted`."""
        labels = self.predictor.labels
        for name in (true, predicted):
            if name not in labels:
                raise ValueError(f"unknown class {name!r}; choose one of {', '.join(labels)}")
        t, p = labels.index(true), labels.index(predicted)
        images, y, probs = self.faces(progress)
        pred = probs.argmax(1)
        index = np.nonzero((y == t) & (pred == p))[0]
        order = index[np.argsort(-probs[index, p])]  # most confident first
        shown = order[:max_faces]
        n_true = int((y == t).sum())
        return {
            "true": true,
            "predicted": predicted,
            "count": int(len(index)),
            "row_total": n_true,
            "fraction_of_row": round(len(index) / n_true, 6) if n_true else 0.0,
            "report_count": self.report_count(t, p),
            "n_test": int(len(y)),
            "dataset": self.dataset,
            "faces": [{"test_index": int(i), "label": true, "predicted": labels[int(pred[i])],
                       "confidence": round(float(probs[i].max()), 6),
                       "probabilities": {n: round(float(v), 6) for n, v in zip(labels, probs[i])}}
                      for i in shown],
        }

    def face(self, test_index: int) -> np.ndarray:
        images, _, _ = self.faces()
        return images[int(test_index)]

    def random_face(self, label: str | None = None, seed: int | None = None, progress=None) -> tuple[np.ndarray, int, str]:
        """A random test face (of class `label`, if given): (face, test index, true label)."""
        images, y, _ = self.faces(progress)
        labels = self.predictor.labels
        pool = np.arange(len(y)) if not label or label not in labels else np.nonzero(y == labels.index(label))[0]
        if not len(pool):
            raise DatasetUnavailable(f"no test face of class {label!r} in the loaded split")
        i = int(np.random.default_rng(seed).choice(pool))
        return images[i], i, labels[int(y[i])]
