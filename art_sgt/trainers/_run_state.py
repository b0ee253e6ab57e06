"""Where one ``fit`` call stands, and the checkpoint written for that position.

The loop tells :class:`RunState` where it is (``begin_batch``, ``before_step``, ``after_batch``, ``epoch_ends``,
``after_epoch``); every checkpoint it writes is a snapshot taken at a batch boundary, so a checkpoint never holds
the weights of one position with the random states or the position of another. The concepts it coordinates live
apart: checkpoint files in ``_checkpoint``, random states in ``_rng``, the deferred Ctrl-C in ``_interrupt``, the
choice of the epoch kept in ``_selection``. It holds the trainer's generator and history but never writes the
trainer's attributes: the trainer reads ``history`` and ``selection`` back.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from art_sgt.trainers import _checkpoint as ckpt
from art_sgt.trainers._interrupt import DeferredInterrupt
from art_sgt.trainers._options import FitOptions
from art_sgt.trainers._ranks import Ranks
from art_sgt.trainers._rng import (
    capture_rng,
    noise_seed,
    reseed_noise_seed,
    resolve_seed,
    restore_rng,
    seeded_global_rng,
)
from art_sgt.trainers._selection import EpochSelection

__all__ = ["RunState"]

logger = logging.getLogger(__name__)


class RunState:
    """Seeding, random states, deferred interrupt, checkpoints, per-rank gathering and the choice of the epoch
    kept (``keep_best``) of one ``fit`` call.

    :param classifier: The classifier being trained (its model, optimizer and device).
    :param noise: The trainer's generator of fill noise and attack random starts (seeded and restored here).
    :param history: The trainer's epoch records so far; a resumed run continues the checkpoint's instead
        (read them back from :attr:`history`).
    :param options: The checked options of the call.
    :param config: The run's configuration, recorded in every checkpoint and compared on resume.
    :raises ValueError: If ``options`` resume from a checkpoint of another run.
    """

    def __init__(
        self,
        classifier: Any,
        noise: torch.Generator,
        history: list[dict[str, Any]],
        options: FitOptions,
        config: dict[str, Any],
    ) -> None:
        self.classifier, self.noise, self.options, self.config = classifier, noise, options, config
        self.device = torch.device(classifier.device)
        self.ranks = Ranks.current()
        self.payload = options.resume_payload
        if self.payload is not None:
            ckpt.check_resumable(self.payload, config, options.seed is not None, options.allow_config_change)
        self.seed = int(self.payload["seed"]) if self.payload is not None else options.seed
        #: The epoch records of the run: the trainer's, or on resume the checkpoint's.
        self.history = history if self.payload is None else list(self.payload["history"])
        #: The choice of the epoch kept, by ``keep_best``.
        self.selection = EpochSelection(options.keep_best, options.best_measure)
        self.epoch, self.batch = 0, 0
        self._writer = options.checkpoint_dir is not None and self.ranks.rank == 0
        self._wrote = self.payload is not None  # a resumed run continues its own checkpoint
        self._forward_mutates = any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in classifier.model.modules()
        )
        self._consistent = True  # the model still holds the weights of the last batch boundary
        self._totals: torch.Tensor | None = None  # the epoch's running sums at that boundary
        self._terms: tuple[str, ...] = ()  # the loss terms summed after the loss, correct and count sums
        self._resumed_totals: tuple[list[float], dict[str, float]] | None = None
        self._boundary: dict[str, Any] | None = None  # what an interrupted epoch end saves instead of its state
        self._rng: dict[str, Any] | None = None
        self._interrupt: DeferredInterrupt | None = None

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
            self.noise.manual_seed(noise_seed(self.seed, self.ranks.rank))
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
    def epoch_totals(self, terms: tuple[str, ...]) -> torch.Tensor:
        """The running sums an epoch starts from: those of the batches a resumed epoch had already done (on rank 0,
        which holds every rank's), else zeros.

        :param terms: The names of the loss terms summed after the loss, correct and count sums.
        :return: A float64 tensor of ``3 + len(terms)`` values on the classifier's device.
        """
        self._terms = terms
        totals = torch.zeros(3 + len(terms), dtype=torch.float64, device=self.device)
        if self._resumed_totals is not None and self.batch > 0 and self.ranks.rank == 0:
            sums, term_sums = self._resumed_totals
            resumed = [*sums, *(term_sums.get(name, 0.0) for name in terms)]
            totals += torch.tensor(resumed, dtype=torch.float64, device=self.device)
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
        :param totals: The epoch's running sums so far (see :meth:`epoch_totals`), saved with a checkpoint.
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
            "history": list(self.history),
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
        return capture_rng({"noise": self.noise})

    def _gather_noise(self) -> list[torch.Tensor] | None:
        if self.ranks.world == 1:
            return None
        states: list[Any] = [None] * self.ranks.world
        torch.distributed.all_gather_object(states, self.noise.get_state())
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
            "history": list(self.history),
            "selection": self.selection.state_dict(),
        }
        state = {
            "trainer": self.config["trainer"],
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
            **self._saved_totals(),
        }
        return self._write(ckpt.save_checkpoint, state)

    def _saved_totals(self) -> dict[str, Any]:
        """The running sums at the boundary: ``totals`` (loss, correct, count) and ``loss_term_totals`` by name."""
        if self._totals is None:
            return {"totals": None, "loss_term_totals": None}
        sums = self._totals.tolist()
        return {"totals": sums[:3], "loss_term_totals": dict(zip(self._terms, sums[3:]))}

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

    def _restore(self) -> None:
        payload = self.payload
        self.classifier.model.load_state_dict(payload["model"])
        self.classifier.optimizer.load_state_dict(payload["optimizer"])
        if self.options.scheduler is not None and payload["scheduler"] is not None:
            self.options.scheduler.load_state_dict(payload["scheduler"])
        restore_rng(payload["rng"], {"noise": self.noise})  # rank 0's states
        per_rank = payload.get("noise_per_rank")
        if self.ranks.world > 1:
            if per_rank is not None and len(per_rank) == self.ranks.world:
                self.noise.set_state(per_rank[self.ranks.rank])
            else:  # a checkpoint of another number of ranks
                self.noise.manual_seed(reseed_noise_seed(int(payload["seed"]), self.ranks.rank, int(payload["batch"])))
                logger.warning("The checkpoint has no random state for rank %d: it draws a new one.", self.ranks.rank)
        self.selection.load_state_dict(payload["selection"])
        if payload.get("totals") is not None:
            self._resumed_totals = (payload["totals"], payload.get("loss_term_totals") or {})
        self.epoch, self.batch = int(payload["epoch"]), int(payload["batch"])
        logger.info("Resuming %s at epoch %d, batch %d.", self.config["trainer"], self.epoch + 1, self.batch)
