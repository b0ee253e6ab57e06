"""Auto-PGD (Croce and Hein 2020) with the cross-entropy, DLR and targeted DLR losses, crafted entirely in torch.

:func:`apgd` runs the step loop of ART's ``AutoProjectedGradientDescent`` (ART 1.20) on one batch, on the model's
device, operation for operation: the same step-size schedule and checkpoints, the same momentum, the same
projections and clipping, and ART's DLR loss (its targeted form included), so its iterates are ART's from the same
start to float rounding (``tests/test_apgd.py`` holds them equal). ART's version steps through numpy: every
iteration copies the batch and its gradient between torch and numpy and runs a second forward for the loss. Here
the forward that gives the loss at the new point also gives the gradient for the next step whenever the point is
kept, so an iteration costs one forward and one backward.

Which point it returns departs from ART by default (``keep="adversarial"``): ART returns a sample's last iterate
when that is adversarial and its start otherwise, so a sample that some iterate misclassified but the last one
does not counts as robust. The original APGD (Croce and Hein 2020, Algorithm 1, as their ``auto-attack`` code runs
it, which keeps ``x_best_adv``) counts a sample as broken as soon as any iterate is adversarial and returns that
iterate. :func:`apgd` returns ART's point wherever that is adversarial, and otherwise the latest adversarial iterate
it met, so from the same start it breaks every sample ART's breaks, and possibly more. ``keep="last"`` is ART's rule.
``art_sgt._art`` reads an ART attack object into its arguments.

Nothing here imports ART at module level.

| Paper link: https://arxiv.org/abs/2003.01690
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from art_sgt._validation import (
    check_bool,
    check_choice,
    check_norm,
    check_positive,
    check_positive_int,
    preserved_modes,
)
from art_sgt.attacks import _check_model_inputs, _clip_bounds

__all__ = ["APGDParams", "KEEP", "LOSSES", "apgd", "apgd_checkpoints"]

#: Losses of :func:`apgd`, by name, with ART's ``loss_type`` for each.
LOSSES = {"ce": "cross_entropy", "dlr": "difference_logits_ratio"}

#: Which point :func:`apgd` returns per sample: ``"adversarial"`` (the original APGD's: the last iterate where
#: adversarial, else the latest adversarial iterate met, else the start) or ``"last"`` (ART's: the last iterate
#: where adversarial, else the start).
KEEP = ("adversarial", "last")

_TOL = 10e-8  # ART's guard against a zero L2 gradient norm
_ALPHA = 0.75  # momentum weight of the new point
_RHO = 0.75  # fraction of successful steps below which the step size is halved at a checkpoint


@dataclass(frozen=True)
class APGDParams:
    """Arguments of :func:`apgd` read from an ART ``AutoProjectedGradientDescent``.

    :param eps: Radius of the perturbation ball.
    :param eps_step: Initial step size.
    :param max_iter: Number of iterations.
    :param norm: ``"inf"`` or ``"2"``.
    :param loss: ``"ce"`` or ``"dlr"``.
    :param targeted: Whether the attack is targeted.
    :param clip_values: ``(min, max)`` of the input domain (floats, or per-feature arrays), or ``None``.
    :param nb_random_init: ART's number of random restarts (the caller draws the starts).
    :param batch_size: ART's batch size (the step loop runs batch by batch, as ART's).
    """

    eps: float
    eps_step: float
    max_iter: int
    norm: str
    loss: str
    targeted: bool
    clip_values: tuple[Any, Any] | None
    nb_random_init: int
    batch_size: int

    def apgd_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`apgd` (all but ``nb_random_init``).

        :return: A new dictionary.
        """
        return {k: v for k, v in asdict(self).items() if k != "nb_random_init"}


