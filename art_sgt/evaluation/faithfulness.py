"""Faithfulness by modification: accuracy as the most / least salient features are replaced.

The evaluation of the SGT paper (Ismail et al. 2021) and the pixel-flipping / ROAD family of Quantus: rank
the input positions of each sample by its saliency map, replace the top fraction (MoRF, *most relevant
first*), the bottom fraction (LeRF, *least relevant first*) or a random fraction (control), and record the
model's accuracy and mean true-class probability. A faithful map gives a steep MoRF curve (small area) and a
flat LeRF curve (large area). Noisy linear imputation (ROAD, Rong et al. 2022) fills the removed positions
from their neighbours, so that the curves measure the information removed rather than the
out-of-distribution artefacts a constant or noise fill creates.

Each position is scored by the channel mean of its map (of ``|map|`` with ``absolute=True``) and ties go to
the lower flat index; at fraction ``f``, ``floor(f * P)`` of the ``P`` positions are replaced
(:func:`~art_sgt.masking.masked_count`). For a single-channel or non-negative map, LeRF at fraction ``f`` then
masks exactly ``least_salient_mask(maps, f, absolute)`` for ``f * P >= 1``; the training masks of
:func:`~art_sgt.masking.least_salient_mask` average the signed channels before taking ``|.|``, as the SGT
reference does, so on a signed multi-channel map the two rankings can differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from art_sgt._validation import check_choice, check_fraction, check_non_negative, check_positive_int
from art_sgt.evaluation._common import as_labels, as_tensor, batches, check_maps, frozen, resolve_model
from art_sgt.masking import FILL_MODES, _mask_shape, _position_scores, apply_mask, masked_count

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

__all__ = [
    "FRACTIONS",
    "ORDERS",
    "MaskingCurve",
    "masking_curve",
    "ranking_scores",
    "removal_ranks",
    "noisy_linear_imputation",
    "NoisyLinearImputer",
    "area_under_curve",
]

FRACTIONS: tuple[float, ...] = tuple(i / 10 for i in range(10))
"""Default fractions of positions replaced: 0, 0.1, ..., 0.9."""

ORDERS: tuple[str, ...] = ("morf", "lerf", "random")
"""Removal orders: most relevant first, least relevant first, random (control)."""


def _neighbour_sum(u: torch.Tensor) -> torch.Tensor:
    """ROAD's weighted sum over the 8 neighbours (1/6 direct, 1/12 diagonal; zero outside the image).

    The same as a 3x3 convolution with ``[[1/12, 1/6, 1/12], [1/6, 0, 1/6], [1/12, 1/6, 1/12]]`` and zero
    padding, written as shifted slices (twice as fast on CPU for one channel).
    """
    p = F.pad(u, (1, 1, 1, 1))
    diagonal = p[..., :-2, :-2] + p[..., :-2, 2:] + p[..., 2:, :-2] + p[..., 2:, 2:]
    direct = p[..., 1:-1, :-2] + p[..., 1:-1, 2:] + p[..., :-2, 1:-1] + p[..., 2:, 1:-1]
    return diagonal * (1 / 12) + direct * (1 / 6)


def ranking_scores(
    maps: torch.Tensor, order: str, absolute: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Scores whose *lowest* values are the positions to remove first in ``order``.

    Feeding them to :func:`~art_sgt.masking.least_salient_mask` gives the mask of any fraction:
    ``"lerf"`` returns the position saliency itself, ``"morf"`` its negation (the complement order),
    ``"random"`` uniform noise from ``generator``.

    :param maps: Saliency maps ``(n, c, *spatial)`` or ``(n, features)``.
    :param order: ``"morf"``, ``"lerf"`` or ``"random"``.
    :param absolute: Rank by ``|saliency|`` (default) instead of the signed value.
    :param generator: Random generator for ``"random"``, on ``maps``' device.
    :return: Scores of the mask's shape, ``(n, 1, *spatial)`` or ``(n, features)``.
    :raises ValueError: If ``order`` is unknown.

    >>> import torch
    >>> ranking_scores(torch.tensor([[3.0, -1.0, 2.0]]), "morf")
    tensor([[-3., -1., -2.]])
    """
    check_choice("order", order, ORDERS)
    scores = _position_scores(maps.detach(), absolute)
    if order == "morf":
        scores = -scores
    elif order == "random":
        scores = torch.rand(scores.shape, generator=generator, device=scores.device, dtype=scores.dtype)
    return scores.reshape(_mask_shape(maps))


