"""Shared plumbing of the evaluators: resolving a classifier or model, and checking user arrays.

Every public evaluator takes either an ART ``PyTorchClassifier`` or a ``torch.nn.Module`` returning logits,
and numpy arrays or tensors. This module turns both into one form: a differentiable module from the raw input
to logits (the classifier's preprocessing composed before its model), its device and clip values, and
detached float32 tensors on that device. User arrays are never modified.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from art_sgt._validation import check_array, check_finite, check_labels, check_same_length
from art_sgt.masking import Bound
from art_sgt.saliency import eval_mode

__all__ = [
    "ResolvedModel",
    "resolve_model",
    "as_tensor",
    "as_labels",
    "check_maps",
    "batches",
    "frozen",
    "like",
    "predict_proba",
]


@dataclass
class ResolvedModel:
    """A classifier or model in the form the evaluators use.

    :param module: Differentiable module mapping raw inputs (before preprocessing) to logits.
    :param device: Where the module's parameters live; all work runs there.
    :param clip_values: ``(min, max)`` of the input domain (floats, or tensors on ``device`` for per-feature
        bounds), or ``None``.
    :param nb_classes: Number of classes, or ``None`` if not known before a forward pass.
    :param classifier: The ART classifier, if one was given.
    """

    module: nn.Module
    device: torch.device
    clip_values: tuple[Bound, Bound] | None
    nb_classes: int | None
    classifier: Any = None


def _clip_bounds(clip_values: Any, device: torch.device) -> tuple[Bound, Bound] | None:
    """Scalar bounds as floats; per-feature bounds (ART allows arrays that broadcast to the input) as float32
    tensors on ``device``, so that every feature keeps its own range."""
    if clip_values is None:
        return None
    low, high = (np.asarray(bound, dtype=np.float32) for bound in clip_values)
    if low.size == 1 and high.size == 1:
        return float(low.item()), float(high.item())
    return torch.as_tensor(low, device=device), torch.as_tensor(high, device=device)


def resolve_model(name: str, model: Any, clip_values: Any = None) -> ResolvedModel:
    """Resolve a ``PyTorchClassifier`` or a ``torch.nn.Module`` into a :class:`ResolvedModel`.

    :param name: The parameter's name, used in error messages.
    :param model: An ART ``PyTorchClassifier`` (its preprocessing is composed differentiably before
        ``classifier.model``) or a module returning logits.
    :param clip_values: For a plain module only: the input domain ``(min, max)``.
    :return: The resolved model.
    :raises TypeError: If ``model`` is neither, or its preprocessing cannot run in torch.
    """
    from art.estimators.classification import PyTorchClassifier

    from art_sgt._art import PreprocessedModel

    if isinstance(model, ResolvedModel):
        return model
    if isinstance(model, PyTorchClassifier):
        module = PreprocessedModel(model, apply="predict")
        return ResolvedModel(
            module,
            torch.device(model.device),
            _clip_bounds(model.clip_values, torch.device(model.device)),
            int(model.nb_classes),
            model,
        )
    if isinstance(model, nn.Module):
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        return ResolvedModel(model, device, _clip_bounds(clip_values, device), None, None)
    raise TypeError(
        f"{name} must be an art.estimators.classification.PyTorchClassifier or a torch.nn.Module, "
        f"got {type(model).__name__}."
    )


def as_tensor(
    name: str, x: Any, device: torch.device, min_ndim: int = 2, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Check a numeric, non-empty, finite array or tensor and return it as a ``dtype`` tensor on ``device``.

    :param name: The parameter's name, used in error messages.
    :param x: A numpy array or a torch tensor (never modified: the result is a copy or a detached view that
        no evaluator writes to).
    :param device: Target device.
    :param min_ndim: The smallest accepted number of dimensions.
    :param dtype: The floating-point type of the result.
    :return: A detached tensor.
    :raises TypeError: If ``x`` is not a numeric array or tensor.
    :raises ValueError: If ``x`` is empty, has too few dimensions or holds NaN or infinity.
    """
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_complex():
            raise TypeError(f"{name} must have a real numeric dtype, got dtype {x.dtype}.")
        if x.ndim < min_ndim:
            raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}.")
        if x.shape[0] == 0:
            raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}.")
        out = x.detach().to(device=device, dtype=dtype)
        if not bool(torch.isfinite(out).all()):
            bad = int((~torch.isfinite(out)).sum())
            raise ValueError(f"{name} must hold only finite values, got {bad} NaN or infinite entries.")
        return out
    check_array(name, x, min_ndim=min_ndim)
    check_finite(name, x)
    return torch.tensor(np.asarray(x), dtype=dtype, device=device)


