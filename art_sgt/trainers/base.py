"""The one trainer class both saliency-guided trainers are: construction, options and the training loop.

:class:`SaliencyTrainerBase` validates the parameters, builds the forwards, checks a ``fit`` call's options once
(:class:`~art_sgt.trainers._options.FitOptions`) and runs the epoch/batch loop; a subclass only says how a batch's
inputs and loss are formed (:meth:`SaliencyTrainerBase._batch_loss`), from the building blocks here (saliency then
mask, the train-mode forwards, the loss options and the recorded loss terms). The loop tells a
:class:`~art_sgt.trainers._run_state.RunState` where it stands, for seeds, checkpoints, Ctrl-C and the epoch kept.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from art.defences.trainer.trainer import Trainer
from torch import nn
from tqdm.auto import tqdm

from art_sgt._art import PreprocessedModel, check_pytorch_classifier, clip_bounds
from art_sgt._validation import check_bool, check_choice, check_fraction, check_non_negative, check_positive_int
from art_sgt.losses import kl_divergence, log_probabilities
from art_sgt.masking import Fill, apply_mask, least_salient_mask
from art_sgt.precision import Accelerated, check_amp
from art_sgt.saliency import SALIENCY_OF, bound_module, eval_mode, is_mode_independent, make_saliency_fn
from art_sgt.trainers._checkpoint import architecture_fingerprint
from art_sgt.trainers._data import ArrayBatches, GeneratorBatches, batch_bounds
from art_sgt.trainers._forward import JointForward, outputs_kind
from art_sgt.trainers._options import FitOptions, check_fill, inputs_to_device
from art_sgt.trainers._robust_validation import batched_accuracy
from art_sgt.trainers._run_state import RunState

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier
    from captum.attr import Attribution

__all__ = ["SaliencyTrainerBase", "BatchLoss"]

logger = logging.getLogger(__name__)


class BatchLoss(NamedTuple):
    """What a trainer's :meth:`~SaliencyTrainerBase._batch_loss` returns for one batch."""

    #: The loss the loop back-propagates.
    loss: torch.Tensor
    #: The clean inputs' outputs, which the training accuracy is read from.
    outputs: torch.Tensor
    #: The loss's terms by name (detached 0-d tensors; see ``loss_terms``), averaged into the epoch's record.
    terms: dict[str, torch.Tensor]


