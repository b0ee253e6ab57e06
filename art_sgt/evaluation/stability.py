"""Stability of saliency maps under adversarial perturbations crafted with ART (PGD by default).

For each attack strength ``eps`` the inputs are attacked, the maps of the clean and the adversarial inputs
are compared (Spearman rank correlation, top-k intersection, cosine similarity; Ghorbani et al., AAAI 2019)
and reported beside the model's accuracy at that ``eps``. The clean maps are computed once and shared by all
strengths; ``eps = 0`` reuses them, so a model is exactly as stable as itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from art_sgt._validation import check_fraction, check_non_negative, check_positive_int
from art_sgt.evaluation._common import (
    ResolvedModel,
    as_labels,
    as_tensor,
    batches,
    check_maps,
    predict_proba,
    resolve_model,
)
from art_sgt.evaluation.attribution import Method, compute_maps, get_method

__all__ = [
    "EPS",
    "StabilityResult",
    "adversarial_stability",
    "rank_correlation",
    "top_k_intersection",
    "cosine_similarity",
    "map_similarity",
    "reference",
]

EPS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)
"""Default L-inf attack strengths (inputs in [0, 1])."""


def _flat(a: torch.Tensor, absolute: bool) -> torch.Tensor:
    a = a.reshape(len(a), -1)
    return a.abs() if absolute else a


def _average_ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks 1..d of each row, ties sharing their average rank; one sort, no search."""
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


@dataclass
class _Features:
    """What the three similarities need of one batch of maps, computed once."""

    flat: torch.Tensor
    ranks: torch.Tensor  # centred average ranks, float64
    rank_norm: torch.Tensor
    top: torch.Tensor  # top-k mask
    norm: torch.Tensor
    count: int

    @classmethod
    def of(cls, a: torch.Tensor, absolute: bool, top_k: float) -> _Features:
        flat = _flat(a, absolute)
        ranks = _average_ranks(flat)
        ranks = ranks - ranks.mean(dim=1, keepdim=True)
        count = max(1, int(round(top_k * flat.shape[1])))
        top = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, flat.topk(count, dim=1).indices, True)
        flat64 = flat.to(torch.float64)
        return cls(flat, ranks, ranks.norm(dim=1), top, flat64.norm(dim=1), count)

    def compare(self, other: _Features) -> dict[str, torch.Tensor]:
        """Per-sample Spearman, top-k intersection and cosine; exactly 1 where the maps are identical."""
        same = (self.flat == other.flat).all(dim=1)
        one = torch.ones(len(same), dtype=torch.float64, device=same.device)
        dot = (self.flat.to(torch.float64) * other.flat.to(torch.float64)).sum(dim=1)
        values = {
            "spearman": (self.ranks * other.ranks).sum(dim=1) / (self.rank_norm * other.rank_norm),
            "top_k": (self.top & other.top).sum(dim=1).to(torch.float64) / self.count,
            "cosine": dot / (self.norm * other.norm),
        }
        return {key: torch.where(same, one, value) for key, value in values.items()}


def rank_correlation(a: torch.Tensor, b: torch.Tensor, absolute: bool = True) -> torch.Tensor:
    """Spearman rank correlation of each pair of maps: the Pearson correlation of their ranks.

    ``rho = cov(r(a), r(b)) / (sd(r(a)) sd(r(b)))``, tied values receiving their average rank (as
    ``scipy.stats.spearmanr``). Identical maps give exactly 1; a constant map against a different one gives
    ``nan``.

    :param a: Maps ``(n, ...)``.
    :param b: Maps of the same shape.
    :param absolute: Compare ``|a|`` and ``|b|``.
    :return: ``(n,)`` float64.

    >>> import torch
    >>> rank_correlation(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[10.0, 30.0, 20.0]]))
    tensor([0.5000], dtype=torch.float64)
    """
    return _Features.of(a, absolute, 1.0).compare(_Features.of(b, absolute, 1.0))["spearman"]


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
    return _Features.of(a, absolute, k).compare(_Features.of(b, absolute, k))["top_k"]


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
    return _Features.of(a, absolute, 1.0).compare(_Features.of(b, absolute, 1.0))["cosine"]


def map_similarity(a: Any, b: torch.Tensor, top_k: float = 0.1, absolute: bool = True) -> dict[str, float]:
    """Mean Spearman correlation, top-k intersection and cosine similarity over pairs of maps (NaNs ignored).

    :param a: Maps ``(n, ...)``, or the reference features from a previous call's ``reference(...)`` (when
        many map sets are compared with one reference, its ranks are computed once).
    :param b: Maps of the same shape.
    :param top_k: Fraction of features of the top-k intersection.
    :param absolute: Compare absolute values.
    :return: ``{"spearman": ..., "top_k": ..., "cosine": ...}``.

    >>> import torch
    >>> a = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    >>> map_similarity(a, a)
    {'spearman': 1.0, 'top_k': 1.0, 'cosine': 1.0}
    >>> {k: round(v, 3) for k, v in map_similarity(a, -a, absolute=False).items()}
    {'spearman': -1.0, 'top_k': 0.0, 'cosine': -1.0}
    """
    fa = a if isinstance(a, _Features) else _Features.of(a, absolute, top_k)
    values = fa.compare(_Features.of(b, absolute, top_k))
    return {key: float(torch.nanmean(v)) for key, v in values.items()}


