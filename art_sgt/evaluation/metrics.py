"""Per-sample map metrics: infidelity and max-sensitivity (via ``captum.metrics``), sparseness, complexity.

Infidelity and sensitivity run Captum's own implementations in batches on the model's device, with seeded
perturbations clipped to the classifier's ``clip_values``. Sparseness and complexity are closed-form
functions of the maps, vectorised in torch, equal to Quantus's ``Sparseness`` and ``Complexity``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from captum.metrics import infidelity as captum_infidelity
from captum.metrics import infidelity_perturb_func_decorator, sensitivity_max

from art_sgt._validation import check_choice, check_non_negative, check_positive_int
from art_sgt.evaluation._common import (
    as_labels,
    as_tensor,
    batches,
    check_maps,
    frozen,
    like,
    resolve_model,
)
from art_sgt.evaluation.attribution import compute_maps, get_method

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

__all__ = ["CHANNEL_REDUCTIONS", "infidelity", "sensitivity", "sparseness", "complexity"]


def _clip(x: torch.Tensor, clip_values: tuple[Any, Any] | None) -> torch.Tensor:
    """Clamp to the input domain: scalar bounds, or per-feature tensors broadcast over the batch."""
    if clip_values is None:
        return x
    low, high = (torch.as_tensor(bound, dtype=x.dtype, device=x.device) for bound in clip_values)
    return torch.minimum(torch.maximum(x, low), high)


def _inputs_per_call(batch_size: int, n_perturb: int) -> int:
    """Inputs per Captum call so that each expanded batch holds about ``batch_size`` perturbed inputs."""
    return max(1, batch_size // n_perturb)


def infidelity(
    model: PyTorchClassifier | torch.nn.Module,
    x: Any,
    y: Any,
    maps: Any,
    n_perturb: int = 10,
    std: float = 0.1,
    softmax: bool = False,
    multiply_by_inputs: bool = False,
    batch_size: int = 256,
    seed: int = 0,
) -> Any:
    """Explanation infidelity (Yeh et al., NeurIPS 2019) with Gaussian perturbations, via Captum.

    With perturbations ``I ~ N(0, std^2)`` applied as ``x~ = clip(x - I)`` (so the effective perturbation is
    ``I' = x - x~``), and ``f`` the model's output for the class ``y`` (logit, or probability if ``softmax``):

    ``INFD(a, x) = E_I[(beta * I'.a - (f(x) - f(x~)))^2]``, ``beta = E[I'.a (f(x) - f(x~))] / E[(I'.a)^2]``

    (``captum.metrics.infidelity(..., normalize=True)``: the optimal rescaling ``beta`` makes the score
    independent of the scale of the map; lower is better). The map is read as a *signed* linear predictor of
    ``f(x) - f(x~)``: pass signed attributions (``"gradient"``, not the absolute ``"saliency"``). For maps that
    multiply by the input (input x gradient, integrated gradients, DeepLift) set ``multiply_by_inputs``: the
    perturbation is then ``I' / x`` (Captum's ``infidelity_perturb_func_decorator(multiply_by_inputs=True)``),
    so that ``(I' / x).(x * g) = I'.g``. The expectation is estimated with ``n_perturb`` seeded samples per
    input; all perturbed inputs of a batch go through one forward pass.

    :param model: An ART ``PyTorchClassifier`` or a ``torch.nn.Module`` returning logits.
    :param x: Inputs, channels first, numpy or torch. Not modified.
    :param y: Classes explained, indices or one-hot.
    :param maps: Saliency maps of ``x``'s shape.
    :param n_perturb: Perturbations per input.
    :param std: Standard deviation of the Gaussian noise, in input units.
    :param softmax: Explain the class probability instead of the logit.
    :param multiply_by_inputs: Whether ``maps`` multiply by the input (see above).
    :param batch_size: Perturbed inputs per forward pass.
    :param seed: Seed of the perturbations.
    :return: Infidelity per sample, ``(n,)``: numpy if ``x`` is numpy, else a tensor.
    :raises ValueError: If the maps' shape differs from ``x``, maps are not finite, ``std < 0`` or ``x`` and
        ``y`` differ in length.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x = torch.rand(5, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    >>> y = torch.tensor([0, 1, 2, 0, 1])
    >>> maps = model[1].weight[y].detach().reshape(5, 1, 2, 2)  # the exact gradient of a linear model
    >>> bool(infidelity(model, x, y, maps).abs().max() < 1e-6)  # explains every perturbation exactly
    True
    """
    resolved = resolve_model("model", model)
    n_perturb = check_positive_int("n_perturb", n_perturb)
    std = check_non_negative("std", std)
    batch_size = check_positive_int("batch_size", batch_size)
    x_t = as_tensor("x", x, resolved.device)
    y_t = as_labels("y", y, len(x_t), resolved.nb_classes, resolved.device)
    maps_t = check_maps("maps", maps, x_t)
    generator = torch.Generator(device=resolved.device).manual_seed(int(seed))
    module, clip = resolved.module, resolved.clip_values

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        out = module(inputs)
        return torch.softmax(out, dim=1) if softmax else out

    @infidelity_perturb_func_decorator(multiply_by_inputs=bool(multiply_by_inputs))
    def perturb(inputs: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(inputs.shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
        return _clip(inputs - std * noise, clip)

    step = _inputs_per_call(batch_size, n_perturb)
    out = []
    with frozen(module):
        for s in batches(len(x_t), step):
            out.append(
                captum_infidelity(
                    forward,
                    perturb,
                    x_t[s],
                    maps_t[s],
                    target=y_t[s],
                    n_perturb_samples=n_perturb,
                    max_examples_per_batch=n_perturb * len(x_t[s]),
                    normalize=True,
                )
            )
    return like(torch.cat(out).detach(), x)


def sensitivity(
    model: PyTorchClassifier | torch.nn.Module,
    x: Any,
    y: Any,
    method: Any = "saliency",
    maps: Any = None,
    radius: float = 0.02,
    n_perturb: int = 10,
    norm_ord: str = "fro",
    batch_size: int = 256,
    seed: int = 0,
    **attribute_kwargs: Any,
) -> Any:
    """Max-sensitivity (Yeh et al., NeurIPS 2019) of a method, via ``captum.metrics.sensitivity_max``.

    ``SENS_max(a, x) = max_{x~} ||a(x~) - a(x)|| / ||a(x)||`` over ``n_perturb`` inputs ``x~ = clip(x + u)``
    with ``u`` uniform in the L-inf ball of ``radius`` (lower is better; a zero map's norm counts as 1, as
    in Captum). Perturbations are seeded and clipped to the classifier's ``clip_values``; each perturbed
    input costs one attribution, and the maps of ``x`` are not recomputed when given.

    :param model: An ART ``PyTorchClassifier`` or a ``torch.nn.Module`` returning logits.
    :param x: Inputs, channels first, numpy or torch. Not modified.
    :param y: Classes explained, indices or one-hot.
    :param method: Attribution method (see :func:`~art_sgt.evaluation.attribution.get_method`).
    :param maps: The method's maps of ``x`` if already computed (they are then reused), else ``None``.
    :param radius: L-inf radius of the perturbations, ``>= 0``.
    :param n_perturb: Perturbations per input.
    :param norm_ord: Norm of the map difference (``"fro"``, ``"nuc"`` or a number, as ``torch.norm``).
    :param batch_size: Perturbed inputs per attribution batch.
    :param seed: Seed of the perturbations and of randomised methods.
    :param attribute_kwargs: Keyword arguments for Captum's ``attribute``.
    :return: Max-sensitivity per sample, ``(n,)``: numpy if ``x`` is numpy, else a tensor.
    :raises ValueError: If ``radius < 0``, given maps do not match ``x`` or are not finite, or ``x`` and ``y``
        differ in length.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x = torch.rand(5, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    >>> sensitivity(model, x, torch.tensor([0, 1, 2, 0, 1]), "saliency")  # a linear model's gradient never changes
    tensor([0., 0., 0., 0., 0.])
    """
    resolved = resolve_model("model", model)
    n_perturb = check_positive_int("n_perturb", n_perturb)
    radius = check_non_negative("radius", radius)
    batch_size = check_positive_int("batch_size", batch_size)
    resolved_method = get_method(method, **attribute_kwargs)
    x_t = as_tensor("x", x, resolved.device)
    y_t = as_labels("y", y, len(x_t), resolved.nb_classes, resolved.device)
    maps_t = None if maps is None else check_maps("maps", maps, x_t)
    generator = torch.Generator(device=resolved.device).manual_seed(int(seed))
    clip = resolved.clip_values

    def perturb(inputs: torch.Tensor, perturb_radius: float) -> torch.Tensor:
        u = torch.rand(inputs.shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
        return _clip(inputs + (2 * u - 1) * perturb_radius, clip)

    step = _inputs_per_call(batch_size, n_perturb)
    out = []
    for i, s in enumerate(batches(len(x_t), step)):
        xb = x_t[s]
        cached = None if maps_t is None else maps_t[s]

        def explain(
            inputs: Any,
            target: torch.Tensor,
            _xb: torch.Tensor = xb,
            _cached: Any = cached,
            _seed: int = int(seed) + i,
        ) -> tuple[torch.Tensor]:
            # Captum iterates the clean explanation as a tuple of tensors: always return one.
            inp = inputs[0] if isinstance(inputs, tuple) else inputs
            if _cached is not None and inp is _xb:
                return (_cached,)
            return (compute_maps(resolved, inp, target, resolved_method, batch_size, _seed),)

        out.append(
            sensitivity_max(
                explain,
                xb,
                perturb,
                perturb_radius=radius,
                n_perturb_samples=n_perturb,
                norm_ord=norm_ord,
                max_examples_per_batch=n_perturb * len(xb),
                target=y_t[s],
            )
        )
    return like(torch.cat(out).detach(), x)


#: Channel reductions of :func:`sparseness` and :func:`complexity`.
CHANNEL_REDUCTIONS = ("sum", "none")


def _flat_abs(name: str, maps: Any, channel_reduction: str) -> tuple[torch.Tensor, Any]:
    """``|maps|`` flattened per sample as a new float64 tensor (never a view of the user's maps); image maps
    ``(n, c, h, w)`` are first summed over channels when ``channel_reduction`` is ``"sum"``."""
    check_choice("channel_reduction", channel_reduction, CHANNEL_REDUCTIONS)
    device = maps.device if isinstance(maps, torch.Tensor) else torch.device("cpu")
    a = as_tensor(name, maps, device, min_ndim=2, dtype=torch.float64)
    if channel_reduction == "sum" and a.ndim == 4 and a.shape[1] > 1:
        a = a.sum(dim=1)
    return a.reshape(len(a), -1).abs(), maps


def sparseness(maps: Any, channel_reduction: str = "sum") -> Any:
    """Gini index of each map (Chalasani et al., ICML 2020); higher is sparser. As Quantus's ``Sparseness``.

    Image maps ``(n, c, h, w)`` are first summed over channels (``channel_reduction="sum"``, what Quantus's
    ``explain`` does before any metric; ``"none"`` ranks every channel value), so ``d = h * w``. With ``a`` the
    map flattened to ``d`` values, ``a <- |a| / max|a| + 1e-7`` (no division for a zero map)
    and sorted ascending, ``a_(1) <= ... <= a_(d)``:

    ``G(a) = sum_{i=1..d} (2i - d - 1) a_(i) / (d * sum_i a_(i))``,

    in [0, 1 - 1/d]: 0 for a constant map, ``1 - 1/d`` when one value holds all the mass. The ``1e-7``
    offset is Quantus's; it makes the index of a zero map 0. Quantus divides by the batch's maximum, here
    each map is divided by its own maximum, so a score never depends on the other samples (the difference
    is below 1e-6).

    :param maps: Maps ``(n, ...)``, numpy or torch.
    :param channel_reduction: ``"sum"`` or ``"none"`` (see above).
    :return: Gini index per map, ``(n,)`` float64: numpy if ``maps`` is numpy, else a tensor.
    :raises ValueError: If ``maps`` is empty or not finite, or ``channel_reduction`` is unknown.

    >>> import numpy as np
    >>> sparseness(np.array([[0.0, 0.0, 0.0, 4.0], [1.0, 1.0, 1.0, 1.0]])).round(4)
    array([0.75, 0.  ])
    """
    a, ref = _flat_abs("maps", maps, channel_reduction)  # a fresh tensor: normalised in place
    peak = a.amax(dim=1, keepdim=True)
    a.div_(torch.where(peak > 0, peak, torch.ones_like(peak))).add_(1e-7)
    if a.device.type == "cpu":  # numpy's SIMD sort is several times faster than torch's on CPU
        a = torch.from_numpy(np.sort(a.numpy(), axis=1))
    else:
        a = torch.sort(a, dim=1).values
    d = a.shape[1]
    weights = 2 * torch.arange(1, d + 1, device=a.device, dtype=a.dtype) - d - 1
    return like((a * weights).sum(dim=1) / (d * a.sum(dim=1)), ref)


def complexity(maps: Any, channel_reduction: str = "sum") -> Any:
    """Entropy of the normalised absolute map (Bhatt et al., IJCAI 2020); lower is simpler. Equal to Quantus's
    ``Complexity``.

    Image maps are first summed over channels, as for :func:`sparseness`. With ``p_i = |a_i| / sum_j |a_j|``
    over the ``d`` values of the flattened map:

    ``H(a) = -sum_i p_i ln p_i`` (natural log, ``0 ln 0 = 0``),

    in [0, ln d]: 0 when one value holds all the mass, ``ln d`` for a constant map. A zero map has no
    distribution: its entropy is ``nan`` (as in Quantus), and a ``RuntimeWarning`` says how many maps were zero
    (:func:`~art_sgt.evaluation.report.summarise` leaves them out of means and counts them).

    :param maps: Maps ``(n, ...)``, numpy or torch.
    :param channel_reduction: ``"sum"`` or ``"none"`` (see :func:`sparseness`).
    :return: Entropy per map, ``(n,)`` float64: numpy if ``maps`` is numpy, else a tensor.
    :raises ValueError: If ``maps`` is empty or not finite, or ``channel_reduction`` is unknown.

    >>> import numpy as np
    >>> complexity(np.array([[0.0, 0.0, 0.0, 4.0], [1.0, 1.0, 1.0, 1.0]])).round(4)
    array([0.    , 1.3863])
    """
    a, ref = _flat_abs("maps", maps, channel_reduction)
    zero = int((a.amax(dim=1) == 0).sum())
    if zero:
        warnings.warn(
            f"complexity: {zero} all-zero map(s) have no distribution; their entropy is nan.",
            RuntimeWarning,
            stacklevel=2,
        )
    # -sum p ln p = ln S - (sum a ln a) / S with S = sum a: one pass less than normalising first.
    if a.device.type == "cpu":  # numpy's SIMD log is several times faster than torch's on CPU
        v = a.numpy()
        total = v.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            a_log_a = (v * np.log(np.where(v > 0, v, 1.0))).sum(axis=1)
            entropy = torch.from_numpy(np.log(total) - a_log_a / total)
    else:
        total = a.sum(dim=1)
        entropy = torch.log(total) - torch.special.xlogy(a, a).sum(dim=1) / total
    return like(entropy.clamp_min(0.0), ref)  # rounding can leave -1e-16 for a one-hot map
