"""Calibrated probabilities: the fit, the shipped temperatures and reports, and the same calibrated probabilities
from every path the model speaks through (PyTorch, the int8 copy, /predict and /explain over HTTP; the static
page's, to 1e-3 of the app's, in test_web_page.py::test_fer2013_faces_get_the_python_label)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import BACKENDS, reliability_name, report_name
from fer_demo.core.calibration import TEMPERATURE_KEYS, calibrate, fit_temperature, temperature_for
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import EXAMPLES_DIR
from fer_demo.serving.predictor import Predictor
from fer_demo.core.transforms import TTA, to_model_input

from .support.predictions import uncalibrated

SHIPPED = ckpt.SHIPPED_CHECKPOINT
# The shipped test reports' ECE, held where the validation-fitted temperatures put them (MODEL_CARD.md,
# Calibration): with the app's 10 views under 0.035; one view 0.0351 (PyTorch) and 0.0312 (int8), short of
# the 0.03 asked for in issue #26 (the temperature was not tuned to the test split to reach it)
ECE_BAR = {"no_tta": 0.036, "tta": 0.035}
# int8 against PyTorch, one probability: group_collage.jpg's face 3 moves most, 0.062 raw and 0.077 at the
# temperature (1/T stretches log-probabilities); tests/test_backends.py holds the mean gap under 0.02
INT8_TOL = 0.1


def _probs(face: dict) -> np.ndarray:
    return np.array([face["probabilities"][n] for n in FER_LABELS])


def test_the_fit_recovers_a_known_temperature():
    gen = torch.Generator().manual_seed(0)
    logits = 2.5 * torch.randn(20000, 7, generator=gen)
    labels = torch.multinomial((logits / 0.7).softmax(-1), 1, generator=gen).squeeze(1)  # drawn at T = 0.7
    assert fit_temperature(logits.log_softmax(-1), labels) == pytest.approx(0.7, abs=0.03)
    labels = torch.multinomial((logits / 1.6).softmax(-1), 1, generator=gen).squeeze(1)
    assert fit_temperature(logits.log_softmax(-1), labels) == pytest.approx(1.6, abs=0.08)


def test_a_temperature_keeps_the_class_and_one_is_the_identity():
    log_probs = torch.randn(500, 7).log_softmax(-1)
    for t in (0.5, 0.8, 1.7):
        p = calibrate(log_probs, t)
        assert torch.equal(p.argmax(1), log_probs.argmax(1))
        torch.testing.assert_close(p.sum(1), torch.ones(500))
    torch.testing.assert_close(calibrate(log_probs, 1.0), log_probs.exp())
    sharper = calibrate(log_probs, 0.8).max(1).values
    assert (sharper >= log_probs.exp().max(1).values - 1e-6).all()  # T < 1 raises the top probability


def test_every_view_set_has_a_temperature_and_a_config_without_one_is_raw():
    assert set(TEMPERATURE_KEYS) == set(TTA)
    assert all(temperature_for({}, tta) == 1.0 for tta in TTA)
    assert temperature_for({"temperature_tta": 0.7}, True) == 0.7  # the evaluator's switch names the 10 views


def test_the_shipped_temperatures_were_fitted_on_validation():
    config = ckpt.read_config(SHIPPED)
    assert config["calibration"]["split"] == "validation" and config["calibration"]["n"] is None  # all faces
    for key in TEMPERATURE_KEYS.values():
        fit = config["calibration"]["fits"][key]
        assert config[key] == fit["temperature"] and 0.5 < config[key] < 1  # label smoothing: underconfident
        assert fit["nll_after"] < fit["nll_before"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_shipped_test_reports_are_calibrated(backend):
    report = json.loads((SHIPPED / report_name("test", backend)).read_text())
    config = ckpt.read_config(SHIPPED)
    for mode, bar in ECE_BAR.items():
        m = report[mode]
        assert m["temperature"] == temperature_for(config, mode == "tta")
        assert m["ece"] <= bar < m["uncalibrated"]["ece"], mode
        assert m["nll"] < m["uncalibrated"]["nll"], mode
        assert sum(b["n"] for b in m["reliability"]) == m["n"] == report["n"]
    assert (SHIPPED / reliability_name("test", backend)).is_file()


@pytest.fixture(scope="module")
def torch_predictor():
    return Predictor(backend="torch")


@pytest.mark.parametrize("tta", list(TTA))
def test_serving_divides_by_the_temperature(torch_predictor, fer_test_split, tta):
    """The served probabilities are softmax(log(mean of the views' softmax) / T), computed here from the bare
    model's logits, and differ from the raw ones."""
    faces = fer_test_split.images[:24]
    model, config = torch_predictor.model, torch_predictor.config
    with torch.inference_mode():
        x = to_model_input(faces, config["input_size"], config["mean"], config["std"])
        views = torch.stack([model(v).float().softmax(-1) for v in TTA[tta].make(x)])
    raw = views.mean(0)
    t = config[TEMPERATURE_KEYS[tta]]
    expected = (raw.log() / t).softmax(-1).numpy()
    served = torch_predictor.classify(faces.numpy(), tta)
    np.testing.assert_allclose(served, expected, atol=2e-2)  # bf16 autocast on AVX-512 CPUs; fp32 elsewhere
    assert np.array_equal(served.argmax(1), raw.argmax(1).numpy())
    assert np.abs(served.max(1) - raw.numpy().max(1)).mean() > 0.03  # the temperature is there to see


def test_predict_and_explain_serve_calibrated_probabilities(app_server, predictor, torch_predictor):
    """/predict (TTA on and off) and /explain over HTTP give the in-process int8 Predictor's probabilities, and
    the PyTorch Predictor's within the int8 tolerance; the uncalibrated ones lie farther away."""
    from gradio_client import Client, handle_file

    client = Client(app_server, verbose=False)
    photo = EXAMPLES_DIR / "photos" / "group_collage.jpg"
    for tta in (False, True):
        served = client.predict(handle_file(str(photo)), False, tta, api_name="/predict")
        name = predictor.tta if tta else "none"
        local, fp = predictor.predict(str(photo), tta=name), torch_predictor.predict(str(photo), tta=name)
        got, want, want_fp = (np.stack([_probs(f) for f in out["faces"]]) for out in (served, local, fp))
        np.testing.assert_allclose(got, want, atol=1e-3)
        np.testing.assert_allclose(got, want_fp, atol=INT8_TOL)
        raw = uncalibrated(want, predictor.config[TEMPERATURE_KEYS[name]])
        assert np.abs(got.max(1) - raw.max(1)).mean() > 0.03
    face = EXAMPLES_DIR / "fer2013" / "happy_test2340.png"
    explained = client.predict(handle_file(str(face)), "GradCAM", "layer4", "predicted", False, api_name="/explain")
    local = predictor.predict(str(face), tta="none")["faces"][0]
    np.testing.assert_allclose(_probs(explained), _probs(local), atol=1e-3)


def test_calibrate_then_evaluate_a_checkpoint(tmp_path, fer2013):
    """`train.calibrate` records validation-fitted temperatures in a checkpoint's config.json, and the evaluator's
    report then carries them, with the raw calibration beside the calibrated one and the same accuracy."""
    import shutil

    from train import calibrate, evaluate

    folder = tmp_path / "model"
    folder.mkdir()
    for name in (ckpt.MODEL_FILE, ckpt.CONFIG_FILE):
        shutil.copy2(SHIPPED / name, folder / name)
    config = ckpt.read_config(folder)
    for key in TEMPERATURE_KEYS.values():
        config.pop(key, None)
    ckpt.write_config(folder, config)
    assert calibrate.main([str(folder), "--dataset", str(fer2013), "--limit", "96"]) == 0
    config = ckpt.read_config(folder)
    assert config["calibration"]["split"] == "validation" and config["calibration"]["n"] == 96
    assert all(0.3 < config[key] < 3 for key in TEMPERATURE_KEYS.values())
    out = tmp_path / "eval"
    assert evaluate.main(["--checkpoint", str(folder), "--dataset", str(fer2013), "--split", "validation",
                          "--limit", "48", "--tta", "--out", str(out)]) == 0
    report = json.loads((out / report_name("validation", "torch")).read_text())
    for mode in ("no_tta", "tta"):
        m = report[mode]
        assert m["temperature"] == temperature_for(config, mode == "tta")
        assert set(m["uncalibrated"]) == {"ece", "nll", "reliability"} and m["uncalibrated"]["nll"] != m["nll"]
    assert (out / reliability_name("validation", "torch")).is_file()
