"""The one training loop shared by the SGT and ASGT trainers.

``fit`` and ``fit_generator`` validate their inputs once and hand a batch source on the classifier's device to
:meth:`SaliencyTrainerBase._loop`; a subclass only says how a batch's loss is formed (``_batch_loss``), from two
building blocks of :class:`~art_sgt.trainers._steps.BatchSteps` (saliency then mask, and the train-mode
forwards). Seeds, random states, Ctrl-C, checkpoints and ranks are the business
of :class:`~art_sgt.trainers._run_state.RunState`; the robust-validation measurement is
:mod:`art_sgt.trainers._robust_validation`'s, the choice of the epoch kept and the catastrophic-overfitting
guard :mod:`art_sgt.trainers._selection`'s.
"""

from __future__ import annotations

import abc
import logging
import time
from typing import Any

import numpy as np
import torch
from art.defences.trainer.trainer import Trainer
from tqdm.auto import tqdm

from art_sgt._validation import check_positive_int
from art_sgt.trainers._data import ArrayBatches, GeneratorBatches, batch_bounds
from art_sgt.trainers._options import RunOptions, check_run_options, inputs_to_device
from art_sgt.trainers._robust_validation import batched_accuracy
from art_sgt.trainers._run_state import RunState
from art_sgt.trainers._steps import BatchSteps

__all__ = ["SaliencyTrainerBase"]

logger = logging.getLogger(__name__)


