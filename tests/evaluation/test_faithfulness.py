"""Tests of art_sgt.evaluation.faithfulness: hand-computed MoRF / LeRF curves, ROAD imputation, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import torch

from art_sgt.evaluation import (
    FRACTIONS,
    area_under_curve,
    attribute,
    masking_curve,
    noisy_linear_imputation,
    ranking_scores,
    removal_ranks,
)
from art_sgt.masking import least_salient_mask
from tests.evaluation.conftest import THRESHOLD, linear_classifier, linear_model, quadrant_task, tiny_cnn

# Logit 0 of the linear model on ones after zeroing the k largest (MoRF) / k smallest (LeRF) of 10..1.
MORF_LOGIT = [(10 - k) * (11 - k) / 2 for k in range(10)]  # 55, 45, 36, 28, ...
LERF_LOGIT = [55 - k * (k + 1) / 2 for k in range(10)]  # 55, 54, 52, 49, ...


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + np.exp(-v))


@pytest.mark.parametrize("model_fn", [linear_model, linear_classifier])
def test_linear_model_gives_hand_computed_curves(model_fn, ones_images):
    model, y = model_fn(), np.zeros(3, dtype=np.int64)
    maps = attribute(model, ones_images, y, "gradient")  # = the weights
    curve = masking_curve(model, ones_images, y, maps, fill="zero")
    assert curve.fractions == list(FRACTIONS)
    assert curve.accuracy["morf"] == [1.0, 1.0, 1.0] + [0.0] * 7  # logit 0 > 30 until k = 3
    assert curve.accuracy["lerf"] == [1.0] * 7 + [0.0] * 3  # until k = 7
    np.testing.assert_allclose(curve.probability["morf"], [_sigmoid(v - THRESHOLD) for v in MORF_LOGIT], rtol=1e-5)
    np.testing.assert_allclose(curve.probability["lerf"], [_sigmoid(v - THRESHOLD) for v in LERF_LOGIT], rtol=1e-5)
    # Areas normalised by the span 0.9: MoRF 0.25 / 0.9, LeRF 0.65 / 0.9.
    assert curve.auc("morf") == pytest.approx(0.25 / 0.9)
    assert curve.auc("lerf") == pytest.approx(0.65 / 0.9)
    assert curve.summary()["gap_accuracy"] == pytest.approx(0.4 / 0.9)
    assert curve.n_samples == 3 and curve.fill == "zero"


def test_orders_match_least_salient_mask_and_random_is_seeded():
    maps = torch.tensor([[[[5.0, -9.0, 1.0], [0.5, 7.0, -2.0]]]])
    lerf = least_salient_mask(ranking_scores(maps, "lerf"), 0.5)
    assert torch.equal(lerf, least_salient_mask(maps, 0.5, absolute=True))
    morf = least_salient_mask(ranking_scores(maps, "morf"), 0.5)
    assert morf.flatten().tolist() == [True, True, False, False, True, False]  # |9|, |7|, |5| go first
    ties = torch.tensor([[1.0, 0.0, 1.0, 0.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]).reshape(2, 1, 1, 6)
    for f in (0.0, 0.2, 0.5, 0.7, 0.9):  # one sort gives least_salient_mask's set for every fraction
        assert torch.equal(removal_ranks(ties) < int(f * 6), least_salient_mask(ties, f))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(ranking_scores(maps, "random", generator=g1), ranking_scores(maps, "random", generator=g2))


def test_a_fraction_replaces_the_exact_floor_of_its_positions():
    replaced = []

    def spy(x, mask):
        replaced.append(int(mask[0].sum()))
        return torch.zeros(())

    x, maps = torch.rand(1, 90, generator=torch.Generator().manual_seed(0)), torch.rand(1, 90)
    masking_curve(torch.nn.Linear(90, 2), x, [0], maps, fractions=[0.0, 0.7], orders=("lerf",), fill=spy)
    assert replaced == [63]  # 0.7 * 90 is 62.99999999999999 in floats


def test_random_order_lies_between_and_inputs_not_mutated():
    model, (x, y) = tiny_cnn(), quadrant_task(16)
    maps = attribute(model, x, y, "saliency")
    x_copy, maps_copy = x.copy(), maps.copy()
    a = masking_curve(model, x, y, maps, fill="uniform", seed=1)
    b = masking_curve(model, x, y, maps, fill="uniform", seed=1)
    assert a == b  # seeded
    assert a.accuracy["morf"][0] == a.accuracy["lerf"][0] == a.accuracy["random"][0]  # fraction 0 is shared
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(maps, maps_copy)


def test_area_under_curve():
    assert area_under_curve([0.0, 0.5, 1.0], [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    assert area_under_curve([0.2], [0.7]) == 0.7


def _direct_road(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ROAD's linear system solved directly with scipy for one 2-D image."""
    h, w = x.shape
    weights = {
        (1, 1): 1 / 12,
        (0, 1): 1 / 6,
        (-1, 1): 1 / 12,
        (1, -1): 1 / 12,
        (0, -1): 1 / 6,
        (-1, -1): 1 / 12,
        (1, 0): 1 / 6,
        (-1, 0): 1 / 6,
    }
    unknown = np.argwhere(mask)
    index = {tuple(p): k for k, p in enumerate(unknown)}
    a, b = scipy.sparse.lil_matrix((len(unknown), len(unknown))), np.zeros(len(unknown))
    for k, (i, j) in enumerate(unknown):
        for (di, dj), wt in weights.items():
            p = (i + di, j + dj)
            if 0 <= p[0] < h and 0 <= p[1] < w:
                a[k, k] += wt
                if mask[p]:
                    a[k, index[p]] -= wt
                else:
                    b[k] += wt * x[p]
    out = x.astype(np.float64).copy()
    out[mask] = scipy.sparse.linalg.spsolve(a.tocsr(), b)
    return out


