"""Validation of the trainers' arguments, done once before any work starts."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from art_sgt._validation import (
    check_array,
    check_bool,
    check_choice,
    check_finite,
    check_labels,
    check_positive_int,
    check_same_length,
)
from art_sgt.masking import FILL_MODES
from art_sgt.trainers import _checkpoint as ckpt
from art_sgt.trainers._ranks import Ranks
from art_sgt.trainers._robust_validation import RobustValidation, check_robust_validation
from art_sgt.trainers._selection import KEEP_BEST

__all__ = ["check_fill", "inputs_to_device", "FitOptions", "PER_BATCH_SCHEDULERS"]

PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)
"""Schedulers that torch documents as stepped after every batch; every other scheduler is stepped per epoch."""

#: The options ``fit`` and ``fit_generator`` both take, by name (besides ART's ``fit`` keywords).
_CALL_OPTIONS = (
    "validation_data",
    "nb_epochs",
    "scheduler",
    "seed",
    "verbose",
    "checkpoint_dir",
    "checkpoint_every",
    "resume",
    "allow_config_change",
    "robust_validation",
    "robust_eval",
    "keep_best",
)

#: Keyword arguments of ART's ``PyTorchClassifier.fit`` that ART's trainers forward and these trainers honour,
#: with their defaults.
_FIT_DEFAULTS = {"drop_last": False, "training_mode": True}


def check_fill(fill: Any) -> Any:
    """Check the ``fill`` argument of a trainer (see :func:`art_sgt.masking.apply_mask`).

    :param fill: The value to check.
    :return: ``fill``.
    :raises ValueError: For an unknown string or a non-finite float.
    :raises TypeError: For any other type that is not callable.
    """
    if isinstance(fill, str):
        if fill not in FILL_MODES:
            raise ValueError(f"fill must be one of {FILL_MODES}, a float or a callable, got {fill!r}.")
    elif isinstance(fill, numbers.Real) and not isinstance(fill, bool):
        if not np.isfinite(float(fill)):
            raise ValueError(f"fill must be a finite float, got {fill!r}.")
    elif not callable(fill):
        raise TypeError(f"fill must be one of {FILL_MODES}, a float or a callable, got {type(fill).__name__}.")
    return fill


def inputs_to_device(
    classifier: Any, device: torch.device, name_x: str, x: Any, name_y: str, y: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a user's ``(x, y)`` against the classifier and return float32 inputs and int64 labels on ``device``.

    ``x`` is never modified (on CPU the returned tensor may share its memory; the trainers never write to it).

    :param classifier: The ART classifier (``input_shape``, ``clip_values``, ``nb_classes``).
    :param device: The training device.
    :param name_x: Name of the inputs in error messages.
    :param x: Inputs ``(n, *input_shape)``.
    :param name_y: Name of the labels in error messages.
    :param y: Index or one-hot labels.
    :return: ``(x, y)`` as tensors on ``device``.
    :raises TypeError: If ``x`` or ``y`` is not a numeric numpy array.
    :raises ValueError: For a wrong shape, non-finite values, values outside ``clip_values``, labels out of
        range or mismatched lengths.
    """
    check_array(name_x, x, min_ndim=2)
    expected = tuple(classifier.input_shape)
    if tuple(x.shape[1:]) != expected:
        hint = " (channels-last data? move the channel axis first)" if x.shape[-1] == expected[0] else ""
        raise ValueError(
            f"{name_x} must have shape (n, {', '.join(map(str, expected))}) to match the classifier's input_shape, "
            f"got {x.shape}{hint}."
        )
    check_finite(name_x, x)
    if classifier.clip_values is not None:
        low, high = (np.asarray(v, dtype=np.float64) for v in classifier.clip_values)
        if np.any(x < low - 1e-6) or np.any(x > high + 1e-6):
            raise ValueError(
                f"{name_x} must lie within the classifier's clip_values (min {low.min():g}, max {high.max():g}), "
                f"got values in [{float(x.min()):g}, {float(x.max()):g}] outside them."
            )
    labels = check_labels(name_y, y, classifier.nb_classes)
    check_same_length(name_x, x, name_y, labels)
    return torch.as_tensor(x, dtype=torch.float32, device=device), torch.as_tensor(labels, device=device)


