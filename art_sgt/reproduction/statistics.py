"""The statistics of the comparisons, as pure functions over per-sample outcomes and per-seed numbers.

- Paired on the same test images: :func:`mcnemar_exact` (exact binomial test on the discordant pairs, scipy's
  ``binomtest``) and :func:`paired_bootstrap` (percentile interval of the accuracy difference, scipy's
  ``bootstrap`` with ``paired=True``).
- Across training seeds: :func:`seed_summary` (mean and sample standard deviation) and
  :func:`difference_interval` (mean difference with the t interval of scipy's ``ttest_rel``, seeds paired).
- Tests over seeds, for the decisive study's family of comparisons: :func:`paired_t_test` (scipy's ``ttest_1samp``
  on the seeds' differences, optionally against a margin), :func:`sign_flip_test` (the exact permutation test of
  the same hypothesis, free of the t test's normality) and :func:`holm` (Holm's step-down adjustment of a family's
  p-values).
- :func:`verdict`: the sentence a difference and its interval support; an interval that includes zero is
  "inconclusive at this budget".
- :func:`claim_standing`: where a claimed gain stands against a measured difference and its interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "McNemar",
    "Interval",
    "mcnemar_exact",
    "paired_bootstrap",
    "seed_summary",
    "difference_interval",
    "paired_t_test",
    "sign_flip_test",
    "holm",
    "verdict",
    "claim_standing",
]


def _outcomes(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0 or not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must be a non-empty 1-D sequence of 0/1 or booleans, got {values!r:.60}.")
    return array.astype(bool)


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _outcomes("correct_a", a), _outcomes("correct_b", b)
    if len(a) != len(b):
        raise ValueError(f"correct_a and correct_b must have the same length, got {len(a)} and {len(b)}.")
    return a, b


@dataclass(frozen=True)
class McNemar:
    """An exact McNemar test of two classifiers on the same samples.

    :param n: Number of samples.
    :param a_only: Samples ``a`` gets right and ``b`` wrong.
    :param b_only: Samples ``b`` gets right and ``a`` wrong.
    :param difference: ``accuracy(a) - accuracy(b) = (a_only - b_only) / n``.
    :param p_value: Two-sided exact p-value (1 when no pair is discordant).
    """

    n: int
    a_only: int
    b_only: int
    difference: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """:return: The fields as a dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval.

    :param estimate: The point estimate.
    :param low: Lower end.
    :param high: Upper end.
    :param confidence: Confidence level.
    :param n: Number of observations it rests on.
    :param method: How the interval was computed.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    method: str

    @property
    def includes_zero(self) -> bool:
        """Whether the interval contains 0 (or is undefined)."""
        return not (self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, Any]:
        """:return: The fields as a dictionary (NaN ends become ``None``)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
    """Exact McNemar test: under equal accuracy the discordant pairs split as Binomial(a_only + b_only, 1/2).

    :param correct_a: Per-sample correctness of classifier ``a``.
    :param correct_b: Per-sample correctness of classifier ``b`` on the same samples.
    :return: The test.
    :raises ValueError: For sequences that are not 0/1, empty, or of different lengths.

    >>> mcnemar_exact([1, 1, 1, 0], [0, 0, 1, 0])
    McNemar(n=4, a_only=2, b_only=0, difference=0.5, p_value=0.5)
    """
    from scipy.stats import binomtest

    a, b = _pair(correct_a, correct_b)
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return McNemar(len(a), a_only, b_only, (a_only - b_only) / len(a), p)


def paired_bootstrap(
    correct_a: Sequence[bool],
    correct_b: Sequence[bool],
    n_resamples: int = 9999,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``accuracy(a) - accuracy(b)``, resampling samples (pairs kept together).

    :param correct_a: Per-sample correctness of ``a``.
    :param correct_b: Per-sample correctness of ``b`` on the same samples.
    :param n_resamples: Bootstrap resamples.
    :param confidence: Confidence level.
    :param seed: Seed of the resampling.
    :return: The difference and its interval.
    :raises ValueError: For sequences that are not 0/1, empty, or of different lengths.
    """
    from scipy.stats import bootstrap

    a, b = _pair(correct_a, correct_b)
    estimate = float(a.mean() - b.mean())
    if np.all(a.astype(int) - b.astype(int) == int(a[0]) - int(b[0])):  # no spread: scipy would warn on it
        return Interval(estimate, estimate, estimate, confidence, len(a), "paired bootstrap (percentile)")
    result = bootstrap(
        (a.astype(float), b.astype(float)),
        lambda u, v, axis: u.mean(axis) - v.mean(axis),
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return Interval(estimate, float(ci.low), float(ci.high), confidence, len(a), "paired bootstrap (percentile)")


_SAME = 1e-9  # relative spread below which the seeds' differences count as equal (float rounding of k/n - j/n)


def seed_summary(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (``ddof=1``; NaN for one value) across seeds.

    :param values: One number per seed.
    :return: ``{"mean", "std", "min", "max", "n"}``.
    :raises ValueError: For an empty sequence.

    >>> seed_summary([0.5, 0.7, 0.9])["std"]
    0.2
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence of numbers, got {values!r:.60}.")
    std = float(np.std(v, ddof=1)) if v.size > 1 else math.nan
    return {
        "mean": float(v.mean()),
        "std": round(std, 12),
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }


def difference_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of ``a - b`` over seeds (paired by seed) and its t interval (scipy's ``ttest_rel``).

    With one seed the interval is undefined (NaN ends): one seed cannot measure seed-to-seed spread. So it is when
    every seed gives the same difference (to rounding): a t interval would collapse to the point and call any
    difference, however small, although the spread it rests on was only too small to be seen (two accuracies on
    500 images move in steps of 0.002).

    :param a: One number per seed for model ``a``.
    :param b: The same seeds' numbers for model ``b``.
    :param confidence: Confidence level.
    :return: The mean difference and its interval.
    :raises ValueError: For empty sequences or sequences of different lengths.
    """
    from scipy.stats import ttest_rel

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.size == 0 or x.shape != y.shape:
        raise ValueError(f"a and b must be non-empty 1-D sequences of the same length, got {len(x)} and {len(y)}.")
    d = x - y
    estimate = float(d.mean())
    method = "paired t interval over seeds"
    if d.size < 2:
        low = high = math.nan
    elif np.ptp(d) <= _SAME * max(1.0, float(np.abs(d).max())):
        low = high = math.nan
        method += ", undefined: every seed gives the same difference"
    else:
        ci = ttest_rel(x, y).confidence_interval(confidence)
        low, high = float(ci.low), float(ci.high)
    return Interval(estimate, low, high, confidence, int(d.size), method)


_ALTERNATIVES = ("two-sided", "greater", "less")


def _differences(differences: Sequence[float], alternative: str) -> np.ndarray:
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size == 0 or not np.isfinite(d).all():
        raise ValueError(f"differences must be a non-empty 1-D sequence of finite numbers, got {differences!r:.60}.")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}.")
    return d


def paired_t_test(differences: Sequence[float], margin: float = 0.0, alternative: str = "two-sided") -> float:
    """The p-value of the one-sample t test of the seeds' paired differences against ``margin``.

    ``alternative="greater"`` with ``margin=-0.01`` is a non-inferiority test: its null hypothesis is that ``a`` is
    worse than ``b`` by at least one point. NaN with fewer than two seeds or with no spread.

    :param differences: Per seed, ``a - b``.
    :param margin: The difference of the null hypothesis.
    :param alternative: ``"two-sided"``, ``"greater"`` (the difference exceeds ``margin``) or ``"less"``.
    :return: The p-value.
    :raises ValueError: For an empty or non-finite sequence or an unknown ``alternative``.

    >>> round(paired_t_test([0.02, 0.03, 0.01, 0.04, 0.02], margin=-0.01, alternative="greater"), 5)
    0.00131
    """
    from scipy.stats import ttest_1samp

    d = _differences(differences, alternative)
    if d.size < 2 or np.ptp(d) <= _SAME * max(1.0, float(np.abs(d).max())):
        return math.nan
    return float(ttest_1samp(d, popmean=margin, alternative=alternative).pvalue)


def sign_flip_test(differences: Sequence[float], margin: float = 0.0, alternative: str = "two-sided") -> float:
    """The exact sign-flip (paired permutation) test of the seeds' differences against ``margin``.

    Under the null hypothesis each ``d - margin`` is as likely positive as negative, so every one of the ``2**n``
    sign assignments is equally likely; the p-value is the share of them whose mean is at least as extreme as the
    observed one (ties count). With ``n`` seeds it is never below ``2**-n`` one-sided, ``2**(1-n)`` two-sided: five
    seeds cannot reject at 0.05 two-sided, which the decisive study's report states.

    :param differences: Per seed, ``a - b`` (at most 20).
    :param margin: The difference of the null hypothesis.
    :param alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
    :return: The exact p-value.
    :raises ValueError: For an empty or non-finite sequence, more than 20 values or an unknown ``alternative``.

    >>> sign_flip_test([0.02, 0.03, 0.01, 0.04, 0.02], alternative="greater")  # 1 of 32 assignments
    0.03125
    >>> sign_flip_test([0.02, 0.03, 0.01, 0.04, 0.02])
    0.0625
    """
    d = _differences(differences, alternative) - margin
    if d.size > 20:
        raise ValueError(f"differences must hold at most 20 values for the exact test, got {d.size}.")
    signs = 1 - 2 * ((np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1)
    means = (signs * d).mean(axis=1)
    observed, tolerance = d.mean(), _SAME * max(1.0, float(np.abs(d).max()))
    if alternative == "greater":
        extreme = means >= observed - tolerance
    elif alternative == "less":
        extreme = means <= observed + tolerance
    else:
        extreme = np.abs(means) >= abs(observed) - tolerance
    return float(extreme.mean())


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family's p-values (controls the family-wise error rate).

    The ``k``-th smallest of ``m`` p-values is multiplied by ``m - k + 1``, made non-decreasing in that order and
    capped at 1. A NaN (a test that could not be run) stays NaN and does not count in ``m``.

    :param p_values: The family's p-values, in any order.
    :return: The adjusted p-values, in the same order.
    :raises ValueError: For a value outside [0, 1].

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or ((p < 0) | (p > 1)).any():
        raise ValueError(f"p_values must be a 1-D sequence of numbers in [0, 1] or NaN, got {p_values!r:.60}.")
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    adjusted = np.full(p.shape, math.nan)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * float(p[i])))
        adjusted[i] = running
    return [float(v) for v in adjusted]


def verdict(
    interval: Interval,
    a: str,
    b: str,
    what: str,
    scale: float = 100.0,
    unit: str = "points",
    claims: bool = True,
    p_value: float | None = None,
    alpha: float = 0.05,
    digits: int = 1,
) -> str:
    """One sentence stating what the difference ``a - b`` and its interval support.

    With ``p_value`` (e.g. the exact McNemar test on the same images, :func:`mcnemar_exact`), the difference is
    called only when the interval excludes zero and ``p_value < alpha`` both hold; the sentence names the test.

    :param interval: The difference and its interval (e.g. from :func:`difference_interval`).
    :param a: Name of the first model.
    :param b: Name of the second model.
    :param what: The quantity compared (e.g. ``"worst-case accuracy at eps 0.2"``).
    :param scale: Factor from the estimate's units to ``unit`` (100: fractions to percentage points).
    :param unit: Unit of the sentence (``""``: a number without unit).
    :param claims: ``False`` for a smoke test: the sentence states the numbers and says it makes no claim.
    :param p_value: A paired test's p-value that must also be below ``alpha``, or ``None``.
    :param alpha: Level of that test.
    :param digits: Decimals of the numbers.
    :return: The sentence, naming the interval (and test) it rests on.

    >>> verdict(Interval(0.05, -0.01, 0.11, 0.95, 3, "t"), "ASGT", "PGD-AT", "accuracy")
    'ASGT - PGD-AT, accuracy: +5.0 points, 95% interval [-1.0, +11.0] (t, n=3): inconclusive at this budget.'
    >>> verdict(Interval(-0.285, -0.31, -0.26, 0.95, 2, "t"), "A", "B", "MoRF gain", scale=1, unit="", digits=3)
    'A - B, MoRF gain: -0.285, 95% interval [-0.310, -0.260] (t, n=2): A is lower.'
    >>> text = verdict(Interval(0.004, 0.001, 0.008, 0.95, 1000, "bootstrap"), "A", "B", "accuracy", p_value=0.125)
    >>> text.split("), ")[-1]  # the interval excludes zero, the exact test does not reject
    'exact McNemar p = 0.125: inconclusive at this budget.'
    """
    e, lo, hi = (scale * v for v in (interval.estimate, interval.low, interval.high))
    head = f"{a} - {b}, {what}: {e:+.{digits}f}" + (f" {unit}" if unit else "")
    if math.isnan(lo) or math.isnan(hi):
        span = f"no interval ({interval.method}, n={interval.n})"
        return f"{head}, {span}: {'inconclusive at this budget' if claims else 'smoke test, no claim'}."
    span = (
        f"{interval.confidence:.0%} interval [{lo:+.{digits}f}, {hi:+.{digits}f}] ({interval.method}, n={interval.n})"
    )
    if p_value is not None:
        span += f", exact McNemar p = {p_value:.3g}"
    if not claims:
        return f"{head}, {span}: smoke test, no claim."
    if interval.includes_zero or (p_value is not None and not p_value < alpha):
        return f"{head}, {span}: inconclusive at this budget."
    return f"{head}, {span}: {a} is {'higher' if lo > 0 else 'lower'}."


def claim_standing(
    interval: Interval, claimed: float, scale: float = 100.0, p_value: float | None = None, alpha: float = 0.05
) -> str:
    """Where a claimed gain stands against a measured difference ``a - b`` and its interval.

    The difference is called as in :func:`verdict` (the interval excludes zero and, when given, ``p_value <
    alpha``). A gain is then set against the claim: consistent with it when the interval holds it, else larger or
    smaller. When the interval holds zero, the claim is still rejected if it lies above the interval; a loss
    rejects it outright.

    :param interval: The difference and its interval, in the estimate's units (e.g. accuracy fractions).
    :param claimed: The claimed gain in the sentence's units (e.g. 35 percentage points).
    :param scale: Factor from the estimate's units to the claim's (100: fractions to percentage points).
    :param p_value: A paired test's p-value that must also be below ``alpha`` for a difference to be called.
    :param alpha: Level of that test.
    :return: A phrase, e.g. ``"a gain, smaller than the claimed +35"``.

    >>> claim_standing(Interval(0.30, 0.25, 0.40, 0.95, 3, "t"), 35)
    'a gain, consistent with the claimed +35'
    >>> claim_standing(Interval(0.04, -0.10, 0.18, 0.95, 3, "t"), 35)
    'inconclusive at this budget, but the claimed +35 lies above the interval: not reproduced'
    >>> claim_standing(Interval(-0.069, -0.133, -0.005, 0.95, 2, "t"), 35)
    'a loss: the claimed +35 does not hold'
    """
    if not claimed > 0:
        raise ValueError(f"claimed must be a positive gain, got {claimed!r}.")
    lo, hi = scale * interval.low, scale * interval.high
    text = f"the claimed +{claimed:g}"
    if math.isnan(lo) or math.isnan(hi):
        return "no interval: inconclusive at this budget"
    if interval.includes_zero or (p_value is not None and not p_value < alpha):
        if hi < claimed:
            return f"inconclusive at this budget, but {text} lies above the interval: not reproduced"
        if interval.includes_zero:
            return f"inconclusive at this budget (the interval holds both zero and {text})"
        return f"inconclusive at this budget (the exact test does not reject at {alpha:g}: p = {p_value:.3g})"
    if hi < 0:
        return f"a loss: {text} does not hold"
    if lo > claimed:
        return f"a gain, larger than {text}"
    return f"a gain, {'smaller than' if hi < claimed else 'consistent with'} {text}"
