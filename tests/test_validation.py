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
    with pytest.raises(ValueError, match="^attack.norm must be one of 'inf' or numpy.inf, 2, got"):
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
