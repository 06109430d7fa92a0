"""The held-out test split in the app: figures from the shipped report, and faces per confusion cell.

Figures (confusion matrix, per-class table, accuracy / macro-F1 / ECE with and
without TTA) come from the checkpoint's `test_report.json` (`test_report.onnx-int8.json` when the
int8 backend serves), so they load at once.
The faces of a cell need the data set itself: it is loaded lazily, once, from
`--dataset` / env FER_DATASET / the local copy beside the repo, else the Hub (as on a
Space). Their predictions are the evaluator's, read from the per-face file beside the
report (`test_predictions.json`, `test_predictions.onnx-int8.json`) when the checkpoint
has one for the serving backend and the loaded faces are the ones it scored; otherwise
(a checkpoint without it) they are computed once per mode and cached. When the data
cannot be loaded, the tab says why and the rest of the app keeps serving.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.backends import predictions_name, reliability_name, report_name
from ..core.data import DEFAULT_DATASET
from ..core.evaluation import REPORT_MODES, confusion_matrix
from ..core.labels import NUM_CLASSES, PROB_DIGITS, rounded_label_probs
from ..core.paths import LOCAL_DATASET
from .predictor import Predictor

NO_TTA_MODE = "no TTA"
# The columns of the summary table: the report's figures per mode, with its temperature and the ECE before it
SUMMARY_HEADERS = ["predictions", "accuracy", "macro-F1", "ECE", "NLL", "n", "temperature", "ECE at T = 1"]
MODES = {NO_TTA_MODE: "no_tta", "TTA": "tta"}  # the report's key for each
TTA_OF = {mode: REPORT_MODES[key] for mode, key in MODES.items()}  # what the evaluator averaged for each


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


@dataclass(frozen=True)
class Predictions:
    """One mode's predictions for the test faces: the predicted class (N,) and the seven probabilities (N, 7)."""

    classes: np.ndarray
    probs: np.ndarray


@dataclass(frozen=True)
class ShippedPredictions:
    """The evaluator's per-face file behind a report: each face's true class, and its predictions per
    report key ("no_tta", "tta")."""

    true: np.ndarray
    by_key: dict[str, Predictions]


def read_shipped_predictions(path: Path, report: dict | None) -> ShippedPredictions | None:
    """The per-face predictions the report was computed from (written by train/report.py), or None when the
    file is absent or unreadable, or is not the report's: another backend or face count, a mode missing, or a
    confusion matrix that its faces do not recount to."""
    try:
        record = json.loads(path.read_text())
        true = np.asarray(record["true"], dtype=np.int64)
        by_key = {key: Predictions(np.asarray(record[key]["pred"], dtype=np.int64),
                                   np.asarray(record[key]["probs"], dtype=np.float32))
                  for key in MODES.values() if report and key in report}
    except (OSError, ValueError, KeyError, TypeError):  # json.JSONDecodeError is a ValueError
        return None
    if not by_key or record.get("backend") != report.get("backend"):
        return None
    shipped = ShippedPredictions(true, by_key)
    return shipped if all(_recounts_to(shipped, key, report) for key in by_key) else None


def _recounts_to(shipped: ShippedPredictions, key: str, report: dict) -> bool:
    """Whether one mode's predictions have the report's shape and recount to its confusion matrix."""
    n, mode = len(shipped.true), shipped.by_key[key]
    if n != report.get("n") or mode.classes.shape != (n,) or mode.probs.shape != (n, NUM_CLASSES):
        return False
    recount = confusion_matrix(torch.from_numpy(shipped.true), torch.from_numpy(mode.classes))
    return recount.tolist() == report[key].get("confusion")


