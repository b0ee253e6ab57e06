"""Checkpoints of a training run: written atomically, read without executing code."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "capture_rng",
    "restore_rng",
    "seeded_global_rng",
    "DeferredInterrupt",
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT_NAME",
]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
_FORMAT = 1


def capture_rng(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Snapshot every random state that affects training.

    :param generators: The trainer's own generators, by name.
    :return: A dict of tensors and plain values that ``torch.load(weights_only=True)`` can read back.
    """
    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state is what user code draws from
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


class DeferredInterrupt:
    """Turn the first Ctrl-C into a request that the loop honours at the next batch boundary.

    Stopping between batches keeps the weights, the position and the random states of a checkpoint consistent;
    a second Ctrl-C raises at once. Active only when ``enabled``, in the main thread, and when SIGINT has
    Python's default handler (a handler the caller installed is left alone).

    :param enabled: Whether to defer (e.g. only when a checkpoint will be written).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> DeferredInterrupt:
        if (
            self.enabled
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("Interrupt: stopping after this batch to write a checkpoint (press Ctrl-C again to stop now).")

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def save_checkpoint(directory: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``directory/checkpoint.pt`` atomically (temporary file, fsync, rename).

    A crash while writing leaves the previous checkpoint intact.

    :param directory: The checkpoint folder (created if missing).
    :param payload: Tensors, state dicts and plain Python values.
    :return: The path written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CHECKPOINT_NAME
    fd, tmp_name = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format": _FORMAT, **payload}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def load_checkpoint(directory: str | os.PathLike, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read the checkpoint in ``directory`` with ``torch.load(weights_only=True)``.

    :param directory: The checkpoint folder.
    :param map_location: Where tensors are loaded.
    :return: The payload.
    :raises FileNotFoundError: If there is no checkpoint in ``directory``.
    :raises ValueError: If the file is unreadable, corrupted or not an art-sgt checkpoint.
    """
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint_dir {str(directory)!r} holds no {CHECKPOINT_NAME} to resume from.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint_dir: {path} is unreadable or corrupted ({type(err).__name__}: {err}).") from err
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"checkpoint_dir: {path} is not an art-sgt checkpoint of format {_FORMAT}.")
    return payload
