"""ART attacks as the robustness report builds and runs them (internal).

Every attack runs with numpy's and torch's global generators seeded just before, on the samples the model
classifies correctly, so a number in a report equals the same ART attack run by hand on those samples after
``np.random.seed(seed)`` and ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "NORMS",
    "SQUARE_NORMS",
    "SQUARE_MIN_SIDE",
    "square_supported",
    "seeded",
    "build_pgd",
    "build_attack",
    "build_fgsm",
    "correct_mask",
    "run_attack",
    "target_classes",
    "NO_GRADIENT",
]

#: Start of the message of ART's ``PyTorchClassifier.loss_gradient`` when the loss does not depend on the input
#: in the autograd graph (e.g. a model that detaches its input): the white-box attack cannot take a step.
NO_GRADIENT = "Gradient term in PyTorch model is `None`"

NORMS = {"inf": np.inf, "2": 2, "1": 1}
SQUARE_NORMS = ("inf", "2")
# Smallest image side ART's SquareAttack accepts: its first square tile covers 80% of the image, and smaller
# images leave no room to place it (numpy "high <= 0"; measured with ART 1.20 on square images).
SQUARE_MIN_SIDE = {"inf": 5, "2": 6}


def square_supported(input_shape: tuple[int, ...], norm: str) -> bool:
    """Whether ART's SquareAttack can run on inputs of ``input_shape`` (channels first) under ``norm``."""
    return norm in SQUARE_NORMS and len(input_shape) == 3 and min(input_shape[1:]) >= SQUARE_MIN_SIDE[norm]


def seeded(seed: int) -> None:
    np.random.seed(seed)  # noqa: NPY002 - ART's attacks draw from numpy's global generator
    torch.manual_seed(seed)


def build_pgd(classifier: Any, eps: float, norm: str, max_iter: int, restarts: int, batch_size: int) -> Any:
    from art.attacks.evasion import ProjectedGradientDescent

    return ProjectedGradientDescent(
        classifier,
        norm=NORMS[norm],
        eps=eps,
        eps_step=2.5 * eps / max_iter,
        max_iter=max_iter,
        num_random_init=restarts,
        batch_size=batch_size,
        verbose=False,
    )


def build_attack(name: str, classifier: Any, eps: float, norm: str, p: dict[str, Any]) -> Any:
    """The ART attack ``name`` at ``eps`` with the report's parameters ``p``."""
    from art.attacks.evasion import AutoProjectedGradientDescent

    from art_sgt.evaluation._square import LinfSquareAttack

    if name == "pgd":
        return build_pgd(classifier, eps, norm, p["pgd_max_iter"], p["pgd_restarts"], p["batch_size"])
    if name in ("apgd-ce", "apgd-dlr", "apgd-t"):
        return AutoProjectedGradientDescent(
            classifier,
            norm=NORMS[norm],
            eps=eps,
            eps_step=2.0 * eps,
            max_iter=p["apgd_max_iter"],
            nb_random_init=p["apgd_restarts"],
            batch_size=p["batch_size"],
            loss_type="cross_entropy" if name == "apgd-ce" else "difference_logits_ratio",
            targeted=name == "apgd-t",
            verbose=False,
        )
    return LinfSquareAttack(  # ART's SquareAttack, exactly, with fewer forwards under L-inf
        classifier,
        norm=NORMS[norm],
        eps=eps,
        max_iter=p["square_max_iter"],
        nb_restarts=p["square_restarts"],
        batch_size=p["batch_size"],
        verbose=False,
    )


def correct_mask(classifier: Any, x: np.ndarray, labels: np.ndarray, batch_size: int) -> np.ndarray:
    return np.argmax(classifier.predict(x, batch_size=batch_size), axis=1) == labels


def target_classes(classifier: Any, x: np.ndarray, labels: np.ndarray, k: int, batch_size: int) -> np.ndarray:
    """The ``k`` classes other than the label with the highest logits on clean ``x``, best first, shape ``(n, k)``.

    These are the targets of AutoAttack's APGD-T (Croce and Hein 2020): the classes a sample is closest to.
    """
    logits = np.array(classifier.predict(x, batch_size=batch_size), dtype=np.float64)
    logits[np.arange(len(x)), labels] = -np.inf
    return np.argsort(-logits, axis=1, kind="stable")[:, : min(k, logits.shape[1] - 1)]


def _generate(attack: Any, x: np.ndarray, y: np.ndarray, notes: list[str] | None) -> np.ndarray:
    try:
        return attack.generate(x, y=y)
    except ValueError as err:
        if NO_GRADIENT not in str(err):
            raise
        if notes is not None:
            notes.append(f"{type(attack).__name__}: ART got no input gradient from the model ({err}); x left as is")
        return x


def run_attack(
    attack: Any,
    target: Any,
    x: np.ndarray,
    onehot: np.ndarray,
    labels: np.ndarray,
    p: dict[str, Any],
    notes: list[str] | None = None,
) -> Any:
    """Per-sample robustness of ``target`` to ``attack``: correct on ``x`` and on the attack's adversarial ``x``
    (``attack`` ``None``: correct on ``x``).

    As in AutoAttack, the attack is given only the samples ``target`` still classifies correctly: a sample wrong
    on clean ``x`` counts as not robust without being attacked. A targeted attack (APGD-T) is run once per target
    of :func:`target_classes` (``p["apgd_targets"]`` of them), each run on the samples that survived the runs
    before it; a sample is robust only if it survives every run. Each run is seeded alike.

    A white-box attack that gets no input gradient at all from ART (the model detaches its input) cannot move
    ``x``: it is counted as having left ``x`` unchanged, and a line saying so is appended to ``notes``. This is
    exactly the failure the gradient-masking checklist exists to reveal, so it must not abort the report.
    """
    correct = correct_mask(target, x, labels, p["batch_size"])
    if attack is None:
        return correct
    if getattr(attack, "targeted", False):
        eye = np.eye(onehot.shape[1], dtype=np.float32)
        runs = [eye[classes] for classes in target_classes(target, x, labels, p["apgd_targets"], p["batch_size"]).T]
    else:
        runs = [onehot]
    for y_run in runs:
        still = np.flatnonzero(correct)
        if len(still) == 0:
            break
        seeded(p["seed"])
        x_adv = _generate(attack, x[still], y_run[still], notes)
        correct[still] = correct_mask(target, x_adv.astype(np.float32), labels[still], p["batch_size"])
    return correct


def build_fgsm(classifier: Any, eps: float, norm: str, batch_size: int) -> Any:
    from art.attacks.evasion import FastGradientMethod

    return FastGradientMethod(classifier, norm=NORMS[norm], eps=eps, batch_size=batch_size)
