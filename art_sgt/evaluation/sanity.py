"""Sanity checks of saliency maps (Adebayo et al., NeurIPS 2018; Sixt et al., ICML 2020).

- Cascading model-parameter randomisation: the layers of a *deep copy* of the model are re-initialised
  one after the other from the output down; a map that explains the model should drift away from the
  original map as more layers are randomised (low similarity is good). The user's model is never touched.
- Random-logit test: the map of the *predicted* class is compared with the map of a random other class; a
  class-sensitive method gives dissimilar maps (low similarity is good).

Both report every measure of :mod:`~art_sgt.evaluation.similarity`: Spearman of absolute and of signed maps
over the positions where not both maps are 0 (shared zeros inflate rank correlation), top-k intersection, cosine
and SSIM, as Adebayo et al. recommend.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from art_sgt._validation import check_fraction, check_positive_int
from art_sgt.evaluation._common import (
    ResolvedModel,
    as_labels,
    as_tensor,
    check_maps,
    fork_devices,
    predict_proba,
    resolve_model,
)
from art_sgt.evaluation.attribution import compute_maps, get_method
from art_sgt.evaluation.similarity import Prepared, mean_similarity, similarities

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

__all__ = [
    "RandomizationResult",
    "RandomLogitResult",
    "cascading_randomization",
    "random_logit",
    "parameter_layers",
]


def parameter_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The submodules that own parameters, in registration order (the forward order of usual models).

    :param module: The model.
    :return: ``(qualified name, module)`` pairs.

    >>> import torch
    >>> [name for name, _ in parameter_layers(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(),
    ...                                                             torch.nn.Linear(2, 1)))]
    ['0', '2']
    """
    return [(name, m) for name, m in module.named_modules() if next(m.parameters(recurse=False), None) is not None]


def _randomise(module: nn.Module, seed: int, devices: list[int]) -> None:
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        is_norm = isinstance(module, nn.modules.batchnorm._NormBase)
        if callable(getattr(module, "reset_parameters", None)) and not is_norm:
            module.reset_parameters()
        else:
            for p in module.parameters(recurse=False):
                p.normal_(0.0, float(p.std()) if p.numel() > 1 and float(p.std()) > 0 else 1.0)


