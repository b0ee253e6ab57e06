"""Similarity of two sets of saliency maps, as the sanity checks and the stability evaluator report it.

Per pair of maps (Adebayo et al., NeurIPS 2018, Section 3; Ghorbani et al., AAAI 2019):

- ``spearman``: Spearman rank correlation of the (absolute, by default) maps over the positions where *not both*
  maps are exactly 0. Shared zeros (the black background of an MNIST digit under integrated gradients or input
  x gradient) are ties that carry no information but inflate the correlation: two independent maps sharing 80%
  zeros have a rank correlation near 0.98 with them and near 0 without them.
- ``spearman_signed``: the same on the signed maps.
- ``top_k``: intersection of the ``k`` largest absolute values, divided by ``k``.
- ``cosine``: cosine similarity of the flattened maps.
- ``ssim``: structural similarity (Wang et al. 2004) of the channel-summed absolute maps, each divided by its
  maximum (so in [0, 1]); a 7x7 uniform window (smaller images: the largest odd side that fits), sample
  covariances, ``K1 = 0.01``, ``K2 = 0.03``, data range 1 -- the defaults of ``skimage.metrics.
  structural_similarity``, which Adebayo et al. used. Image maps ``(n, c, h, w)`` only.

Identical maps score exactly 1 on every measure. A measure that is undefined for a pair (a rank correlation when
one map is constant over the kept positions) is ``nan`` per sample, and so is every measure of a pair in which a
map is all zero (e.g. integrated gradients of an all-black image from a black baseline: there is nothing to
compare, and two zero maps would otherwise count as identical); the means (:func:`mean_similarity`) leave such
samples out, count them in ``undefined`` and warn.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

from art_sgt._validation import check_fraction

__all__ = [
    "SIMILARITIES",
    "similarities",
    "mean_similarity",
    "rank_correlation",
    "top_k_intersection",
    "cosine_similarity",
    "structural_similarity",
]

#: Keys of :func:`similarities`, in order.
SIMILARITIES: tuple[str, ...] = ("spearman", "spearman_signed", "top_k", "cosine", "ssim")


def _average_ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks 1..d of each row, ties sharing their average rank (NaN sorts last); one sort, no search."""
    sorted_v, order = torch.sort(v, dim=1)
    n, d = v.shape
    index = torch.arange(d, device=v.device).expand(n, d)
    starts = torch.ones_like(sorted_v, dtype=torch.bool)
    starts[:, 1:] = sorted_v[:, 1:] != sorted_v[:, :-1]
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    first = torch.cummax(torch.where(starts, index, 0), dim=1).values
    last = torch.cummin(torch.where(ends, index, d - 1).flip(1), dim=1).values.flip(1)
    return torch.empty(n, d, dtype=torch.float64, device=v.device).scatter_(
        1, order, (first + last + 2).to(torch.float64) / 2
    )


