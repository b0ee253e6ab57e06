"""Where art-sgt meets ART: the classifier check, preprocessing for fit and for attack, clip values, attacks.

Everything that reads an ART object's fields lives here, so the trainers and evaluators see torch modules,
tensors and plain values only.
"""

from __future__ import annotations

import hashlib
import logging
import numbers
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from art_sgt._validation import check_norm
from art_sgt.apgd import LOSSES, APGDParams
from art_sgt.attacks import PGDParams, _scalar, estimator_clip_values

__all__ = [
    "check_pytorch_classifier",
    "require_pytorch_classifier",
    "PreprocessedModel",
    "clip_bounds",
    "check_attacks",
    "attack_is_live",
    "attack_config",
    "silence",
    "pgd_params_from_art",
    "apgd_params_from_art",
]

logger = logging.getLogger(__name__)


def require_pytorch_classifier(name: str, classifier: Any) -> None:
    """Raise a ``TypeError`` naming ``name`` unless ``classifier`` is an ART ``PyTorchClassifier``.

    :param name: The parameter's name, used in the error message.
    :param classifier: The object to check.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier``.
    """
    from art.estimators.classification import PyTorchClassifier

    if not isinstance(classifier, PyTorchClassifier):
        raise TypeError(
            f"{name} must be an art.estimators.classification.PyTorchClassifier, got {type(classifier).__name__}."
        )


def _label_mixing_preprocessors() -> tuple[type, ...]:
    from art.defences.preprocessor import CutMixPyTorch, MixupPyTorch

    return (MixupPyTorch, CutMixPyTorch)


def check_pytorch_classifier(name: str, classifier: Any, need_optimizer: bool = False) -> None:
    """Check that ``classifier`` is a ``PyTorchClassifier`` usable by art-sgt.

    :param name: The parameter's name, used in the error message.
    :param classifier: The object to check.
    :param need_optimizer: Also require an optimizer and refuse what training cannot honour: channels-last
        inputs (masks are formed along the channel axis) and label-mixing preprocessors (Mixup, CutMix), whose
        soft labels the saliency of a class cannot follow.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or its preprocessing is not torch.
    :raises ValueError: If an optimizer is needed but missing, ``nb_classes`` < 2, or a training refusal applies.
    """
    require_pytorch_classifier(name, classifier)
    if need_optimizer and classifier.optimizer is None:
        raise ValueError(f"{name} must have an optimizer to be trained; pass optimizer=... to PyTorchClassifier.")
    if classifier.nb_classes < 2:
        raise ValueError(f"{name} must have nb_classes >= 2, got {classifier.nb_classes}.")
    if need_optimizer and not classifier.channels_first:
        raise ValueError(
            f"{name} must be channels-first (channels_first=True): saliency-guided training masks positions "
            "across the channel axis 1; move the channel axis of the data first and build the classifier with "
            "channels_first=True."
        )
    mixing = [op for op in classifier.preprocessing_operations or [] if isinstance(op, _label_mixing_preprocessors())]
    if need_optimizer and mixing:
        raise ValueError(
            f"{name} has the label-mixing preprocessor {type(mixing[0]).__name__}, which saliency-guided training "
            "does not support (a mask is chosen from the saliency of one class); remove it from the classifier's "
            "preprocessing."
        )
    PreprocessedModel.preprocessing_steps(classifier)


