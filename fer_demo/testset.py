"""The held-out test split in the app: figures from the shipped report, and faces per confusion cell.

Figures (confusion matrix, per-class table, accuracy / macro-F1 / ECE with and
without TTA) come from the checkpoint's `test_report.json` (`test_report.onnx-int8.json` when the
int8 backend serves), so they load at once.
The faces of a cell need the data set itself: it is loaded lazily, once, from
`--dataset` / env FER_DATASET / the local copy beside the repo, else the Hub (as on a
Space), and its predictions are computed once and cached. When none can be loaded,
the tab says why and the rest of the app keeps serving.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from .backends import report_name
from .data import DEFAULT_DATASET
from .labels import PROB_DIGITS, rounded_label_probs
from .paths import LOCAL_DATASET
from .predictor import Predictor
from .transforms import FULL_TTA, NO_TTA

NO_TTA_MODE = "no TTA"
MODES = {NO_TTA_MODE: "no_tta", "TTA": "tta"}  # the report's key for each
TTA_OF = {NO_TTA_MODE: NO_TTA, "TTA": FULL_TTA}  # what the evaluator averaged for each (train.evaluate --tta)


class DatasetUnavailable(RuntimeError):
    """The test split cannot be loaded; the message says how to get it."""


def resolve_dataset(dataset: str | None = None) -> str:
    """--dataset, else env FER_DATASET, else the local copy beside the repo if present, else the Hub id."""
    if dataset:
        return str(dataset)
    if os.environ.get("FER_DATASET"):
        return os.environ["FER_DATASET"]
    return str(LOCAL_DATASET) if LOCAL_DATASET.exists() else DEFAULT_DATASET


def why_unavailable(dataset: str, error: Exception) -> str:
    """Why the test faces cannot be shown (the load error first), and how to get them."""
    return (f"Test faces unavailable: the FER2013 test split could not be loaded from {dataset!r} "
            f"({type(error).__name__}: {str(error)[:300]}). The figures above do not need it. To browse test "
            "faces, point env FER_DATASET or `python app.py --dataset` at a reachable Hub id, a local folder or "
            f"the Kaggle fer2013.csv, or put a copy at {LOCAL_DATASET}: `hf download {DEFAULT_DATASET} "
            f"--repo-type dataset --local-dir {LOCAL_DATASET}`.")


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
        self._faces = None  # (images uint8 (N,48,48), labels (N,))
        self._probs: dict[str, np.ndarray] = {}  # mode -> (N, 7)
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

    def metrics(self, mode: str = NO_TTA_MODE) -> dict:
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

    def per_class_rows(self, mode: str = NO_TTA_MODE) -> list[list]:
        m = self.metrics(mode)
        return [[name, round(v["precision"], 4), round(v["recall"], 4), round(v["f1"], 4), int(v["support"])]
                for name, v in m["per_class"].items()]

    def most_confused(self, mode: str = NO_TTA_MODE) -> tuple[int, int]:
        """The off-diagonal cell (true, predicted) with the largest row-normalized share."""
        try:
            norm = np.asarray(self.metrics(mode)["confusion_normalized"], dtype=float)
        except (DatasetUnavailable, KeyError):
            return 0, 1
        np.fill_diagonal(norm, -1.0)
        t, p = np.unravel_index(int(norm.argmax()), norm.shape)
        return int(t), int(p)

    def report_count(self, true: int, pred: int, mode: str = NO_TTA_MODE) -> int | None:
        try:
            return int(self.metrics(mode)["confusion"][true][pred])
        except (DatasetUnavailable, KeyError, IndexError, TypeError):
            return None

    # --- the faces themselves ---

    def faces(self, progress=None):
        """(images, labels) of the test split, loaded once."""
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
                    self._error = why_unavailable(self.dataset, e)
                    raise DatasetUnavailable(self._error) from None
                self._faces = (split.images.numpy(), split.labels.numpy())
            return self._faces

    def probs(self, mode: str = NO_TTA_MODE, progress=None) -> np.ndarray:
        """The test faces' probabilities as the report's `mode` computes them (TTA: the evaluator's views),
        predicted once per mode."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        images, _ = self.faces(progress)
        with self._lock:
            if mode not in self._probs:
                probs = np.zeros((len(images), len(self.predictor.labels)), np.float32)
                step = 512  # faces per classify() call, one batch each (see predict_probs): coarse progress steps
                for start in range(0, len(images), step):
                    if progress:
                        progress(0.1 + 0.9 * start / max(len(images), 1),
                                 f"predicting test faces {start}/{len(images)} ({mode})")
                    probs[start:start + step] = self.predictor.classify(images[start:start + step], TTA_OF[mode])
                self._probs[mode] = probs
            return self._probs[mode]

    def cell(self, true: str, predicted: str, max_faces: int = 12, mode: str = NO_TTA_MODE, progress=None) -> dict:
        """The `/confusion` answer: test faces of true class `true` that the model predicts as `predicted`."""
        labels = self.predictor.labels
        for name in (true, predicted):
            if name not in labels:
                raise ValueError(f"unknown class {name!r}; choose one of {', '.join(labels)}")
        t, p = labels.index(true), labels.index(predicted)
        _, y = self.faces(progress)
        probs = self.probs(mode, progress)
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
            "report_count": self.report_count(t, p, mode),
            "mode": mode,
            "n_test": int(len(y)),
            "dataset": self.dataset,
            "faces": [{"test_index": int(i), "label": true, "predicted": labels[int(pred[i])],
                       "confidence": round(float(probs[i].max()), PROB_DIGITS),
                       "probabilities": rounded_label_probs(probs[i], labels)}
                      for i in shown],
        }

    def face(self, test_index: int) -> np.ndarray:
        return self.faces()[0][int(test_index)]

    def random_face(self, label: str | None = None, seed: int | None = None,
                    progress=None) -> tuple[np.ndarray, int, str]:
        """A random test face (of class `label`, if given): (face, test index, true label)."""
        images, y = self.faces(progress)
        labels = self.predictor.labels
        pool = np.arange(len(y)) if not label or label not in labels else np.nonzero(y == labels.index(label))[0]
        if not len(pool):
            raise DatasetUnavailable(f"no test face of class {label!r} in the loaded split")
        i = int(np.random.default_rng(seed).choice(pool))
        return images[i], i, labels[int(y[i])]
