"""Checkpoint files: written atomically, read without executing code, never overwritten by surprise, and refused
when they hold another run (the recorded configuration is compared before anything is loaded)."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "CHECKPOINT_NAME",
    "BEST_NAME",
    "save_checkpoint",
    "save_best",
    "load_checkpoint",
    "prepare_folder",
    "keep_previous",
    "rescue",
    "architecture_fingerprint",
    "config_differences",
    "check_resumable",
]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
_FORMAT = 2
_TEMPORARY = ".checkpoint-*.tmp"

# Configuration fields that no override can change: the checkpoint could not be loaded at all.
_STRUCTURAL = ("trainer", "architecture", "optimizer")


def save_checkpoint(directory: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``directory/checkpoint.pt`` atomically (temporary file, fsync, rename).

    A crash while writing leaves the previous checkpoint intact (and a temporary file that
    the next run in the folder removes when it starts).

    :param directory: The checkpoint folder (created if missing).
    :param payload: Tensors, state dicts and plain Python values.
    :return: The path written.
    """
    return _save_atomically(Path(directory) / CHECKPOINT_NAME, payload)


def save_best(directory: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write the best epoch's ``payload`` to ``directory/best.pt``, atomically as :func:`save_checkpoint`.

    :param directory: The checkpoint folder (created if missing).
    :param payload: ``epoch``, ``measure``, ``score`` and the ``model`` state dict.
    :return: The path written.
    """
    return _save_atomically(Path(directory) / BEST_NAME, payload)


def _save_atomically(target: Path, payload: dict[str, Any]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=target.parent)
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

    Resuming is a start of the run: temporary files left by a killed write are removed first (as
    a fresh run does). Without ``checkpoint.pt``, the error names the newest checkpoint
    that a fresh run kept aside (a fresh run started in the folder and was stopped before its first
    write) and how to resume from it.

    :param directory: The checkpoint folder.
    :param map_location: Where tensors are loaded.
    :return: The payload.
    :raises FileNotFoundError: If there is no checkpoint in ``directory``.
    :raises ValueError: If the file is unreadable, corrupted or not an art-sgt checkpoint of this format.
    """
    path = Path(directory) / CHECKPOINT_NAME
    if path.parent.is_dir():
        _remove_stale(path.parent)
    if not path.is_file():
        message = f"checkpoint_dir {str(directory)!r} holds no {CHECKPOINT_NAME} to resume from."
        kept = sorted(path.parent.glob(f"{path.stem}.previous-*.pt")) if path.parent.is_dir() else []
        if kept:
            message += (
                f" It holds {kept[-1]}, the checkpoint of an earlier run that a run started with resume=False moved "
                f"aside before it was stopped (before writing its own). To resume from it, rename it to {path} "
                "and call again with resume=True."
            )
        raise FileNotFoundError(message)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint_dir: {path} is unreadable or corrupted ({type(err).__name__}: {err}).") from err
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(
            f"checkpoint_dir: {path} is not an art-sgt checkpoint of format {_FORMAT}, whose recorded configuration "
            "is checked before resuming."
        )
    return payload


def prepare_folder(directory: str | os.PathLike) -> None:
    """Make ``directory`` ready for a run, before any training: created, writable, no stale temporary files.

    :param directory: The checkpoint folder.
    :raises ValueError: If the folder cannot be created or written to.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
        os.close(fd)
        Path(probe).unlink()
    except OSError as err:
        reason = err.strerror or err
        raise ValueError(f"checkpoint_dir {str(directory)!r} is not a writable folder ({reason}).") from err
    _remove_stale(directory)


def _remove_stale(directory: Path) -> None:
    """Remove the temporary files of checkpoint writes that were killed (never a complete checkpoint)."""
    for stale in directory.glob(_TEMPORARY):
        stale.unlink(missing_ok=True)
        logger.info("Removed %s, left over by an interrupted checkpoint write.", stale)


def keep_previous(directory: str | os.PathLike, name: str = CHECKPOINT_NAME) -> Path | None:
    """Move a file of an earlier run aside, as ``<stem>.previous-<UTC time>-<pid>.pt``, with a warning.

    A fresh run (``resume=False``) calls this before its first write, so it never overwrites another run's
    checkpoint or best weights (and a run that fails before writing leaves them where they were).

    :param directory: The checkpoint folder.
    :param name: The file: :data:`CHECKPOINT_NAME` or :data:`BEST_NAME`.
    :return: The new path of the earlier file, or ``None`` if there was none.
    """
    existing = Path(directory) / name
    if not existing.is_file():
        return None
    stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
    kept = existing.with_name(f"{existing.stem}.previous-{stamp}.pt")
    os.replace(existing, kept)
    logger.warning("checkpoint_dir held %s of an earlier run (resume=False): it is kept as %s.", name, kept)
    return kept


def rescue(model_state: dict[str, Any], error: OSError) -> OSError:
    """Save the model's weights in the system's temporary folder after a failed checkpoint write.

    :param model_state: The model's ``state_dict``.
    :param error: The error of the failed write.
    :return: An ``OSError`` to raise, naming where the weights were saved (or that saving failed too).
    """
    fd, path = tempfile.mkstemp(prefix="art-sgt-rescued-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(model_state, handle)
    except OSError as second:
        return OSError(f"writing the checkpoint failed ({error}); saving the weights to {path} failed too ({second}).")
    return OSError(
        f"writing the checkpoint failed ({error}); the trained weights are saved in {path} "
        "(load them with model.load_state_dict(torch.load(path))) and remain in the classifier's model."
    )


def architecture_fingerprint(model: nn.Module) -> str:
    """A short hash of the names, shapes and dtypes of a model's parameters and buffers.

    :param model: The model.
    :return: A hex digest; equal for models whose state dicts load into each other.
    """
    layout = [(name, tuple(t.shape), str(t.dtype)) for name, t in model.state_dict().items()]
    return hashlib.sha256(repr(layout).encode()).hexdigest()[:16]


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The fields whose values differ between two run configurations, each as ``"name: saved -> current"``.

    :param saved: The configuration recorded in a checkpoint.
    :param current: The configuration of the run that resumes.
    :return: The differences, sorted by name.
    """
    names = sorted(set(saved) | set(current))
    return [f"{n}: {saved.get(n)!r} -> {current.get(n)!r}" for n in names if saved.get(n) != current.get(n)]


def check_resumable(
    payload: dict[str, Any], config: dict[str, Any], seed_given: bool, allow_config_change: bool
) -> None:
    """Refuse a checkpoint of another run before anything is loaded into the user's model.

    :param payload: The checkpoint read by :func:`load_checkpoint`.
    :param config: The configuration of the run that resumes.
    :param seed_given: Whether the resuming call passed a seed (without one, the checkpoint's seed is taken).
    :param allow_config_change: Accept differences in fields other than the trainer, architecture and optimizer
        type, with a warning naming them.
    :raises ValueError: If the configurations differ in a way that is not accepted.
    """
    saved = dict(payload.get("config") or {})
    current = dict(config)
    if not seed_given:
        current["seed"] = saved.get("seed")
    differences = config_differences(saved, current)
    structural = [d for d in differences if d.split(":")[0] in _STRUCTURAL]
    if differences and (structural or not allow_config_change):
        hint = "" if structural else " Pass allow_config_change=True to resume with the new values on purpose."
        raise ValueError(
            f"checkpoint_dir holds a checkpoint of a different run; differing fields: {'; '.join(differences)}." + hint
        )
    if differences:
        logger.warning("Resuming with a changed configuration: %s.", "; ".join(differences))
