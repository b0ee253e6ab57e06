"""Random states of a run: the seed, the streams derived from it, and their capture and restore.

One seed drives a run. The batch order of epoch ``e`` is drawn from ``seed + e``; the trainer's own generator
(fill noise, attack random starts) from ``seed + NOISE_SEED_STRIDE * (rank + 1)``, a stride far larger than any
epoch count so that the two streams never start from the same seed, and so that each rank draws its own noise.
"""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from art_sgt.trainers._ranks import Ranks

__all__ = [
    "NOISE_SEED_STRIDE",
    "RESEED_BATCH_STRIDE",
    "noise_seed",
    "reseed_noise_seed",
    "resolve_seed",
    "capture_rng",
    "restore_rng",
    "seeded_global_rng",
]

NOISE_SEED_STRIDE = 7919
"""Separates the trainer's noise generator from the batch-order seeds (``seed + epoch``) and the ranks' noise
generators from each other: rank ``r`` seeds it with ``seed + NOISE_SEED_STRIDE * (r + 1)`` (a prime, larger
than any epoch count)."""

RESEED_BATCH_STRIDE = 104729
"""Separates the noise seeds drawn when a checkpoint holds no noise state for a rank (resumed on another number
of ranks): resuming at batch ``b`` adds ``RESEED_BATCH_STRIDE * b``, so that resuming at different batches does
not replay the same noise (a prime, larger than ``NOISE_SEED_STRIDE`` times any world size)."""


def noise_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s noise generator in a run seeded with ``seed``.

    :param seed: The run's seed.
    :param rank: The process's rank.
    :return: The seed.
    """
    return seed + NOISE_SEED_STRIDE * (rank + 1)


def reseed_noise_seed(seed: int, rank: int, batch: int) -> int:
    """The noise seed of a rank that a checkpoint (of another number of ranks) has no state for.

    :param seed: The run's seed.
    :param rank: The process's rank.
    :param batch: The checkpoint's position in its epoch.
    :return: The seed.
    """
    return noise_seed(seed, rank) + RESEED_BATCH_STRIDE * batch


def resolve_seed(seed: int | None, ranks: Ranks, device: torch.device) -> int:
    """The run's seed: ``seed``, or one drawn from the OS (never from the caller's generators), shared by every rank.

    :param seed: The requested seed or ``None``.
    :param ranks: The process's ranks.
    :param device: The training device.
    :return: The seed.
    """
    if seed is None:
        seed = secrets.randbits(31)
    if ranks.world > 1:
        shared = torch.tensor([seed], dtype=torch.int64, device=ranks.collective_device(device))
        torch.distributed.broadcast(shared, src=0)
        seed = int(shared.item())
    return seed


def capture_rng(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Snapshot every random state that affects training.

    :param generators: The trainer's own generators, by name.
    :return: A dict of tensors and plain values that ``torch.load(weights_only=True)`` can read back.
    """
    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state is what ART's attacks draw from
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Restore what :func:`capture_rng` captured.

    :param state: The captured state.
    :param generators: The trainer's generators, restored in place by name.
    """
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    for name, g_state in state["generators"].items():
        generators[name].set_state(g_state)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def seeded_global_rng(seed: int, devices: list[int]) -> Iterator[None]:
    """Seed torch's, numpy's and Python's global generators with ``seed``; restore the caller's states on exit.

    ART's attacks draw from numpy's global generator, so seeding it makes a ``fit`` through ``attack.generate``
    repeatable too; restoring it leaves the caller's random streams as they were.

    :param seed: The seed.
    :param devices: CUDA device indices whose generators are forked too.
    """
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)  # noqa: NPY002
            random.setstate(py_state)
