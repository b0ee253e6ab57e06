"""Similarity of two sets of saliency maps, as the sanity checks and the stability evaluator report it.

Per pair of maps (Adebayo et al., NeurIPS 2018, Section 3; Ghorbani et al., AAAI 2019):

- ``spearman``: Spearman rank correlation of the (absolute, by default) maps over the positions where *not both*
  maps are exactly 0. Shared zeros (the black background of an MNIST digit under integrated gradients or input
  x gradient) are ties that carry no information but inflate the correlation: two independent maps sharing 80%
  zeros have a rank correlation near 0.98 with them and near 0 without them.
- ``spearman_signed``: the same on the signed maps.
- ``top_k``: intersection of the ``k`` largest absolute values, divided by ``k``. A zero is never a top feature
  (it attributes nothing, and which of many tied zeros ``topk`` picks is arbitrary), so where a map has fewer
  than ``k`` non-zero values the divisor is ``min(k, the larger of the two maps' non-zero counts)``: two maps
  whose single salient pixels differ score 0, not the chance overlap of their zeros.
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
    "Prepared",
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
    if bool(starts.all()):  # no ties: the ranks are the positions in the sorted order
        return torch.empty(n, d, dtype=torch.float64, device=v.device).scatter_(1, order, (index + 1).to(torch.float64))
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

    ``|top_k(a) & top_k(b)| / k`` with ``k = max(1, round(fraction * d))`` of the ``d`` features. With
    ``absolute=True`` zeros never enter a top-k set and the divisor is ``min(k, max(nnz(a), nnz(b)))`` (see the
    module docstring).

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
    same = (fa == fb).all(dim=1)
    if absolute:
        overlap = _top_k_overlap(_top_set(fa, count), _top_set(fb, count), count)
    else:
        top_a, top_b = (
            torch.zeros_like(v, dtype=torch.bool).scatter_(1, v.topk(count, dim=1).indices, True) for v in (fa, fb)
        )
        overlap = (top_a & top_b).sum(dim=1).to(torch.float64) / count
    return torch.where(same, 1.0, overlap)


def _top_set(values: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` largest of each row of non-negative ``values`` as a mask, zeros left out, and each row's
    number of non-zero values."""
    top = torch.zeros_like(values, dtype=torch.bool).scatter_(1, values.topk(count, dim=1).indices, True)
    nonzero = values != 0
    return top & nonzero, nonzero.sum(dim=1)


TopSet = tuple[torch.Tensor, torch.Tensor]


def _top_k_overlap(a: TopSet, b: TopSet, count: int) -> torch.Tensor:
    """``|top(a) & top(b)| / min(count, max(nnz(a), nnz(b)))`` (``nan`` when both maps are all zero)."""
    divisor = torch.clamp(torch.maximum(a[1], b[1]), max=count).to(torch.float64)
    shared = (a[0] & b[0]).sum(dim=1).to(torch.float64)
    return torch.where(divisor > 0, shared / torch.where(divisor > 0, divisor, 1.0), torch.nan)


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


def _ssim_normalised(maps: torch.Tensor) -> torch.Tensor:
    v = maps.to(torch.float32).abs().sum(dim=1, keepdim=True)
    peak = v.amax(dim=(2, 3), keepdim=True)
    return v / torch.where(peak > 0, peak, 1.0)


def _ssim_side(maps: torch.Tensor) -> int:
    side = min(7, maps.shape[2], maps.shape[3])
    return side - (1 - side % 2)


def _ssim_prepared(pa: Prepared, pb: Prepared) -> torch.Tensor:
    count = pa.side * pa.side
    mu_x, xx = pa.ssim_moments
    mu_y, yy = pb.ssim_moments
    xy = F.avg_pool2d(pa.ssim_map * pb.ssim_map, pa.side, stride=1)
    correction = count / (count - 1) if count > 1 else 1.0
    var_x, var_y = (xx - mu_x**2) * correction, (yy - mu_y**2) * correction
    cov = (xy - mu_x * mu_y) * correction
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.to(torch.float64).mean(dim=(1, 2, 3))