def test_noisy_linear_imputation_matches_direct_solve_and_keeps_planes():
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 7, 6)).astype(np.float32)
    mask = rng.random((2, 1, 7, 6)) < 0.6
    mask[:, :, 0, 0] = False
    out = noisy_linear_imputation(torch.from_numpy(x), torch.from_numpy(mask), noise=0.0, tol=1e-7).numpy()
    for i in range(2):
        np.testing.assert_allclose(out[i, 0], _direct_road(x[i, 0], mask[i, 0]), atol=1e-5)
    np.testing.assert_array_equal(out[~mask], x[~mask])
    # A plane is the exact solution when the masked block has all its neighbours inside the image.
    ii, jj = np.meshgrid(np.arange(6.0), np.arange(6.0), indexing="ij")
    plane = torch.tensor(0.1 * ii + 0.05 * jj, dtype=torch.float32)[None, None]
    block = torch.zeros_like(plane, dtype=torch.bool)
    block[..., 1:5, 1:5] = True
    torch.testing.assert_close(noisy_linear_imputation(plane, block, noise=0.0, tol=1e-8), plane, atol=1e-5, rtol=0)
    noisy = noisy_linear_imputation(plane, block, noise=0.01, generator=torch.Generator().manual_seed(0))
    assert 0 < float((noisy - plane)[block].std()) < 0.02


def test_road_fill_runs_and_is_clipped():
    model, (x, y) = tiny_cnn(), quadrant_task(8)
    curve = masking_curve(model, x, y, attribute(model, x, y), fill="road")
    assert curve.fill == "road" and len(curve.accuracy["morf"]) == 10
    with pytest.raises(ValueError, match="fill='road' needs image inputs"):
        masking_curve(torch.nn.Linear(4, 2), np.ones((2, 4), np.float32), [0, 1], np.ones((2, 4)), fill="road")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fractions": [0.0, 1.0]}, ValueError, r"fractions must be a real number in \[0, 1\)"),
        ({"fractions": [-0.1, 0.5]}, ValueError, r"fractions must be a real number in \[0, 1\)"),
        ({"fractions": [0.5, 0.2]}, ValueError, "fractions must be a non-empty, strictly increasing"),
        ({"orders": ["most"]}, ValueError, "orders must be one of"),
        ({"fill": "nope"}, ValueError, "fill must be one of"),
        ({"maps": np.ones((3, 1, 5, 2))}, ValueError, "maps must have the shape of x"),
        ({"maps": np.full((3, 1, 2, 5), np.inf)}, ValueError, "maps must hold only finite values"),
        ({"y": np.zeros(2)}, ValueError, "x and y must have the same length"),
    ],
)
def test_bad_inputs(kwargs, error, message, ones_images):
    args = {"x": ones_images, "y": np.zeros(3), "maps": np.ones((3, 1, 2, 5)), **kwargs}
    with pytest.raises(error, match=message):
        masking_curve(linear_model(), **args)
