"""The L-inf Square attack with fewer forwards gives ART's SquareAttack's adversarial examples, from fewer forwards."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from art.attacks.evasion import SquareAttack
from art.estimators.classification import PyTorchClassifier

from art_sgt.evaluation._square import LinfSquareAttack


class _Counting(torch.nn.Module):
    """A small CNN that counts the samples it is run on."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(4 * 144, 10),
        )
        self.samples = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.samples += len(x)
        return self.body(x)


def _setup(channels: int, seed: int = 0) -> tuple[PyTorchClassifier, _Counting, np.ndarray, np.ndarray]:
    torch.manual_seed(seed)
    net = _Counting(channels)
    classifier = PyTorchClassifier(
        net, loss=torch.nn.CrossEntropyLoss(), input_shape=(channels, 12, 12), nb_classes=10, clip_values=(0.0, 1.0)
    )
    x = np.random.default_rng(seed).random((40, channels, 12, 12), dtype=np.float32)
    y = classifier.predict(x).argmax(1)  # every sample starts correct
    return classifier, net, x, y


@pytest.mark.parametrize(("channels", "restarts"), [(1, 1), (3, 2)])
def test_same_adversarial_examples_as_art_from_fewer_forwards(channels, restarts) -> None:
    classifier, net, x, y = _setup(channels)
    kwargs = dict(norm=np.inf, eps=0.05, max_iter=80, nb_restarts=restarts, batch_size=16, verbose=False)
    x_before = x.copy()
    net.samples = 0
    np.random.seed(3)  # noqa: NPY002 - both attacks draw from numpy's global generator
    reference = SquareAttack(classifier, **kwargs).generate(x, y=y)
    art_forwards = net.samples
    net.samples = 0
    np.random.seed(3)  # noqa: NPY002
    fast = LinfSquareAttack(classifier, **kwargs).generate(x, y=y)
    correct = classifier.predict(reference).argmax(1) == y
    assert 0 < correct.mean() < 1  # some samples fooled, some not: the bookkeeping of both kinds is exercised
    assert np.array_equal(fast, reference)
    assert net.samples < art_forwards / 2
    np.testing.assert_array_equal(x, x_before)  # the input is not modified


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_other_norms_and_custom_criteria_run_arts_own_generate() -> None:
    classifier, net, x, y = _setup(1)
    for kwargs in (dict(norm=2, eps=0.5), dict(norm=np.inf, eps=0.05, loss=lambda x_, y_: np.zeros(len(x_)))):
        np.random.seed(4)  # noqa: NPY002
        random.seed(4)  # ART's L2 Square also draws from Python's generator
        reference = SquareAttack(classifier, max_iter=20, verbose=False, **kwargs).generate(x, y=y)
        np.random.seed(4)  # noqa: NPY002
        random.seed(4)
        fast = LinfSquareAttack(classifier, max_iter=20, verbose=False, **kwargs).generate(x, y=y)
        assert np.array_equal(fast, reference, equal_nan=True)  # ART's L2 Square divides by zero on 12x12 images
