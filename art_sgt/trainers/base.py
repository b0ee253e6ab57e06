"""The one training loop shared by the SGT and ASGT trainers.

``fit`` and ``fit_generator`` validate their inputs once and hand a batch source on the classifier's device to
:meth:`SaliencyTrainerBase._loop`; a subclass only says how a batch's loss is formed (``_batch_loss``), from two
building blocks: :meth:`~SaliencyTrainerBase._saliency_mask` (saliency, then mask) and
:meth:`~SaliencyTrainerBase._train_logits`. Seeds, random states, Ctrl-C, checkpoints and ranks are the business
of :class:`~art_sgt.trainers._run_state.RunState`.
"""

from __future__ import annotations

import abc
import logging
import time
import warnings
from typing import Any

import numpy as np
import torch
from art.defences.trainer.trainer import Trainer
from torch import nn
from tqdm.auto import tqdm

from art_sgt._art import PreprocessedModel, check_pytorch_classifier, clip_bounds
from art_sgt._validation import check_bool, check_choice, check_fraction, check_non_negative, check_positive_int
from art_sgt.masking import apply_mask, least_salient_mask
from art_sgt.saliency import SALIENCY_OF, bound_module, eval_mode, is_mode_independent, make_saliency_fn
from art_sgt.trainers._data import ArrayBatches, GeneratorBatches, batch_bounds
from art_sgt.trainers._options import RunOptions, check_fill, check_run_options, inputs_to_device
from art_sgt.trainers._run_state import RunState, architecture_fingerprint

__all__ = ["SaliencyTrainerBase"]

logger = logging.getLogger(__name__)


class _JointForward(nn.Module):
    """Train-mode outputs of several batches: one forward of their concatenation, or one forward each when a
    layer couples the samples of a batch (BatchNorm), so that one process and ``torch.distributed`` compute the
    same thing. ``DistributedDataParallel`` wraps this module, so every case is a single DDP forward."""

    def __init__(self, net: nn.Module, separate: bool) -> None:
        super().__init__()
        self.net, self.separate = net, separate

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(inputs) == 1 or self.separate:
            return tuple(self.net(t) for t in inputs)
        return tuple(self.net(torch.cat(inputs)).split([len(t) for t in inputs]))