def _spearman(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Pearson correlation of the average ranks of ``a`` and ``b`` (flat, float) over the ``keep`` positions."""
    if keep is None:
        keep = torch.ones_like(a, dtype=torch.bool)
    nan = torch.tensor(float("nan"), dtype=a.dtype, device=a.device)
    ranks = [_average_ranks(torch.where(keep, v, nan)) for v in (a, b)]  # dropped positions rank last
    m = keep.sum(dim=1, keepdim=True).to(torch.float64)
    centred = [torch.where(keep, r - (m + 1) / 2, 0.0) for r in ranks]
    num = (centred[0] * centred[1]).sum(dim=1)
    den = centred[0].norm(dim=1) * centred[1].norm(dim=1)
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), torch.nan)


def _flat(a: torch.Tensor) -> torch.Tensor:
    return a.reshape(len(a), -1)


def rank_correlation(
    a: torch.Tensor, b: torch.Tensor, absolute: bool = True, drop_shared_zeros: bool = False
) -> torch.Tensor:
    """Spearman rank correlation of each pair of maps: the Pearson correlation of their ranks.

    ``rho = cov(r(a), r(b)) / (sd(r(a)) sd(r(b)))``, tied values receiving their average rank (as
    ``scipy.stats.spearmanr``). Identical maps give exactly 1; a constant map against a different one gives
    ``nan``.

    :param a: Maps ``(n, ...)``.
    :param b: Maps of the same shape.
    :param absolute: Compare ``|a|`` and ``|b|``.
    :param drop_shared_zeros: Leave out the positions where both maps are exactly 0.
    :return: ``(n,)`` float64.

    >>> import torch
    >>> rank_correlation(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[10.0, 30.0, 20.0]]))
    tensor([0.5000], dtype=torch.float64)
    """
    fa, fb = _flat(a).to(torch.float64), _flat(b).to(torch.float64)
    if absolute:
        fa, fb = fa.abs(), fb.abs()
    keep = ((fa != 0) | (fb != 0)) if drop_shared_zeros else None
    same = (fa == fb).all(dim=1)
    return torch.where(same, 1.0, _spearman(fa, fb, keep))


def top_k_intersection(a: torch.Tensor, b: torch.Tensor, k: float = 0.1, absolute: bool = True) -> torch.Tensor:
    """Fraction of the ``k`` largest features of ``a`` that are also among the ``k`` largest of ``b``.

    ``|top_k(a) & top_k(b)| / k`` with ``k = max(1, round(fraction * d))`` of the ``d`` features.

    :param a: Maps ``(n, ...)``.
    :param b: Maps of the same shape.
    :param k: The fraction of features compared, in (0, 1].
    :param absolute: Compare ``|a|`` and ``|b|``.
    :return: ``(n,)`` float64 in [0, 1].

    >>> import torch
    >>> top_k_intersection(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[4.0, 1.0, 2.0, 3.0]]), k=0.5)
    tensor([0.5000], dtype=torch.float64)
    """
    k = check_fraction("top_k", k, high_inclusive=True)
    fa, fb = _flat(a), _flat(b)
    if absolute:
        fa, fb = fa.abs(), fb.abs()
    count = max(1, int(round(k * fa.shape[1])))

    def top(v: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(v, dtype=torch.bool).scatter_(1, v.topk(count, dim=1).indices, True)

    same = (fa == fb).all(dim=1)
    return torch.where(same, 1.0, (top(fa) & top(fb)).sum(dim=1).to(torch.float64) / count)


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, absolute: bool = True) -> torch.Tensor:
    """Cosine similarity ``a.b / (||a|| ||b||)`` of each pair of flattened maps (``nan`` for a zero map,
    exactly 1 for identical maps).

    :param a: Maps ``(n, ...)``.
    :param b: Maps of the same shape.
    :param absolute: Compare ``|a|`` and ``|b|``.
    :return: ``(n,)`` float64.

    >>> import torch
    >>> cosine_similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]), absolute=False)
    tensor([0.7071], dtype=torch.float64)
    """
    fa, fb = _flat(a).to(torch.float64), _flat(b).to(torch.float64)
    if absolute:
        fa, fb = fa.abs(), fb.abs()
    den = fa.norm(dim=1) * fb.norm(dim=1)
    value = torch.where(den > 0, (fa * fb).sum(dim=1) / torch.where(den > 0, den, 1.0), torch.nan)
    return torch.where((fa == fb).all(dim=1), 1.0, value)


def structural_similarity(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """SSIM of each pair of image maps ``(n, c, h, w)``, as described in the module docstring.

    :param a: Image maps.
    :param b: Image maps of the same shape.
    :param window: Side of the uniform window (odd; reduced to the largest odd side that fits).
    :return: ``(n,)`` float64 in [-1, 1]; 1 for identical maps (two zero maps included).
    :raises ValueError: If the maps are not images.

    >>> import torch
    >>> a = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> structural_similarity(a, a)
    tensor([1., 1.], dtype=torch.float64)
    """
    if a.ndim != 4:
        raise ValueError(f"maps must be images (n, c, h, w) for SSIM, got shape {tuple(a.shape)}.")

    def normalised(v: torch.Tensor) -> torch.Tensor:
        v = v.to(torch.float64).abs().sum(dim=1, keepdim=True)
        peak = v.amax(dim=(2, 3), keepdim=True)
        return v / torch.where(peak > 0, peak, 1.0)

    x, y = normalised(a), normalised(b)
    side = min(window, x.shape[2], x.shape[3])
    side -= 1 - side % 2
    count = side * side
    mean = [F.avg_pool2d(v, side, stride=1) for v in (x, y, x * x, y * y, x * y)]
    correction = count / (count - 1) if count > 1 else 1.0
    var_x = (mean[2] - mean[0] ** 2) * correction
    var_y = (mean[3] - mean[1] ** 2) * correction
    cov = (mean[4] - mean[0] * mean[1]) * correction
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mean[0] * mean[1] + c1) * (2 * cov + c2)) / ((mean[0] ** 2 + mean[1] ** 2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3))


def similarities(a: torch.Tensor, b: torch.Tensor, top_k: float = 0.1, absolute: bool = True) -> dict[str, Any]:
    """Every measure of :data:`SIMILARITIES` per pair of maps (``ssim`` only for image maps).

    :param a: Maps ``(n, ...)``.
    :param b: Maps of the same shape.
    :param top_k: Fraction of features of the top-k intersection.
    :param absolute: Rank absolute values for ``spearman`` and compare absolute values for ``cosine``.
    :return: ``{measure: (n,) float64 tensor}``, ``nan`` where undefined (see the module docstring).
    """
    out = {
        "spearman": rank_correlation(a, b, absolute, drop_shared_zeros=True),
        "spearman_signed": rank_correlation(a, b, False, drop_shared_zeros=True),
        "top_k": top_k_intersection(a, b, top_k, True),
        "cosine": cosine_similarity(a, b, absolute),
    }
    if a.ndim == 4:
        out["ssim"] = structural_similarity(a, b)
    empty = (_flat(a) == 0).all(dim=1) | (_flat(b) == 0).all(dim=1)
    return {key: torch.where(empty, torch.nan, value) for key, value in out.items()}


def mean_similarity(values: dict[str, torch.Tensor], keep: torch.Tensor | None = None, what: str = "") -> dict:
    """Means over samples of :func:`similarities`, undefined (``nan``) samples left out and counted.

    :param values: Per-sample measures.
    :param keep: Boolean ``(n,)``: the samples to average (``None``: all).
    :param what: What is compared, for the warning.
    :return: ``{measure: mean}`` plus ``"undefined": {measure: count}`` for measures with undefined samples; a
        mean over no defined sample is ``nan`` (JSON ``null``).
    """
    out: dict[str, Any] = {}
    undefined: dict[str, int] = {}
    for key, v in values.items():
        v = v if keep is None else v[keep]
        defined = ~torch.isnan(v)
        if int((~defined).sum()):
            undefined[key] = int((~defined).sum())
        out[key] = float(v[defined].mean()) if bool(defined.any()) else float("nan")
    if undefined:
        warnings.warn(
            f"{what or 'map similarity'}: undefined for some samples (a constant or all-zero map), left out of "
            f"the means: {undefined}",
            RuntimeWarning,
            stacklevel=3,
        )
        out["undefined"] = undefined
    return out
