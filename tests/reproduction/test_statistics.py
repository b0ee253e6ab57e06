"""Known answers of the reproduction's statistics (each computable by hand)."""

from __future__ import annotations

import math

import pytest

from art_sgt.reproduction.statistics import (
    Interval,
    claim_standing,
    difference_interval,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    paired_t_test,
    seed_summary,
    sign_flip_test,
    verdict,
)


@pytest.mark.parametrize(
    ("a", "b", "a_only", "b_only", "p"),
    [
        ([1, 1, 1, 0], [0, 0, 1, 0], 2, 0, 0.5),  # 2 discordant, both for a: P = 2 * (1/2)^2
        ([1] * 10 + [0], [0] * 10 + [0], 10, 0, 2 * 0.5**10),
        ([1, 0, 1], [0, 1, 1], 1, 1, 1.0),  # balanced discordance
        ([1, 0], [1, 0], 0, 0, 1.0),  # no discordant pair
    ],
)
def test_mcnemar_exact_known_answers(a, b, a_only, b_only, p):
    result = mcnemar_exact(a, b)
    assert (result.a_only, result.b_only, result.n) == (a_only, b_only, len(a))
    assert result.p_value == pytest.approx(p, rel=1e-12)
    assert result.difference == pytest.approx((a_only - b_only) / len(a))


def test_paired_bootstrap_known_answers():
    # differences (1, 0): resampled means are 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4 -> 95% interval [0, 1]
    wide = paired_bootstrap([1, 1], [0, 1], seed=0)
    assert (wide.estimate, wide.low, wide.high, wide.n) == (0.5, 0.0, 1.0, 2)
    # every pair differs by the same amount: no spread, the interval is the point
    point = paired_bootstrap([1, 1, 1], [0, 0, 0])
    assert (point.estimate, point.low, point.high) == (1.0, 1.0, 1.0)
    assert not point.includes_zero and wide.includes_zero