def removal_ranks(scores: torch.Tensor) -> torch.Tensor:
    """The rank of every position in the removal order given by ``scores`` (0 is removed first).

    One stable sort per call: ``ranks < floor(f * P)`` is then the mask of any fraction ``f``, the same set
    :func:`~art_sgt.masking.least_salient_mask` marks (lowest score first, ties to the lower flat index).

    :param scores: Scores ``(n, 1, *spatial)`` or ``(n, features)`` (e.g. from :func:`ranking_scores`).
    :return: int64 ranks of ``scores``' shape.

    >>> import torch
    >>> removal_ranks(torch.tensor([[0.5, -1.0, 0.5, 2.0]]))
    tensor([[1, 0, 2, 3]])
    """
    flat = scores.reshape(len(scores), -1)
    order = torch.argsort(flat, dim=1, stable=True)
    positions = torch.arange(flat.shape[1], device=flat.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions).reshape(scores.shape)


@torch.no_grad()
def noisy_linear_imputation(
    x: torch.Tensor,
    mask: torch.Tensor,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
    max_iter: int = 500,
    tol: float = 1e-4,
) -> torch.Tensor:
    """ROAD's noisy linear imputation (Rong et al., ICML 2022), solved for the whole batch at once.

    Each masked pixel ``i`` takes the value that is the weighted mean of its 8 neighbours ``j`` (weight
    ``w = 1/6`` for direct and ``1/12`` for diagonal neighbours, neighbours outside the image dropped):
    ``sum_j w_ij (v_i - v_j) = 0`` with ``v_j = x_j`` for unmasked ``j``. This symmetric positive-definite
    system (a Dirichlet problem on the masked pixels) is solved by conjugate gradients batched over all
    images and channels (the matrix product is a weighted 3x3 neighbour sum), then ``noise * N(0, 1)`` is
    added to the imputed pixels. ROAD itself solves one sparse system per image; the solution is the same.

    :param x: Images ``(n, c, h, w)``. Not modified.
    :param mask: Boolean mask ``(n, 1, h, w)`` or ``(n, c, h, w)``, ``True`` where imputed. At least one
        pixel of every image must be unmasked.
    :param noise: Standard deviation of the Gaussian noise added to imputed pixels (ROAD: 0.01).
    :param generator: Random generator for the noise, on ``x``'s device.
    :param max_iter: Most conjugate-gradient iterations.
    :param tol: Stop when every residual norm is below ``tol`` times its right-hand side's norm (the default
        leaves errors far below ROAD's noise of 0.01).
    :return: A new tensor of ``x``'s shape: ``x`` where unmasked, the imputation where masked.
    :raises ValueError: If ``x`` is not a batch of images.

    >>> import torch
    >>> x = torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [3.0, 3.0, 3.0]]]])
    >>> mask = torch.zeros(1, 1, 3, 3, dtype=torch.bool); mask[0, 0, 1, 1] = True
    >>> noisy_linear_imputation(x, mask, noise=0.0)[0, 0, 1, 1]
    tensor(1.)
    """
    if x.ndim != 4:
        raise ValueError(f"x must be images of shape (n, c, h, w) for noisy linear imputation, got {tuple(x.shape)}.")
    n, c, h, w = x.shape
    m = mask.to(device=x.device).expand(n, c, h, w).reshape(n * c, 1, h, w).to(x.dtype)
    v = x.detach().reshape(n * c, 1, h, w)
    degree = _neighbour_sum(torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device))

    def matvec(u: torch.Tensor) -> torch.Tensor:
        return m * (degree * u - _neighbour_sum(u))

    rhs = m * _neighbour_sum(v * (1 - m))
    u = rhs / degree
    r = rhs - matvec(u)
    p = r.clone()
    rr = (r * r).sum(dim=(1, 2, 3), keepdim=True)
    stop = (tol**2) * (rhs * rhs).sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-30)
    for it in range(max_iter):
        if it % 5 == 0 and bool((rr <= stop).all()):
            break
        ap = matvec(p)
        alpha = rr / (p * ap).sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-30)
        u = u + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum(dim=(1, 2, 3), keepdim=True)
        p = r + (rr_new / rr.clamp_min(1e-30)) * p
        rr = rr_new
    imputed = u.reshape(n, c, h, w)
    if noise > 0:
        imputed = imputed + noise * torch.randn(imputed.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.where(m.reshape(n, c, h, w) > 0, imputed, x)


class NoisyLinearImputer:
    """:func:`noisy_linear_imputation` as a fill callable ``(x, mask) -> values`` for ``apply_mask``.

    :param noise: Standard deviation of the noise added to imputed pixels.
    :param generator: Random generator for the noise.
    """

    def __init__(self, noise: float = 0.01, generator: torch.Generator | None = None) -> None:
        self.noise = check_non_negative("noise", noise)
        self.generator = generator

    def __call__(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Impute the masked positions of ``x``.

        :param x: Images ``(n, c, h, w)``.
        :param mask: Boolean mask, ``True`` where imputed.
        :return: The imputed images.
        """
        return noisy_linear_imputation(x, mask, self.noise, self.generator)


def area_under_curve(fractions: Any, values: Any) -> float:
    """Normalised area under a curve: the trapezoid integral divided by the fraction span (its mean height).

    ``AUC = (1 / (f_K - f_0)) * sum_k (f_{k+1} - f_k) * (v_k + v_{k+1}) / 2``; a single point returns its
    value. The result is in the curve's own units (accuracy or probability in [0, 1]).

    :param fractions: Increasing fractions.
    :param values: Curve values at the fractions.
    :return: The normalised area.

    >>> area_under_curve([0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    0.5
    """
    f, v = np.asarray(fractions, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if len(f) == 1:
        return float(v[0])
    return float(np.trapezoid(v, f) / (f[-1] - f[0]))


@dataclass
class MaskingCurve:
    """Accuracy and mean true-class probability per fraction of positions replaced, per order.

    :param fractions: The fractions replaced.
    :param accuracy: Per order, the accuracy at each fraction.
    :param probability: Per order, the mean softmax probability of the true class at each fraction.
    :param fill: A description of the fill.
    :param n_samples: Number of samples evaluated.
    """

    fractions: list[float]
    accuracy: dict[str, list[float]]
    probability: dict[str, list[float]]
    fill: str
    n_samples: int

    def auc(self, order: str, quantity: str = "accuracy") -> float:
        """Normalised area under one curve (see :func:`area_under_curve`).

        :param order: ``"morf"``, ``"lerf"`` or ``"random"``.
        :param quantity: ``"accuracy"`` or ``"probability"``.
        :return: The area.
        :raises ValueError: If the order was not evaluated or ``quantity`` is unknown.
        """
        check_choice("quantity", quantity, ("accuracy", "probability"))
        curves = self.accuracy if quantity == "accuracy" else self.probability
        check_choice("order", order, tuple(curves))
        return area_under_curve(self.fractions, curves[order])

    def summary(self) -> dict[str, float]:
        """Areas of every curve, ``gap`` = AUC(LeRF) - AUC(MoRF), and the areas normalised for comparing models.

        Raw areas depend on how accurate the model is and on how much any removal hurts it, so models are
        compared on areas relative to the random-order control, in units of the clean value ``v_0`` (the curve at
        fraction 0, when evaluated):

        - ``morf_gain_{q} = (AUC(random) - AUC(MoRF)) / v_0``: how much faster removing the most salient
          positions destroys the prediction than removing random ones (higher is more faithful);
        - ``lerf_gain_{q} = (AUC(LeRF) - AUC(random)) / v_0``: how much longer the prediction survives removing
          the least salient positions (higher is more faithful).

        :return: Keys like ``"auc_morf_accuracy"``, ``"gap_accuracy"``, ``"morf_gain_accuracy"``.
        """
        out = {f"auc_{o}_{q}": self.auc(o, q) for q in ("accuracy", "probability") for o in self.accuracy}
        for q, curves in (("accuracy", self.accuracy), ("probability", self.probability)):
            if "morf" in curves and "lerf" in curves:
                out[f"gap_{q}"] = out[f"auc_lerf_{q}"] - out[f"auc_morf_{q}"]
            clean = next(iter(curves.values()))[0] if self.fractions[0] == 0.0 else float("nan")
            if "random" in curves and clean > 0:
                for o, sign in (("morf", -1.0), ("lerf", 1.0)):
                    if o in curves:
                        out[f"{o}_gain_{q}"] = sign * (out[f"auc_{o}_{q}"] - out[f"auc_random_{q}"]) / clean
        return out

    def to_dict(self) -> dict[str, Any]:
        """The curves and their summary as plain Python types.

        :return: A JSON-serialisable dictionary.
        """
        return {**asdict(self), "summary": self.summary()}


def _check_fractions(fractions: Any) -> list[float]:
    try:
        values = [check_fraction("fractions", f, low_inclusive=True) for f in fractions]
    except TypeError:
        if isinstance(fractions, (str, bytes)) or not hasattr(fractions, "__iter__"):
            raise TypeError(f"fractions must be a sequence of real numbers in [0, 1), got {fractions!r}.") from None
        raise
    if not values or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"fractions must be a non-empty, strictly increasing sequence, got {values}.")
    return values


def _resolve_fill(fill: Any, is_image: bool, generator: torch.Generator) -> tuple[Any, str]:
    if isinstance(fill, str):
        check_choice("fill", fill, (*FILL_MODES, "road"))
        if fill == "road":
            if not is_image:
                raise ValueError("fill='road' needs image inputs of shape (n, c, h, w).")
            return NoisyLinearImputer(0.01, generator), "road"
        return fill, fill
    if callable(fill):
        return fill, getattr(fill, "__name__", type(fill).__name__)
    return fill, repr(fill)


def masking_curve(
    model: PyTorchClassifier | torch.nn.Module,
    x: Any,
    y: Any,
    maps: Any,
    fractions: Any = FRACTIONS,
    orders: Any = ORDERS,
    fill: Any = "road",
    absolute: bool = True,
    batch_size: int = 256,
    seed: int = 0,
) -> MaskingCurve:
    """Accuracy and true-class probability as the MoRF / LeRF / random fraction of positions is replaced.

    For fraction ``f`` and a sample with ``P`` positions, ``k = floor(f * P)`` positions are replaced: the
    ``k`` with the highest position saliency ``s_p = mean_c |a_{c,p}|`` (MoRF), the ``k`` lowest (LeRF) or
    ``k`` at random. Then ``acc(f) = mean_i [argmax f(x'_i) = y_i]`` and
    ``prob(f) = mean_i softmax(f(x'_i))_{y_i}``.
    Fraction 0 is evaluated once and shared by all orders; every other (fraction, order) costs one batched
    forward pass per batch.

    :param model: An ART ``PyTorchClassifier`` or a ``torch.nn.Module`` returning logits.
    :param x: Inputs, channels first, numpy or torch. Not modified.
    :param y: True classes, indices or one-hot.
    :param maps: Saliency maps of ``x``'s shape (e.g. from :func:`~art_sgt.evaluation.attribution.attribute`).
    :param fractions: Increasing fractions in [0, 1) (default 0, 0.1, ..., 0.9).
    :param orders: A subset of ``("morf", "lerf", "random")``.
    :param fill: ``"road"`` (noisy linear imputation, the default; images only), ``"uniform"``, ``"mean"``,
        ``"zero"``, a float, or a callable ``(x, mask) -> values`` (see :func:`art_sgt.masking.apply_mask`).
        Fill values are clipped to the classifier's ``clip_values``. Compare models with ``"road"``: a model
        trained with a fill (SGT and ASGT are trained to ignore uniform-noise masking) scores unfairly well when
        evaluated with that same fill.
    :param absolute: Rank positions by ``|saliency|`` (default) or by the signed value.
    :param batch_size: Samples per forward pass.
    :param seed: Seed of the random order and of random fills.
    :return: The curves.
    :raises ValueError: For fractions outside [0, 1), maps whose shape differs from ``x``, non-finite maps,
        an unknown order or fill, or ``x`` and ``y`` of different lengths.

    >>> import torch
    >>> model = torch.nn.Linear(4, 2, bias=False)
    >>> _ = model.weight.data.copy_(torch.tensor([[4.0, 3.0, 2.0, 1.0], [0.0, 0.0, 0.0, 0.0]]))
    >>> maps = model.weight.data[:1]  # the gradient of logit 0: the weights
    >>> curve = masking_curve(model, torch.ones(1, 4), [0], maps, fractions=[0.0, 0.5], fill="zero")
    >>> [round(p, 4) for p in curve.probability["morf"]], [round(p, 4) for p in curve.probability["lerf"]]
    ([1.0, 0.9526], [1.0, 0.9991])
    """
    resolved = resolve_model("model", model)
    batch_size = check_positive_int("batch_size", batch_size)
    fraction_list = _check_fractions(fractions)
    order_list = [check_choice("orders", o, ORDERS) for o in ([orders] if isinstance(orders, str) else orders)]
    x_t = as_tensor("x", x, resolved.device)
    y_t = as_labels("y", y, len(x_t), resolved.nb_classes, resolved.device)
    maps_t = check_maps("maps", maps, x_t)
    generator = torch.Generator(device=resolved.device).manual_seed(int(seed))
    fill_fn, fill_name = _resolve_fill(fill, x_t.ndim == 4, generator)

    correct = torch.zeros(len(order_list), len(fraction_list), dtype=torch.float64, device=resolved.device)
    prob = torch.zeros_like(correct)
    module = resolved.module
    with torch.no_grad(), frozen(module):
        for s in batches(len(x_t), batch_size):
            xb, yb, mb = x_t[s], y_t[s], maps_t[s]
            ranks = {o: removal_ranks(ranking_scores(mb, o, absolute, generator)) for o in order_list}
            positions = ranks[order_list[0]][0].numel()
            for j, f in enumerate(fraction_list):
                for i, o in enumerate(order_list):
                    if f == 0.0 and i > 0:
                        continue  # fraction 0 is the clean input for every order: evaluated once
                    mask = ranks[o] < masked_count(f, positions)
                    xm = xb if f == 0.0 else apply_mask(xb, mask, fill_fn, generator, resolved.clip_values)
                    p = torch.softmax(module(xm), dim=1)
                    correct[i, j] += (p.argmax(dim=1) == yb).sum()
                    prob[i, j] += p.gather(1, yb[:, None]).sum()
    if fraction_list[0] == 0.0:
        correct[1:, 0], prob[1:, 0] = correct[0, 0], prob[0, 0]
    n = len(x_t)
    acc, pr = (correct / n).cpu().numpy(), (prob / n).cpu().numpy()
    return MaskingCurve(
        fractions=fraction_list,
        accuracy={o: [float(v) for v in acc[i]] for i, o in enumerate(order_list)},
        probability={o: [float(v) for v in pr[i]] for i, o in enumerate(order_list)},
        fill=fill_name,
        n_samples=n,
    )