class _Standardise(nn.Module):
    """ART's mean/std standardisation, broadcast over the input as ART broadcasts it (per-channel vectors)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, input_shape: tuple[int, ...], device: Any) -> None:
        from art.preprocessing.standardisation_mean_std.utils import broadcastable_mean_std

        super().__init__()
        mean, std = broadcastable_mean_std(np.empty((1, *input_shape), dtype=np.float32), mean, std)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32, device=device))
        self.register_buffer("inv_std", 1.0 / torch.as_tensor(std, dtype=torch.float32, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


class PreprocessedModel(nn.Module):
    """The classifier's preprocessing followed by its model, as one differentiable module.

    Inputs are what the user hands the ART classifier (before preprocessing); outputs are the model's. ART's
    mean/std standardisation (scalars or per-channel vectors) is folded into a precomputed affine step (dropped
    when it is the identity); any other PyTorch preprocessor runs through its differentiable ``forward``.
    Training goes through ``apply="fit"``; attacks and predictions through ``apply="predict"``, as ART's
    ``loss_gradient`` and ``predict`` do.

    :param classifier: An ART ``PyTorchClassifier``.
    :param apply: ``"fit"`` or ``"predict"``: which of ART's preprocessing flags to honour.
    """

    def __init__(self, classifier: Any, apply: str = "fit") -> None:
        super().__init__()
        self.model = classifier.model
        self._steps = self.preprocessing_steps(classifier, apply)
        self.standardise = nn.ModuleList([s for s in self._steps if isinstance(s, nn.Module)])

    @staticmethod
    def preprocessing_steps(classifier: Any, apply: str = "fit") -> list[Any]:
        """The preprocessing steps of ``classifier`` as torch callables, identities removed.

        :param classifier: An ART ``PyTorchClassifier``.
        :param apply: ``"fit"`` or ``"predict"``.
        :return: A list of callables ``x -> x``.
        :raises TypeError: If a preprocessor cannot run in torch.
        """
        from art.defences.preprocessor.preprocessor import PreprocessorPyTorch
        from art.preprocessing.standardisation_mean_std.pytorch import StandardisationMeanStdPyTorch

        steps: list[Any] = []
        for op in classifier.preprocessing_operations or []:
            if not (op.apply_fit if apply == "fit" else op.apply_predict):
                continue
            if isinstance(op, StandardisationMeanStdPyTorch):
                mean, std = np.asarray(op.mean, dtype=np.float32), np.asarray(op.std, dtype=np.float32)
                if np.all(mean == 0.0) and np.all(std == 1.0):
                    continue
                steps.append(_Standardise(mean, std, tuple(classifier.input_shape), classifier.device))
            elif isinstance(op, PreprocessorPyTorch):
                steps.append(lambda x, _op=op: _op.forward(x, None)[0])
            else:
                raise TypeError(
                    f"classifier preprocessing {type(op).__name__} is not a PyTorch preprocessor, so it cannot "
                    "be applied differentiably on the device; use its PyTorch variant."
                )
        return steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self._steps:
            x = step(x)
        return self.model(x)


def clip_bounds(classifier: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The classifier's ``clip_values`` as two tensors on ``device`` that broadcast to ``(n, *input_shape)``.

    Scalar bounds give 0-d tensors; per-feature arrays (legal in ART) keep their shape.

    :param classifier: An ART classifier.
    :param device: The training device.
    :return: ``(low, high)`` or ``None`` when the classifier has no ``clip_values``.
    """
    if classifier.clip_values is None:
        return None
    low, high = (torch.as_tensor(np.asarray(b, dtype=np.float32), device=device) for b in classifier.clip_values)
    return low, high


def attack_is_live(attack: Any, classifier: Any) -> bool:
    """Whether ``attack``'s gradients come from the weights being trained.

    True for an attack on ``classifier`` itself, and for one on another ``PyTorchClassifier`` wrapping the same
    ``nn.Module`` (ART's ``AutoProjectedGradientDescent`` with a ``loss_type`` builds such a wrapper).

    :param attack: An ART attack.
    :param classifier: The classifier being trained.
    :return: Whether the attack crafts against the live weights.
    """
    estimator = attack.estimator
    return estimator is classifier or getattr(estimator, "model", None) is classifier.model


def check_attacks(attacks: Any, classifier: Any, allow_transfer: bool) -> list[Any]:
    """Check one ART evasion attack or a list of them for adversarial training, as ART's trainers do.

    Warns when an L-inf ``eps`` exceeds the clip range (ART clips and trains; so do we).

    :param attacks: An ``EvasionAttack`` or a non-empty list of them.
    :param classifier: The classifier being trained.
    :param allow_transfer: Accept attacks whose gradients come from other weights (transfer-style training).
    :return: The attacks as a list.
    :raises ValueError: For anything that is not an ``EvasionAttack`` (as ART's ``AdversarialTrainer``), and for an
        attack crafting against weights that are not trained unless ``allow_transfer``.
    """
    from art.attacks.attack import EvasionAttack

    listed = list(attacks) if isinstance(attacks, (list, tuple)) else [attacks]
    if not listed or not all(isinstance(a, EvasionAttack) for a in listed):
        got = type(attacks).__name__ if not listed else ", ".join(type(a).__name__ for a in listed)
        raise ValueError(f"attacks must be an ART EvasionAttack or a non-empty list of them, got {got}.")
    for attack in listed:
        if not allow_transfer and not attack_is_live(attack, classifier):
            raise ValueError(
                f"attack {type(attack).__name__} takes its gradients from another model, so it would craft "
                "against weights that training does not change. Build the attack on the classifier being trained, "
                "or pass allow_transfer=True for transfer-style training."
            )
        _warn_eps_beyond_clip(attack, classifier)
    return listed


