"""Choosing the epoch a run ends with (``keep_best``) and the catastrophic-overfitting guard.

Both read the epoch records the loop writes (:attr:`SaliencyTrainerBase.history`); neither trains nor measures.
:func:`catastrophic_overfitting` is the guard's rule as a pure function; :class:`EpochSelection` keeps, across
the epochs of one ``fit`` call, the best epoch's number, score and weights (a CPU copy) and the best robust
accuracy the guard compares with, and travels in the checkpoint so that a resumed run chooses as an
uninterrupted one does.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torch import nn

__all__ = [
    "CatastrophicOverfittingWarning",
    "catastrophic_overfitting",
    "COLLAPSE_DROP",
    "COLLAPSE_GAP",
    "KEEP_BEST",
    "EpochSelection",
]

logger = logging.getLogger(__name__)

KEEP_BEST = ("robust", "clean")
"""The values of ``keep_best`` besides ``None``."""

COLLAPSE_DROP = 0.2
"""The guard fires only when robust validation accuracy is at least this far (absolute) below the best seen."""

COLLAPSE_GAP = 0.3
"""The guard fires only when single-step accuracy exceeds robust accuracy by at least this much (absolute)."""

# accuracies are ratios of counts: a difference meant to equal a threshold may round just below it
_TOLERANCE = 1e-9


class CatastrophicOverfittingWarning(UserWarning):
    """Robust validation accuracy collapsed while single-step accuracy stayed high (Wong, Rice and Kolter 2020).

    Issued by ``fit`` and ``fit_generator`` with ``robust_validation``, at the end of the epoch where the guard
    (see ``fit``'s ``robust_validation``) fires; that epoch's history record holds
    ``"catastrophic_overfitting": True``.
    """


def catastrophic_overfitting(
    robust: float,
    single_step: float,
    best_robust: float | None,
    drop: float = COLLAPSE_DROP,
    gap: float = COLLAPSE_GAP,
) -> bool:
    """Whether an epoch's accuracies show catastrophic overfitting.

    Fires when the robust accuracy fell by at least ``drop`` below the best robust accuracy of the earlier
    epochs **and** the single-step (FGSM) accuracy exceeds the robust accuracy by at least ``gap``: the model
    resists the one-step attack it trains against but no longer a multi-step one. A model whose robust and
    single-step accuracies fall together is just a worse model, not catastrophically overfitted, and does not
    fire. Thresholds: under catastrophic overfitting PGD accuracy drops to about 0 within an epoch while FGSM
    accuracy stays near clean accuracy (gaps of 0.5 and more), whereas a healthy adversarially trained model
    keeps FGSM within a few points to about 0.15 of PGD, and robust overfitting (Rice et al. 2020) lowers PGD
    accuracy by a few points over many epochs; 0.2 and 0.3 sit between the two.

    :param robust: This epoch's accuracy under the robust validation attack.
    :param single_step: This epoch's accuracy under the single-step attack at the same eps.
    :param best_robust: The best robust accuracy of the earlier epochs, ``None`` on the first epoch (never fires).
    :param drop: The smallest fall below ``best_robust`` that counts as a collapse.
    :param gap: The smallest excess of single-step over robust accuracy that counts.
    :return: Whether the guard fires.

    >>> catastrophic_overfitting(robust=0.02, single_step=0.85, best_robust=0.60)
    True
    >>> catastrophic_overfitting(robust=0.10, single_step=0.15, best_robust=0.60)  # both fell: a bad model
    False
    """
    if best_robust is None:
        return False
    return best_robust - robust >= drop - _TOLERANCE and single_step - robust >= gap - _TOLERANCE


class EpochSelection:
    """The best epoch of one ``fit`` call by one record field, and the guard's memory of the best robust accuracy.

    :param keep_best: ``"robust"``, ``"clean"`` or ``None`` (nothing is kept; the guard still runs).
    :param measure: The record field ``keep_best`` maximises (``None`` with ``keep_best=None``).
    """

    def __init__(self, keep_best: str | None, measure: str | None) -> None:
        self.keep_best, self.measure = keep_best, measure
        self.epoch: int | None = None
        self.score: float | None = None
        self.weights: dict[str, torch.Tensor] | None = None
        self.best_robust: float | None = None

    def update(self, record: dict[str, Any], model: nn.Module, speak: bool) -> bool:
        """Read one epoch's record: run the guard (adding ``catastrophic_overfitting`` to it), then keep the
        model's weights if the epoch is the best so far (ties keep the earlier epoch).

        :param record: The epoch's record; modified in place.
        :param model: The classifier's model, holding the epoch's weights.
        :param speak: Whether this process warns (rank 0).
        :return: Whether this epoch became the best one.
        """
        robust = record.get("robust_val_accuracy")
        if robust is not None and "single_step_val_accuracy" in record:
            fired = catastrophic_overfitting(robust, record["single_step_val_accuracy"], self.best_robust)
            record["catastrophic_overfitting"] = fired
            if fired and speak:
                self._warn(record)
        if robust is not None and (self.best_robust is None or robust > self.best_robust):
            self.best_robust = robust
        if self.measure is None or (self.score is not None and record[self.measure] <= self.score):
            return False
        self.epoch, self.score = int(record["epoch"]), float(record[self.measure])
        self.weights = {name: t.detach().to("cpu", copy=True) for name, t in model.state_dict().items()}
        return True

    def _warn(self, record: dict[str, Any]) -> None:
        then = (
            "keep_best='robust' ends the run with the best epoch's weights"
            if self.keep_best == "robust"
            else "pass keep_best='robust' to end the run with the best epoch's weights"
        )
        message = (
            f"catastrophic overfitting at epoch {record['epoch']}: robust_val_accuracy "
            f"{record['robust_val_accuracy']:.4f} (best so far {self.best_robust:.4f}) while "
            f"single_step_val_accuracy is {record['single_step_val_accuracy']:.4f}; {then}."
        )
        # the epoch line that the loop logs names it too; the warning points at the caller of fit
        warnings.warn(message, CatastrophicOverfittingWarning, stacklevel=7)

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (nothing without ``keep_best``).

        :param model: The classifier's model.
        """
        if self.weights is not None:
            model.load_state_dict(self.weights)

    def file_payload(self) -> dict[str, Any]:
        """What ``best.pt`` holds: ``epoch``, ``measure``, ``score`` and the ``model`` state dict.

        :return: The payload.
        """
        return {"epoch": self.epoch, "measure": self.measure, "score": self.score, "model": self.weights}

    def state_dict(self) -> dict[str, Any]:
        """The selection's state, for the checkpoint.

        :return: Plain values and CPU tensors.
        """
        return {**self.file_payload(), "best_robust": self.best_robust}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's selection. A choice by another measure (resumed with
        ``allow_config_change=True`` and another ``keep_best``) leaves the choice to the epochs trained from now
        on, with a warning.

        :param state: What :meth:`state_dict` returned.
        """
        self.best_robust = state.get("best_robust")
        if state.get("measure") == self.measure and state.get("model") is not None:
            self.epoch, self.score = int(state["epoch"]), float(state["score"])
            self.weights = {name: t.to("cpu") for name, t in state["model"].items()}
            return
        if self.measure is not None:
            logger.warning(
                "The checkpoint records no best epoch by %s: keep_best=%r chooses among the epochs trained from now "
                "on.",
                self.measure,
                self.keep_best,
            )
