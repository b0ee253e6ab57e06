"""Saliency maps as pure torch functions, and an adapter over Captum attributions.

Nothing here imports ART: ``model`` is any ``torch.nn.Module`` that maps inputs to logits (the trainers
compose the classifier's preprocessing into it, so saliency is always taken with respect to the raw input).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from captum.attr import Attribution, NoiseTunnel
from torch import nn

from art_sgt._validation import check_choice, preserved_modes
from art_sgt.losses import log_probabilities

__all__ = [
    "input_gradient",
    "eval_mode",
    "is_mode_independent",
    "make_saliency_fn",
    "bound_module",
    "SaliencyFn",
    "SALIENCY_OF",
]

SaliencyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
"""A saliency function ``(model, x, target) -> map`` returning a tensor of ``x``'s shape."""

SALIENCY_OF = ("log_prob", "logit")
"""What a saliency map differentiates: ``log softmax(f(x))_y`` (the SGT reference, whose network ends in
``log_softmax``) or the raw logit ``f(x)_y``."""


class _LogProb(nn.Module):
    """``log p`` on top of a model: ``log_softmax`` of logits (idempotent on log-probabilities), the logarithm of
    probabilities (:func:`art_sgt.losses.log_probabilities`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return log_probabilities(self.model(x))


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` and every submodule in eval mode, restoring each module's own previous mode on exit.

    :param model: The model.
    :return: A context manager yielding ``model``.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    >>> with eval_mode(net):
    ...     print(net.training, net[1].training)
    False False
    >>> net.training
    True
    """
    with preserved_modes(model, training=False):
        yield model


def input_gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor, of: str = "logit") -> torch.Tensor:
    """Gradient of each sample's ``target`` output with respect to its input (the "vanilla gradient" map).

    The model is evaluated in eval mode (the previous mode of every submodule is restored afterwards) and
    only the input gradient is computed: no ``.grad`` is written to any parameter.

    :param model: A module mapping a batch of inputs to logits of shape ``(n, nb_classes)``.
    :param x: The inputs, shape ``(n, ...)``. Not modified.
    :param target: Class indices of shape ``(n,)`` whose outputs are differentiated.
    :param of: ``"logit"`` (the raw output of ``target``) or ``"log_prob"`` (``log p_target``, as the SGT reference
        network, which returns ``log_softmax``, differentiates: the log-softmax of logits, the logarithm of the
        outputs of a model that returns probabilities).
    :return: A tensor of ``x``'s shape and dtype, detached from any graph.
    :raises ValueError: If ``of`` is unknown.

    >>> import torch
    >>> model = torch.nn.Linear(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]]))
    >>> input_gradient(model, torch.zeros(2, 3), torch.tensor([0, 1]))
    tensor([[ 1.,  2.,  3.],
            [-1.,  0.,  1.]])
    """
    check_choice("of", of, SALIENCY_OF)
    with eval_mode(model), torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        outputs = model(x_in)
        if of == "log_prob":
            outputs = log_probabilities(outputs)
        selected = outputs.gather(1, target.reshape(-1, 1).to(outputs.device)).sum()
        (grad,) = torch.autograd.grad(selected, x_in)
    return grad.detach()