def test_seed_summary_and_t_interval_known_answers():
    s = seed_summary([0.5, 0.7, 0.9])
    assert s["mean"] == pytest.approx(0.7) and s["std"] == pytest.approx(0.2) and s["n"] == 3
    assert math.isnan(seed_summary([0.4])["std"])
    # d = (1, 2, 3): mean 2, sd 1, t(0.975, 2) = 4.302652729911275 -> 2 -/+ 4.3026527 / sqrt(3)
    interval = difference_interval([3.0, 4.0, 5.0], [2.0, 2.0, 2.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert (interval.estimate, interval.n) == (2.0, 3)
    assert interval.low == pytest.approx(2 - half, rel=1e-9) and interval.high == pytest.approx(2 + half, rel=1e-9)
    one = difference_interval([0.9], [0.5])
    assert one.estimate == pytest.approx(0.4) and math.isnan(one.low) and math.isnan(one.high)


def test_t_interval_is_undefined_when_every_seed_gives_the_same_difference():
    # 1/1000 apart on every seed, equal only to float rounding (spread 3.5e-18): scipy's t interval would be the point
    # 0.001 and the verdict would call it; the seeds have not measured any spread, so there is no interval.
    a, b = [0.013, 0.022, 0.034], [0.012, 0.021, 0.033]
    flat = difference_interval(a, b)
    assert flat.estimate == pytest.approx(0.001) and math.isnan(flat.low) and math.isnan(flat.high)
    assert "every seed gives the same difference" in flat.method
    assert verdict(flat, "A", "B", "acc").endswith("inconclusive at this budget.")
    assert math.isnan(difference_interval([0.6, 0.7], [0.6, 0.7]).low)  # exactly equal (zero) differences too
    # a spread of one image in 1000 between seeds is a spread: the interval is defined and includes the estimate
    spread = difference_interval([0.013, 0.023, 0.034], [0.012, 0.021, 0.033])
    assert spread.low < spread.estimate < spread.high and spread.method == "paired t interval over seeds"


def test_verdict_wording():
    zero = Interval(0.05, -0.01, 0.11, 0.95, 3, "t")
    assert verdict(zero, "A", "B", "acc").endswith("inconclusive at this budget.")
    assert "[-1.0, +11.0]" in verdict(zero, "A", "B", "acc")
    assert verdict(Interval(0.05, 0.01, 0.09, 0.95, 3, "t"), "A", "B", "acc").endswith("A is higher.")
    assert verdict(Interval(-0.05, -0.09, -0.01, 0.95, 3, "t"), "A", "B", "acc").endswith("A is lower.")
    nan = Interval(0.4, math.nan, math.nan, 0.95, 1, "t")
    assert "no interval" in verdict(nan, "A", "B", "acc") and "inconclusive" in verdict(nan, "A", "B", "acc")
    assert verdict(Interval(0.05, 0.01, 0.09, 0.95, 3, "t"), "A", "B", "acc", claims=False).endswith("no claim.")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mcnemar_exact([1, 0], [1]), "same length"),
        (lambda: mcnemar_exact([2, 0], [1, 0]), "correct_a must be"),
        (lambda: paired_bootstrap([], []), "correct_a must be"),
        (lambda: difference_interval([1.0, 2.0], [1.0]), "same length"),
        (lambda: seed_summary([]), "values must be"),
        (lambda: claim_standing(Interval(0.1, 0.0, 0.2, 0.95, 3, "t"), 0), "claimed must be a positive gain"),
    ],
)
def test_bad_inputs_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_one_seed_verdict_needs_the_exact_test_too():
    # 4 images only A gets right, none only B: the bootstrap interval excludes zero, exact McNemar p = 0.125
    a, b = [1] * 4 + [1] * 996, [0] * 4 + [1] * 996
    boot, test = paired_bootstrap(a, b), mcnemar_exact(a, b)
    assert boot.low > 0 and test.p_value == pytest.approx(0.125)
    assert verdict(boot, "A", "B", "acc", p_value=test.p_value).endswith("inconclusive at this budget.")
    assert verdict(boot, "A", "B", "acc").endswith("A is higher.")  # the interval alone would call it
    a, b = [1] * 12 + [1] * 988, [0] * 12 + [1] * 988  # 12 / 0: p = 2 / 2**12
    boot, test = paired_bootstrap(a, b), mcnemar_exact(a, b)
    assert test.p_value == pytest.approx(2 / 2**12)
    assert verdict(boot, "A", "B", "acc", p_value=test.p_value).endswith("A is higher.")
    assert "exact McNemar p = 0.000488" in verdict(boot, "A", "B", "acc", p_value=test.p_value)


@pytest.mark.parametrize(
    ("low", "high", "p_value", "standing"),
    [
        (0.30, 0.40, None, "a gain, consistent with the claimed +35"),  # 35 inside [30, 40]
        (0.35, 0.40, None, "a gain, consistent with the claimed +35"),  # an end of the interval still holds it
        (0.36, 0.40, None, "a gain, larger than the claimed +35"),
        (0.01, 0.34, None, "a gain, smaller than the claimed +35"),
        (-0.20, 0.50, None, "inconclusive at this budget (the interval holds both zero and the claimed +35)"),
        (-0.20, 0.20, None, "inconclusive at this budget, but the claimed +35 lies above the interval: not reproduced"),
        (0.01, 0.20, 0.2, "inconclusive at this budget, but the claimed +35 lies above the interval: not reproduced"),
        (0.30, 0.40, 0.2, "inconclusive at this budget (the exact test does not reject at 0.05: p = 0.2)"),
        (-0.10, -0.01, None, "a loss: the claimed +35 does not hold"),
        (math.nan, math.nan, None, "no interval: inconclusive at this budget"),
    ],
)
def test_claim_standing_known_answers(low, high, p_value, standing):
    interval = Interval((low + high) / 2, low, high, 0.95, 3, "t")
    assert claim_standing(interval, 35, p_value=p_value) == standing


