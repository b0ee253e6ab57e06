"""Stability of saliency maps under adversarial perturbations crafted with ART (PGD by default).

For each attack strength ``eps`` the inputs are attacked, the maps of the clean and the adversarial inputs
are compared (Spearman rank correlation, top-k intersection, cosine similarity; Ghorbani et al., AAAI 2019)
and reported beside the model's accuracy at that ``eps``. The clean maps are computed once and shared by all
strengths; ``eps = 0`` reuses them, so a model is exactly as stable as itself.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from art_sgt._validation import check_fraction, check_non_negative, check_positive_int, preserved_modes
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
from art_sgt.evaluation.similarity import (
    cosine_similarity,
    mean_similarity,
    rank_correlation,
    similarities,
    top_k_intersection,
)

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

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

# The similarity measures live in their own module; they are re-exported here, where they were first defined.

EPS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)
"""Default L-inf attack strengths (inputs in [0, 1])."""


def map_similarity(a: Any, b: torch.Tensor, top_k: float = 0.1, absolute: bool = True) -> dict[str, Any]:
    """Means over pairs of maps of every measure of :func:`~art_sgt.evaluation.similarity.similarities`.

    Undefined samples (a constant or all-zero map) are left out of the means, counted under ``"undefined"``
    and warned about (:func:`~art_sgt.evaluation.similarity.mean_similarity`).

    :param a: Maps ``(n, ...)`` (or the result of :func:`reference`).
    :param b: Maps of the same shape.
    :param top_k: Fraction of features of the top-k intersection.
    :param absolute: Rank and compare absolute values (``spearman_signed`` is always signed).
    :return: ``{"spearman", "spearman_signed", "top_k", "cosine", "ssim" (image maps)}`` means.

    >>> import torch
    >>> a = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    >>> map_similarity(a, a)
    {'spearman': 1.0, 'spearman_signed': 1.0, 'top_k': 1.0, 'cosine': 1.0, 'ssim': 1.0}
    >>> {k: round(v, 3) for k, v in map_similarity(a, -a, absolute=False).items()}
    {'spearman': -1.0, 'spearman_signed': -1.0, 'top_k': 1.0, 'cosine': -1.0, 'ssim': 1.0}
    """
    return mean_similarity(similarities(a, b, top_k, absolute))


def reference(a: torch.Tensor, top_k: float = 0.1, absolute: bool = True) -> torch.Tensor:
    """The reference maps for :func:`map_similarity` (kept for compatibility: every comparison now depends on
    both maps, so nothing is precomputed).

    :param a: Maps ``(n, ...)``.
    :param top_k: Unused.
    :param absolute: Unused.
    :return: ``a``.
    """
    return a


@dataclass
class StabilityResult:
    """Map similarity between clean and adversarial inputs, and accuracy, per attack strength.

    The similarities are means over the samples whose *prediction did not change* under the attack (a flipped
    prediction changes what the map explains, and would make a robust model look more stable by construction);
    ``flipped`` gives the fraction left out. The maps compared are those of the class named by ``target``.

    :param eps: Attack strengths.
    :param accuracy: Accuracy on the adversarial inputs.
    :param spearman: Mean Spearman rank correlation of clean and adversarial (absolute) maps.
    :param top_k: Mean top-k intersection.
    :param cosine: Mean cosine similarity.
    :param method: The attribution method's name.
    :param attack: The attack's class name.
    :param top_k_fraction: Fraction of features of the top-k intersection.
    :param n_samples: Number of samples.
    :param spearman_signed: Mean Spearman rank correlation of the signed maps.
    :param ssim: Mean structural similarity (image maps; ``nan`` otherwise).
    :param flipped: Fraction of samples whose prediction the attack changed (left out of the similarities).
    :param n_compared: Number of samples the similarities average.
    :param target: ``"label"``: both maps explain the true class ``y``.
    :param undefined: Per eps, the samples left out of each mean as undefined (constant or zero maps).
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
    spearman_signed: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    flipped: list[float] = field(default_factory=list)
    n_compared: list[int] = field(default_factory=list)
    target: str = "label"
    undefined: list[dict[str, int]] = field(default_factory=list)

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
        from art_sgt._art import pgd_params_from_art
        from art_sgt.attacks import pgd
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
    with preserved_modes(resolved.module):  # ART's attacks leave the model in eval mode
        x_adv = art_attack.generate(x=x.cpu().numpy(), y=y_onehot)
    return torch.as_tensor(x_adv, dtype=torch.float32, device=x.device)


def adversarial_stability(
    classifier: PyTorchClassifier | torch.nn.Module,
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
    (L-inf, ``max_iter`` steps of ``2.5 eps / max_iter``, no random start) or with ``attack``; on the samples
    whose predicted class is the same at ``x'`` as at ``x``, the maps of ``x'`` for the true class ``y`` are
    compared with those of ``x`` by every measure of :func:`~art_sgt.evaluation.similarity.similarities`
    (means over those samples; top-k intersection as Ghorbani et al. 2019); the fraction of samples whose
    prediction flipped and the accuracy on ``x'`` are recorded beside them. ART attacks
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
    generator = torch.Generator(device=resolved.device).manual_seed(int(seed))
    clean_pred = predict_proba(resolved, x_t, batch_size).argmax(1)
    keys = ("spearman", "spearman_signed", "top_k", "cosine", "ssim")
    rows: dict[str, list[Any]] = {k: [] for k in ("accuracy", *keys, "flipped", "n_compared", "undefined")}
    attack_name = "none"
    for e in eps_list:
        if e == 0.0:
            pred, sim = clean_pred, dict.fromkeys(keys, 1.0)
        else:
            with _attack_at(attack, classifier, e, max_iter, batch_size) as art_attack:
                attack_name = type(art_attack).__name__
                x_adv = _craft(resolved, art_attack, x_t, y_t, batch_size, generator)
            pred = predict_proba(resolved, x_adv, batch_size).argmax(1)
            kept = pred == clean_pred
            if bool(kept.any()):
                adv = compute_maps(resolved, x_adv[kept], y_t[kept], resolved_method, batch_size, seed)
                what = f"stability at eps {e:g}"
                sim = mean_similarity(similarities(clean[kept], adv, top_k, absolute), what=what)
                sim.setdefault("ssim", float("nan"))
            else:
                warnings.warn(
                    f"stability at eps {e:g}: the attack changed every prediction, no map left to compare.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                sim = dict.fromkeys(keys, float("nan"))
        rows["accuracy"].append(float((pred == y_t).double().mean()))
        rows["flipped"].append(float((pred != clean_pred).double().mean()))
        rows["n_compared"].append(int((pred == clean_pred).sum()))
        rows["undefined"].append(sim.pop("undefined", {}))
        for key in keys:
            rows[key].append(sim[key])
    return StabilityResult(
        eps=eps_list,
        method=resolved_method.name,
        attack=attack_name,
        top_k_fraction=top_k,
        n_samples=len(x_t),
        **rows,
    )