@dataclass
class RandomizationResult:
    """Similarity of the maps of cascadingly randomised models to the original maps.

    :param layers: Layers randomised, cumulatively: entry ``i`` has layers ``0..i`` randomised (top first).
    :param spearman: Mean Spearman rank correlation of absolute maps with the original maps after each step
        (positions where both maps are 0 left out).
    :param top_k: Mean top-k intersection after each step.
    :param cosine: Mean cosine similarity after each step.
    :param method: The attribution method's name.
    :param n_samples: Number of samples.
    :param examples: Maps of the first samples: ``"original"`` and one entry per layer (not serialised).
    :param spearman_signed: Mean Spearman rank correlation of the signed maps after each step.
    :param ssim: Mean SSIM after each step (image maps; ``nan`` otherwise).
    :param undefined: Per step, the samples left out of each mean as undefined (constant or zero maps).
    """

    layers: list[str]
    spearman: list[float]
    top_k: list[float]
    cosine: list[float]
    method: str
    n_samples: int
    examples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    spearman_signed: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    undefined: list[dict[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The result without the example maps, as plain Python types.

        :return: A JSON-serialisable dictionary.
        """
        out = asdict(self)
        del out["examples"]
        return out


@dataclass
class RandomLogitResult:
    """Similarity of maps of the predicted class and of a random other class.

    :param spearman: Mean Spearman rank correlation of absolute maps (shared zeros left out).
    :param top_k: Mean top-k intersection.
    :param cosine: Mean cosine similarity.
    :param method: The attribution method's name.
    :param n_samples: Number of samples.
    :param spearman_signed: Mean Spearman rank correlation of the signed maps.
    :param ssim: Mean SSIM (image maps; ``nan`` otherwise).
    :param target: ``"predicted"``: the reference map explains the predicted class.
    :param undefined: Samples left out of each mean as undefined (constant or zero maps).
    """

    spearman: float
    top_k: float
    cosine: float
    method: str
    n_samples: int
    spearman_signed: float = float("nan")
    ssim: float = float("nan")
    target: str = "predicted"
    undefined: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python types.

        :return: A JSON-serialisable dictionary.
        """
        return asdict(self)


def _similarity(a: Any, b: torch.Tensor, top_k: float, absolute: bool, what: str) -> dict[str, Any]:
    sim = mean_similarity(similarities(a, b, top_k, absolute), what=what)
    sim.setdefault("ssim", float("nan"))
    sim.setdefault("undefined", {})
    return sim


def _prepare(model: Any, x: Any, y: Any, batch_size: int) -> tuple[ResolvedModel, torch.Tensor, torch.Tensor, int]:
    resolved = resolve_model("model", model)
    batch_size = check_positive_int("batch_size", batch_size)
    x_t = as_tensor("x", x, resolved.device)
    y_t = as_labels("y", y, len(x_t), resolved.nb_classes, resolved.device)
    return resolved, x_t, y_t, batch_size


def cascading_randomization(
    model: PyTorchClassifier | torch.nn.Module,
    x: Any,
    y: Any,
    method: Any = "saliency",
    maps: Any = None,
    top_k: float = 0.1,
    absolute: bool = True,
    n_examples: int = 4,
    batch_size: int = 256,
    seed: int = 0,
    **attribute_kwargs: Any,
) -> RandomizationResult:
    """Cascading model-parameter randomisation test (Adebayo et al. 2018), on a deep copy of the model.

    The layers that own parameters (:func:`parameter_layers`) are re-initialised cumulatively from the last
    to the first, each with ``reset_parameters()`` seeded with ``seed + i`` (Quantus does the same; layers
    without it, and normalisation layers, get normal noise of their weights' std). After each step the maps
    of ``x`` for ``y`` are compared with the original maps
    (:func:`~art_sgt.evaluation.similarity.similarities`).
    The preprocessing of a classifier has no parameters and is never randomised.

    :param model: An ART ``PyTorchClassifier`` or a ``torch.nn.Module``; never modified.
    :param x: Inputs, channels first, numpy or torch. Not modified.
    :param y: Classes explained, indices or one-hot.
    :param method: Attribution method (see :func:`~art_sgt.evaluation.attribution.get_method`).
    :param maps: The method's maps of ``x`` for the original model, if already computed.
    :param top_k: Fraction of features of the top-k intersection.
    :param absolute: Compare absolute maps.
    :param n_examples: Number of leading samples whose maps are kept in ``examples`` for plotting.
    :param batch_size: Batch size of attributions.
    :param seed: Seed of the re-initialisation and of randomised methods.
    :param attribute_kwargs: Keyword arguments for Captum's ``attribute``.
    :return: The result.
    :raises ValueError: If the model has no parameters, or ``x`` and ``y`` differ in length.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
    ...     torch.nn.Linear(64, 3))
    >>> x, y = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 3
    >>> result = cascading_randomization(model, x, y)
    >>> result.layers  # randomised from the top: the Linear layer, then the Conv2d
    ['3', '0']
    >>> all(s < 0.5 for s in result.spearman)  # the gradient maps depend on the weights: they pass the test
    True
    """
    resolved, x_t, y_t, batch_size = _prepare(model, x, y, batch_size)
    top_k = check_fraction("top_k", top_k, high_inclusive=True)
    resolved_method = get_method(method, **attribute_kwargs)
    original = (
        compute_maps(resolved, x_t, y_t, resolved_method, batch_size, seed)
        if maps is None
        else check_maps("maps", maps, x_t)
    )
    with (
        torch.no_grad()
    ):  # a TorchScript module's copy would otherwise hold non-leaf parameters, which cannot be frozen
        clone = copy.deepcopy(resolved.module)
    layers = parameter_layers(clone)[::-1]
    if not layers:
        raise ValueError("model must have at least one layer with parameters to randomise, got none.")
    work = ResolvedModel(clone, resolved.device, resolved.clip_values, resolved.nb_classes)
    keep = slice(0, max(0, int(n_examples)))
    examples = {"original": original[keep].cpu().numpy()}
    rows: dict[str, list[Any]] = {k: [] for k in ("spearman", "spearman_signed", "top_k", "cosine", "ssim")}
    rows["undefined"] = []
    devices = fork_devices(resolved.device)
    prepared = Prepared(original, top_k, absolute)  # ranked once, compared with every step
    for i, (name, layer) in enumerate(layers):
        _randomise(layer, int(seed) + i, devices)
        randomised = compute_maps(work, x_t, y_t, resolved_method, batch_size, seed)
        examples[name] = randomised[keep].cpu().numpy()
        sim = _similarity(prepared, randomised, top_k, absolute, f"randomisation up to layer {name}")
        for key, value in sim.items():
            rows[key].append(value)
    names = [name.removeprefix("model.") if resolved.classifier is not None else name for name, _ in layers]
    examples = {
        "original": examples["original"],
        **{n: examples[name] for n, (name, _) in zip(names, layers)},
    }
    return RandomizationResult(layers=names, method=resolved_method.name, n_samples=len(x_t), examples=examples, **rows)


def random_logit(
    model: PyTorchClassifier | torch.nn.Module,
    x: Any,
    y: Any,
    method: Any = "saliency",
    maps: Any = None,
    nb_classes: int | None = None,
    top_k: float = 0.1,
    absolute: bool = True,
    batch_size: int = 256,
    seed: int = 0,
    **attribute_kwargs: Any,
) -> RandomLogitResult:
    """Random-logit test (Sixt et al., ICML 2020): similarity of the maps for the predicted class and for a
    random other class.

    For each sample with predicted class ``c = argmax f(x)``, a class ``c' != c`` is drawn uniformly (seeded),
    and the maps of ``x`` for ``c'`` are compared with its maps for ``c``
    (:func:`~art_sgt.evaluation.similarity.similarities`).

    :param model: An ART ``PyTorchClassifier`` or a ``torch.nn.Module`` returning logits.
    :param x: Inputs, channels first, numpy or torch. Not modified.
    :param y: True classes, indices or one-hot (their maps ``maps`` are reused where ``y`` is the prediction).
    :param method: Attribution method (see :func:`~art_sgt.evaluation.attribution.get_method`).
    :param maps: The method's maps of ``x`` for ``y``, if already computed.
    :param nb_classes: Number of classes; needed only for a plain module (a classifier knows it).
    :param top_k: Fraction of features of the top-k intersection.
    :param absolute: Compare absolute maps.
    :param batch_size: Batch size of attributions.
    :param seed: Seed of the random classes and of randomised methods.
    :param attribute_kwargs: Keyword arguments for Captum's ``attribute``.
    :return: The result.
    :raises ValueError: If there are fewer than 2 classes, or ``x`` and ``y`` differ in length.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
    ...     torch.nn.Linear(64, 3))
    >>> x, y = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 3
    >>> result = random_logit(model, x, y)
    >>> result.n_samples, result.spearman < 0.5  # maps of another class differ from those of the true class
    (8, True)
    """
    resolved, x_t, y_t, batch_size = _prepare(model, x, y, batch_size)
    top_k = check_fraction("top_k", top_k, high_inclusive=True)
    classes = resolved.nb_classes or (check_positive_int("nb_classes", nb_classes) if nb_classes else None)
    if classes is None:
        classes = int(predict_proba(resolved, x_t[:1], 1).shape[1])
    if classes < 2:
        raise ValueError(f"nb_classes must be at least 2 for the random-logit test, got {classes}.")
    resolved_method = get_method(method, **attribute_kwargs)
    predicted = predict_proba(resolved, x_t, batch_size).argmax(1)
    if maps is None:
        original = compute_maps(resolved, x_t, predicted, resolved_method, batch_size, seed)
    else:
        original = check_maps("maps", maps, x_t).clone()
        wrong = predicted != y_t
        if bool(wrong.any()):
            original[wrong] = compute_maps(resolved, x_t[wrong], predicted[wrong], resolved_method, batch_size, seed)
    generator = torch.Generator(device=resolved.device).manual_seed(int(seed))
    offset = torch.randint(1, classes, predicted.shape, generator=generator, device=resolved.device)
    other = (predicted + offset) % classes
    random_maps = compute_maps(resolved, x_t, other, resolved_method, batch_size, seed)
    sim = _similarity(original, random_maps, top_k, absolute, "random logit")
    return RandomLogitResult(method=resolved_method.name, n_samples=len(x_t), **sim)
