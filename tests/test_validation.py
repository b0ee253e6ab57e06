"""The shared argument checks: known answers and the messages that name the parameter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from art_sgt._validation import check_clip_values, check_norm


@pytest.mark.parametrize(
    ("value", "expected"),
    [("inf", "inf"), ("np.inf", "inf"), (math.inf, "inf"), (np.inf, "inf"), (2, "2"), (2.0, "2"), ("2", "2")],
)
def test_norm_spellings_map_to_one_name(value, expected):
    assert check_norm("norm", value) == expected


@pytest.mark.parametrize("value", [1, "1", 3, True, None, "l2"])
def test_a_norm_outside_the_allowed_ones_is_refused_naming_the_parameter(value):
    with pytest.raises(ValueError, match=r"^attack.norm must be one of 'inf' \(or numpy.inf\), 2, got"):
        check_norm("attack.norm", value)


def test_the_l1_norm_is_accepted_where_allowed():
    assert check_norm("norm", 1, allowed=("inf", "2", "1")) == "1"


def test_clip_values_come_back_as_float_bounds_and_per_feature_arrays_are_kept():
    assert check_clip_values("clip_values", None) is None
    low, high = check_clip_values("clip_values", (0, 1))
    assert (low.item(), high.item()) == (0.0, 1.0)
    low, high = check_clip_values("clip_values", (np.zeros(3), np.ones(3)))
    assert low.shape == high.shape == (3,)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ((1.0, 0.0), ValueError),
        ((0.0, math.inf), ValueError),
        ((0.0,), TypeError),
        ("01", TypeError),
        ((np.zeros(2), np.array([1.0, 0.0])), ValueError),
        ((0.0, "a"), TypeError),
    ],
)
def test_bad_clip_values_are_refused_naming_the_parameter(value, error):
    with pytest.raises(error, match="^clip_values must be None or a"):
        check_clip_values("clip_values", value)


def test_a_scalar_range_refuses_arrays():
    with pytest.raises(TypeError, match="pair of finite real numbers"):
        check_clip_values("clip_values", (np.zeros(3), np.ones(3)), scalar=True)


def test_non_negative_int_accepts_zero_and_refuses_negatives_and_bools():
    from art_sgt._validation import check_non_negative_int

    assert check_non_negative_int("seed", 0) == 0 and check_non_negative_int("seed", np.int64(3)) == 3
    with pytest.raises(ValueError, match="^seed must be an integer >= 0, got -1"):
        check_non_negative_int("seed", -1)
    with pytest.raises(TypeError, match="^seed must be an integer >= 0, got True"):
        check_non_negative_int("seed", True)


def test_an_art_classifiers_own_clip_values_are_accepted_as_the_attacks_take_them():
    import torch
    from art.estimators.classification import PyTorchClassifier

    from art_sgt.attacks import pgd

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    classifier = PyTorchClassifier(
        model, torch.nn.CrossEntropyLoss(), input_shape=(4,), nb_classes=2, clip_values=(0.0, 1.0)
    )
    assert isinstance(classifier.clip_values, np.ndarray)
    low, high = check_clip_values("clip_values", classifier.clip_values)
    assert (low.item(), high.item()) == (0.0, 1.0)
    x = torch.rand(3, 4)
    x_adv = pgd(model, x, torch.tensor([0, 1, 0]), 0.1, 0.05, 2, clip_values=classifier.clip_values)
    assert float((x_adv - x).abs().max()) <= 0.1 + 1e-6 and float(x_adv.min()) >= 0.0


def test_clip_bounds_of_shapes_that_cannot_broadcast_are_refused_with_the_named_message():
    with pytest.raises(TypeError, match="^clip_values must be None or a"):
        check_clip_values("clip_values", (np.zeros(2), np.ones(3)))
