"""Attribution maps from Captum by name, class or instance, computed in batches on the model's device.

Every attribution runs with the model in eval mode and its parameters' ``requires_grad`` off (both restored
afterwards), so only input gradients are computed and no parameter ``.grad`` is ever written. Randomised
methods (SmoothGrad, and any user method that draws from torch's global generator) are seeded per batch
inside a forked RNG, so the caller's global random state is left as it was and results are reproducible.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from captum.attr import (
    Deconvolution,
    DeepLift,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
)
from torch import nn

from art_sgt._validation import check_positive_int
from art_sgt.evaluation._common import (
    ResolvedModel,
    as_labels,
    as_tensor,
    batches,
    fork_devices,
    frozen,
    like,
    resolve_model,
)
from art_sgt.saliency import make_saliency_fn

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

__all__ = ["MethodSpec", "Method", "METHODS", "register_method", "get_method", "attribute", "compute_maps"]

MapFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class MethodSpec:
    """A named attribution method of the registry.

    :param factory: Builds the Captum attribution on a module (inputs to logits).
    :param defaults: Default keyword arguments of its ``attribute`` call (overridable per call).
    :param batch_kwarg: The ``attribute`` argument that bounds Captum's internal batch, if any
        (``"internal_batch_size"`` for integrated gradients, ``"nt_samples_batch_size"`` for noise tunnels).
    :param expansion_kwarg: The ``attribute`` argument giving how many model evaluations each input costs.
    :param multiply_by_inputs: Whether the attribution multiplies by ``x - baseline`` (Captum's
        ``multiplies_by_inputs``: input x gradient, integrated gradients, DeepLift); infidelity then uses
        Captum's ``infidelity_perturb_func_decorator(multiply_by_inputs=True)`` convention.
    """

    factory: Callable[[nn.Module], Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    batch_kwarg: str | None = None
    expansion_kwarg: str | None = None
    multiply_by_inputs: bool = False


METHODS: dict[str, MethodSpec] = {
    "saliency": MethodSpec(Saliency, {"abs": True}),
    "gradient": MethodSpec(Saliency, {"abs": False}),
    "input_x_gradient": MethodSpec(InputXGradient, multiply_by_inputs=True),
    "integrated_gradients": MethodSpec(
        IntegratedGradients,
        {"n_steps": 32},
        batch_kwarg="internal_batch_size",
        expansion_kwarg="n_steps",
        multiply_by_inputs=True,
    ),
    "smoothgrad": MethodSpec(
        lambda model: NoiseTunnel(Saliency(model)),
        {"nt_type": "smoothgrad", "nt_samples": 16, "stdevs": 0.15, "abs": True},
        batch_kwarg="nt_samples_batch_size",
        expansion_kwarg="nt_samples",
    ),
    "guided_backprop": MethodSpec(GuidedBackprop),
    "deconvolution": MethodSpec(Deconvolution),
    "deeplift": MethodSpec(DeepLift, multiply_by_inputs=True),
}
"""Named methods: ``saliency`` (``|gradient|``, Captum's default), ``gradient`` (signed, as SGT trains with),
``input_x_gradient``, ``integrated_gradients`` (32 steps, zero baseline), ``smoothgrad`` (16 noisy copies,
absolute noise std 0.15), ``guided_backprop``, ``deconvolution`` and ``deeplift`` (zero baseline)."""

_HOOK_WARNINGS = r"(?s).*(Setting (forward, )?backward hooks|did not already require gradients)"
_ALIASES = {
    "ig": "integrated_gradients",
    "vanilla_gradient": "gradient",
    "guided_backpropagation": "guided_backprop",
}


def register_method(
    name: str,
    factory: Callable[[nn.Module], Any],
    batch_kwarg: str | None = None,
    expansion_kwarg: str | None = None,
    **defaults: Any,
) -> None:
    """Add (or replace) a named method of the registry.

    :param name: The name, used as ``method=name`` everywhere.
    :param factory: ``module -> Captum attribution``.
    :param batch_kwarg: See :class:`MethodSpec`.
    :param expansion_kwarg: See :class:`MethodSpec`.
    :param defaults: Default ``attribute`` keyword arguments.
    :raises TypeError: If ``name`` is not a string or ``factory`` is not callable.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}.")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}.")
    METHODS[name] = MethodSpec(factory, dict(defaults), batch_kwarg, expansion_kwarg)