@dataclass(frozen=True, kw_only=True)
class FitOptions:
    """The checked options of one ``fit`` or ``fit_generator`` call (see their docstrings), built once by
    :meth:`check` before any work starts."""

    nb_epochs: int
    scheduler: Any
    seed: int | None
    validation: tuple[torch.Tensor, torch.Tensor] | None
    checkpoint_dir: Any
    checkpoint_every: int
    #: The checkpoint read when resuming, else ``None``.
    resume_payload: dict[str, Any] | None
    verbose: bool
    drop_last: bool = False
    training_mode: bool = True
    allow_config_change: bool = False
    robust: RobustValidation | None = None
    keep_best: str | None = None

    @classmethod
    def of_call(cls, trainer: Any, arguments: dict[str, Any]) -> FitOptions:
        """The checked options of one ``fit`` or ``fit_generator`` call (see :meth:`check`).

        :param trainer: The trainer.
        :param arguments: The call's arguments by name (its ``locals()`` on entry), ``kwargs`` included.
        :return: The options.
        """
        return cls.check(trainer, fit_kwargs=arguments["kwargs"], **{name: arguments[name] for name in _CALL_OPTIONS})

    @classmethod
    def check(
        cls,
        trainer: Any,
        *,
        validation_data: Any,
        nb_epochs: Any,
        scheduler: Any,
        seed: Any,
        verbose: Any,
        checkpoint_dir: Any,
        checkpoint_every: Any,
        resume: Any,
        allow_config_change: Any,
        robust_validation: Any,
        robust_eval: Any,
        keep_best: Any,
        fit_kwargs: dict[str, Any],
    ) -> FitOptions:
        """Check the options shared by ``fit`` and ``fit_generator``.

        Of the keyword arguments ART's trainers forward to ``PyTorchClassifier.fit`` (``fit_kwargs``),
        ``drop_last`` and ``training_mode`` are accepted and honoured; any other is refused.

        :return: The checked options; the checkpoint is already read when resuming, and the checkpoint folder is
            checked writable (and cleaned of temporary files left by a killed write).
        :raises TypeError: For an unknown keyword or a value of the wrong type (a scheduler without ``step()``, a
            ``robust_eval`` that is not an ART evasion attack).
        :raises ValueError: For an out-of-range value, a scheduler on another optimizer, ``resume`` without a
            folder, a checkpoint folder that cannot be written, or a ``keep_best`` without the validation it needs.
        :raises FileNotFoundError: If ``resume`` is set and the folder holds no checkpoint.
        """
        classifier = trainer.get_classifier()
        unknown = sorted(set(fit_kwargs) - set(_FIT_DEFAULTS))
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) for fit: {', '.join(unknown)}.")
        drop_last = check_bool("drop_last", fit_kwargs.get("drop_last", _FIT_DEFAULTS["drop_last"]))
        training_mode = check_bool("training_mode", fit_kwargs.get("training_mode", _FIT_DEFAULTS["training_mode"]))
        nb_epochs = check_positive_int("nb_epochs", nb_epochs)
        checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise TypeError(f"seed must be a non-negative int or None, got {seed!r}.")
        verbose = check_bool("verbose", verbose)
        if scheduler is not None and not callable(getattr(scheduler, "step", None)):
            raise TypeError(
                f"scheduler must be a torch learning-rate scheduler with a step() method, got {scheduler!r}."
            )
        if scheduler is not None and getattr(scheduler, "optimizer", None) is not classifier.optimizer:
            raise ValueError("scheduler must be a torch learning-rate scheduler built on the classifier's optimizer.")
        if (
            checkpoint_dir is not None
            and not isinstance(checkpoint_dir, str)
            and not hasattr(checkpoint_dir, "__fspath__")
        ):
            raise TypeError(f"checkpoint_dir must be a path or None, got {type(checkpoint_dir).__name__}.")
        resume = check_bool("resume", resume)
        allow_config_change = check_bool("allow_config_change", allow_config_change)
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir, the folder holding the checkpoint to resume from.")
        validation = _pair_to_device(classifier, "validation_data", validation_data)
        robust = check_robust_validation(
            trainer, _pair_to_device(classifier, "robust_validation", robust_validation), robust_eval
        )
        if keep_best is not None:
            keep_best = check_choice("keep_best", keep_best, KEEP_BEST)
        if keep_best == "robust" and robust is None:
            raise ValueError("keep_best='robust' needs robust_validation=(x_val, y_val), the set it is measured on.")
        if keep_best == "clean" and validation is None and robust is None:
            raise ValueError("keep_best='clean' needs validation_data or robust_validation, the set it is measured on.")
        payload = ckpt.load_checkpoint(checkpoint_dir, classifier.device) if resume else None
        if checkpoint_dir is not None and Ranks.current().rank == 0:
            ckpt.prepare_folder(checkpoint_dir)
        return cls(
            nb_epochs=nb_epochs,
            scheduler=scheduler,
            seed=seed,
            validation=validation,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            resume_payload=payload,
            verbose=verbose,
            drop_last=drop_last,
            training_mode=training_mode,
            allow_config_change=allow_config_change,
            robust=robust,
            keep_best=keep_best,
        )

    @property
    def best_measure(self) -> str | None:
        """The epoch-record field ``keep_best`` maximises: ``robust_val_accuracy``, ``val_accuracy`` (``"clean"``
        with ``validation_data``), ``robust_val_clean_accuracy`` (``"clean"`` with only ``robust_validation``),
        or ``None``."""
        if self.keep_best == "robust":
            return "robust_val_accuracy"
        if self.keep_best == "clean":
            return "val_accuracy" if self.validation is not None else "robust_val_clean_accuracy"
        return None

    def run_config(self) -> dict[str, Any]:
        """The options that belong to the run's recorded configuration (compared on resume).

        :return: ``keep_best``, the robust-validation attack's description (``None`` without one), and
            ``drop_last`` / ``training_mode`` where they differ from their defaults.
        """
        fit = {name: getattr(self, name) for name, default in _FIT_DEFAULTS.items() if getattr(self, name) != default}
        robust = None if self.robust is None else self.robust.config()
        return {"keep_best": self.keep_best, "robust_eval": robust, **fit}

    @property
    def scheduler_per_batch(self) -> bool:
        """Whether the scheduler is one that torch steps after every batch (see :data:`PER_BATCH_SCHEDULERS`)."""
        return isinstance(self.scheduler, PER_BATCH_SCHEDULERS)

    def step_scheduler(self, per_batch: bool, epoch_loss: float | None = None) -> None:
        """Step the scheduler if it is due at this point (``ReduceLROnPlateau`` receives the epoch's loss).

        :param per_batch: Whether this call comes after a batch (else after an epoch).
        :param epoch_loss: The epoch's mean training loss, after an epoch.
        """
        if self.scheduler is None or per_batch != self.scheduler_per_batch:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(epoch_loss)
        else:
            self.scheduler.step()


def _pair_to_device(classifier: Any, name: str, pair: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A user's ``(x, y)`` pair (``validation_data``, ``robust_validation``) checked and on the device."""
    if pair is None:
        return None
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name} must be a tuple (x_val, y_val) or None, got {type(pair).__name__}.")
    device = torch.device(classifier.device)
    return inputs_to_device(classifier, device, f"{name}[0]", pair[0], f"{name}[1]", pair[1])
