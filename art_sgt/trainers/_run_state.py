"""The state of one training run around the loop: seeds, random states, interrupts, checkpoints, ranks.

The loop tells :class:`RunState` where it stands (``begin_batch``, ``before_step``, ``after_batch``,
``after_epoch``); everything it writes is a snapshot taken at a batch boundary, so a checkpoint never holds the
weights of one position with the random states or the position of another.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import random
import secrets
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from art_sgt.trainers import _checkpoint as ckpt
from art_sgt.trainers._selection import EpochSelection

__all__ = [
    "RunState",
    "Ranks",
    "capture_rng",
    "restore_rng",
    "seeded_global_rng",
    "DeferredInterrupt",
    "architecture_fingerprint",
    "config_differences",
]

logger = logging.getLogger(__name__)

# Configuration fields that no override can change: the checkpoint could not be loaded at all.
_STRUCTURAL = ("trainer", "architecture", "optimizer")


@dataclass(frozen=True)
class Ranks:
    """This process's place under ``torch.distributed`` (``rank 0 of 1`` without it)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> Ranks:
        """The ranks of the current process group, if one is initialised.

        :return: The ranks.
        """
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def collective_device(self, device: torch.device) -> torch.device:
        """Where tensors of a collective live (CUDA for NCCL, else CPU).

        :param device: The training device.
        :return: The device.
        """
        return device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")


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


class DeferredInterrupt:
    """Turn the first Ctrl-C (SIGINT), or the first SIGTERM (the stop request a job scheduler such as SLURM sends
    before it kills a job), into a request that the loop honours at the next batch boundary.

    A second signal raises ``KeyboardInterrupt`` at once. Active only when ``enabled`` and in the main thread, and
    for each signal only while it has its default handler (Python's for SIGINT, the system's for SIGTERM): a
    handler the caller installed, or a signal the process ignores, is left alone.

    :param enabled: Whether to defer (e.g. only when a checkpoint will be written).
    """

    DEFAULTS = ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL))

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> DeferredInterrupt:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for signum, default in self.DEFAULTS:
                if signal.getsignal(signum) == default:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning(
            "%s: stopping after this batch to write a checkpoint (send it again to stop now).",
            "Interrupt" if signum == signal.SIGINT else "Termination request (SIGTERM)",
        )

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


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


