"""Projected gradient descent, single-step N-FGSM and TRADES' KL ascent, crafted entirely in torch.

:func:`pgd` reproduces ART's ``ProjectedGradientDescentPyTorch`` for the L-inf and L2 norms (L-inf results are
identical, L2 results agree to float rounding), hence also ``ProjectedGradientDescentNumpy``,
``BasicIterativeMethod`` and ``FastGradientMethod``, without ART's per-step round trips through numpy and
without computing parameter gradients; ``art_sgt._art`` reads an ART attack object into its arguments.
:func:`n_fgsm` is the noisy single step of de Jorge et al. (2022), which ART lacks; :func:`trades_pgd` is the
label-free crafting of TRADES (Zhang et al. 2019), which ART's TRADES trainer replaces by the attack's own loss.

Nothing here imports ART: this is the pure-torch floor.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from art_sgt._validation import (
    check_bool,
    check_choice,
    check_clip_values,
    check_non_negative,
    check_non_negative_int,
    check_norm,
    check_positive,
    check_positive_int,
    preserved_modes,
)
from art_sgt.losses import OUTPUTS, log_probabilities, output_kind
from art_sgt.saliency import eval_mode

__all__ = ["PGDParams", "pgd", "n_fgsm", "trades_pgd", "TRADES_START", "estimator_clip_values"]

TRADES_START = 0.001
"""Standard deviation of the Gaussian start ``x + TRADES_START * N(0, 1)`` of TRADES' KL crafting (Zhang et al.)."""

Bound = Union[float, torch.Tensor]

# CDF of the standard normal at 0 and at 2: ART's random eps is a normal of scale eps / 2 truncated to [0, eps].
_NORMAL = NormalDist()
_CDF_LOW, _CDF_HIGH = _NORMAL.cdf(0.0), _NORMAL.cdf(2.0)


@dataclass(frozen=True)
class PGDParams:
    """Arguments of :func:`pgd` read from an ART attack.

    :param eps: Radius of the perturbation ball.
    :param eps_step: Step size of each iteration.
    :param max_iter: Number of iterations.
    :param norm: ``"inf"`` or ``"2"``.
    :param num_random_init: Number of random starts (0: start at the input).
    :param clip_values: ``(min, max)`` of the input domain (floats, or per-feature arrays), or ``None``.
    :param targeted: Whether the attack is targeted.
    :param random_eps: Whether ``eps`` is drawn at random on each call, as ART does.
    """

    eps: float
    eps_step: float
    max_iter: int
    norm: str
    num_random_init: int
    clip_values: tuple[Any, Any] | None
    targeted: bool
    random_eps: bool

    def pgd_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`pgd`.

        :return: A new dictionary.
        """
        return asdict(self)


def _clip_bounds(clip_values: Any, x: torch.Tensor) -> tuple[Bound, Bound] | None:
    """Scalar bounds as floats; per-feature bounds (as ART allows) as tensors on ``x``'s device."""
    checked = check_clip_values("clip_values", clip_values)
    if checked is None:
        return None
    low, high = checked
    if low.size == 1 and high.size == 1:
        return float(low.reshape(-1)[0]), float(high.reshape(-1)[0])
    try:  # as ART broadcasts them against a batch: a leading axis of 1 is allowed
        shape = (1, *x.shape[1:])
        bounds = tuple(torch.as_tensor(b, dtype=x.dtype, device=x.device).expand(shape)[0] for b in (low, high))
    except RuntimeError:
        raise ValueError(f"clip_values arrays must broadcast to one input of shape {tuple(x.shape[1:])}.") from None
    return bounds[0], bounds[1]


def _draw_eps(eps: float, eps_step: float, generator: torch.Generator | None) -> tuple[float, float]:
    """ART's ``random_eps``: one eps per call from a normal of scale eps/2 truncated to [0, eps], eps_step scaled."""
    device = generator.device if generator is not None else None
    u = torch.rand((), generator=generator, device=device, dtype=torch.float64).item()
    drawn = round(0.5 * eps * _NORMAL.inv_cdf(_CDF_LOW + u * (_CDF_HIGH - _CDF_LOW)), 10)
    return drawn, eps_step / eps * drawn


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform noise in the eps ball, drawn as ART's ``random_sphere`` draws it."""
    n, m = x.shape[0], x[0].numel()
    device = generator.device if generator is not None else x.device
    if norm == "inf":
        noise = torch.rand((n, m), generator=generator, device=device, dtype=x.dtype).mul_(2 * eps).sub_(eps)
    else:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        a = torch.randn((n, m), generator=generator, device=device, dtype=dtype)
        s_2 = a.square().sum(dim=1, keepdim=True)
        radius = torch.special.gammainc(torch.full_like(s_2, m / 2.0), s_2 / 2.0) ** (1.0 / m) * eps
        noise = a * (radius / s_2.sqrt())
    return noise.to(device=x.device, dtype=x.dtype).view_as(x)