class HeldOutSet:
    """Report figures at once; the test faces, their predictions and per-cell lists on first use.

    `limit` (or env FER_TEST_LIMIT) caps the faces whose predictions are computed here; faces whose
    predictions ship with the checkpoint are all shown, since they cost nothing."""

    def __init__(self, predictor: Predictor, dataset: str | None = None, limit: int | None = None):
        self.predictor = predictor
        self.dataset = resolve_dataset(dataset)
        env_limit = os.environ.get("FER_TEST_LIMIT")
        self.limit = limit if limit is not None else (int(env_limit) if env_limit else None)
        self.report_file = report_name("test", predictor.backend)  # the figures of the backend that serves
        self.report = self._read_report(Path(predictor.folder) / self.report_file)
        self.predictions_file = predictions_name("test", predictor.backend)  # and the faces behind them
        self.shipped = read_shipped_predictions(Path(predictor.folder) / self.predictions_file, self.report)
        reliability = Path(predictor.folder) / reliability_name("test", predictor.backend)
        self.reliability_png = reliability if reliability.is_file() else None  # the report's diagrams, if any
        self._lock = threading.Lock()
        self._faces = None  # (images uint8 (N,48,48), labels (N,))
        self._predictions: dict[str, Predictions] = {}  # mode -> its predictions of the loaded faces
        self._error: str | None = None

    @staticmethod
    def _read_report(path: Path) -> dict | None:
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return report if isinstance(report, dict) and "no_tta" in report else None

    # --- figures from the report ---

    @property
    def evaluate_command(self) -> str:
        """The command that writes the test report beside this checkpoint (evaluation writes elsewhere unless told)."""
        folder = self.predictor.folder
        return (f"python -m train.evaluate --checkpoint {folder} --out {folder} --tta "
                f"--backend {self.predictor.backend}")

    def modes(self) -> list[str]:
        return [m for m, key in MODES.items() if self.report and key in self.report]

    def metrics(self, mode: str = NO_TTA_MODE) -> dict:
        if not self.report:
            raise DatasetUnavailable(f"no {self.report_file} beside the checkpoint {self.predictor.folder}: "
                                     f"run `{self.evaluate_command}` to write one")
        key = MODES.get(mode, mode)
        if key not in self.report:
            raise DatasetUnavailable(f"the test report has no {mode!r} figures")
        return self.report[key]

    def summary_rows(self) -> list[list]:
        """One row per mode: SUMMARY_HEADERS."""
        rows = []
        for mode in self.modes():
            m = self.metrics(mode)
            raw = m.get("uncalibrated", {})
            rows.append([mode, round(m["accuracy"], 4), round(m["macro_f1"], 4), round(m["ece"], 4),
                         round(m.get("nll", float("nan")), 4), int(m["n"]), m.get("temperature", 1.0),
                         round(raw.get("ece", m["ece"]), 4)])
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

    def _faces_to_load(self) -> int | None:
        """How many test faces to load (None: all): the report's count, so that they are the faces it scored
        (the evaluator's --limit takes the same seeded subset), capped by `limit` unless they ship predicted."""
        counts = [x for x in (self.report and self.report.get("n"), None if self.shipped else self.limit) if x]
        return min(counts) if counts else None

    def faces(self, progress=None):
        """(images, labels) of the test split, loaded once. The shipped predictions serve only if these are
        the faces they were made for (the same labels in the same order); else they are set aside, and these
        faces are predicted here."""
        with self._lock:
            if self._faces is None:
                if self._error:
                    raise DatasetUnavailable(self._error)
                from ..core.data import load_fer

                if progress:
                    progress(0.05, f"loading the test split of {self.dataset}")
                try:
                    split = load_fer(self.dataset, ("test",), limits={"test": self._faces_to_load()},
                                     log=lambda *a: None)["test"]
                except Exception as e:  # no copy, no network, or not FER2013
                    self._error = why_unavailable(self.dataset, e)
                    raise DatasetUnavailable(self._error) from None
                self._faces = (split.images.numpy(), split.labels.numpy())
                if self.shipped is not None and not np.array_equal(self.shipped.true, self._faces[1]):
                    self.shipped = None
            return self._faces

    def serves_shipped(self, mode: str = NO_TTA_MODE) -> bool:
        """Whether the faces' `mode` predictions are read from the checkpoint's predictions file (once the
        faces are loaded; before, whether they will be if the faces match)."""
        return self.shipped is not None and MODES.get(mode) in self.shipped.by_key

    def predictions(self, mode: str = NO_TTA_MODE, progress=None) -> Predictions:
        """The test faces' predictions as the report's `mode` made them (TTA: the evaluator's views): read
        from the shipped file, or predicted here, once per mode."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        images, _ = self.faces(progress)
        with self._lock:
            if mode not in self._predictions:
                self._predictions[mode] = self.shipped.by_key[MODES[mode]] if self.serves_shipped(mode) \
                    else self._predict(images, mode, progress)
            return self._predictions[mode]

    def _predict(self, images: np.ndarray, mode: str, progress=None) -> Predictions:
        probs = np.zeros((len(images), len(self.predictor.labels)), np.float32)
        step = 512  # faces per classify() call, one batch each (see predict_probs): coarse progress steps
        for start in range(0, len(images), step):
            if progress:
                done = 0.1 + 0.9 * start / max(len(images), 1)
                progress(done, f"predicting test faces {start}/{len(images)} ({mode})")
            probs[start:start + step] = self.predictor.classify(images[start:start + step], TTA_OF[mode])
        return Predictions(probs.argmax(1), probs)

    def cell(self, true: str, predicted: str, max_faces: int = 12, mode: str = NO_TTA_MODE, progress=None) -> dict:
        """The `/confusion` answer: test faces of true class `true` that the model predicts as `predicted`."""
        labels = self.predictor.labels
        for name in (true, predicted):
            if name not in labels:
                raise ValueError(f"unknown class {name!r}; choose one of {', '.join(labels)}")
        t, p = labels.index(true), labels.index(predicted)
        _, y = self.faces(progress)
        predictions = self.predictions(mode, progress)
        pred, probs = predictions.classes, predictions.probs
        index = np.nonzero((y == t) & (pred == p))[0]
        order = index[np.argsort(-probs[index, p], kind="stable")]  # most confident first
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
