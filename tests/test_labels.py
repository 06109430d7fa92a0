import pytest

from fer_demo.labels import FER_LABELS, LabelError, canonical_label, fer_index_map


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