class RunState:
    """Seeding, random states, deferred interrupt, checkpoints, per-rank gathering and the choice of the epoch
    kept (``keep_best``) of one ``fit`` call.

    :param trainer: The trainer (its classifier, fill/PGD-start generator ``_noise`` and ``history``).
    :param options: The checked options of the call (:class:`art_sgt.trainers._options.RunOptions`).
    :param config: The run's configuration, recorded in every checkpoint and compared on resume.
    """

    def __init__(self, trainer: Any, options: Any, config: dict[str, Any]) -> None:
        self.trainer, self.options, self.config = trainer, options, config
        self.classifier = trainer.get_classifier()
        self.device = torch.device(self.classifier.device)
        self.ranks = Ranks.current()
        self.payload = options.resume_payload
        self.seed = int(self.payload["seed"]) if self.payload is not None else options.seed
        self.epoch, self.batch = 0, 0
        self._writer = options.checkpoint_dir is not None and self.ranks.rank == 0
        self._wrote = self.payload is not None  # a resumed run continues its own checkpoint
        self._forward_mutates = any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
            for m in self.classifier.model.modules()
        )
        self._consistent = True  # the model still holds the weights of the last batch boundary
        self._totals: torch.Tensor | None = None  # the epoch's loss, correct and count sums at that boundary
        self._resumed_totals: list[float] | None = None
        self._boundary: dict[str, Any] | None = None  # what an interrupted epoch end saves instead of its state
        self._rng: dict[str, Any] | None = None
        self._interrupt: DeferredInterrupt | None = None
        self.selection = EpochSelection(options.keep_best, options.best_measure)
        trainer.best_epoch, trainer.best_score, trainer.best_measure = None, None, options.best_measure
        if self.payload is not None:
            self._check_resumable()

    # ------------------------------------------------------------------ the run as a context
    @contextlib.contextmanager
    def running(self) -> Iterator[RunState]:
        """Seed everything, restore a resumed run, defer Ctrl-C; on an interrupt write a consistent checkpoint.

        :return: A context manager yielding this state; ``epoch`` and ``batch`` say where the loop starts.
        """
        self.seed = resolve_seed(self.seed, self.ranks, self.device)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with seeded_global_rng(self.seed, devices), DeferredInterrupt(self.options.checkpoint_dir is not None) as sig:
            self._interrupt = sig
            self.trainer._noise.manual_seed(self.seed + 7919 * (self.ranks.rank + 1))
            if self.payload is not None:
                self._restore()
            self._rng = self._capture() if self._writer else None
            try:
                yield self
            except KeyboardInterrupt:
                self._write_on_interrupt()
                raise
            except Exception as err:
                if not sig.requested:
                    raise
                # The stop signal reached other processes too (e.g. SLURM signals a job's DataLoader workers, whose
                # death then fails the next fetch): keep the last batch boundary, and stop as requested.
                self._write_on_interrupt()
                raise KeyboardInterrupt(f"stopped on request, after {type(err).__name__}: {err}") from err

    # ------------------------------------------------------------------ what the loop reports
    def epoch_totals(self) -> torch.Tensor:
        """The running sums (loss, correct, count) an epoch starts from: those of the batches a resumed epoch had
        already done (on rank 0, which holds every rank's), else zeros.

        :return: A float64 tensor of 3 values on the classifier's device.
        """
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)
        if self._resumed_totals is not None and self.batch > 0 and self.ranks.rank == 0:
            totals += torch.tensor(self._resumed_totals, dtype=torch.float64, device=self.device)
        self._resumed_totals = None
        return totals

    def begin_batch(self) -> None:
        """A batch starts: train-mode forwards of BatchNorm models change running statistics from here on."""
        self._consistent = not self._forward_mutates

    def before_step(self) -> None:
        """The optimizer is about to change the weights."""
        self._consistent = False

    def after_batch(self, epoch: int, batch: int, totals: torch.Tensor) -> None:
        """Batch ``batch`` of ``epoch`` is done: record the boundary; honour a deferred Ctrl-C (on every rank).

        :param epoch: The epoch index.
        :param batch: The batch index within the epoch.
        :param totals: The epoch's running sums so far (loss, correct, count), saved with a checkpoint.
        :raises KeyboardInterrupt: After writing a checkpoint, when a Ctrl-C was deferred.
        """
        self.epoch, self.batch = epoch, batch + 1
        self._consistent = True
        self._totals = totals.detach().clone()
        if self._writer:
            self._rng = self._capture()
        if self._interrupt_requested():
            noise = self._gather_noise()
            if self.ranks.world > 1:  # a collective: rank 0 saves every rank's sums
                torch.distributed.all_reduce(self._totals)
            if self._writer:
                path = self._save(noise)
                logger.warning("Interrupted: checkpoint written to %s (continue with resume=True).", path)
            self._writer = False  # written: the KeyboardInterrupt below must not write again
            raise KeyboardInterrupt

    def epoch_ends(self) -> None:
        """The epoch's batches are done and its end (scheduler step, validation, selection, history) begins: until
        :meth:`after_epoch`, an interrupt saves the state of the last batch boundary, so that a resumed run does
        that end once, not twice."""
        scheduler, optimizer = self.options.scheduler, self.classifier.optimizer.state_dict()
        optimizer["param_groups"] = copy.deepcopy(optimizer["param_groups"])  # a scheduler step changes the lr
        self._boundary = {
            "optimizer": optimizer,  # its moments do not change before the next batch
            "scheduler": None if scheduler is None else copy.deepcopy(scheduler.state_dict()),
            "history": list(self.trainer.history),
            "selection": self.selection.state_dict(),
        }

    def select(self, record: dict[str, Any]) -> None:
        """An epoch's record is complete: run the overfitting guard and keep the epoch if it is the best so far
        (rank 0 writes its weights to ``best.pt`` in the checkpoint folder).

        :param record: The epoch's record (the guard adds ``catastrophic_overfitting`` to it).
        """
        if self.selection.update(record, self.classifier.model, speak=self.ranks.rank == 0) and self._writer:
            self._write(ckpt.save_best, self.selection.file_payload())

    def finish(self) -> str | None:
        """The run is done: with ``keep_best``, load the best epoch's weights into the model.

        :return: The line saying which epoch is kept (``None`` without ``keep_best``).
        """
        selection = self.selection
        selection.restore(self.classifier.model)
        self.trainer.best_epoch, self.trainer.best_score = selection.epoch, selection.score
        if selection.epoch is None:
            return None
        return f"keeping epoch {selection.epoch} of {self.options.nb_epochs}: {selection.measure} {selection.score:.4f}"

    def after_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` is done: write a checkpoint when one is due.

        :param epoch: The epoch index.
        """
        self.epoch, self.batch = epoch + 1, 0
        self._boundary, self._totals = None, None
        last = epoch + 1 == self.options.nb_epochs
        if self.options.checkpoint_dir is None or not ((epoch + 1) % self.options.checkpoint_every == 0 or last):
            return
        noise = self._gather_noise()  # a collective: every rank takes part
        if self._writer:
            self._rng = self._capture()
            self._save(noise)

    # ------------------------------------------------------------------ internals
    def _interrupt_requested(self) -> bool:
        requested = self._interrupt is not None and self._interrupt.requested
        if self.ranks.world == 1 or self.options.checkpoint_dir is None:
            return requested
        flag = torch.tensor([int(requested)], device=self.ranks.collective_device(self.device))
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def _capture(self) -> dict[str, Any]:
        return capture_rng({"noise": self.trainer._noise})

    def _gather_noise(self) -> list[torch.Tensor] | None:
        if self.ranks.world == 1:
            return None
        states: list[Any] = [None] * self.ranks.world
        torch.distributed.all_gather_object(states, self.trainer._noise.get_state())
        return states

    def _write_on_interrupt(self) -> None:
        if not self._writer:
            return
        if not self._consistent:
            logger.warning(
                "Interrupted inside a batch after the weights began to change: no checkpoint is written for it; "
                "the last checkpoint in %s is kept.",
                self.options.checkpoint_dir,
            )
            return
        path = self._save(None)
        logger.warning("Interrupted: checkpoint written to %s (continue with resume=True).", path)

    def _save(self, noise_per_rank: list[torch.Tensor] | None) -> Any:
        scheduler = self.options.scheduler
        boundary = self._boundary or {
            "optimizer": self.classifier.optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "history": list(self.trainer.history),
            "selection": self.selection.state_dict(),
        }
        state = {
            "trainer": type(self.trainer).__name__,
            "config": self.config,
            "seed": self.seed,
            "epoch": self.epoch,
            "batch": self.batch,
            "model": self.classifier.model.state_dict(),
            "optimizer": boundary["optimizer"],
            "scheduler": boundary["scheduler"],
            "rng": self._rng,
            "noise_per_rank": noise_per_rank,
            "history": boundary["history"],
            "selection": boundary["selection"],
            "totals": None if self._totals is None else self._totals.tolist(),
        }
        return self._write(ckpt.save_checkpoint, state)

    def _write(self, save: Any, payload: dict[str, Any]) -> Any:
        """Write one file of the checkpoint folder with ``save`` (a fresh run first moves an earlier run's files
        aside)."""
        directory = self.options.checkpoint_dir
        try:
            if not self._wrote:
                ckpt.keep_previous(directory)
                ckpt.keep_previous(directory, ckpt.BEST_NAME)
            self._wrote = True
            return save(directory, payload)
        except OSError as err:
            raise ckpt.rescue(self.classifier.model.state_dict(), err) from err

    def _check_resumable(self) -> None:
        """Refuse a checkpoint of another run before anything is loaded into the user's model."""
        saved = dict(self.payload.get("config") or {})
        current = dict(self.config)
        if self.options.seed is None:
            current["seed"] = saved.get("seed")
        differences = config_differences(saved, current)
        structural = [d for d in differences if d.split(":")[0] in _STRUCTURAL]
        if differences and (structural or not self.options.allow_config_change):
            hint = "" if structural else " Pass allow_config_change=True to resume with the new values on purpose."
            raise ValueError(
                f"checkpoint_dir holds a checkpoint of a different run; differing fields: {'; '.join(differences)}."
                + hint
            )
        if differences:
            logger.warning("Resuming with a changed configuration: %s.", "; ".join(differences))

    def _restore(self) -> None:
        payload = self.payload
        self.classifier.model.load_state_dict(payload["model"])
        self.classifier.optimizer.load_state_dict(payload["optimizer"])
        if self.options.scheduler is not None and payload["scheduler"] is not None:
            self.options.scheduler.load_state_dict(payload["scheduler"])
        restore_rng(payload["rng"], {"noise": self.trainer._noise})  # rank 0's states
        per_rank = payload.get("noise_per_rank")
        if self.ranks.world > 1:
            if per_rank is not None and len(per_rank) == self.ranks.world:
                self.trainer._noise.set_state(per_rank[self.ranks.rank])
            else:  # a checkpoint of another number of ranks
                seed = int(payload["seed"]) + 7919 * (self.ranks.rank + 1) + 104729 * int(payload["batch"])
                self.trainer._noise.manual_seed(seed)
                logger.warning("The checkpoint has no random state for rank %d: it draws a new one.", self.ranks.rank)
        self.trainer.history = list(payload["history"])
        self.selection.load_state_dict(payload.get("selection"))
        self._resumed_totals = payload.get("totals")
        self.epoch, self.batch = int(payload["epoch"]), int(payload["batch"])
        logger.info("Resuming %s at epoch %d, batch %d.", type(self.trainer).__name__, self.epoch + 1, self.batch)