def _warn_eps_beyond_clip(attack: Any, classifier: Any) -> None:
    eps, clip = getattr(attack, "eps", None), classifier.clip_values
    if clip is None or eps is None or np.ndim(eps) != 0 or getattr(attack, "norm", np.inf) not in (np.inf, "inf"):
        return
    span = float(np.min(np.asarray(clip[1], dtype=np.float64) - np.asarray(clip[0], dtype=np.float64)))
    if float(eps) > span:
        warnings.warn(
            f"attack eps {float(eps):g} exceeds the classifier's clip range {span:g}: adversarial inputs are clipped "
            "to clip_values, so the attack is effectively unbounded.",
            stacklevel=3,
        )


def silence(attack: Any) -> None:
    """Turn off an ART attack's own progress bar, as ART's ``AdversarialTrainer`` does.

    :param attack: An ART attack.
    """
    if "verbose" in attack.attack_params:
        attack.set_params(verbose=False)


#: Attack parameters that are not part of what an attack does (the model it attacks, how it reports).
_NOT_CONFIG = ("estimator", "classifier", "verbose", "summary_writer", "batch_size")


def _plain(value: Any) -> Any:
    """A value as JSON-ready data that compares equal across processes: no ``repr`` (an ART attack's ``repr``
    recurses through a bound method of itself, and a lambda's holds a memory address)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.size <= 64:
            return value.tolist()
        return {"shape": list(value.shape), "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}
    name = getattr(value, "__qualname__", None)
    return name if isinstance(name, str) else type(value).__qualname__


def attack_config(attack: Any) -> dict[str, Any]:
    """An ART attack's type and its ``attack_params`` as plain values (a run's recorded configuration): numbers,
    strings and small arrays as such, callables by their qualified name, other objects by their type's.

    :param attack: An ART attack.
    :return: ``{"type": ..., parameter: value, ...}``.
    """
    names = [name for name in getattr(attack, "attack_params", ()) if name not in _NOT_CONFIG]
    return {"type": type(attack).__name__, **{name: _plain(getattr(attack, name, None)) for name in names}}


def pgd_params_from_art(attack: Any) -> PGDParams | None:
    """Read an ART attack into the arguments of :func:`pgd`, or ``None`` if :func:`pgd` cannot reproduce it.

    Supported: ``ProjectedGradientDescent``, ``ProjectedGradientDescentPyTorch``,
    ``ProjectedGradientDescentNumpy``, ``BasicIterativeMethod`` and ``FastGradientMethod`` (one step of size
    ``eps``), exactly these classes, with the L-inf or L2 norm, scalar ``eps`` and ``eps_step``, no momentum
    (``decay``), no summary writer, ``max_iter >= 1``, and a ``PyTorchClassifier`` whose loss is a plain
    ``CrossEntropyLoss``, whose preprocessing all runs in torch and whose ``clip_values`` are scalars.
    ``FastGradientMethod`` is also refused with ``minimal=True`` or ``num_random_init > 1`` (it then keeps the
    restart with the best success rate over the whole input, not per sample). Per-feature ``clip_values`` are
    read as arrays. Call it whenever the attack is about to run: it reads the attack's current parameters (after
    any ``set_params``).

    :param attack: An ART evasion attack.
    :return: The parameters, or ``None``.

    >>> import torch
    >>> from art.attacks.evasion import DeepFool, ProjectedGradientDescent
    >>> from art.estimators.classification import PyTorchClassifier
    >>> classifier = PyTorchClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)),
    ...     loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 2, 2), nb_classes=3, clip_values=(0.0, 1.0))
    >>> params = pgd_params_from_art(ProjectedGradientDescent(classifier, eps=0.1, eps_step=0.02, max_iter=5,
    ...     verbose=False))
    >>> params.eps, params.eps_step, params.max_iter, params.norm, params.clip_values
    (0.1, 0.02, 5, 'inf', (0.0, 1.0))
    >>> pgd_params_from_art(DeepFool(classifier, verbose=False)) is None
    True
    """
    from art.attacks.evasion import (
        BasicIterativeMethod,
        FastGradientMethod,
        ProjectedGradientDescent,
        ProjectedGradientDescentNumpy,
        ProjectedGradientDescentPyTorch,
    )
    from art.estimators.classification import PyTorchClassifier

    kind = type(attack)
    if kind in (ProjectedGradientDescent, BasicIterativeMethod):
        # ART 1.20.1's wrappers keep decay and the summary writer only on the framework attack they build, with no
        # public accessor: this is the one place art-sgt reads it.
        inner = attack._attack
    elif kind in (ProjectedGradientDescentPyTorch, ProjectedGradientDescentNumpy, FastGradientMethod):
        inner = attack
    else:
        return None
    eps, eps_step = _scalar(attack.eps), _scalar(attack.eps_step)
    if eps is None or eps_step is None:
        return None
    if kind is FastGradientMethod:
        if attack.minimal or attack.num_random_init > 1:
            return None
        max_iter, eps_step, random_eps = 1, eps, False
    else:
        max_iter, random_eps = int(attack.max_iter), bool(attack.random_eps)
    norm_dist = getattr(inner, "norm_dist", None)
    if random_eps and norm_dist is not None and eps > 0:
        # generate() overwrites eps with its draw (keeping eps_step / eps); the distribution, built once at
        # construction, keeps the eps of that time, even after a set_params(eps=...).
        original = float(norm_dist.support()[1])
        eps, eps_step = original, eps_step / eps * original
    if max_iter < 1 or getattr(inner, "decay", None) is not None or inner.summary_writer is not None:
        return None
    try:
        norm = check_norm("attack.norm", attack.norm)
    except ValueError:
        return None

    estimator = attack.estimator
    if not isinstance(estimator, PyTorchClassifier) or not estimator.all_framework_preprocessing:
        return None
    if estimator.postprocessing_defences:  # ART's restarts judge success on postprocessed predictions
        return None
    loss = estimator.loss
    if (
        type(loss) is not nn.CrossEntropyLoss
        or loss.weight is not None
        or loss.label_smoothing != 0.0
        or loss.reduction not in ("mean", "sum")
        or loss.ignore_index >= 0
    ):
        return None
    return PGDParams(
        eps=eps,
        eps_step=eps_step,
        max_iter=int(max_iter),
        norm=norm,
        num_random_init=int(attack.num_random_init),
        clip_values=estimator_clip_values(estimator),
        targeted=bool(attack.targeted),
        random_eps=random_eps,
    )


def _plain_cross_entropy(loss: Any) -> bool:
    """Whether ``loss`` is a ``CrossEntropyLoss`` with mean reduction and no weights, smoothing or ignored class."""
    return (
        type(loss) is nn.CrossEntropyLoss
        and loss.weight is None
        and loss.label_smoothing == 0.0
        and loss.reduction == "mean"
        and loss.ignore_index < 0
    )


def apgd_params_from_art(attack: Any) -> APGDParams | None:
    """Read an ART ``AutoProjectedGradientDescent`` into the arguments of :func:`art_sgt.apgd.apgd`, or ``None``
    if it cannot reproduce its iterates.

    Supported: exactly that class, with the L-inf or L2 norm, scalar ``eps`` and ``eps_step``, the cross-entropy or
    DLR loss (or ``loss_type=None`` on a classifier whose loss is a plain mean ``CrossEntropyLoss``), on a
    ``PyTorchClassifier`` whose preprocessing all runs in torch and that has no postprocessing defences. Call it
    whenever the attack is about to run: it reads the attack's current parameters.

    :param attack: An ART evasion attack.
    :return: The parameters, or ``None``.

    >>> import torch
    >>> from art.attacks.evasion import AutoProjectedGradientDescent, DeepFool
    >>> from art.estimators.classification import PyTorchClassifier
    >>> classifier = PyTorchClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)),
    ...     loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 2, 2), nb_classes=3, clip_values=(0.0, 1.0))
    >>> params = apgd_params_from_art(AutoProjectedGradientDescent(classifier, eps=0.1, eps_step=0.2,
    ...     max_iter=5, verbose=False))
    >>> params.eps, params.eps_step, params.max_iter, params.norm, params.loss
    (0.1, 0.2, 5, 'inf', 'ce')
    >>> apgd_params_from_art(DeepFool(classifier, verbose=False)) is None
    True
    """
    from art.attacks.evasion import AutoProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    if type(attack) is not AutoProjectedGradientDescent:
        return None
    eps, eps_step = _scalar(attack.eps), _scalar(attack.eps_step)
    estimator = attack.estimator
    loss = {v: k for k, v in LOSSES.items()}.get(attack.loss_type)
    if attack.loss_type is None and _plain_cross_entropy(getattr(estimator, "loss", None)):
        loss = "ce"  # ART then steps on the classifier's own loss
    if eps is None or eps_step is None or loss is None or not eps > 0:
        return None
    try:
        norm = check_norm("attack.norm", attack.norm)
    except ValueError:
        return None
    if not isinstance(estimator, PyTorchClassifier) or not estimator.all_framework_preprocessing:
        return None
    if estimator.postprocessing_defences:
        return None
    if not isinstance(attack.max_iter, numbers.Integral):
        return None
    return APGDParams(
        eps=eps,
        eps_step=eps_step,
        max_iter=int(attack.max_iter),
        norm=norm,
        loss=loss,
        targeted=bool(attack.targeted),
        clip_values=estimator_clip_values(estimator),
        nb_random_init=int(attack.nb_random_init),
        batch_size=int(attack.batch_size),
    )
