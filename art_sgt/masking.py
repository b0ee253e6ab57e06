"""Masking of the least salient input features, as pure torch functions.

Inputs are channels-first: ``(n, c, *spatial)`` for images and ``(n, features)`` for flat data. For images
a *position* is one spatial location across all its channels; saliency is averaged over channels first (and only
then made absolute, as the SGT reference does).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from fractions import Fraction
from typing import Union

import torch

from art_sgt._validation import check_choice, check_fraction

__all__ = ["least_salient_mask", "masked_count", "apply_mask", "FILL_MODES", "Fill"]

FILL_MODES = ("uniform", "uniform_channel", "mean", "zero")
Fill = Union[str, float, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
Bound = Union[float, torch.Tensor]


def masked_count(fraction: float, positions: int) -> int:
    """The number of positions a fraction covers: ``floor(fraction * positions)``, where a product within float
    rounding of an integer counts as that integer.

    A float ``fraction`` lies within ``2**-53`` of the decimal it was written as, so its exact product with
    ``positions`` lies within ``positions * 2**-53`` of the intended one. A product closer than
    ``positions * 2**-52`` to an integer is therefore taken as that integer (``0.7 * 90`` is
    ``62.99999999999999`` in floats and covers 63; ``0.9999999999999999 * 2`` covers 2); any other product is
    floored exactly.

    :param fraction: A fraction in [0, 1].
    :param positions: The number of positions.
    :return: The number of positions the fraction covers.

    >>> masked_count(0.7, 90), int(0.7 * 90)
    (63, 62)
    >>> masked_count(0.9999999999999999, 2), masked_count(0.49, 2)
    (2, 0)
    """
    product = Fraction(fraction) * positions
    nearest = round(product)
    if abs(product - nearest) <= Fraction(positions, 2**52):
        return int(nearest)
    return math.floor(product)


def _position_scores(saliency: torch.Tensor, absolute: bool, mean_before_abs: bool = False) -> torch.Tensor:
    """One score per position: the channel mean of the map, made absolute before or after the mean."""
    scores = saliency.abs() if absolute and not mean_before_abs else saliency
    if scores.ndim >= 3:
        scores = scores.mean(dim=1)
    if absolute and mean_before_abs:
        scores = scores.abs()
    return scores.reshape(scores.shape[0], -1)


def _mask_shape(saliency: torch.Tensor) -> tuple[int, ...]:
    if saliency.ndim >= 3:
        return (saliency.shape[0], 1, *saliency.shape[2:])
    return tuple(saliency.shape)


def least_salient_mask(saliency: torch.Tensor, fraction: float, absolute: bool = False) -> torch.Tensor:
    """Mark, per sample, the ``fraction`` of positions with the lowest saliency.

    Exactly ``k = max(1, floor(fraction * positions))`` positions are marked in every sample for ``fraction > 0``
    (as in the SGT reference code, so that small inputs are never left unmasked; ``fraction = 0`` marks none).
    Ties are broken deterministically: among equal scores the position with the lower flat index is marked first.

    :param saliency: Saliency maps, ``(n, c, *spatial)`` or ``(n, features)``. Multi-channel maps are averaged over
        ``c`` first and, with ``absolute``, made absolute after the mean (the reference's order: evidence of
        opposite signs in two channels cancels).
    :param fraction: Fraction of positions to mark, in [0, 1).
    :param absolute: Rank by ``|saliency|`` instead of the signed value. Signed ranking (the default, as in
        the reference implementation) masks the most negative evidence first; absolute ranking masks the
        features whose gradient is closest to zero.
    :return: A boolean mask, ``True`` where masked, of shape ``(n, 1, *spatial)`` or ``(n, features)`` so that
        it broadcasts over the channels of the input.
    :raises ValueError: If ``fraction`` is outside [0, 1) or ``saliency`` has fewer than 2 dimensions.

    >>> import torch
    >>> least_salient_mask(torch.tensor([[3.0, -1.0, 2.0, 0.0]]), 0.5)
    tensor([[False,  True, False,  True]])
    >>> least_salient_mask(torch.tensor([[3.0, -1.0, 2.0, 0.0]]), 0.5, absolute=True)
    tensor([[False,  True, False,  True]])
    """
    fraction = check_fraction("fraction", fraction, low_inclusive=True)
    if not isinstance(saliency, torch.Tensor) or saliency.ndim < 2:
        raise ValueError(
            "saliency must be a tensor of shape (n, c, *spatial) or (n, features), got "
            f"{getattr(saliency, 'shape', type(saliency).__name__)}."
        )
    scores = _position_scores(saliency.detach(), absolute, mean_before_abs=True)
    k = max(1, masked_count(fraction, scores.shape[1])) if fraction > 0 else 0
    mask = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    if k > 0:
        order = torch.argsort(scores, dim=1, stable=True)[:, :k]
        mask.scatter_(1, order, True)
    return mask.reshape(_mask_shape(saliency))


def _fill_values(x: torch.Tensor, mask: torch.Tensor, fill: Fill, generator: torch.Generator | None) -> torch.Tensor:
    dims = tuple(range(1, x.ndim))
    if isinstance(fill, str):
        check_choice("fill", fill, FILL_MODES)
        if fill in ("uniform", "uniform_channel"):
            per_channel = fill == "uniform_channel" and x.ndim >= 3
            ranged = tuple(range(2, x.ndim)) if per_channel else dims
            low = x.amin(dim=ranged, keepdim=True)
            high = x.amax(dim=ranged, keepdim=True)
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return low + noise * (high - low)
        if fill == "mean":
            spatial = tuple(range(2, x.ndim)) if x.ndim >= 3 else dims
            return x.mean(dim=spatial, keepdim=True)
        return torch.zeros((), device=x.device, dtype=x.dtype)
    if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
        return torch.full((), float(fill), device=x.device, dtype=x.dtype)
    if callable(fill):
        values = fill(x, mask)
        if not isinstance(values, torch.Tensor):
            raise TypeError(f"fill callable must return a torch.Tensor, got {type(values).__name__}.")
        return values.to(device=x.device, dtype=x.dtype)
    raise TypeError(f"fill must be one of {FILL_MODES}, a float or a callable, got {type(fill).__name__}.")


def apply_mask(
    x: torch.Tensor,
    mask: torch.Tensor,
    fill: Fill = "uniform",
    generator: torch.Generator | None = None,
    clip_values: tuple[Bound, Bound] | None = None,
) -> torch.Tensor:
    """Replace the masked positions of ``x`` and return a new tensor (``x`` is not modified).

    :param x: Inputs, ``(n, c, *spatial)`` or ``(n, features)``.
    :param mask: Boolean mask broadcastable to ``x``, ``True`` where a value is replaced (as returned by
        :func:`least_salient_mask`).
    :param fill: What masked positions receive:

        - ``"uniform"``: uniform noise in each sample's own ``[min, max]`` over all its values (the SGT
          reference's behaviour for single-channel inputs);
        - ``"uniform_channel"``: uniform noise in each channel's own ``[min, max]`` of each sample (the reference's
          behaviour for multi-channel inputs; the same as ``"uniform"`` for one channel or flat data);
        - ``"mean"``: each sample's per-channel mean over its positions;
        - ``"zero"``: zeros;
        - a float: that constant;
        - a callable ``(x, mask) -> tensor`` broadcastable to ``x``.
    :param generator: Random generator for ``"uniform"`` (on ``x``'s device).
    :param clip_values: ``(min, max)``, floats or tensors broadcastable to ``x`` (per-feature bounds); fill values
        are clipped into it, so masked inputs stay valid.
    :return: The masked inputs, of ``x``'s shape, detached.
    :raises TypeError: If ``fill`` has an unsupported type.
    :raises ValueError: If ``fill`` is an unknown string or ``mask`` does not broadcast to ``x``.

    >>> import torch
    >>> x = torch.tensor([[1.0, 2.0, 3.0]])
    >>> apply_mask(x, torch.tensor([[True, False, True]]), fill=-1.0, clip_values=(0.0, 5.0))
    tensor([[0., 2., 0.]])
    """
    try:
        torch.broadcast_shapes(mask.shape, x.shape)
    except RuntimeError as err:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to x of shape {tuple(x.shape)}."
        ) from err
    x = x.detach()
    values = _fill_values(x, mask, fill, generator)
    if clip_values is not None:
        low, high = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in clip_values)
        values = torch.maximum(torch.minimum(values, high), low)
    return torch.where(mask.to(x.device), values, x)