def structural_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM of each pair of image maps ``(n, c, h, w)``, as described in the module docstring.

    :param a: Image maps.
    :param b: Image maps of the same shape.
    :return: ``(n,)`` float64 in [-1, 1]; 1 for identical maps (two zero maps included).
    :raises ValueError: If the maps are not images.

    >>> import torch
    >>> a = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> structural_similarity(a, a)
    tensor([1., 1.], dtype=torch.float64)
    """
    if a.ndim != 4:
        raise ValueError(f"maps must be images (n, c, h, w) for SSIM, got shape {tuple(a.shape)}.")
    same = (_flat(a) == _flat(b)).all(dim=1)
    return torch.where(same, 1.0, _ssim_prepared(Prepared(a), Prepared(b)))


class Prepared:
    """What :func:`similarities` needs of one set of maps, computed once (a reference compared many times).

    Ranks are taken over *all* positions, once per map; the ranks among the kept positions of a pair (not both
    zero) follow from them exactly: the ``D`` dropped positions all hold the value 0, so a kept value above 0
    loses ``D`` ranks, a kept 0 loses ``D / 2`` (it tied with them), and a negative value loses none.

    :param maps: Maps ``(n, ...)``.
    :param top_k: Fraction of features of the top-k intersection.
    :param absolute: Rank and compare absolute values for ``spearman`` and ``cosine``.
    """

    def __init__(self, maps: torch.Tensor, top_k: float = 0.1, absolute: bool = True) -> None:
        self.maps, self.top_k, self.absolute = maps, check_fraction("top_k", top_k, high_inclusive=True), absolute
        flat = _flat(maps).to(torch.float32)
        self.signed, self.abs = flat, flat.abs()
        self.zero = flat == 0
        self.empty = self.zero.all(dim=1)
        self.rank_signed = _average_ranks(flat)
        self.rank_abs = _average_ranks(self.abs) if absolute else self.rank_signed
        self.count = max(1, int(round(self.top_k * flat.shape[1])))
        self.top = _top_set(self.abs, self.count)
        cosine_flat = (self.abs if absolute else flat).to(torch.float64)
        self.cosine_flat, self.norm = cosine_flat, cosine_flat.norm(dim=1)
        self.image = maps.ndim == 4
        if self.image:
            self.ssim_map = _ssim_normalised(maps)
            self.side = _ssim_side(maps)
            self.ssim_moments = [F.avg_pool2d(v, self.side, stride=1) for v in (self.ssim_map, self.ssim_map**2)]


def _kept_ranks(ranks: torch.Tensor, values: torch.Tensor, dropped: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Average ranks among the kept positions, from the ranks among all positions (see :class:`Prepared`)."""
    if not bool(dropped.any()):
        return ranks - (ranks.shape[1] + 1) / 2  # nothing dropped: centred over all positions
    d = dropped.sum(dim=1, keepdim=True).to(torch.float64)
    shift = torch.where(values > 0, d, torch.where(values == 0, d / 2, 0.0))
    m = keep.sum(dim=1, keepdim=True).to(torch.float64)
    return torch.where(keep, ranks - shift - (m + 1) / 2, 0.0)  # centred over the kept positions


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(dim=1) / torch.where(den > 0, den, 1.0), torch.nan)


def similarities(a: Any, b: Any, top_k: float = 0.1, absolute: bool = True) -> dict[str, torch.Tensor]:
    """Every measure of :data:`SIMILARITIES` per pair of maps (``ssim`` only for image maps).

    :param a: Maps ``(n, ...)``, or a :class:`Prepared` reference (then ``top_k`` and ``absolute`` are its own).
    :param b: Maps of the same shape, or a :class:`Prepared` set.
    :param top_k: Fraction of features of the top-k intersection.
    :param absolute: Rank absolute values for ``spearman`` and compare absolute values for ``cosine``.
    :return: ``{measure: (n,) float64 tensor}``, ``nan`` where undefined (see the module docstring).
    """
    pa = a if isinstance(a, Prepared) else Prepared(a, top_k, absolute)
    pb = b if isinstance(b, Prepared) else Prepared(b, pa.top_k, pa.absolute)
    dropped = pa.zero & pb.zero
    keep = ~dropped
    same = (pa.signed == pb.signed).all(dim=1)
    spearman_abs = _pearson(
        _kept_ranks(pa.rank_abs, pa.abs if pa.absolute else pa.signed, dropped, keep),
        _kept_ranks(pb.rank_abs, pb.abs if pa.absolute else pb.signed, dropped, keep),
    )
    spearman_signed = _pearson(
        _kept_ranks(pa.rank_signed, pa.signed, dropped, keep), _kept_ranks(pb.rank_signed, pb.signed, dropped, keep)
    )
    den = pa.norm * pb.norm
    cosine = torch.where(
        den > 0, (pa.cosine_flat * pb.cosine_flat).sum(dim=1) / torch.where(den > 0, den, 1.0), torch.nan
    )
    out = {
        "spearman": spearman_abs,
        "spearman_signed": spearman_signed,
        "top_k": _top_k_overlap(pa.top, pb.top, pa.count),
        "cosine": cosine,
    }
    if pa.image:
        out["ssim"] = _ssim_prepared(pa, pb)
    undefined = pa.empty | pb.empty
    return {key: torch.where(undefined, torch.nan, torch.where(same, 1.0, v)) for key, v in out.items()}


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