def apgd_checkpoints(max_iter: int) -> list[int]:
    """The iterations at which APGD may halve its step: ``ceil(p_j * max_iter)`` with ``p_0 = 0``, ``p_1 = 0.22``,
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` while ``p_{j+1} <= 1`` (Croce and Hein, Section 3.2).

    :param max_iter: Number of iterations, ``>= 1``.
    :return: The checkpoints, repeats kept (as ART keeps them).

    >>> apgd_checkpoints(100)
    [0, 22, 41, 58, 70, 80, 87, 93, 99]
    """
    points = [0.0, 0.22]
    while (nxt := points[-1] + max(points[-1] - points[-2] - 0.03, 0.06)) <= 1:
        points.append(nxt)
    return [math.ceil(p * max_iter) for p in points]


def _dlr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ART's difference-of-logits-ratio loss per sample: ``-(z_y - z_i) / (z_1 - z_3)`` with ``z_i`` the highest
    logit of a class other than ``y`` and ``z_1``, ``z_3`` the highest and third highest logits (ART uses the same
    expression with the target class as ``y`` for the targeted attack, and descends it)."""
    order = torch.argsort(logits, dim=1)
    rows = torch.arange(len(y), device=y.device)
    other = torch.where(order[:, -1] != y, order[:, -1], order[:, -2])
    z_y, z_i = logits[rows, y], logits[rows, other]
    z_1, z_3 = logits[rows, order[:, -1]], logits[rows, order[:, -3]]
    return (-(z_y - z_i) / (z_1 - z_3)).float()


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """ART's ``projection`` onto the eps ball (L-inf: clamp; L2: rescale, computed in float64 as ART's)."""
    if norm == "inf":
        return delta.clamp(-eps, eps)
    flat = delta.flatten(1)
    d_norm = torch.linalg.vector_norm(flat, dim=1, keepdim=True).double()
    scale = torch.where(d_norm == 0, 0.0, torch.clamp(eps / d_norm, max=1.0))
    return (flat.double() * scale).to(delta.dtype).view_as(delta)


def _run_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    start: torch.Tensor,
    eps: float,
    eps_step: float,
    max_iter: int,
    norm: str,
    loss_fn: Any,
    targeted: bool,
    clip: tuple[Any, Any] | None,
    keep: str,
) -> torch.Tensor:
    """ART's step loop on one batch, from ``start``; returns the last iterate where adversarial, else (with
    ``keep="adversarial"``) the latest adversarial iterate met, else ``start``."""
    low, high = clip if clip is not None else (None, None)
    n = len(x)
    view = (n,) + (1,) * (x.ndim - 1)
    checkpoints = apgd_checkpoints(max_iter)
    sign = -1.0 if targeted else 1.0

    met = torch.zeros(n, dtype=torch.bool, device=x.device)  # some iterate was adversarial
    x_met = start.detach().clone()  # the latest adversarial iterate (auto-attack's x_best_adv)

    def forward(point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample losses at ``point`` (a new leaf), its graph kept for a gradient at it; records ``point``
        where it is adversarial."""
        leaf = point.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model(leaf)
            losses = loss_fn(logits, y)
        with torch.no_grad():
            pred = logits.argmax(dim=1)
            adversarial = pred == y if targeted else pred != y
            met.logical_or_(adversarial)
            x_met[adversarial] = point[adversarial].detach()
        return leaf, losses

    def gradient(leaf: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        (grad,) = torch.autograd.grad(losses.mean(), leaf)
        grad = grad * sign
        if norm == "inf":
            return grad.sign()
        return grad / (torch.linalg.vector_norm(grad.flatten(1), dim=1).view(view) + _TOL)

    def clipped(point: torch.Tensor) -> torch.Tensor:
        return point.clamp(low, high) if clip is not None else point

    eta = torch.full(view, eps_step, dtype=x.dtype, device=x.device)
    count = torch.zeros(n, device=x.device)
    x_k = start.detach().clone()
    leaf, losses = forward(x_k)
    for k in range(max_iter):
        if leaf is None:  # x_k was reset at a checkpoint: a fresh forward at it
            leaf, losses = forward(x_k)
        grad = gradient(leaf, losses)
        f_k = losses.detach()
        with torch.no_grad():
            z = clipped(x_k + eta * grad)
            if k == 0:
                x_1 = x + _project(z - x, eps, norm)
                leaf, losses = forward(x_1)
                f_1 = losses.detach()
                eta_last, f_max_last, f_max = eta.clone(), f_k.clone(), f_k.clone()
                x_max, x_max_m_1 = x_k.clone(), x.clone()
                better = f_1 >= f_k  # ART compares >= here, whichever the direction
                f_max[better] = f_1[better]
                x_max[better] = x_1[better]
                count[better] += 1
                x_k_m_1, x_k = x_k, x_1
                continue
            z = x + _project(z - x, eps, norm)
            x_next = clipped(x_k + _ALPHA * (z - x_k) + (1 - _ALPHA) * (x_k - x_k_m_1))
            x_next = x + _project(x_next - x, eps, norm)
            leaf, losses = forward(x_next)
            f_next = losses.detach()
            if bool((f_next == 0.0).all()):  # ART stops the batch when every loss is exactly 0
                x_k = x_next
                break
            better = f_next < f_max if targeted else f_next > f_max
            count[better] += 1
            x_max[better] = x_next[better]
            x_max_m_1[better] = x_k[better]
            f_max[better] = f_next[better]
            x_k_m_1, x_k = x_k, x_next
            if k in checkpoints:
                since = k - checkpoints[checkpoints.index(k) - 1]
                halve = (count < _RHO * since) | ((eta_last == eta).flatten() & (f_max_last == f_max))
                eta[halve] /= 2
                x_k = x_k.clone()
                x_k[halve] = x_max[halve]
                x_k_m_1 = x_k_m_1.clone()
                x_k_m_1[halve] = x_max_m_1[halve]
                count.zero_()
                eta_last, f_max_last = eta.clone(), f_max.clone()
                if bool(halve.any()):
                    leaf = None
    with torch.no_grad():
        pred = model(x_k).argmax(dim=1)
        adversarial = pred == y if targeted else pred != y
        fallback = torch.where(met.view(view), x_met, start) if keep == "adversarial" else start
        return torch.where(adversarial.view(view), x_k, fallback)


def apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    eps_step: float,
    max_iter: int,
    norm: str | float = "inf",
    loss: str = "ce",
    targeted: bool = False,
    start: torch.Tensor | None = None,
    clip_values: tuple[Any, Any] | None = None,
    batch_size: int | None = None,
    keep: str = "adversarial",
) -> torch.Tensor:
    """Craft adversarial examples with APGD from ``start``, on ``x``'s device, as ART's step loop does.

    Per batch of ``batch_size`` samples: each iteration steps by ``eta * sign(grad)`` (L-inf) or
    ``eta * grad / (||grad||_2 + 1e-7)`` (L2) with the gradient of the batch's mean loss, clips, projects onto the
    eps ball around ``x``, and mixes in momentum (weight 0.75 on the new point after the first step); at each
    checkpoint of :func:`apgd_checkpoints` a sample halves its step and returns to its best point when fewer than
    75% of its steps since the last checkpoint raised its loss, or when neither its step nor its best loss changed.
    A batch whose losses are all exactly 0 stops early. These iterates are ART's.

    A sample gets its last iterate when that is adversarial (predicted other than ``y``, or as ``y`` when
    ``targeted``), as in ART. Otherwise ART returns ``start``, and so does ``keep="last"``; the default
    ``keep="adversarial"`` returns the latest iterate (the start included) that was adversarial, if any, and
    ``start`` only if none was. That is the original APGD's rule (Croce and Hein 2020, Algorithm 1; the
    ``auto-attack`` code's ``x_best_adv``): a sample is broken as soon as any iterate misclassifies it, which
    the last iterate of a loss-ascending walk along the decision boundary need not do. From the same start it
    therefore breaks every sample ART's APGD breaks, returning ART's point for each of them, and possibly more.

    The model is put in eval mode with its parameters' ``requires_grad`` off while crafting, and both are restored
    afterwards; no parameter ``.grad`` is written.

    :param model: A module mapping a batch of inputs to logits (compose any preprocessing into it).
    :param x: Inputs of shape ``(n, ...)``, floating point, finite: the centres of the eps balls. Not modified.
    :param y: Class indices of shape ``(n,)``: the true classes, or the target classes if ``targeted``.
    :param eps: Radius of the perturbation ball, ``> 0``.
    :param eps_step: Initial step size, ``> 0`` (AutoAttack: ``2 * eps``).
    :param max_iter: Number of iterations, ``>= 1``.
    :param norm: ``"inf"`` (or ``numpy.inf``) or ``2`` (or ``"2"``).
    :param loss: ``"ce"`` (cross-entropy) or ``"dlr"`` (ART's difference of logits ratio; needs 3 classes or more).
    :param targeted: Descend the loss of the target ``y`` instead of ascending the loss of the label ``y``.
    :param start: Starting points of ``x``'s shape inside the eps ball (ART draws them at random); ``None``: ``x``.
    :param clip_values: ``(min, max)`` of the input domain (numbers or per-feature arrays), or ``None``.
    :param batch_size: Samples per batch (each batch's gradient is of its own mean loss); ``None``: one batch.
    :param keep: ``"adversarial"`` (the original APGD's return rule) or ``"last"`` (ART's); see above.
    :return: The adversarial examples, a new tensor of ``x``'s shape, dtype and device, detached.
    :raises TypeError: If an argument has the wrong type.
    :raises ValueError: If an argument has an invalid value.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x = torch.rand(5, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    >>> x_adv = apgd(model, x, torch.tensor([0, 1, 2, 0, 1]), eps=0.1, eps_step=0.2, max_iter=10,
    ...     clip_values=(0.0, 1.0))
    >>> bool((x_adv - x).abs().max() <= 0.1 + 1e-6) and bool(((x_adv >= 0) & (x_adv <= 1)).all())
    True
    """
    _check_model_inputs(model, x, y)
    eps = check_positive("eps", eps)
    eps_step = check_positive("eps_step", eps_step)
    max_iter = check_positive_int("max_iter", max_iter)
    norm = check_norm("norm", norm)
    loss = check_choice("loss", loss, tuple(LOSSES))
    targeted = check_bool("targeted", targeted)
    clip = _clip_bounds(clip_values, x)
    batch_size = check_positive_int("batch_size", batch_size, allow_none=True)
    keep = check_choice("keep", keep, KEEP)
    if start is not None and (not isinstance(start, torch.Tensor) or start.shape != x.shape):
        raise ValueError(f"start must be None or a tensor of x's shape {tuple(x.shape)}, got {start!r:.60}.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must hold only finite values, got NaN or infinite entries.")
    x = x.detach()
    y = y.detach().to(device=x.device, dtype=torch.long)
    start = x.clone() if start is None else start.detach().to(device=x.device, dtype=x.dtype)
    loss_fn = _dlr if loss == "dlr" else lambda logits, labels: F.cross_entropy(logits, labels, reduction="none")
    step = batch_size or len(x)
    with preserved_modes(model, training=False, freeze=True):
        if loss == "dlr":
            with torch.no_grad():
                classes = model(x[:1]).shape[1]
            if classes < 3:
                raise ValueError(f"loss must be 'ce' for a model of {classes} classes: the DLR loss needs 3 or more.")
        return torch.cat(
            [
                _run_batch(
                    model,
                    x[s : s + step],
                    y[s : s + step],
                    start[s : s + step],
                    eps,
                    eps_step,
                    max_iter,
                    norm,
                    loss_fn,
                    targeted,
                    clip,
                    keep,
                )
                for s in range(0, len(x), step)
            ]
        )