class SaliencyTrainerBase(Trainer, abc.ABC):
    """The saliency-guided trainers' construction, options and training loop (subclass it; do not use it
    directly). A subclass implements :meth:`_batch_loss` and names its :attr:`loss_terms`.

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
    :param amp: ``None`` (default, float32) or ``"bf16"``: run the model's forward and backward (training,
        saliency, fast-path PGD, validation) under ``torch.autocast`` with bfloat16; weights, optimizer,
        preprocessing and the outputs handed to the losses stay float32. ``"fp16"`` is refused: float16 needs a
        ``GradScaler`` in the training loop, which it does not run. A CPU without native bfloat16 emulates it,
        which makes it slower than float32 there (:doc:`/performance` states the measured speeds).
    :param channels_last: Give 4-d inputs and the model's weights the channels-last memory format. The weights
        are converted in place when the trainer is built (same parameter objects, values, shapes and
        ``state_dict`` keys; only the strides change, and they stay after ``fit``).
    :param compile: Run the model through ``torch.compile(model, dynamic=False)``: graphs are compiled during the
        first batches of the first ``fit`` (one per input shape and mode) and reused afterwards. No
        ``_orig_mod.`` prefix reaches any ``state_dict``. Compiling takes tens of seconds, which short runs
        do not win back.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or an argument has the wrong type.
    :raises ValueError: If the classifier has no optimizer, is channels-last or has a label-mixing preprocessor,
        a Captum instance is bound to another model, its loss does not reduce the batch to one value, or an
        argument is out of range.
    """

    #: With ``keep_best``: the epoch (1-based, of the last ``fit`` call) whose weights the model ended with.
    best_epoch: int | None = None
    #: With ``keep_best``: that epoch's value of ``best_measure``.
    best_score: float | None = None
    #: With ``keep_best``: the history field it maximises (``"robust_val_accuracy"``, ``"val_accuracy"`` or
    #: ``"robust_val_clean_accuracy"``).
    best_measure: str | None = None

    def __init__(
        self,
        classifier: PyTorchClassifier,
        mask_fraction: float = 0.5,
        kl_weight: float = 1.0,
        saliency: str | type | Attribution | Callable[..., torch.Tensor] = "gradient",
        absolute: bool = False,
        fill: Fill = "uniform",
        saliency_of: str = "log_prob",
        amp: str | None = None,
        channels_last: bool = False,
        compile: bool = False,  # noqa: A002 - the option's name is torch.compile's
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
        self._couples_samples = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in classifier.model.modules())
        self._set_hardware_options(amp, channels_last, compile)
        self._clip = clip_bounds(classifier, self._device)
        self._noise = torch.Generator(device=self._device)
        self._noise.manual_seed(0)
        reduction = getattr(classifier.loss, "reduction", "mean")
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"classifier.loss must reduce the batch to one value (reduction 'mean' or 'sum'), got a "
                f"{type(classifier.loss).__name__} with reduction {reduction!r}."
            )
        self._kl_reduction = "sum" if reduction == "sum" else "batchmean"
        self._outputs: str | None = None  # "logits" or "probabilities", seen on the first batch of a fit
        self._fused = False
        self._position = (0, 0, 0)  # (epoch, batch in the epoch, batch since the start) of the batch being trained
        #: One record per epoch trained, across ``fit`` calls (restored from the checkpoint on resume): ``epoch``,
        #: ``loss`` (mean training loss), ``train_accuracy``, the mean of each of :attr:`loss_terms`,
        #: ``val_accuracy`` (with ``validation_data``), ``robust_val_accuracy``, ``robust_val_clean_accuracy``,
        #: ``single_step_val_accuracy`` and ``catastrophic_overfitting`` (with ``robust_validation``), ``seconds``.
        self.history: list[dict[str, float]] = []

    def _set_hardware_options(self, amp: str | None, channels_last: bool, compile: bool) -> None:  # noqa: A002
        """Validate ``amp``, ``channels_last`` and ``compile`` and build the two forwards with them: ``_net``
        (training, through the fit preprocessing) and ``_attack_net`` (saliency, the fast-path PGD and validation,
        through the predict preprocessing). One :class:`~art_sgt.precision.Accelerated` wrapper (one compiled
        forward) is shared by both; the preprocessing stays float32 and outside ``torch.compile``, and the
        classifier's model object stays the classifier's model."""
        self.amp = check_amp("amp", amp)
        self.channels_last = check_bool("channels_last", channels_last)
        self.compile = check_bool("compile", compile)
        self._net = PreprocessedModel(self._classifier, apply="fit")
        self._attack_net = PreprocessedModel(self._classifier, apply="predict")
        if self.amp is not None or self.channels_last or self.compile:
            accelerated = Accelerated(self._classifier.model, self.amp, self.channels_last, self.compile)
            self._net.model = self._attack_net.model = accelerated
        self._joint: nn.Module = JointForward(self._net, separate=self._couples_samples)

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
            # recorded only when set: a run at the defaults records what a run that never names them does
            **{name: getattr(self, name) for name in ("amp", "channels_last", "compile") if getattr(self, name)},
        }

    # ------------------------------------------------------------------ the seam subclasses fill in
    @property
    @abc.abstractmethod
    def loss_terms(self) -> tuple[str, ...]:
        """The names of the batch loss's terms, each averaged over the epoch's batches into its history record."""

    @abc.abstractmethod
    def _batch_loss(self, x: torch.Tensor, y: torch.Tensor) -> BatchLoss:
        """Form one batch's inputs and loss.

        :param x: Raw inputs on the device (before preprocessing).
        :param y: Class indices on the device.
        :return: The loss, the clean outputs (the training accuracy is read from them) and the terms named by
            :attr:`loss_terms`.
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
            same arguments ends with the same weights and history as an uninterrupted one (bitwise, on CPU). The
            checkpoint's recorded configuration (trainer, its parameters, attacks, batch size, seed, model
            architecture, optimizer type) is compared with this run's before anything is loaded; a difference is
            refused.
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
        arguments = locals()  # the call's arguments by name, before any other name is bound
        self._check_ready()
        x_t, y_t = inputs_to_device(self._classifier, self._device, "x", x, "y", y)
        self._check_fit_inputs(x_t)
        batch_size = check_positive_int("batch_size", batch_size)
        options = FitOptions.of_call(self, arguments)
        state = self._start_run(options, batch_size=batch_size, n_samples=len(x_t), seed=seed)
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
        arguments = locals()  # the call's arguments by name, before any other name is bound
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

        options = FitOptions.of_call(self, arguments)
        source = GeneratorBatches(generator, convert, self._min_batch(1), drop_last=options.drop_last)
        state = self._start_run(options, batch_size=generator.batch_size, n_samples=generator.size, seed=seed)
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
    def _start_run(self, options: FitOptions, **data: Any) -> RunState:
        """The state of one ``fit`` call, its configuration recorded with ``data`` (batch size, samples, seed);
        refuses a checkpoint of another run before anything is loaded, then takes its history."""
        config = {**self._config(), **data, **options.run_config()}
        state = RunState(self._classifier, self._noise, self.history, options, config)
        self.history = state.history
        self.best_epoch, self.best_score, self.best_measure = None, None, options.best_measure
        return state

    def _loop(self, source: Any, state: RunState, options: FitOptions) -> None:
        optimizer = self._classifier.optimizer
        params = [p for p in self._classifier.model.parameters() if p.requires_grad]
        terms = self.loss_terms
        self._outputs = None
        for epoch in range(state.epoch, options.nb_epochs):
            self._classifier.model.train(options.training_mode)
            started = time.perf_counter()
            totals = state.epoch_totals(terms)
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
                    batch = self._batch_loss(xb, yb)
                    _check_finite(batch.loss, epoch, b)
                    optimizer.zero_grad(set_to_none=True)  # after _batch_loss: ART attacks may write .grad
                    batch.loss.backward(inputs=params)
                    state.before_step()
                    optimizer.step()
                    options.step_scheduler(per_batch=True)
                    totals += _batch_totals(batch, yb, terms)
                    state.after_batch(epoch, b, totals)
                    bar.update(1)
            state.epoch_ends()
            self._end_epoch(epoch, totals, options, started, state)
            state.after_epoch(epoch)
        kept = state.finish()
        self.best_epoch, self.best_score = state.selection.epoch, state.selection.score
        if kept is not None and state.ranks.rank == 0:
            _say(kept, options)

    def _end_epoch(
        self, epoch: int, totals: torch.Tensor, options: FitOptions, started: float, state: RunState
    ) -> None:
        if state.ranks.world > 1:
            totals = totals.clone()
            torch.distributed.all_reduce(totals)
        loss_sum, correct, count, *term_sums = totals.tolist()
        count = max(count, 1)
        record = {"epoch": epoch + 1, "loss": loss_sum / count, "train_accuracy": correct / count}
        record.update({name: total / count for name, total in zip(self.loss_terms, term_sums)})
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

    # ------------------------------------------------------------------ building blocks of _batch_loss
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
            scores = log_probabilities(outputs, self._outputs) if self.saliency_of == "log_prob" else outputs
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
            self._outputs = outputs_kind(outputs[0])
        return outputs

    def _task_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._classifier.loss(logits, y)

    def _loss_options(self) -> dict[str, Any]:
        """Keyword arguments of :mod:`art_sgt.losses` for this classifier (its loss, reduction, output kind)."""
        return {"task_loss": self._task_loss, "kl_reduction": self._kl_reduction, "outputs": self._outputs}

    def _terms(
        self,
        y: torch.Tensor,
        ce: dict[str, torch.Tensor],
        kl: dict[str, tuple[torch.Tensor, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        """The loss terms of a batch, from detached outputs, off the graph: the classifier's loss of each of
        ``ce``'s outputs and :func:`~art_sgt.losses.kl_divergence` of each of ``kl``'s ``(p, q)`` pairs, reduced
        as the loss reduces them.

        :param y: Class indices.
        :param ce: Outputs by term name.
        :param kl: ``(p_outputs, q_outputs)`` by term name.
        :return: 0-d tensors by term name, in the order of :attr:`loss_terms`.
        """
        with torch.no_grad():
            values = {name: self._task_loss(out.detach(), y) for name, out in ce.items()}
            for name, (p, q) in kl.items():
                values[name] = kl_divergence(p.detach(), q.detach(), self._kl_reduction, self._outputs)
        return {name: values[name] for name in self.loss_terms}

    def _min_batch(self, world: int) -> int:
        """The smallest usable global batch: 2 samples per rank for a model with BatchNorm, else 1."""
        return world * (2 if self._couples_samples else 1)

    @contextmanager
    def _training_forwards(self, probe: torch.Tensor | None, state: RunState) -> Iterator[None]:
        """The train-mode forward for one ``fit`` (inside ``DistributedDataParallel`` under ``torch.distributed``),
        and whether one train-mode forward may serve saliency and loss (see :meth:`_saliency_mask`). The
        mode-independence probe runs on the plain network, so that it compiles nothing. On exit the DDP wrapper is
        dropped: it holds the process group, which must not outlive the caller's ``destroy_process_group`` (gloo's
        threads abort when a group is torn down at interpreter exit)."""
        self._joint = JointForward(self._net, separate=self._couples_samples)
        if state.ranks.world > 1:
            device_ids = [self._device.index] if self._device.type == "cuda" else None
            self._joint = nn.parallel.DistributedDataParallel(self._joint, device_ids=device_ids)
        same_chain = [type(s) for s in self._net._steps] == [type(s) for s in self._attack_net._steps]
        self._fused = (
            isinstance(self._saliency_spec, str)
            and state.ranks.world == 1
            and probe is not None
            and same_chain
            and is_mode_independent(PreprocessedModel(self._classifier, apply="fit"), probe)
        )
        try:
            yield
        finally:
            if isinstance(self._joint, nn.parallel.DistributedDataParallel):
                self._joint = self._joint.module


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


def _check_finite(loss: torch.Tensor, epoch: int, batch: int) -> None:
    if not bool(torch.isfinite(loss)):
        raise FloatingPointError(
            f"non-finite training loss ({float(loss.detach())}) at epoch {epoch + 1}, batch {batch + 1}; "
            "training stopped, the last checkpoint is untouched."
        )


def _batch_totals(batch: BatchLoss, y: torch.Tensor, terms: tuple[str, ...]) -> torch.Tensor:
    """A batch's contribution to the epoch's running sums: loss, correct, count, then each loss term (the loss
    and the terms weighted by the batch's size)."""
    with torch.no_grad():
        n = torch.ones_like(batch.loss) * len(y)
        correct = (batch.outputs.argmax(1) == y).sum()
        weighted = [batch.terms[name] * len(y) for name in terms]
        return torch.stack([batch.loss.detach() * len(y), correct, n, *weighted]).double()


def _report(record: dict[str, Any], options: FitOptions) -> None:
    shown = {k: v for k, v in record.items() if k not in ("epoch", "seconds") and v is not False}
    text = ", ".join(k if v is True else f"{k} {v:.4f}" for k, v in shown.items())
    _say(f"epoch {record['epoch']}/{options.nb_epochs}: {text} ({record['seconds']:.1f}s)", options)


def _say(line: str, options: FitOptions) -> None:
    logger.info(line)
    if options.verbose:
        tqdm.write(line)