def as_labels(name: str, y: Any, n: int, nb_classes: int | None, device: torch.device) -> torch.Tensor:
    """Check labels (indices or one-hot) against ``n`` samples and return int64 indices on ``device``.

    :param name: The parameter's name, used in error messages.
    :param y: Index labels ``(n,)`` or one-hot labels ``(n, nb_classes)``: numpy, torch or a list.
    :param n: The number of samples of ``x``.
    :param nb_classes: Number of classes (``None``: inferred from one-hot width or the largest index + 1).
    :param device: Target device.
    :return: An int64 tensor of shape ``(n,)``.
    :raises ValueError: If the labels are malformed or their length differs from ``n``.
    """
    y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y
    if isinstance(y_np, (list, tuple)):
        y_np = np.asarray(y_np)
    check_array(name, y_np)
    check_same_length("x", range(n), name, y_np)
    if nb_classes is None:
        nb_classes = int(y_np.shape[1]) if y_np.ndim == 2 and y_np.shape[1] > 1 else int(np.max(y_np)) + 1
        nb_classes = max(nb_classes, 2)
    return torch.as_tensor(check_labels(name, y_np, nb_classes), device=device)


def check_maps(name: str, maps: Any, x: torch.Tensor) -> torch.Tensor:
    """Check saliency maps against inputs: same shape, finite; return them as a float32 tensor.

    :param name: The parameter's name, used in error messages.
    :param maps: Maps of ``x``'s shape, numpy or torch.
    :param x: The inputs, on the target device.
    :return: The maps as a float32 tensor on ``x``'s device.
    :raises ValueError: If the shapes differ or a map holds NaN or infinity.
    """
    out = as_tensor(name, maps, x.device, min_ndim=1)
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"{name} must have the shape of x, {tuple(x.shape)}, got {tuple(out.shape)}.")
    return out


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``batch_size`` samples covering ``range(n)``.

    :param n: Number of samples.
    :param batch_size: Largest slice length.
    :return: An iterator of slices.
    """
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and ``requires_grad=False`` on every parameter, both restored on exit.

    With the parameters frozen no backward pass can write a parameter's ``.grad``, and only input gradients
    are computed.

    :param module: The module.
    :return: A context manager yielding ``module``.
    """
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    with eval_mode(module):
        try:
            for p in params:
                p.requires_grad_(False)
            yield module
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)


def like(values: torch.Tensor, reference: Any) -> Any:
    """Return ``values`` as a numpy array if ``reference`` is one, else as a tensor on its device.

    :param values: A tensor.
    :param reference: The user's input.
    :return: A numpy array or a tensor.
    """
    if isinstance(reference, torch.Tensor):
        return values.to(reference.device)
    return values.detach().cpu().numpy()


@torch.no_grad()
def predict_proba(resolved: ResolvedModel, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Softmax probabilities of ``x`` in batches, model in eval mode.

    :param resolved: The model.
    :param x: Inputs on the model's device.
    :param batch_size: Batch size.
    :return: Probabilities ``(n, nb_classes)``.
    """
    with frozen(resolved.module):
        return torch.cat([torch.softmax(resolved.module(x[s]), dim=1) for s in batches(len(x), batch_size)])


def fork_devices(device: torch.device) -> list[int]:
    """The CUDA device indices ``torch.random.fork_rng`` must fork for work on ``device`` (none for CPU).

    :param device: The device.
    :return: A list of device indices.
    """
    if device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []
