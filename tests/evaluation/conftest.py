"""Fixtures of the evaluator tests: a linear model whose input gradients are its weights, and a tiny CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.estimators.classification import PyTorchClassifier

#: Weights of class 0 of the linear model: distinct, so MoRF / LeRF orders are known by hand.
W0 = np.arange(10, 0, -1, dtype=np.float32)  # 10, 9, ..., 1; sum 55
THRESHOLD = 30.0  # bias of class 1 (whose weights are 0): class 0 is predicted while its logit exceeds 30


def linear_model() -> torch.nn.Module:
    """``Flatten -> Linear(10, 2)``: logit 0 = W0 . x, logit 1 = 30. Gradient of logit 0 = W0."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.from_numpy(W0), torch.zeros(10)]))
        model[1].bias.copy_(torch.tensor([0.0, THRESHOLD]))
    return model


def linear_classifier(preprocessing=None) -> PyTorchClassifier:
    model = linear_model()
    return PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 2, 5),
        nb_classes=2,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        clip_values=(0.0, 1.0),
        preprocessing=preprocessing,
    )


def tiny_cnn(seed: int = 0, classes: int = 4) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, classes),
    )


def tiny_classifier(seed: int = 0) -> PyTorchClassifier:
    model = tiny_cnn(seed)
    return PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=4,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        clip_values=(0.0, 1.0),
    )


def quadrant_task(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images whose bright quadrant is the class (4 classes)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.random((n, 1, 8, 8), dtype=np.float32) * 0.4
    for c in range(4):
        r, q = divmod(c, 2)
        x[y == c, :, r * 4 : (r + 1) * 4, q * 4 : (q + 1) * 4] += 0.6
    return np.clip(x, 0, 1).astype(np.float32), y.astype(np.int64)


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one intra-op thread (tiny tensors: on a busy machine, thread wake-ups dominate)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def trained():
    """A tiny CNN classifier trained for a few epochs on the quadrant task, with held-out data."""
    clf = tiny_classifier()
    x, y = quadrant_task(256, seed=1)
    clf.fit(x, y, batch_size=32, nb_epochs=5, verbose=False)
    return clf, quadrant_task(32, seed=2)


@pytest.fixture
def ones_images() -> np.ndarray:
    """Three all-ones inputs shaped (n, 1, 2, 5) for the linear model."""
    return np.ones((3, 1, 2, 5), dtype=np.float32)
