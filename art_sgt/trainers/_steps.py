"""The building blocks of a batch's loss: saliency then mask, and the train-mode forwards.

:class:`BatchSteps` holds what the trainers' ``_batch_loss`` is written with, so that each reads as three
lines: ``_saliency_mask`` (the one place where saliency becomes a mask and a masked input), ``_train_logits``
(one forward, or one per batch when BatchNorm couples samples, in one process and under DDP alike) and
``_loss_options`` (the classifier's loss, the KL reduction matching it, and whether the model returns logits).
The hardware options ``amp``, ``channels_last`` and ``compile`` act on the two forwards built here, ``_net``
(training, through the fit preprocessing) and ``_attack_net`` (saliency, the fast-path PGD and validation, through
the predict preprocessing), by wrapping the classifier's model in :class:`~art_sgt.precision.Accelerated` inside
them: the preprocessing stays float32 and outside ``torch.compile``, and the classifier's model is not replaced.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from art_sgt._art import PreprocessedModel, check_pytorch_classifier, clip_bounds
from art_sgt._validation import check_bool, check_choice, check_fraction, check_non_negative
from art_sgt.losses import log_probabilities, output_kind
from art_sgt.masking import Fill, apply_mask, least_salient_mask
from art_sgt.precision import Accelerated, check_amp
from art_sgt.saliency import SALIENCY_OF, bound_module, eval_mode, is_mode_independent, make_saliency_fn
from art_sgt.trainers._options import check_fill
from art_sgt.trainers._run_state import RunState, architecture_fingerprint

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier
    from captum.attr import Attribution

__all__ = ["BatchSteps"]


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


class BatchSteps:
    """Validated trainer parameters and the steps a batch's loss is built from (a base of the trainers).

    The parameters are the trainers'; the three hardware options are documented here once (:doc:`/performance`
    states what each one's speed has been measured to be, and on which hardware):

    :param amp: ``None`` (default, float32) or ``"bf16"``: run the model's forward and backward (training,
        saliency, fast-path PGD, validation) under ``torch.autocast`` with bfloat16; weights, optimizer,
        preprocessing and the outputs handed to the losses stay float32. ``"fp16"`` is refused: float16 needs a
        ``GradScaler`` in the training loop, which it does not run. A CPU without native bfloat16 emulates it,
        which makes it slower than float32 there.
    :param channels_last: Give 4-d inputs and the model's weights the channels-last memory format. The weights
        are converted in place when the trainer is built (same parameter objects, values, shapes and
        ``state_dict`` keys; only the strides change, and they stay after ``fit``).
    :param compile: Run the model through ``torch.compile(model, dynamic=False)``: graphs are compiled during the
        first batches of the first ``fit`` (one per input shape and mode) and reused afterwards. No
        ``_orig_mod.`` prefix reaches any ``state_dict``. Compiling takes tens of seconds, which short runs
        do not win back.
    """

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
        #: ``loss`` (mean training loss), ``train_accuracy``, ``val_accuracy`` (with ``validation_data``),
        #: ``robust_val_accuracy``, ``robust_val_clean_accuracy``, ``single_step_val_accuracy`` and
        #: ``catastrophic_overfitting`` (with ``robust_validation``), ``seconds``.
        self.history: list[dict[str, float]] = []

    def _set_hardware_options(self, amp: str | None, channels_last: bool, compile: bool) -> None:  # noqa: A002
        """Validate ``amp``, ``channels_last`` and ``compile`` and build the two forwards with them.

        One :class:`~art_sgt.precision.Accelerated` wrapper (one compiled forward) is shared by both preprocessing
        chains; the classifier's model object stays the classifier's model.
        """
        self.amp = check_amp("amp", amp)
        self.channels_last = check_bool("channels_last", channels_last)
        self.compile = check_bool("compile", compile)
        self._net = PreprocessedModel(self._classifier, apply="fit")
        self._attack_net = PreprocessedModel(self._classifier, apply="predict")
        if self.amp is not None or self.channels_last or self.compile:
            accelerated = Accelerated(self._classifier.model, self.amp, self.channels_last, self.compile)
            self._net.model = self._attack_net.model = accelerated
        self._joint: nn.Module = _JointForward(self._net, separate=self._couples_samples)

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
            # recorded only when set, so that checkpoints written before these options existed still resume
            **{name: getattr(self, name) for name in ("amp", "channels_last", "compile") if getattr(self, name)},
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
            self._outputs = _output_kind(outputs[0])
        return outputs

    def _task_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._classifier.loss(logits, y)

    def _loss_options(self) -> dict[str, Any]:
        """Keyword arguments of :mod:`art_sgt.losses` for this classifier (its loss, reduction, output kind)."""
        return {"task_loss": self._task_loss, "kl_reduction": self._kl_reduction, "outputs": self._outputs}

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


def _output_kind(outputs: torch.Tensor) -> str:
    """``"probabilities"`` for outputs that are rows of probabilities (a model ending in softmax), with a warning."""
    if output_kind(outputs) == "probabilities":
        warnings.warn(
            "the model's outputs are probabilities (rows of non-negative values summing to 1), not logits: the KL "
            "term uses their logarithm. Train a model returning logits if the classifier's loss expects them.",
            stacklevel=4,
        )
        return "probabilities"
    return "logits"
