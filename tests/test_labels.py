import pytest

import numpy as np

from fer_demo.core.labels import (FER_LABELS, PROB_DIGITS, LabelError, canonical_label, fer_index_map, label_probs,
                                  rounded_label_probs)


def test_fer_order_maps_to_itself():
    assert fer_index_map(FER_LABELS) == list(range(7))


def test_alphabetical_order_maps_by_name():
    names = sorted(FER_LABELS)  # angry disgust fear happy neutral sad surprise
    assert fer_index_map(names) == [0, 1, 2, 3, 6, 4, 5]


def test_capitalised_names_and_synonyms():
    names = ["Anger", "DISGUST", "Fearful", "Happiness", "Neutral", "Sadness", "Surprised"]
    assert fer_index_map(names) == [0, 1, 2, 3, 6, 4, 5]
    assert canonical_label(" happiness ") == "happy"


def test_unknown_name_is_an_error():
    with pytest.raises(LabelError, match="contempt"):
        fer_index_map(["angry", "disgust", "fear", "happy", "sad", "surprise", "contempt"])


def test_missing_class_is_an_error():
    with pytest.raises(LabelError, match="missing class.*disgust"):
        fer_index_map(["angry", "fear", "happy", "sad", "surprise", "neutral"])


def test_two_names_for_one_class_is_an_error():
    with pytest.raises(LabelError, match="both mean 'happy'"):
        fer_index_map(["angry", "disgust", "fear", "happy", "joy", "sad", "surprise", "neutral"])


def test_numeric_names_are_refused():
    with pytest.raises(LabelError, match="number"):
        canonical_label("3")


def test_rounded_label_probs_round_each_probability_of_label_probs():
    probs = np.array([0.1234567, 0.0000004, 0.5, 0.2765429, 0.05, 0.03, 0.02], np.float32)
    rounded = rounded_label_probs(probs)
    assert list(rounded) == list(FER_LABELS) and PROB_DIGITS == 6
    assert rounded == {k: round(v, 6) for k, v in label_probs(probs).items()}
    assert rounded["angry"] == 0.123457 and rounded["disgust"] == 0.0 and type(rounded["happy"]) is float
    assert rounded_label_probs(probs, FER_LABELS, 4)["happy"] == round(float(probs[3]), 4) == 0.2765
