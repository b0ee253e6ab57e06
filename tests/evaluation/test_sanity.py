"""Tests of art_sgt.evaluation.sanity: cascading randomisation on a copy, random-logit test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from art_sgt.evaluation import cascading_randomization, parameter_layers, random_logit, rank_correlation
from tests.evaluation.conftest import W0, linear_classifier, linear_model


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_randomization_works_on_a_copy_and_reports_layers_top_down(trained):
    clf, (x, y) = trained
    before, params = _snapshot(clf.model), [id(p) for p in clf.model.parameters()]
    clf.model.train()
    result = cascading_randomization(clf, x, y, "saliency", n_examples=2)
    assert all(torch.equal(before[k], v) for k, v in clf.model.state_dict().items())
    assert [id(p) for p in clf.model.parameters()] == params and clf.model.training
    assert result.layers == ["3", "0"]  # the Linear, then the Conv2d
    assert len(result.spearman) == 2 and all(-1 <= s < 0.9 for s in result.spearman)
    assert set(result.examples) == {"original", "3", "0"} and result.examples["0"].shape == (2, 1, 8, 8)
    again = cascading_randomization(clf, x, y, "saliency")
    assert again.spearman == result.spearman  # seeded
    assert "examples" not in result.to_dict()


def test_randomization_of_linear_model_gives_the_new_weights(ones_images):
    model = linear_model()
    result = cascading_randomization(model, ones_images, np.zeros(3), "gradient", absolute=False, n_examples=1)
    torch.manual_seed(0)
    fresh = torch.nn.Linear(10, 2)  # reset_parameters() seeded with seed + 0, as the test does
    expected = rank_correlation(torch.from_numpy(W0)[None], fresh.weight[:1].detach(), absolute=False).item()
    assert result.layers == ["1"]
    np.testing.assert_allclose(result.examples["1"].reshape(-1), fresh.weight[0].detach().numpy(), rtol=1e-6)
    assert result.spearman[0] == pytest.approx(expected)


def test_random_logit_by_hand(ones_images):
    # Two classes: the random other class is always the other one; its gradient is the zero weight row.
    clf = linear_classifier()
    with pytest.warns(RuntimeWarning, match="random logit: undefined"):
        result = random_logit(clf, ones_images, np.zeros(3), "gradient", absolute=False)
    assert result.n_samples == 3
    assert np.isnan(result.spearman) and np.isnan(result.cosine)  # a zero map: nothing to compare
    assert result.undefined["spearman"] == 3  # counted, not averaged
    with torch.no_grad():
        clf.model[1].weight[1] = torch.from_numpy(W0[::-1].copy())
    flipped = random_logit(clf, ones_images, np.zeros(3), "gradient", absolute=False)
    assert flipped.spearman == pytest.approx(-1.0) and flipped.top_k == 0.0


def test_bad_inputs(ones_images):
    with pytest.raises(ValueError, match="at least one layer with parameters"):
        cascading_randomization(torch.nn.Flatten(), ones_images, np.zeros(3), lambda m, x, t: x)
    with pytest.raises(ValueError, match="x and y must have the same length"):
        random_logit(linear_model(), ones_images, np.zeros(4))
    with pytest.raises(ValueError, match="top_k must be a real number"):
        random_logit(linear_model(), ones_images, np.zeros(3), top_k=0.0)
    assert [name for name, _ in parameter_layers(linear_model())] == ["1"]