class SaliencyTrainerBase(Trainer, abc.ABC):
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
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or an argument has the wrong type.
    :raises ValueError: If the classifier has no optimizer, is channels-last or has a label-mixing preprocessor,
        a Captum instance is bound to another model, or an argument is out of range.
    """

    def __init__(
        self,
        classifier: Any,
        mask_fraction: float = 0.5,
        kl_weight: float = 1.0,
        saliency: Any = "gradient",
        absolute: bool = False,
        fill: Any = "uniform",
        saliency_of: str = "log_prob",
    ) -> None:
        check_pytorch_classifier("classifier", classifier, need_optimizer=True)
        self.mask_fraction = check_fraction("mask_fraction", mask_fraction)
        self.kl_weight = check_non_negative("kl_weight", kl_weight)
        self.saliency_of = check_choice("saliency_of", saliency_of, SALIENCY_OF)
        self._saliency_fn = make_saliency_fn(saliency, saliency_of=self.saliency_of)
        _check_bound_to(saliency, classifier)
        self._saliency_spec = saliency
        self.absolute = check_bool("absolute", absolute)
        self.fill = check_fill(fill)
        super().__init__(classifier)
        self._device = torch.device(classifier.device)
        self._net = PreprocessedModel(classifier, apply="fit")
        self._attack_net = PreprocessedModel(classifier, apply="predict")
        self._clip = clip_bounds(classifier, self._device)
        self._noise = torch.Generator(device=self._device)
        self._noise.manual_seed(0)
        self._couples_samples = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in classifier.model.modules())
        self._joint: nn.Module = _JointForward(self._net, separate=self._couples_samples)
        self._kl_reduction = "sum" if getattr(classifier.loss, "reduction", "mean") == "sum" else "batchmean"
        self._outputs: str | None = None  # "logits" or "probabilities", seen on the first batch of a fit
        self._fused = False
        self._position = (0, 0, 0)  # (epoch, batch in the epoch, batch since the start) of the batch being trained
        self.history: list[dict[str, float]] = []

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

    def _config(self) -> dict[str, Any]:
        """The run's configuration recorded in checkpoints and compared on resume (subclasses add theirs)."""
        classifier = self._classifier
        return {
            "trainer": type(self).__name__,
            "architecture": architecture_fingerprint(classifier.model),
            "optimizer": type(classifier.optimizer).__name__,
            "mask_fraction": self.mask_fraction,
            "kl_weight": self.kl_weight,
            "saliency": _describe(self._saliency_spec),
            "saliency_of": self.saliency_of,
            "fill": _describe(self.fill),
            "absolute": self.absolute,
        }

    # ------------------------------------------------------------------ building blocks for _batch_loss
    def _saliency_mask(self, x: torch.Tensor, target: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Saliency of ``x`` for ``target`` (``None``: the prediction), eval-mode semantics, then masking.

        When the model computes the same function in train and eval mode and the saliency is the plain input
        gradient, one train-mode forward serves both the saliency and the loss: its outputs are returned (with
        their graph) for :meth:`_train_logits` to reuse. Otherwise returns ``(None, masked)``.

        :raises FloatingPointError: If the saliency map holds NaN or infinite values.
        """
        outputs = None
        if self._fused:
            x_in = x.detach().requires_grad_(True)
            outputs = self._net(x_in)
            chosen = outputs.detach().argmax(1) if target is None else target
            scores = torch.log_softmax(outputs, 1) if self.saliency_of == "log_prob" else outputs
            (saliency,) = torch.autograd.grad(scores.gather(1, chosen[:, None]).sum(), x_in, retain_graph=True)
        else:
            if target is None:
                with torch.no_grad(), eval_mode(self._attack_net):
                    target = self._attack_net(x).argmax(1)
            saliency = self._saliency_fn(self._attack_net, x, target)
        if saliency.shape != x.shape:
            raise ValueError(
                f"saliency must return a map of the input's shape {tuple(x.shape)}, got {tuple(saliency.shape)}."
            )
        if not bool(torch.isfinite(saliency).all()):
            epoch, batch, _ = self._position
            raise FloatingPointError(
                f"saliency map holds NaN or infinite values at epoch {epoch + 1}, batch {batch + 1}: its ranking "
                "would be meaningless; training stopped, the last checkpoint is untouched."
            )
        mask = least_salient_mask(saliency, self.mask_fraction, self.absolute)
        return outputs, apply_mask(x, mask, self.fill, generator=self._noise, clip_values=self._clip)

    def _train_logits(
        self, *inputs: torch.Tensor, known: dict[int, torch.Tensor | None] | None = None
    ) -> list[torch.Tensor]:
        """Train-mode outputs of several batches (``known`` outputs, by position, are reused, not recomputed)."""
        known = {i: t for i, t in (known or {}).items() if t is not None}
        todo = [t for i, t in enumerate(inputs) if i not in known]
        computed = iter(self._joint(*todo) if todo else ())
        outputs = [known[i] if i in known else next(computed) for i in range(len(inputs))]
        if self._outputs is None:
            self._outputs = _output_kind(outputs[0])
        return outputs

    def _task_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._classifier.loss(logits, y)

    def _loss_options(self) -> dict[str, Any]:
        """Keyword arguments of :mod:`art_sgt.losses` for this classifier (its loss, reduction, output kind)."""
        return {"task_loss": self._task_loss, "kl_reduction": self._kl_reduction, "outputs": self._outputs}

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
            ``checkpoint_every`` epochs, at the end, and on Ctrl-C (after the current batch; a second Ctrl-C stops
            at once, writing nothing for a half-done batch). A run with ``resume=False`` keeps a checkpoint
            already there as ``checkpoint.previous-<time>.pt``. If a write fails, the weights are saved in the
            system's temporary folder and the error says where.
        :param checkpoint_every: Epochs between checkpoints.
        :param resume: Continue from the checkpoint in ``checkpoint_dir``; an interrupted run resumed with the
            same arguments ends with the same weights as an uninterrupted one (bitwise, on CPU). The checkpoint's
            recorded configuration (trainer, its parameters, attacks, batch size, seed, model architecture,
            optimizer type) is compared with this run's before anything is loaded; a difference is refused.
        :param allow_config_change: Resume even though trainer parameters, attacks, batch size or seed differ
            (a warning names them); a different trainer, architecture or optimizer type is always refused.
        :param kwargs: ART's ``PyTorchClassifier.fit`` keywords ``drop_last`` (bool) and ``training_mode``
            (bool: ``False`` trains with the model in eval mode).
        :raises TypeError: For an unknown keyword argument or an argument of the wrong type.
        :raises ValueError: For inputs of the wrong shape, range or content, an unwritable ``checkpoint_dir`` or a
            checkpoint of another run, before any training.
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
            allow_config_change, kwargs,
        )  # fmt: skip
        state = RunState(self, options, {**self._config(), "batch_size": batch_size, "seed": seed})
        bounds = batch_bounds(len(x_t), batch_size, options.drop_last, self._min_batch(state), state.ranks.world)
        self._prepare_forwards(x_t[:8], state)
        with state.running():
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
        options = check_run_options(
            self, validation_data, nb_epochs, scheduler, seed, verbose, checkpoint_dir, checkpoint_every, resume,
            allow_config_change, kwargs,
        )  # fmt: skip
        state = RunState(self, options, {**self._config(), "batch_size": generator.batch_size, "seed": seed})

        def convert(x_batch: np.ndarray, y_batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            batch = inputs_to_device(
                self._classifier, self._device, "generator batch x", x_batch, "generator batch y", y_batch
            )
            self._check_fit_inputs(batch[0])
            return batch

        source = GeneratorBatches(generator, convert, self._min_batch(state) // state.ranks.world)
        self._prepare_forwards(None, state)
        with state.running():
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
            totals = torch.zeros(3, dtype=torch.float64, device=self._device)
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
                    state.after_batch(epoch, b)
                    bar.update(1)
            self._end_epoch(epoch, totals, options, started, state)
            state.after_epoch(epoch)

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
            record["val_accuracy"] = self._accuracy(*options.validation)
        record["seconds"] = time.perf_counter() - started
        self.history.append(record)
        if state.ranks.rank == 0:
            _report(record, options)

    @torch.no_grad()
    def _accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
        correct = torch.zeros((), dtype=torch.int64, device=self._device)
        with eval_mode(self._attack_net):
            for start in range(0, len(x), batch_size):
                correct += (
                    self._attack_net(x[start : start + batch_size]).argmax(1) == y[start : start + batch_size]
                ).sum()
        return int(correct) / len(x)

    # ------------------------------------------------------------------ set-up of one run
    def _min_batch(self, state: RunState) -> int:
        return state.ranks.world * (2 if self._couples_samples else 1)

    def _prepare_forwards(self, probe: torch.Tensor | None, state: RunState) -> None:
        """The train-mode forward (inside ``DistributedDataParallel`` under ``torch.distributed``), and whether
        one train-mode forward may serve saliency and loss (see :meth:`_saliency_mask`)."""
        self._joint = _JointForward(self._net, separate=self._couples_samples)
        if state.ranks.world > 1:
            device_ids = [self._device.index] if self._device.type == "cuda" else None
            self._joint = nn.parallel.DistributedDataParallel(self._joint, device_ids=device_ids)
        same_chain = [type(s) for s in self._net._steps] == [type(s) for s in self._attack_net._steps]
        self._fused = (
            isinstance(self._saliency_spec, str)
            and state.ranks.world == 1
            and probe is not None
            and same_chain
            and is_mode_independent(self._net, probe)
        )


def _check_bound_to(saliency: Any, classifier: Any) -> None:
    """Refuse a Captum attribution instance bound to a model other than the classifier's."""
    from captum.attr import Attribution

    if not isinstance(saliency, Attribution):
        return
    module = bound_module(saliency)
    if module is not None and not any(m is classifier.model for m in module.modules()):
        raise ValueError(
            f"saliency {type(saliency).__name__} is bound to a model that is not the classifier's, so it would "
            "explain another network during training; build it on classifier.model (or pass its class)."
        )


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return repr(float(value))
    return getattr(value, "__qualname__", type(value).__qualname__)


def _output_kind(outputs: torch.Tensor) -> str:
    """``"probabilities"`` for outputs that are rows of probabilities (a model ending in softmax), with a warning."""
    with torch.no_grad():
        rows_sum_to_one = torch.allclose(outputs.sum(1), torch.ones(len(outputs), device=outputs.device), atol=1e-4)
        probabilities = bool(rows_sum_to_one and (outputs >= 0).all())
    if probabilities:
        warnings.warn(
            "the model's outputs are probabilities (rows of non-negative values summing to 1), not logits: the KL "
            "term uses their logarithm. Train a model returning logits if the classifier's loss expects them.",
            stacklevel=4,
        )
        return "probabilities"
    return "logits"


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


def _report(record: dict[str, float], options: RunOptions) -> None:
    text = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "seconds"))
    line = f"epoch {record['epoch']}/{options.nb_epochs}: {text} ({record['seconds']:.1f}s)"
    logger.info(line)
    if options.verbose:
        tqdm.write(line)
