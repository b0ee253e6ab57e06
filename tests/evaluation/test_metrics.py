"""Tests of art_sgt.evaluation.metrics: Gini and entropy by hand, infidelity and sensitivity properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from art_sgt.evaluation import attribute, complexity, infidelity, sensitivity, sparseness
from tests.evaluation.conftest import linear_classifier, linear_model, quadrant_task, tiny_cnn


def test_gini_by_hand():
    maps = np.array([[0.0, 0.0, 0.0, 4.0], [1.0, 1.0, 1.0, 1.0], [1.0, -2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    # [1, 2, 3, 4] / 4: sum 2.5, weights 2i - 5 = -3, -1, 1, 3 -> 2.5 / (4 * 2.5) = 0.25 (signs ignored).
    np.testing.assert_allclose(sparseness(maps), [0.75, 0.0, 0.25, 0.0], atol=1e-6)


def _quantus_gini(a: np.ndarray) -> np.ndarray:
    """Quantus 0.6 ``Sparseness`` on absolute maps normalised by their maximum, written out."""
    a = np.abs(a.reshape(len(a), -1)).astype(np.float64)
    a = a / a.max(axis=1, keepdims=True) + 1e-7
    a = np.sort(a, axis=1)
    d = a.shape[1]
    return ((2 * np.arange(1, d + 1) - d - 1) * a).sum(axis=1) / (d * a.sum(axis=1))


def test_gini_and_entropy_match_reference_formulas_on_random_maps():
    a = np.random.default_rng(0).standard_normal((5, 1, 6, 6)) ** 3
    np.testing.assert_allclose(sparseness(a), _quantus_gini(a), rtol=1e-12)
    p = np.abs(a.reshape(5, -1))
    np.testing.assert_allclose(complexity(a), scipy.stats.entropy(p, axis=1), rtol=1e-10)
    t = torch.from_numpy(a)
    assert isinstance(sparseness(t), torch.Tensor)
    np.testing.assert_allclose(sparseness(t).numpy(), sparseness(a), rtol=1e-12)


def test_entropy_by_hand():
    maps = np.array([[0.0, 0.0, 0.0, 4.0], [1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 2.0, 0.0]])
    np.testing.assert_allclose(complexity(maps), [0.0, math.log(4), 1.5 * math.log(2)], atol=1e-12)
    assert math.isnan(complexity(np.zeros((1, 4)))[0])


def test_sparseness_complexity_leave_inputs_alone():
    maps = torch.from_numpy(np.random.default_rng(1).standard_normal((3, 1, 4, 4)))  # float64: no dtype copy
    before = maps.clone()
    sparseness(maps), complexity(maps)
    assert torch.equal(maps, before)


def test_sparseness_complexity_bad_inputs():
    with pytest.raises(ValueError, match="maps must hold only finite values"):
        sparseness(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="maps must have at least 2 dimension"):
        complexity(np.array([1.0, 2.0]))


def test_infidelity_of_exact_gradient_of_linear_model_is_zero(ones_images):
    model, y = linear_model(), np.zeros(3, dtype=np.int64)
    x = ones_images * 0.5
    grad = attribute(model, x, y, "gradient")
    exact = infidelity(model, x, y, grad, n_perturb=8, seed=1)
    assert exact.shape == (3,) and np.all(exact < 1e-5)  # float32 rounding of logits near 27
    wrong = infidelity(model, x, y, np.random.default_rng(0).random(x.shape), n_perturb=8, seed=1)
    assert np.all(wrong > 1e-2)
    # normalize=True: the score does not depend on the scale of the map.
    np.testing.assert_allclose(infidelity(model, x, y, 5 * grad, n_perturb=8, seed=1), exact, atol=1e-5)


def test_infidelity_is_seeded_clipped_and_does_not_mutate():
    clf, (x, y) = linear_classifier(), (np.ones((4, 1, 2, 5), np.float32), np.zeros(4))
    maps = np.random.default_rng(0).random(x.shape).astype(np.float32)
    x_copy = x.copy()
    a = infidelity(clf, x, y, maps, seed=3, batch_size=8)
    b = infidelity(clf, x, y, maps, seed=3, batch_size=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, x_copy)
    with pytest.raises(ValueError, match="std must be a finite real number >= 0"):
        infidelity(clf, x, y, maps, std=-1.0)
    with pytest.raises(ValueError, match="maps must have the shape of x"):
        infidelity(clf, x, y, maps[:, :, :1])


def test_sensitivity_properties():
    model, y = linear_model(), np.zeros(3, dtype=np.int64)
    x = np.full((3, 1, 2, 5), 0.5, np.float32)
    # The gradient of a linear model does not change with the input: sensitivity exactly 0.
    np.testing.assert_array_equal(sensitivity(model, x, y, "gradient", radius=0.1), np.zeros(3))
    cnn, (xq, yq) = tiny_cnn(), quadrant_task(6)
    fresh = sensitivity(cnn, xq, yq, "saliency", radius=0.2, seed=2, batch_size=20)
    reused = sensitivity(cnn, xq, yq, "saliency", maps=attribute(cnn, xq, yq), radius=0.2, seed=2, batch_size=20)
    assert np.all(fresh > 0)
    np.testing.assert_allclose(fresh, reused, rtol=1e-6)
    assert np.all(sensitivity(cnn, xq, yq, "saliency", radius=0.0) == 0)
    with pytest.raises(ValueError, match="radius must be a finite real number >= 0"):
        sensitivity(cnn, xq, yq, radius=-0.1)
    with pytest.raises(ValueError, match="x and y must have the same length"):
        sensitivity(cnn, xq, yq[:2])


def test_per_feature_clip_values_bound_each_feature_of_fills_and_perturbations():
    """ART allows one range per feature: feature 0 lives in [0, 0.5], the others in [0, 1]."""
    from art.estimators.classification import PyTorchClassifier

    from art_sgt.evaluation import masking_curve

    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x):
            seen.append(x.detach().clone())
            return self.linear(x)

    high = np.array([0.5, 1.0, 1.0, 1.0], dtype=np.float32)
    classifier = PyTorchClassifier(
        Spy(),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(4,),
        nb_classes=2,
        clip_values=(np.zeros(4, np.float32), high),
    )
    x, y = np.full((3, 4), 0.25, np.float32), np.zeros(3, np.int64)
    maps = np.array([[5.0, 1.0, 1.0, 1.0]] * 3, np.float32)  # feature 0 is the most salient
    masking_curve(classifier, x, y, maps, fractions=[0.0, 0.25], orders=("morf",), fill=0.9)
    fed = torch.cat(seen)
    assert float(fed[:, 0].max()) == 0.5 and float(fed[:, 1:].max()) == 0.25  # 0.9 clipped to feature 0's bound
    seen.clear()
    infidelity(classifier, x, y, maps, std=1.0, n_perturb=20)
    fed = torch.cat(seen)
    assert float(fed[:, 0].max()) <= 0.5 and float(fed[:, 1:].max()) > 0.5  # each feature within its own range