def reference(a: torch.Tensor, top_k: float = 0.1, absolute: bool = True) -> _Features:
    """Precompute what :func:`map_similarity` needs of reference maps compared many times.

    :param a: Maps ``(n, ...)``.
    :param top_k: Fraction of features of the top-k intersection.
    :param absolute: Compare absolute values.
    :return: An opaque object to pass as ``a`` to :func:`map_similarity` (same ``top_k`` and ``absolute``).
    """
    return _Features.of(a, absolute, top_k)


@dataclass
class StabilityResult:
    """Map similarity between clean and adversarial inputs, and accuracy, per attack strength.

    :param eps: Attack strengths.
    :param accuracy: Accuracy on the adversarial inputs.
    :param spearman: Mean Spearman rank correlation of clean and adversarial maps.
    :param top_k: Mean top-k intersection.
    :param cosine: Mean cosine similarity.
    :param method: The attribution method's name.
    :param attack: The attack's class name.
    :param top_k_fraction: Fraction of features of the top-k intersection.
    :param n_samples: Number of samples.
    """

    eps: list[float]
    accuracy: list[float]
    spearman: list[float]
    top_k: list[float]
    cosine: list[float]
    method: str
    attack: str
    top_k_fraction: float
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python types.

        :return: A JSON-serialisable dictionary.
        """
        return asdict(self)


def _default_attack(classifier: Any, eps: float, max_iter: int, batch_size: int) -> Any:
    from art.attacks.evasion import ProjectedGradientDescent

    return ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=eps,
        eps_step=2.5 * eps / max_iter,
        max_iter=max_iter,
        batch_size=batch_size,
        verbose=False,
    )


@contextlib.contextmanager
def _attack_at(attack: Any, classifier: Any, eps: float, max_iter: int, batch_size: int) -> Iterator[Any]:
    """The attack to run at ``eps``. A given ``EvasionAttack`` is set to ``eps`` (``eps_step`` scaled in
    proportion) through ``set_params`` and set back afterwards, so the object the user passed keeps its
    parameters (a copy would share ART's inner attack, and a deep copy would copy the model)."""
    if attack is None:
        yield _default_attack(classifier, eps, max_iter, batch_size)
        return
    from art.attacks import EvasionAttack

    if not isinstance(attack, EvasionAttack):
        made = attack(eps)
        if not isinstance(made, EvasionAttack):
            raise TypeError(f"attack(eps) must return an art EvasionAttack, got {type(made).__name__}.")
        yield made
        return
    if not hasattr(attack, "eps"):
        yield attack
        return
    saved = {"eps": attack.eps}
    params: dict[str, Any] = {"eps": eps}
    if getattr(attack, "eps_step", None) is not None and float(np.max(attack.eps)) > 0:
        saved["eps_step"] = attack.eps_step
        params["eps_step"] = float(np.max(attack.eps_step)) * eps / float(np.max(attack.eps))
    attack.set_params(**params)
    try:
        yield attack
    finally:
        attack.set_params(**saved)


def _craft(
    resolved: ResolvedModel,
    art_attack: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Adversarial inputs: on the device with ``art_sgt.attacks.pgd`` when it reproduces the ART attack,
    else through the attack's own ``generate``."""
    try:
        from art_sgt.attacks import pgd, pgd_params_from_art
    except ImportError:  # pragma: no cover - the fast path is optional
        params = None
    else:
        params = pgd_params_from_art(art_attack)
    if params is not None:
        kwargs = params.pgd_kwargs()
        return torch.cat(
            [pgd(resolved.module, x[s], y[s], generator=generator, **kwargs) for s in batches(len(x), batch_size)]
        )
    nb_classes = resolved.nb_classes or int(y.max()) + 1
    y_onehot = np.eye(nb_classes, dtype=np.float32)[y.cpu().numpy()]
    x_adv = art_attack.generate(x=x.cpu().numpy(), y=y_onehot)
    return torch.as_tensor(x_adv, dtype=torch.float32, device=x.device)


def adversarial_stability(
    classifier: Any,
    x: Any,
    y: Any,
    method: Any = "saliency",
    eps: Any = EPS,
    attack: Any = None,
    maps: Any = None,
    top_k: float = 0.1,
    absolute: bool = True,
    max_iter: int = 10,
    batch_size: int = 256,
    seed: int = 0,
    **attribute_kwargs: Any,
) -> StabilityResult:
    """Similarity of the maps of ``x`` and of adversarial ``x'`` for each attack strength, and accuracy at it.

    For every ``eps``: ``x'`` is crafted against the true labels ``y`` with ART's ``ProjectedGradientDescent``
    (L-inf, ``max_iter`` steps of ``2.5 eps / max_iter``, no random start) or with ``attack``; the maps of
    ``x'`` for ``y`` are compared with those of ``x`` by :func:`rank_correlation`, :func:`top_k_intersection`
    and :func:`cosine_similarity` (means over samples); and the accuracy on ``x'`` is recorded. ART attacks
    that ``art_sgt.attacks.pgd`` reproduces (PGD, BIM, FGSM on a ``PyTorchClassifier``) are run by it on the
    device, with the same result; any other attack goes through its ``generate``.

    :param classifier: An ART ``PyTorchClassifier`` (needed by the attack).
    :param x: Inputs, channels first, numpy or torch. Not modified.
    :param y: True classes, indices or one-hot.
    :param method: Attribution method (see :func:`~art_sgt.evaluation.attribution.get_method`).
    :param eps: Attack strengths, each ``>= 0``; ``0`` reuses the clean inputs.
    :param attack: ``None`` (PGD as above), an ART ``EvasionAttack`` whose ``eps`` is set to each strength
        (``eps_step`` scaled in proportion; its parameters are restored afterwards), or a callable
        ``eps -> EvasionAttack``.
    :param maps: The method's maps of ``x`` if already computed, else ``None``.
    :param top_k: Fraction of features of the top-k intersection, in (0, 1].
    :param absolute: Compare absolute maps.
    :param max_iter: PGD iterations of the default attack.
    :param batch_size: Batch size of attacks, attributions and predictions.
    :param seed: Seed of random attack starts and randomised methods.
    :param attribute_kwargs: Keyword arguments for Captum's ``attribute``.
    :return: The result.
    :raises ValueError: If an ``eps`` is negative, ``x`` and ``y`` differ in length, or maps do not match.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or ``attack`` is not an attack.
    """
    from art.estimators.classification import PyTorchClassifier

    if not isinstance(classifier, PyTorchClassifier):
        raise TypeError(
            f"classifier must be an art.estimators.classification.PyTorchClassifier, got {type(classifier).__name__}."
        )
    eps_list = [check_non_negative("eps", e) for e in ([eps] if isinstance(eps, (int, float)) else eps)]
    if not eps_list:
        raise ValueError("eps must hold at least one attack strength, got an empty sequence.")
    top_k = check_fraction("top_k", top_k, high_inclusive=True)
    max_iter = check_positive_int("max_iter", max_iter)
    batch_size = check_positive_int("batch_size", batch_size)
    if attack is not None and not callable(attack):
        from art.attacks import EvasionAttack

        if not isinstance(attack, EvasionAttack):
            raise TypeError(f"attack must be None, an art EvasionAttack or a callable, got {type(attack).__name__}.")
    resolved = resolve_model("classifier", classifier)
    resolved_method: Method = get_method(method, **attribute_kwargs)
    x_t = as_tensor("x", x, resolved.device)
    y_t = as_labels("y", y, len(x_t), resolved.nb_classes, resolved.device)
    clean = (
        compute_maps(resolved, x_t, y_t, resolved_method, batch_size, seed)
        if maps is None
        else check_maps("maps", maps, x_t)
    )
    clean_features = reference(clean, top_k, absolute)
    generator = torch.Generator(device=resolved.device).manual_seed(int(seed))
    clean_acc: float | None = None
    rows: dict[str, list[float]] = {"accuracy": [], "spearman": [], "top_k": [], "cosine": []}
    attack_name = "none"
    for e in eps_list:
        if e == 0.0:
            if clean_acc is None:
                clean_acc = float((predict_proba(resolved, x_t, batch_size).argmax(1) == y_t).double().mean())
            acc, sim = clean_acc, {"spearman": 1.0, "top_k": 1.0, "cosine": 1.0}
        else:
            with _attack_at(attack, classifier, e, max_iter, batch_size) as art_attack:
                attack_name = type(art_attack).__name__
                x_adv = _craft(resolved, art_attack, x_t, y_t, batch_size, generator)
            acc = float((predict_proba(resolved, x_adv, batch_size).argmax(1) == y_t).double().mean())
            adv = compute_maps(resolved, x_adv, y_t, resolved_method, batch_size, seed)
            sim = map_similarity(clean_features, adv, top_k, absolute)
        rows["accuracy"].append(acc)
        for key, value in sim.items():
            rows[key].append(value)
    return StabilityResult(
        eps=eps_list,
        method=resolved_method.name,
        attack=attack_name,
        top_k_fraction=top_k,
        n_samples=len(x_t),
        **rows,
    )