@dataclass(frozen=True)
class Method:
    """A resolved attribution method.

    :param name: A readable name (the registry name, or the Captum class / callable name).
    :param fn: ``(module, x, target, batch_size) -> maps`` for one batch.
    :param cost: Model evaluations (forward + backward) per input, where known (e.g. ``n_steps`` for IG).
    :param absolute: Whether the maps are absolute values (``saliency``, ``smoothgrad``): such maps cannot be
        read as a signed linear predictor, so infidelity uses :meth:`signed` instead.
    :param multiply_by_inputs: Whether the maps multiply by ``x - baseline`` (see :class:`MethodSpec`).
    :param signed_variant: The same method without the absolute value, where one exists.
    """

    name: str
    fn: MapFn
    cost: int = 1
    absolute: bool = False
    multiply_by_inputs: bool = False
    signed_variant: Method | None = field(default=None, repr=False, compare=False)

    def signed(self) -> Method:
        """This method without the absolute value (itself when already signed).

        :return: The signed method.
        :raises ValueError: If the maps are absolute and no signed variant is known.
        """
        if not self.absolute:
            return self
        if self.signed_variant is None:
            raise ValueError(f"method {self.name} gives absolute maps and has no signed variant.")
        return self.signed_variant


def _named(name: str, overrides: dict[str, Any]) -> Method:
    spec = METHODS[name]
    kwargs = {**spec.defaults, **overrides}
    cost = int(kwargs.get(spec.expansion_kwarg, 1)) if spec.expansion_kwarg else 1

    def fn(module: nn.Module, x: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
        call = dict(kwargs)
        if spec.batch_kwarg == "internal_batch_size":
            call.setdefault("internal_batch_size", batch_size)
        elif spec.batch_kwarg is not None:
            call.setdefault(spec.batch_kwarg, max(1, min(cost, batch_size // len(x))))
        with torch.enable_grad():
            return spec.factory(module).attribute(x.detach().requires_grad_(True), target=target, **call)

    absolute = bool(kwargs.get("abs", False))
    signed = _named(name, {**overrides, "abs": False}) if absolute else None
    return Method(name, fn, cost, absolute, spec.multiply_by_inputs, signed)


def get_method(method: Any, **attribute_kwargs: Any) -> Method:
    """Resolve a method specification.

    :param method: A name of :data:`METHODS` (or an alias: ``"ig"``, ``"vanilla_gradient"``), a Captum
        attribution class (built on the evaluated model), a Captum attribution instance (used as it is: its
        forward function must take the classifier's raw inputs), a callable ``(model, x, target) -> map``, or
        a :class:`Method`.
    :param attribute_kwargs: Keyword arguments for Captum's ``attribute``, overriding the defaults.
    :return: The resolved method.
    :raises ValueError: If ``method`` is an unknown name.
    :raises TypeError: If ``method`` is of an unsupported type.

    >>> get_method("integrated_gradients", n_steps=8).cost
    8
    """
    if isinstance(method, Method):
        return method
    if isinstance(method, str):
        key = _ALIASES.get(method.lower(), method.lower())
        if key not in METHODS:
            raise ValueError(
                f"method must be one of {', '.join(map(repr, METHODS))}, a Captum attribution class or "
                f"instance, or a callable (model, x, target) -> map, got {method!r}."
            )
        return _named(key, attribute_kwargs)
    try:
        saliency_fn = make_saliency_fn(method, **attribute_kwargs)
    except (TypeError, ValueError) as err:
        raise TypeError(f"method could not be used: {err}") from err
    name = type(method).__name__ if not inspect.isclass(method) else method.__name__
    name = getattr(method, "__name__", name)

    def fn(module: nn.Module, x: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
        with torch.enable_grad():
            return saliency_fn(module, x, target)

    # Captum's Saliency returns |gradient| unless told abs=False.
    is_saliency = method is Saliency or isinstance(method, Saliency)
    absolute = is_saliency and bool(attribute_kwargs.get("abs", True))
    signed = get_method(method, **{**attribute_kwargs, "abs": False}) if absolute else None
    return Method(name, fn, 1, absolute, _multiplies_by_inputs(method), signed)


def _multiplies_by_inputs(method: Any) -> bool:
    """Captum's ``multiplies_by_inputs`` of an attribution instance or class (``False`` for anything else)."""
    if inspect.isclass(method):
        try:
            method = method(nn.Identity())
        except Exception:  # noqa: BLE001 - a class that cannot be built on a bare module: assume plain maps
            return False
    return bool(getattr(method, "multiplies_by_inputs", False))


def compute_maps(
    resolved: ResolvedModel,
    x: torch.Tensor,
    target: torch.Tensor,
    method: Method,
    batch_size: int,
    seed: int = 0,
) -> torch.Tensor:
    """Attribution maps of checked device tensors, in batches (the core of :func:`attribute`).

    Batch ``i`` is computed with torch's generators seeded to ``seed + i`` inside ``torch.random.fork_rng``.

    :param resolved: The model.
    :param x: Inputs on the model's device.
    :param target: Class indices on the model's device.
    :param method: The method.
    :param batch_size: Inputs per batch; for IG and noise tunnels, also model evaluations per internal batch.
    :param seed: Seed.
    :return: Detached float32 maps of ``x``'s shape.
    :raises ValueError: If the method returns maps of another shape.
    """
    module, out = resolved.module, []
    with frozen(module):
        for i, s in enumerate(batches(len(x), batch_size)):
            with torch.random.fork_rng(devices=fork_devices(x.device)), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_HOOK_WARNINGS, category=UserWarning)
                torch.manual_seed(seed + i)
                maps = method.fn(module, x[s], target[s], batch_size)
            if isinstance(maps, tuple):
                maps = maps[0]
            if tuple(maps.shape) != tuple(x[s].shape):
                raise ValueError(
                    f"method {method.name} returned maps of shape {tuple(maps.shape)} "
                    f"for inputs of shape {tuple(x[s].shape)}."
                )
            out.append(maps.detach().to(torch.float32))
    return torch.cat(out)


def attribute(
    model: PyTorchClassifier | torch.nn.Module,
    x: Any,
    y: Any,
    method: Any = "saliency",
    batch_size: int = 256,
    seed: int = 0,
    **attribute_kwargs: Any,
) -> Any:
    """Attribution maps of ``x`` for the classes ``y``, computed in batches on the model's device.

    :param model: An ART ``PyTorchClassifier`` (its preprocessing is composed before ``classifier.model``,
        so maps are taken with respect to the raw input) or a ``torch.nn.Module`` returning logits.
    :param x: Inputs as the classifier takes them (channels first), numpy or torch. Not modified.
    :param y: Target classes: indices ``(n,)`` or one-hot ``(n, nb_classes)``.
    :param method: See :func:`get_method`.
    :param batch_size: Inputs per batch (and model evaluations per internal batch for IG / SmoothGrad).
    :param seed: Seed of randomised methods.
    :param attribute_kwargs: Keyword arguments for Captum's ``attribute``.
    :return: Maps of ``x``'s shape: a numpy array if ``x`` is one, else a tensor on ``x``'s device.
    :raises ValueError: If ``x`` and ``y`` differ in length, labels are invalid or ``method`` is unknown.

    >>> import torch
    >>> model = torch.nn.Linear(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [0.0, 1.0, 0.0]]))
    >>> attribute(model, torch.zeros(2, 3), torch.tensor([0, 1]), method="gradient")
    tensor([[ 1., -2.,  3.],
            [ 0.,  1.,  0.]])
    """
    resolved = resolve_model("model", model)
    batch_size = check_positive_int("batch_size", batch_size)
    resolved_method = get_method(method, **attribute_kwargs)
    x_t = as_tensor("x", x, resolved.device)
    y_t = as_labels("y", y, len(x_t), resolved.nb_classes, resolved.device)
    return like(compute_maps(resolved, x_t, y_t, resolved_method, batch_size, seed), x)
