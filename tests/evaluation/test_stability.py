"""Tests of art_sgt.evaluation.stability: similarity measures, PGD stability, attack handling, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent, SquareAttack

from art_sgt.evaluation import (
    adversarial_stability,
    attribute,
    cosine_similarity,
    rank_correlation,
    similarities,
    top_k_intersection,
)
from tests.evaluation.conftest import linear_model


def test_rank_correlation_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (5, 12)).astype(np.float64)  # many ties
    b = rng.integers(0, 4, (5, 12)).astype(np.float64)
    ours = rank_correlation(torch.from_numpy(a), torch.from_numpy(b), absolute=False).numpy()
    np.testing.assert_allclose(ours, [scipy.stats.spearmanr(a[i], b[i])[0] for i in range(5)], rtol=1e-12)


def test_similarities_by_hand():
    a, b = torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[4.0, 1.0, 2.0, 3.0]])
    assert top_k_intersection(a, b, k=0.5).item() == 0.5  # {0, 1} vs {0, 3}
    assert top_k_intersection(a, -a, k=0.5).item() == 1.0  # absolute by default
    assert cosine_similarity(torch.tensor([[3.0, 4.0]]), torch.tensor([[4.0, 3.0]])).item() == pytest.approx(0.96)
    assert rank_correlation(a, torch.tensor([[1.0, 2.0, 3.0, 4.0]])).item() == pytest.approx(-1.0)
    const = torch.ones(1, 4)
    for fn in (rank_correlation, cosine_similarity, top_k_intersection):
        assert fn(a, a).item() == 1.0 and fn(const, const).item() == 1.0  # identical maps: exactly 1


def test_tied_zeros_never_count_as_shared_top_features():
    a, b = torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 5)
    a[0, 0, 0, 0], b[0, 0, 3, 4] = 5.0, 5.0  # one salient pixel each, in different places; k = 5 of 20
    assert top_k_intersection(a, b, k=0.25).item() == similarities(a, b, top_k=0.25)["top_k"].item() == 0.0
    b[0, 0, 0, 0] = 9.0  # b now holds a's pixel and one more: 1 shared of min(5, max(1, 2)) = 2
    assert top_k_intersection(a, b, k=0.25).item() == similarities(a, b, top_k=0.25)["top_k"].item() == 0.5
    dense = torch.arange(1.0, 21.0).reshape(1, 1, 4, 5)  # no zeros: the classic |top_k(a) & top_k(b)| / k
    shifted = torch.roll(dense, shifts=1, dims=-1)  # row 3 becomes 20, 16, 17, 18, 19: top 5 are still row 3
    assert top_k_intersection(dense, shifted, k=0.25).item() == similarities(dense, shifted, 0.25)["top_k"] == 1.0
    rows_swapped = torch.cat([dense[..., 2:, :], dense[..., :2, :]], dim=-2)  # its top 5 sit in row 1
    assert top_k_intersection(dense, rows_swapped, k=0.25).item() == 0.0


def test_stability_at_eps_zero_is_exactly_one_and_decreases(trained):
    clf, (x, y) = trained
    x_copy = x.copy()
    result = adversarial_stability(clf, x, y, "saliency", eps=(0.0, 0.05, 0.3), max_iter=5)
    assert result.eps == [0.0, 0.05, 0.3] and result.n_samples == len(x)
    assert result.spearman[0] == result.top_k[0] == result.cosine[0] == 1.0
    assert result.accuracy[0] > 0.9  # the tiny CNN learned the task
    assert result.accuracy[2] < result.accuracy[0]
    assert result.spearman[2] < 1.0 and result.top_k[2] < 1.0
    assert result.attack == "ProjectedGradientDescent" and result.method == "saliency"
    np.testing.assert_array_equal(x, x_copy)
    assert set(result.to_dict()) >= {"eps", "accuracy", "spearman", "top_k", "cosine"}


def test_given_attack_generate_path_equals_fast_path(trained):
    clf, (x, y) = trained
    default = adversarial_stability(clf, x, y, eps=(0.1,), max_iter=4)
    # decay=0.0 takes ART's own generate() (momentum); with L-inf steps it crafts the same examples.
    attack = ProjectedGradientDescent(clf, eps=0.3, eps_step=0.3 * 2.5 / 4, max_iter=4, decay=0.0, verbose=False)
    given = adversarial_stability(clf, x, y, eps=(0.1,), attack=attack)
    assert attack.eps == attack._attack.eps == 0.3  # the object passed is set back, inner attack included
    assert attack.eps_step == attack._attack.eps_step == 0.3 * 2.5 / 4
    assert given.accuracy == default.accuracy
    np.testing.assert_allclose(given.spearman, default.spearman, rtol=1e-6)
    factory = adversarial_stability(clf, x, y, eps=(0.1,), attack=lambda e: FastGradientMethod(clf, eps=e))
    assert factory.attack == "FastGradientMethod" and 0 <= factory.accuracy[0] <= 1
    clf.model.train()  # ART's Square predicts in eval mode and leaves it so; the evaluator gives the mode back
    square = adversarial_stability(
        clf, x[:4], y[:4], eps=(0.1,), attack=lambda e: SquareAttack(clf, eps=e, max_iter=2, verbose=False)
    )
    assert square.attack == "SquareAttack" and clf.model.training
    clf.model.eval()


def test_maps_are_reused_and_bad_inputs(trained):
    clf, (x, y) = trained
    maps = attribute(clf, x, y, "saliency")
    reused = adversarial_stability(clf, x, y, maps=maps, eps=(0.1,), max_iter=3)
    fresh = adversarial_stability(clf, x, y, eps=(0.1,), max_iter=3)
    assert reused == fresh
    with pytest.raises(ValueError, match="eps must be a finite real number >= 0"):
        adversarial_stability(clf, x, y, eps=(0.1, -0.1))
    with pytest.raises(TypeError, match="classifier must be an art"):
        adversarial_stability(linear_model(), x, y)
    with pytest.raises(ValueError, match="x and y must have the same length"):
        adversarial_stability(clf, x, y[:3])
    with pytest.raises(ValueError, match="maps must have the shape of x"):
        adversarial_stability(clf, x, y, maps=maps[:3])
    with pytest.raises(TypeError, match="attack must be None"):
        adversarial_stability(clf, x, y, attack="pgd")
