"""Tiny seeded data, a tiny network and tiny recipes for the reproduction's tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from art_sgt.reproduction import EvaluationRecipe, RunSpec, TrainingRecipe


class TinyNet(torch.nn.Module):
    """A 12x12 one-channel CNN with 10 outputs (the reproduction's classifiers have 10 classes).

    Not an ``nn.Sequential``: ART runs the children of a ``Sequential`` itself, bypassing a subclass's ``forward``.
    """

    input_shape = (1, 12, 12)

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 144, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def band_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class = the brightest of three horizontal bands of a 12x12 image; one-hot labels over 10 classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 1, 12, 12), dtype=np.float32) * 0.5
    for c in range(3):
        x[y == c, :, 4 * c : 4 * c + 4, :] += 0.5
    return x.astype(np.float32), np.eye(10, dtype=np.float32)[y]


TRAINING = TrainingRecipe("tiny", n_train=64, epochs=2, batch_size=16, lr=1e-2, train_eps=0.3, train_steps=2)
EVALUATION = EvaluationRecipe(
    n_eval=16,
    pgd_iter=2,
    pgd_restarts=1,
    n_report=8,
    report_eps=(0.1,),
    budget="quick",
    report_kwargs=(("apgd_max_iter", 2), ("pgd_max_iter", 2), ("square_max_iter", 5), ("strong_factor", 2)),
    stability_iter=2,
)


def spec(model: str, seed: int = 0, **training: object) -> RunSpec:
    """A run of the test recipe; every model but the standard one takes the standard model of its seed as its
    transfer source, as the recipe's runs do."""
    from dataclasses import replace

    source = None if model == "standard" else RunSpec("test", "mnist", "standard", seed, TRAINING, EVALUATION)
    return RunSpec("test", "mnist", model, seed, replace(TRAINING, **training), EVALUATION, transfer_source=source)


@pytest.fixture
def data():
    x, y = band_task(64, 0)
    x_test, y_test = band_task(16, 1)
    return x, y, x_test, y_test