def _attack_once(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    eps_step: float,
    max_iter: int,
    norm: str,
    clip: tuple[Bound, Bound] | None,
    direction: float,
    noise: torch.Tensor | None,
) -> torch.Tensor:
    """One run of PGD from ``x`` (plus ``noise``), following ART's order of operations step for step."""
    low, high = clip if clip is not None else (None, None)
    with torch.no_grad():
        x_adv = x + noise if noise is not None else x.clone()
        if noise is not None and clip is not None:
            x_adv.clamp_(low, high)
    shape = (-1,) + (1,) * (x.ndim - 1)
    for _ in range(max_iter):
        with torch.enable_grad():  # the caller may be under torch.no_grad()
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y)
            (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach()
        with torch.no_grad():
            if direction < 0:
                grad.neg_()
            if norm == "inf":
                # ART replaces NaN gradients (sign(NaN) = NaN) by 0.
                step = grad.sign_().nan_to_num_(nan=0.0).mul_(eps_step)
            else:
                grad = torch.where(grad.isnan(), 0.0, grad)
                g_norm = torch.linalg.vector_norm(grad.flatten(1), dim=1).view(shape)
                # Zero gradients give a zero step; infinite ones give NaN, which ART also zeroes.
                scale = torch.where(g_norm == 0, 0.0, g_norm.reciprocal())
                step = grad.mul_(scale).mul_(eps_step).nan_to_num_(nan=0.0)
            x_adv.add_(step)
            if clip is not None:
                x_adv.clamp_(low, high)
            delta = x_adv.sub_(x)
            if norm == "inf":
                delta.clamp_(-eps, eps)
            else:
                d_norm = torch.linalg.vector_norm(delta.flatten(1), dim=1).view(shape)
                delta.mul_(torch.where(d_norm == 0, 0.0, torch.clamp(eps / d_norm, max=1.0)))
            x_adv = delta.add_(x)
    return x_adv


def _check_model_and_x(model: Any, x: Any) -> None:
    """The checks every attack here makes on the model and the inputs."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {getattr(x, 'dtype', type(x).__name__)}.")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (n, ...) with n >= 1, got shape {tuple(x.shape)}.")


def _check_model_inputs(model: Any, x: Any, y: Any) -> None:
    """The checks :func:`pgd` and :func:`n_fgsm` share on the model, the inputs and their labels."""
    _check_model_and_x(model, x)
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"y must be an integer torch.Tensor of class indices, got {getattr(y, 'dtype', type(y))}.")
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"x and y must have the same length with y of shape (n,), got {tuple(x.shape)} and {tuple(y.shape)}."
        )


def _check_generator_and_finite(generator: Any, x: torch.Tensor) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must hold only finite values, got NaN or infinite entries.")


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    eps_step: float,
    max_iter: int,
    norm: str | float = "inf",
    num_random_init: int = 0,
    clip_values: tuple[Any, Any] | None = None,
    targeted: bool = False,
    random_eps: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Craft adversarial examples with projected gradient descent (Madry et al.), on ``x``'s device.

    Each iteration takes the gradient of the mean cross-entropy of ``model(x_adv)`` with respect to the input
    only, steps by ``eps_step * sign(grad)`` (L-inf) or ``eps_step * grad / ||grad||_2`` (L2, per sample),
    clips to ``clip_values`` and projects the perturbation back onto the eps ball, exactly as ART's
    ``ProjectedGradientDescentPyTorch`` does. ``eps_step > eps`` is allowed (the projection bounds the step).
    With ``num_random_init > 1`` the runs are kept as ART keeps them: the first run, then each later run
    overwrites the samples on which it succeeds (prediction differs from the clean prediction, or equals the
    target when ``targeted``), so a sample keeps the *last* successful run.

    The model is put in eval mode with its parameters' ``requires_grad`` off while crafting, and both are
    restored afterwards; no parameter ``.grad`` is written and the step loop never synchronises with the host.

    :param model: A module mapping a batch of inputs to logits (compose any preprocessing into it).
    :param x: Inputs of shape ``(n, ...)``, floating point, finite. Not modified.
    :param y: Class indices of shape ``(n,)``: the true classes, or the target classes if ``targeted``.
    :param eps: Radius of the perturbation ball, ``>= 0``.
    :param eps_step: Step size of each iteration, ``> 0``.
    :param max_iter: Number of iterations, ``>= 1``.
    :param norm: ``"inf"`` (or ``numpy.inf``) or ``2`` (or ``"2"``).
    :param num_random_init: Number of random starts drawn uniformly in the eps ball; 0 starts at ``x``.
    :param clip_values: ``(min, max)`` of the input domain, applied after every step: numbers, or per-feature
        arrays broadcastable to one input (as ART allows); ``None`` for no clipping.
    :param targeted: Descend the loss of ``y`` instead of ascending it.
    :param random_eps: Draw ``eps`` once per call from a normal of mean 0 and scale ``eps / 2`` truncated to
                       ``[0, eps]`` (rounded to 10 decimals, as ART does) and scale ``eps_step`` by the same factor.
    :param generator: Source of all randomness (random starts and ``random_eps``).
    :return: The adversarial examples, a new tensor of ``x``'s shape, dtype and device, detached.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If an argument has an invalid value.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x = torch.rand(5, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    >>> y = torch.tensor([0, 1, 2, 0, 1])
    >>> x_adv = pgd(model, x, y, eps=0.1, eps_step=0.05, max_iter=5, clip_values=(0.0, 1.0))
    >>> bool((x_adv - x).abs().max() <= 0.1 + 1e-6) and bool(((x_adv >= 0) & (x_adv <= 1)).all())
    True
    """
    _check_model_inputs(model, x, y)
    eps = check_non_negative("eps", eps)
    eps_step = check_positive("eps_step", eps_step)
    max_iter = check_positive_int("max_iter", max_iter)
    norm = check_norm("norm", norm)
    num_random_init = check_non_negative_int("num_random_init", num_random_init)
    clip = _clip_bounds(clip_values, x)
    targeted = check_bool("targeted", targeted)
    random_eps = check_bool("random_eps", random_eps)
    _check_generator_and_finite(generator, x)

    if random_eps and eps > 0:
        eps, eps_step = _draw_eps(eps, eps_step, generator)
    x = x.detach()
    y = y.detach().to(device=x.device, dtype=torch.long)
    direction = -1.0 if targeted else 1.0
    shape = (-1,) + (1,) * (x.ndim - 1)

    def run() -> torch.Tensor:
        noise = _random_start(x, eps, norm, generator) if num_random_init > 0 else None
        return _attack_once(model, x, y, eps, eps_step, max_iter, norm, clip, direction, noise)

    with preserved_modes(model, training=False, freeze=True):
        best = run()
        if num_random_init > 1:
            with torch.no_grad():
                reference = y if targeted else model(x).argmax(dim=1)
            for _ in range(num_random_init - 1):
                x_adv = run()
                with torch.no_grad():
                    pred = model(x_adv).argmax(dim=1)
                    success = pred == reference if targeted else pred != reference
                    best = torch.where(success.view(shape), x_adv, best)
    return best


def n_fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_step: float,
    noise: float,
    clip_values: tuple[Any, Any] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Craft single-step adversarial examples as N-FGSM does (de Jorge et al., NeurIPS 2022, "Make some noise").

    ``x_noisy = clip(x + u)`` with ``u`` uniform in ``[-noise, noise]`` per feature, then
    ``x_adv = clip(x_noisy + eps_step * sign(grad))`` with the gradient of the mean cross-entropy of
    ``model(x_noisy)`` with respect to the input, and **no** projection back onto an eps ball: the L-inf
    perturbation can reach ``noise + eps_step``. The paper's setting for a training radius ``eps`` is
    ``noise = 2 * eps`` and ``eps_step = eps``. ART has no such attack; the model is handled as in :func:`pgd`
    (eval mode and frozen parameters while crafting, both restored, no parameter ``.grad`` written).

    | Paper link: https://arxiv.org/abs/2202.01181

    :param model: A module mapping a batch of inputs to logits (compose any preprocessing into it).
    :param x: Inputs of shape ``(n, ...)``, floating point, finite. Not modified.
    :param y: Class indices of shape ``(n,)``.
    :param eps_step: Size of the signed-gradient step, ``> 0``.
    :param noise: Half-width of the uniform noise added before the step, ``>= 0``.
    :param clip_values: ``(min, max)`` of the input domain (numbers or per-feature arrays), applied after the noise
        and after the step; ``None`` for no clipping.
    :param generator: Source of the noise.
    :return: The adversarial examples, a new tensor of ``x``'s shape, dtype and device, detached.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If an argument has an invalid value.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x = torch.full((5, 1, 2, 2), 0.5)
    >>> x_adv = n_fgsm(model, x, torch.tensor([0, 1, 2, 0, 1]), eps_step=0.1, noise=0.2, clip_values=(0.0, 1.0))
    >>> float((x_adv - x).abs().max()) <= 0.3 + 1e-6  # beyond eps_step: no projection
    True
    """
    _check_model_inputs(model, x, y)
    eps_step = check_positive("eps_step", eps_step)
    noise = check_non_negative("noise", noise)
    clip = _clip_bounds(clip_values, x)
    _check_generator_and_finite(generator, x)
    x = x.detach()
    y = y.detach().to(device=x.device, dtype=torch.long)
    start = _random_start(x, noise, "inf", generator) if noise > 0 else None
    with preserved_modes(model, training=False, freeze=True):
        return _attack_once(model, x, y, math.inf, eps_step, 1, "inf", clip, 1.0, start)


def _scalar(value: Any) -> float | None:
    """A Python float from a number or a one-element array, ``None`` for anything else."""
    if isinstance(value, np.ndarray):
        return float(value.reshape(-1)[0]) if value.size == 1 else None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def estimator_clip_values(estimator: Any) -> tuple[Any, Any] | None:
    """An ART estimator's ``clip_values`` as :func:`pgd` takes them: two floats, two float32 arrays, or ``None``.

    :param estimator: An ART estimator.
    :return: The bounds.
    """
    if estimator.clip_values is None:
        return None
    low, high = (np.asarray(bound, dtype=np.float32) for bound in estimator.clip_values)
    scalar = low.size == 1 and high.size == 1
    return (float(low.reshape(-1)[0]), float(high.reshape(-1)[0])) if scalar else (low, high)


def trades_pgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    eps: float,
    eps_step: float,
    max_iter: int,
    clip: tuple[torch.Tensor, torch.Tensor] | None = None,
    outputs: str | None = "logits",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TRADES' adversarial examples: L-inf PGD ascending ``sum KL(p(x) || p(x_adv))`` (Zhang et al. 2019).

    As in the authors' ``trades.py``: start at ``x + 0.001 * N(0, 1)``, then ``max_iter`` times step by
    ``eps_step * sign(grad)``, project onto the eps ball around ``x`` and clip to ``clip``; the model is in eval
    mode throughout (each module's mode is restored after) and only input gradients are taken. It needs no label.

    :param model: A module mapping inputs to logits (or probabilities, with ``outputs="probabilities"``).
    :param x: Clean inputs, ``(n, ...)``. Not modified.
    :param eps: L-inf radius.
    :param eps_step: Step of each iteration.
    :param max_iter: Number of iterations.
    :param clip: ``(low, high)`` tensors broadcasting to ``x``, or ``None`` for no clipping.
    :param outputs: What the model returns (:data:`art_sgt.losses.OUTPUTS`; ``None`` decides from its outputs).
    :param generator: Source of the Gaussian start.
    :return: The adversarial examples, detached, of ``x``'s shape.
    """
    _check_model_and_x(model, x)
    eps = check_non_negative("eps", eps)
    eps_step = check_positive("eps_step", eps_step)
    max_iter = check_positive_int("max_iter", max_iter)
    if outputs is not None:
        outputs = check_choice("outputs", outputs, OUTPUTS)
    _check_generator_and_finite(generator, x)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x = x.detach()
    with eval_mode(model):
        with torch.no_grad():
            clean = model(x)
            outputs = output_kind(clean) if outputs is None else outputs
            target = clean if outputs == "probabilities" else torch.nn.functional.softmax(clean, dim=1)
        x_adv = x + TRADES_START * noise
        for _ in range(max_iter):
            x_adv.requires_grad_(True)
            kl = torch.nn.functional.kl_div(log_probabilities(model(x_adv), outputs), target, reduction="sum")
            (grad,) = torch.autograd.grad(kl, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + eps_step * grad.sign(), x - eps), x + eps)
            if clip is not None:
                x_adv = torch.clamp(x_adv, clip[0], clip[1])
    return x_adv.detach()