def test_claim_standing_scale_and_units():
    # a claim of 20 in the estimate's own units (scale 1): 0.5 +/- 0.1 is far below it
    assert claim_standing(Interval(0.5, 0.4, 0.6, 0.95, 3, "t"), 20, scale=1.0).startswith("a gain, smaller")
    assert claim_standing(Interval(25.0, 21.0, 29.0, 0.95, 3, "t"), 20, scale=1.0) == (
        "a gain, larger than the claimed +20"
    )


@pytest.mark.parametrize(
    ("differences", "margin", "alternative", "p"),
    [
        ([1.0, 2.0, 3.0], 0.0, "greater", 1 / 8),  # only the observed signs reach mean 2
        ([1.0, 2.0, 3.0], 0.0, "two-sided", 2 / 8),  # and their mirror image
        ([1.0, 2.0, 3.0], 0.0, "less", 1.0),
        ([1.0, -2.0, 3.0], 0.0, "greater", 3 / 8),  # means (+-1 +-2 +-3)/3 >= 2/3: (1,-2,3) (-1,2,3) (1,2,3)
        ([0.5, 1.5], 1.0, "greater", 3 / 4),  # shifted: (-0.5, 0.5), mean 0, reached by 3 of 4 (ties count)
        ([0.0, 0.0], 0.0, "two-sided", 1.0),
    ],
)
def test_sign_flip_test_known_answers(differences, margin, alternative, p):
    assert sign_flip_test(differences, margin, alternative) == pytest.approx(p)


def test_sign_flip_test_floor_with_five_seeds():
    # five seeds: the smallest two-sided p is 2/32, so no difference can be called at 0.05 by this test alone
    assert sign_flip_test([5, 4, 3, 2, 1]) == pytest.approx(2 / 32)
    assert sign_flip_test([5, 4, 3, 2, 1], alternative="greater") == pytest.approx(1 / 32)


def test_paired_t_test_known_answer():
    # d = (1, 2, 3): mean 2, sd 1, se 1/sqrt(3), t = 2 sqrt(3) on 2 degrees of freedom;
    # the t(2) survival function is (1 - t / sqrt(t**2 + 2)) / 2
    t = 2 * math.sqrt(3)
    one_sided = (1 - t / math.sqrt(t**2 + 2)) / 2
    assert paired_t_test([1, 2, 3], alternative="greater") == pytest.approx(one_sided, rel=1e-9)
    assert paired_t_test([1, 2, 3]) == pytest.approx(2 * one_sided, rel=1e-9)
    # against a margin of 1: d - 1 = (0, 1, 2), t = sqrt(3)
    t = math.sqrt(3)
    assert paired_t_test([1, 2, 3], margin=1, alternative="greater") == pytest.approx(
        (1 - t / math.sqrt(t**2 + 2)) / 2, rel=1e-9
    )
    assert math.isnan(paired_t_test([0.5]))
    assert math.isnan(paired_t_test([0.2, 0.2, 0.2]))  # no spread: undefined, not zero


def test_holm_known_answers():
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert holm([0.5, 0.2]) == [0.5, 0.4]
    assert holm([0.04, 0.03]) == [0.06, 0.06]  # monotone in the order of the raw p-values
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1
    adjusted = holm([0.02, math.nan, 0.01])
    assert adjusted[0] == 0.02 and adjusted[2] == 0.02 and math.isnan(adjusted[1])  # NaN does not count in m
    assert holm([]) == []


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sign_flip_test([]), "differences"),
        (lambda: sign_flip_test([1.0, math.nan]), "differences"),
        (lambda: sign_flip_test([1.0] * 21), "at most 20"),
        (lambda: sign_flip_test([1.0], alternative="bigger"), "alternative"),
        (lambda: paired_t_test([[1.0, 2.0]]), "differences"),
        (lambda: holm([1.5]), "p_values"),
    ],
)
def test_seed_tests_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
