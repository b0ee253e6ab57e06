"""Shared fixtures: a tiny, seeded, learnable synthetic image task and small ART classifiers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from art.estimators.classification import PyTorchClassifier
from hypothesis import settings

# Property tests draw their examples from a fixed seed, so a run on a fresh clone (CI) draws the same examples as
# every other run and cannot turn red by chance; `--hypothesis-profile=explore` draws new ones to hunt for bugs.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=1000)
settings.load_profile("ci")


def make_task(n: int = 256, seed: int = 0, channels: int = 1, size: int = 8, classes: int = 4):
    """Images whose brightest quadrant is the class; channels-first float32 in [0, 1], index labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.random((n, channels, size, size), dtype=np.float32) * 0.4
    half = size // 2
    for c in range(classes):
        r, q = divmod(c, 2)
        x[y == c, :, r * half : (r + 1) * half, q * half : (q + 1) * half] += 0.6
    return np.clip(x, 0.0, 1.0).astype(np.float32), y.astype(np.int64)


def small_model(channels: int = 1, size: int = 8, classes: int = 4, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(channels, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * size * size, classes),
    )


def make_classifier(model=None, channels=1, size=8, classes=4, lr=0.01, preprocessing=None, optimizer="adam"):
    model = small_model(channels, size, classes) if model is None else model
    opt = None
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    return PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(channels, size, size),
        nb_classes=classes,
        optimizer=opt,
        clip_values=(0.0, 1.0),
        preprocessing=preprocessing,
    )


SHAPES = {"mnist": (28, 28), "cifar10": (32, 32, 3)}


def write_npz(folder: Path, name: str, n_train: int = 6, n_test: int = 4, fill: int | None = None, **override):
    """Write ``<name>.npz`` with random uint8 images; ``fill`` sets every pixel, to tell files apart."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, *SHAPES[name]), dtype=np.uint8)
        x.reshape(n, -1)[:, 0], x.reshape(n, -1)[:, 1] = 0, 255  # full range in every image
        if fill is not None:
            x[:] = fill
        arrays[f"x_{split}"] = x
        arrays[f"y_{split}"] = (np.arange(n) % 10).astype(np.uint8)
    arrays.update(override)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{name}.npz", **arrays)
    return arrays


@pytest.fixture
def task():
    return make_task()


@pytest.fixture
def classifier():
    return make_classifier()


#: Environment variable choosing the devices of the device tests (tests/test_cuda.py): ``cpu``, ``cuda`` or
#: ``cpu,cuda``. Unset: ``cpu``, plus ``cuda`` when a CUDA device is available.
DEVICE_ENV = "ART_SGT_TEST_DEVICE"


def selected_devices(value: str | None, cuda_available: bool) -> list[str]:
    """The devices the ``device`` fixture runs on, from the value of :data:`DEVICE_ENV`.

    A device asked for by name must be there: ``cuda`` on a machine without CUDA is an error, not a skip, so a
    GPU session cannot pass by skipping its GPU tests.

    :param value: The variable's value (``None`` or empty: unset).
    :param cuda_available: Whether ``torch.cuda.is_available()``.
    :return: Device names, ``"cpu"`` first.
    :raises ValueError: For a name other than ``cpu`` / ``cuda``, or ``cuda`` asked for without CUDA.
    """
    if not value or not value.strip():
        return ["cpu", "cuda"] if cuda_available else ["cpu"]
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in ("cpu", "cuda")]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"{DEVICE_ENV} must be 'cpu', 'cuda' or 'cpu,cuda', got {value!r}.")
    if "cuda" in names and not cuda_available:
        raise ValueError(f"{DEVICE_ENV}={value!r} asks for cuda, but torch.cuda.is_available() is False.")
    return sorted(names, key=("cpu", "cuda").index)


def _device_params() -> list[str]:
    import os

    try:
        return selected_devices(os.environ.get(DEVICE_ENV), torch.cuda.is_available())
    except ValueError as error:  # reported by every test that takes the fixture, not as a collection crash
        return [f"invalid: {error}"]


@pytest.fixture(params=_device_params())
def device(request) -> torch.device:
    """A device of the device tests: ``cpu`` and, where available or asked for, ``cuda``."""
    if request.param.startswith("invalid: "):
        pytest.fail(request.param.removeprefix("invalid: "))
    return torch.device(request.param)