def bound_module(attribution: Any) -> nn.Module | None:
    """The ``nn.Module`` a Captum attribution instance runs (through wrappers such as ``NoiseTunnel``), if any.

    :param attribution: A Captum attribution instance.
    :return: The module, or ``None`` when its forward function is not a module (or a bound method of one).
    """
    while isinstance(attribution, NoiseTunnel):
        attribution = attribution.attribution_method
    forward = getattr(attribution, "forward_func", None)
    if isinstance(forward, nn.Module):
        return forward
    owner = getattr(forward, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


def make_saliency_fn(method: Any, saliency_of: str = "logit", **attribute_kwargs: Any) -> SaliencyFn:
    """Turn a saliency specification into a function ``(model, x, target) -> map``.

    :param method: One of

        - ``"gradient"``: :func:`input_gradient` (signed; the SGT reference behaviour);
        - a Captum attribution class (``captum.attr.Saliency``, ``IntegratedGradients``, ``InputXGradient``,
          ...): instantiated on the model at every call, so it always sees the current weights;
        - a Captum attribution instance (e.g. ``NoiseTunnel(Saliency(model))``): used as it is, so its
          forward function must take the same raw inputs as the classifier (``saliency_of`` does not apply:
          it differentiates what its forward function returns);
        - any callable ``(model, x, target) -> tensor`` of ``x``'s shape (``saliency_of`` does not apply).
    :param saliency_of: ``"logit"`` or ``"log_prob"``: what ``"gradient"`` and Captum classes differentiate
        (see :data:`SALIENCY_OF`).
    :param attribute_kwargs: Keyword arguments passed to Captum's ``attribute`` (e.g. ``abs=False`` for
        ``Saliency``, whose default returns absolute gradients, or ``n_steps`` for integrated gradients).
    :return: The saliency function. Captum methods run with the model in eval mode (restored afterwards)
        and return detached maps.
    :raises TypeError: If ``method`` is none of the above.
    :raises ValueError: If ``method`` is an unknown string.

    >>> import torch
    >>> model = torch.nn.Linear(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    >>> make_saliency_fn("gradient")(model, torch.zeros(1, 3), torch.tensor([1]))  # gradient of logit 1: row 1
    tensor([[4., 5., 6.]])
    """
    check_choice("saliency_of", saliency_of, SALIENCY_OF)
    if isinstance(method, str):
        if method != "gradient":
            raise ValueError(
                "saliency must be 'gradient', a Captum attribution class or instance, or a callable "
                f"(model, x, target) -> tensor, got {method!r}."
            )
        if attribute_kwargs:
            raise TypeError(f"saliency='gradient' takes no attribute kwargs, got {sorted(attribute_kwargs)}.")
        return functools.partial(input_gradient, of=saliency_of)
    if inspect.isclass(method) and issubclass(method, Attribution):
        cls = method
        if issubclass(cls, NoiseTunnel):
            raise TypeError(
                f"saliency class {cls.__name__} wraps another attribution and cannot be built from a model; "
                "pass an instance (e.g. NoiseTunnel(Saliency(model))) instead."
            )

        def captum_class_fn(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            forward = _LogProb(model) if saliency_of == "log_prob" else model
            with eval_mode(model):
                x_in = x.detach().requires_grad_(True)
                return cls(forward).attribute(x_in, target=target, **attribute_kwargs).detach()

        captum_class_fn.__name__ = f"captum_{cls.__name__}"
        return captum_class_fn
    if isinstance(method, Attribution):
        instance = method

        def captum_instance_fn(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            with eval_mode(model):
                return instance.attribute(x.detach().requires_grad_(True), target=target, **attribute_kwargs).detach()

        captum_instance_fn.__name__ = f"captum_{type(instance).__name__}"
        return captum_instance_fn
    if callable(method) and not inspect.isclass(method):
        if attribute_kwargs:
            raise TypeError("attribute kwargs apply to Captum methods only, not to a saliency callable.")
        return _checked_callable(method)
    raise TypeError(
        "saliency must be 'gradient', a Captum attribution class or instance, or a callable "
        f"(model, x, target) -> tensor, got {type(method).__name__}."
    )


def _checked_callable(fn: Callable[..., Any]) -> SaliencyFn:
    """Wrap a user's saliency callable so that a map of the wrong type or shape is refused where it is made,
    naming ``saliency``, instead of failing later inside torch."""

    @functools.wraps(fn)
    def checked(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        result = fn(model, x, target)
        if not isinstance(result, torch.Tensor):
            raise TypeError(
                f"saliency must return a torch.Tensor of the input's shape {tuple(x.shape)}, got "
                f"{type(result).__module__}.{type(result).__name__} from {getattr(fn, '__name__', repr(fn))}."
            )
        if result.shape != x.shape:
            raise ValueError(
                f"saliency must return a torch.Tensor of the input's shape {tuple(x.shape)}, got shape "
                f"{tuple(result.shape)}."
            )
        return result

    return checked


_MODE_DEPENDENT = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.MultiheadAttention,
    nn.RNNBase,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)


def is_mode_independent(model: nn.Module, probe: torch.Tensor) -> bool:
    """Whether ``model`` computes the same function in train and eval mode.

    True when no submodule is of a type whose behaviour depends on the mode (dropout with ``p > 0``, batch
    or instance norm, attention, recurrent layers) *and* a forward pass of ``probe`` gives bitwise equal
    logits in both modes (which also catches custom code such as ``F.dropout(x, training=self.training)``).
    The probe runs without gradients on a forked RNG, and every submodule's mode is restored.

    :param model: The model.
    :param probe: A few inputs to compare the two modes on.
    :return: ``True`` if the train-mode forward can stand in for the eval-mode one.

    >>> import torch
    >>> probe = torch.zeros(4, 2)
    >>> is_mode_independent(torch.nn.Linear(2, 2), probe)
    True
    >>> is_mode_independent(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)), probe)
    False
    """
    for module in model.modules():
        if isinstance(module, _MODE_DEPENDENT):
            return False
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            return False
    devices = [probe.device.index or 0] if probe.device.type == "cuda" else []
    with preserved_modes(model), torch.no_grad(), torch.random.fork_rng(devices=devices):
        train_out = model.train()(probe)
        eval_out = model.eval()(probe)
    return torch.equal(train_out, eval_out)