class SaliencyTrainerBase(BatchSteps, Trainer, abc.ABC):
    """Shared machinery of the saliency-guided trainers (subclass it; do not use it directly).

    :param classifier: An ART ``PyTorchClassifier`` with an optimizer; its model, optimizer, loss, device,
        preprocessing and ``clip_values`` are used as they are.
    :param mask_fraction: Fraction of input positions masked per sample, in (0, 1).
    :param kl_weight: Weight of the KL term, >= 0.
    :param saliency: ``"gradient"``, a Captum attribution class or instance, or a callable
        ``(model, x, target) -> map`` (see :func:`art_sgt.saliency.make_saliency_fn`). A Captum instance must be
        bound to the classifier's model (or a module containing it).
    :param absolute: Rank positions by absolute instead of signed saliency.
    :param fill: What masked positions receive (see :func:`art_sgt.masking.apply_mask`).
    :param saliency_of: ``"log_prob"`` (default, the reference's: its network ends in ``log_softmax``) or
        ``"logit"``: what ``"gradient"`` and Captum classes differentiate.
    :param amp: ``None`` (default, float32) or ``"bf16"`` autocast (see :doc:`/performance` for its measured speed).
    :param channels_last: Channels-last inputs and weights (converted in place).
    :param compile: ``torch.compile`` the model's forwards.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or an argument has the wrong type.
    :raises ValueError: If the classifier has no optimizer, is channels-last or has a label-mixing preprocessor,
        a Captum instance is bound to another model, or an argument is out of range.
    """

    #: With ``keep_best``: the epoch (1-based, of the last ``fit`` call) whose weights the model ended with.
    best_epoch: int | None = None
    #: With ``keep_best``: that epoch's value of ``best_measure``.
    best_score: float | None = None
    #: With ``keep_best``: the history field it maximises (``"robust_val_accuracy"``, ``"val_accuracy"`` or
    #: ``"robust_val_clean_accuracy"``).
    best_measure: str | None = None

    # ------------------------------------------------------------------ the seam subclasses fill in
    @abc.abstractmethod
    def _batch_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Form one batch's loss.

        :param x: Raw inputs on the device (before preprocessing).
        :param y: Class indices on the device.
        :return: ``(loss, clean_outputs)``; the loop back-propagates ``loss`` and reports accuracy from the outputs.
        """

    def _check_fit_inputs(self, x: torch.Tensor) -> None:
        """Extra checks a subclass runs on the training inputs before they are used (none by default)."""

    def _check_ready(self) -> None:
        """Extra checks and set-up a subclass runs when ``fit`` starts, before any work (none by default)."""

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        batch_size: int = 128,
        nb_epochs: int = 20,
        scheduler: Any = None,
        seed: int | None = None,
        verbose: bool = True,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        allow_config_change: bool = False,
        robust_validation: tuple[np.ndarray, np.ndarray] | None = None,
        robust_eval: Any = None,
        keep_best: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Train the classifier's model in place.

        :param x: Training inputs in the classifier's input format, ``(n, *input_shape)``. Never modified.
        :param y: Labels, index ``(n,)`` or one-hot ``(n, nb_classes)``.
        :param validation_data: Optional ``(x_val, y_val)``; its accuracy is logged after every epoch.
        :param batch_size: Batch size (the global batch size under ``torch.distributed``). An incomplete last
            batch is dropped with ``drop_last=True``; a last batch of one sample for a model with BatchNorm is
            merged into the batch before it (skipped under ``torch.distributed``).
        :param nb_epochs: Number of epochs.
        :param scheduler: Optional torch learning-rate scheduler on the classifier's optimizer, stepped once per
            epoch (``ReduceLROnPlateau`` receives the epoch's mean training loss), or after every batch for
            ``OneCycleLR`` and ``CyclicLR``.
        :param seed: Seed of the shuffling, the fill noise, attack random starts and torch's, numpy's and Python's
            global generators (the caller's global states are restored when ``fit`` returns). ``None`` draws one
            from the operating system, leaving the caller's generators untouched.
        :param verbose: Show a progress bar per epoch and a line per epoch.
        :param checkpoint_dir: Folder for ``checkpoint.pt``, checked writable before training: written every
            ``checkpoint_every`` epochs, at the end, and on Ctrl-C or SIGTERM (after the current batch, then
            ``KeyboardInterrupt``; a second one stops at once, writing nothing for a half-done batch). A run with
            ``resume=False`` keeps a checkpoint already there as ``checkpoint.previous-<time>.pt``. If a write
            fails, the weights are saved in the system's temporary folder and the error says where.
        :param checkpoint_every: Epochs between checkpoints.
        :param resume: Continue from the checkpoint in ``checkpoint_dir``; an interrupted run resumed with the
            same arguments ends with the same weights as an uninterrupted one (bitwise, on CPU). The checkpoint's
            recorded configuration (trainer, its parameters, attacks, batch size, seed, model architecture,
            optimizer type) is compared with this run's before anything is loaded; a difference is refused.
        :param allow_config_change: Resume even though trainer parameters, attacks, batch size or seed differ
            (a warning names them); a different trainer, architecture or optimizer type is always refused.
        :param robust_validation: Optional ``(x_val, y_val)`` held out for robust validation (never the test
            set): after every epoch, the history records ``robust_val_accuracy`` (under ``robust_eval``),
            ``robust_val_clean_accuracy`` and ``single_step_val_accuracy`` (FGSM at ``robust_eval``'s eps and
            norm, without random start) on it, and the catastrophic-overfitting guard runs: when robust accuracy
            falls at least 0.2 below its best so far while single-step accuracy exceeds it by at least 0.3, a
            ``CatastrophicOverfittingWarning`` names the epoch and the record holds
            ``catastrophic_overfitting: True``. Measured in eval mode, batched, on the classifier's device,
            through its preprocessing, with fixed random draws that leave training's random streams untouched.
        :param robust_eval: The ART evasion attack on this classifier that ``robust_val_accuracy`` is measured
            under (PGD, BIM and FGSM run on the on-device fast path, equal to ART's ``generate`` without random
            start; any other attack runs its ``generate``). ``None``: for ASGT, a 10-step PGD at the first
            training attack's eps and norm with step eps / 4 and no random start; SGT has no training eps, so
            ``robust_validation`` needs ``robust_eval``. Recorded in the run's configuration.
        :param keep_best: ``"robust"`` (needs ``robust_validation``: the highest ``robust_val_accuracy``),
            ``"clean"`` (the highest ``val_accuracy`` on ``validation_data``, else ``robust_val_clean_accuracy``)
            or ``None`` (default: the last epoch's weights). The model ends with the weights of the best epoch
            (the earliest on ties), named by ``trainer.best_epoch``, ``best_measure`` and ``best_score`` and
            logged; with ``checkpoint_dir`` they are also written to ``best.pt`` whenever an epoch becomes the
            best (``{"epoch", "measure", "score", "model"}``), and ``checkpoint.pt`` keeps the last epoch's
            weights for resuming. The choice so far travels in the checkpoint, so a resumed run keeps the epoch
            an uninterrupted one keeps. Recorded in the run's configuration.
        :param kwargs: ART's ``PyTorchClassifier.fit`` keywords ``drop_last`` (bool) and ``training_mode``
            (bool: ``False`` trains with the model in eval mode).
        :raises TypeError: For an unknown keyword argument or an argument of the wrong type.
        :raises ValueError: For inputs of the wrong shape, range or content, an unwritable ``checkpoint_dir``, a
            checkpoint of another run, or a ``keep_best`` or ``robust_eval`` without the set it needs, before any
            training.
        :raises NotImplementedError: For a targeted attack (ASGT), as ART's ``AdversarialTrainer`` does.
        :raises FloatingPointError: If the loss or a saliency map becomes non-finite (the message names epoch and
            batch).
        """
        self._check_ready()
        x_t, y_t = inputs_to_device(self._classifier, self._device, "x", x, "y", y)
        self._check_fit_inputs(x_t)
        batch_size = check_positive_int("batch_size", batch_size)
        options = check_run_options(
            self, validation_data, nb_epochs, scheduler, seed, verbose, checkpoint_dir, checkpoint_every, resume,
            allow_config_change, kwargs, robust_validation, robust_eval, keep_best,
        )  # fmt: skip
        config = {**self._config(), "batch_size": batch_size, "n_samples": len(x_t), "seed": seed,
                  **options.run_config()}  # fmt: skip
        state = RunState(self, options, config)
        world = state.ranks.world
        bounds = batch_bounds(len(x_t), batch_size, options.drop_last, self._min_batch(world), world)
        with self._training_forwards(x_t[:8], state), state.running():
            source = ArrayBatches(x_t, y_t, bounds, state.seed, state.ranks.rank, state.ranks.world)
            self._loop(source, state, options)

    def fit_generator(
        self,
        generator: Any,
        nb_epochs: int = 20,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        scheduler: Any = None,
        seed: int | None = None,
        verbose: bool = True,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        allow_config_change: bool = False,
        robust_validation: tuple[np.ndarray, np.ndarray] | None = None,
        robust_eval: Any = None,
        keep_best: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Train from an ART ``DataGenerator`` (its ``get_batch()`` yields numpy ``(x, y)`` batches).

        Each batch is validated as in :meth:`fit` and moved to the device. The other parameters are those of
        :meth:`fit`; on resume, the batches of the interrupted epoch already done are drawn and skipped. For a
        model with BatchNorm, a generator batch of one sample is skipped with a warning.

        :param generator: An ``art.data_generators.DataGenerator`` with a known ``size``.
        :raises TypeError: If ``generator`` is not an ART ``DataGenerator``.
        :raises ValueError: If the generator's ``size`` is ``None``.
        """
        from art.data_generators import DataGenerator

        if not isinstance(generator, DataGenerator):
            raise TypeError(f"generator must be an art.data_generators.DataGenerator, got {type(generator).__name__}.")
        self._check_ready()

        def convert(x_batch: np.ndarray, y_batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            batch = inputs_to_device(
                self._classifier, self._device, "generator batch x", x_batch, "generator batch y", y_batch
            )
            self._check_fit_inputs(batch[0])
            return batch

        options = check_run_options(
            self, validation_data, nb_epochs, scheduler, seed, verbose, checkpoint_dir, checkpoint_every, resume,
            allow_config_change, kwargs, robust_validation, robust_eval, keep_best,
        )  # fmt: skip
        source = GeneratorBatches(generator, convert, self._min_batch(1), drop_last=options.drop_last)
        config = {**self._config(), "batch_size": generator.batch_size, "n_samples": generator.size, "seed": seed,
                  **options.run_config()}  # fmt: skip
        state = RunState(self, options, config)
        with self._training_forwards(None, state), state.running():
            self._loop(source, state, options)

    def predict(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Predict with the trained classifier (ART's ``PyTorchClassifier.predict``).

        :param x: Inputs.
        :param kwargs: Passed to ``predict`` (e.g. ``batch_size``).
        :return: The classifier's predictions.
        """
        return self._classifier.predict(x, **kwargs)

    # ------------------------------------------------------------------ the loop
    def _loop(self, source: Any, state: RunState, options: RunOptions) -> None:
        optimizer = self._classifier.optimizer
        params = [p for p in self._classifier.model.parameters() if p.requires_grad]
        self._outputs = None
        for epoch in range(state.epoch, options.nb_epochs):
            self._classifier.model.train(options.training_mode)
            started = time.perf_counter()
            totals = state.epoch_totals()
            hidden = not options.verbose or state.ranks.rank != 0
            with tqdm(
                total=len(source),
                initial=state.batch,
                desc=f"Epoch {epoch + 1}/{options.nb_epochs}",
                disable=hidden,
                leave=False,
            ) as bar:
                for b, xb, yb in source.epoch(epoch, state.batch):
                    state.begin_batch()
                    self._position = (epoch, b, epoch * len(source) + b)
                    loss, logits = self._batch_loss(xb, yb)
                    _check_finite(loss, epoch, b)
                    optimizer.zero_grad(set_to_none=True)  # after _batch_loss: ART attacks may write .grad
                    loss.backward(inputs=params)
                    state.before_step()
                    optimizer.step()
                    options.step_scheduler(per_batch=True)
                    totals += _batch_totals(loss, logits, yb)
                    state.after_batch(epoch, b, totals)
                    bar.update(1)
            state.epoch_ends()
            self._end_epoch(epoch, totals, options, started, state)
            state.after_epoch(epoch)
        kept = state.finish()
        if kept is not None and state.ranks.rank == 0:
            _say(kept, options)

    def _end_epoch(
        self, epoch: int, totals: torch.Tensor, options: RunOptions, started: float, state: RunState
    ) -> None:
        if state.ranks.world > 1:
            totals = totals.clone()
            torch.distributed.all_reduce(totals)
        loss_sum, correct, count = totals.tolist()
        record = {"epoch": epoch + 1, "loss": loss_sum / max(count, 1), "train_accuracy": correct / max(count, 1)}
        options.step_scheduler(per_batch=False, epoch_loss=record["loss"])
        if options.validation is not None:
            record["val_accuracy"] = batched_accuracy(self._attack_net, *options.validation)
        if options.robust is not None:
            record.update(options.robust.measure(self._attack_net, state.ranks))
        state.select(record)
        record["seconds"] = time.perf_counter() - started
        self.history.append(record)
        if state.ranks.rank == 0:
            _report(record, options)


def _check_finite(loss: torch.Tensor, epoch: int, batch: int) -> None:
    if not bool(torch.isfinite(loss)):
        raise FloatingPointError(
            f"non-finite training loss ({float(loss.detach())}) at epoch {epoch + 1}, batch {batch + 1}; "
            "training stopped, the last checkpoint is untouched."
        )


def _batch_totals(loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        n = torch.ones_like(loss) * len(y)
        return torch.stack([loss.detach() * len(y), (logits.argmax(1) == y).sum(), n]).double()


def _report(record: dict[str, Any], options: RunOptions) -> None:
    shown = {k: v for k, v in record.items() if k not in ("epoch", "seconds") and v is not False}
    text = ", ".join(k if v is True else f"{k} {v:.4f}" for k, v in shown.items())
    _say(f"epoch {record['epoch']}/{options.nb_epochs}: {text} ({record['seconds']:.1f}s)", options)


def _say(line: str, options: RunOptions) -> None:
    logger.info(line)
    if options.verbose:
        tqdm.write(line)
