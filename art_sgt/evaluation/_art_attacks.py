"""ART attacks as the robustness report builds and runs them (internal).

Every attack runs with numpy's and torch's global generators seeded just before, on the samples the model
classifies correctly, so a number in a report equals the same ART attack run by hand on those samples after
``np.random.seed(seed)`` and ``torch.manual_seed(seed)``.

ART's ``AutoProjectedGradientDescent`` runs on the classifier's device through :func:`art_sgt.apgd.apgd` whenever
``art_sgt._art.apgd_params_from_art`` accepts it: the restarts and their random starts are ART's (drawn with
ART's ``random_sphere`` from numpy's global generator, in ART's order) and only the step loop moves to torch, so
the iterates are ART's to float rounding; an adversarial iterate met on the way is kept, as in the original APGD
(Croce and Hein 2020), where ART keeps only the last. FAB-T (Croce and Hein 2020) comes from torchattacks, an
optional extra (``pip install art-sgt[autoattack]``), wrapped to take and return numpy arrays as ART's attacks do.
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
    "FAB_MISSING",
    "fab_available",
    "build_fab",
    "generate",
]

#: Why FAB-T cannot run without the optional extra.
FAB_MISSING = "FAB-T needs torchattacks, an optional extra: pip install 'art-sgt[autoattack]'"

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

    if name == "fab-t":
        return build_fab(classifier, eps, norm, p)
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


def fab_available() -> bool:
    """Whether torchattacks (the source of FAB-T) can be imported."""
    try:
        import torchattacks  # noqa: F401
    except ImportError:
        return False
    return True


class _TorchattacksFAB:
    """torchattacks' multi-targeted FAB (FAB-T) behind ART's ``generate(x, y)`` on numpy arrays.

    ``targeted`` is ``False`` for :func:`run_attack`: FAB-T picks its own targets (the ``n_targets`` most likely
    classes other than the label, in turn, each run on the samples still correct), so it takes true labels.
    """

    targeted = False

    def __init__(self, classifier: Any, eps: float, norm: str, max_iter: int, n_targets: int, seed: int) -> None:
        import torchattacks

        from art_sgt._art import PreprocessedModel

        self.classifier = classifier
        self.model = PreprocessedModel(classifier, apply="predict")
        self.attack = torchattacks.FAB(
            self.model,
            norm="Linf" if norm == "inf" else "L2",
            eps=eps,
            steps=max_iter,
            n_restarts=1,
            multi_targeted=True,
            n_classes=classifier.nb_classes,
            seed=seed,
        )
        self.attack.n_target_classes = min(n_targets, classifier.nb_classes - 1)

    def generate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        device = self.classifier.device
        labels = torch.as_tensor(np.argmax(y, axis=1), device=device)
        x_adv = self.attack(torch.as_tensor(x, device=device), labels)
        return x_adv.detach().cpu().numpy().astype(np.float32)


def build_fab(classifier: Any, eps: float, norm: str, p: dict[str, Any]) -> Any:
    """FAB-T at ``eps`` with ``p["fab_max_iter"]`` steps against ``p["apgd_targets"]`` targets (AutoAttack: 9)."""
    if not fab_available():
        raise ImportError(FAB_MISSING + ".")
    return _TorchattacksFAB(classifier, eps, norm, p["fab_max_iter"], p["apgd_targets"], p["seed"])


def _apgd_on_device(attack: Any, params: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ART's ``AutoProjectedGradientDescent.generate`` with its step loop run by :func:`art_sgt.apgd.apgd`."""
    from art.utils import check_and_transform_label_format, projection, random_sphere

    from art_sgt._art import PreprocessedModel
    from art_sgt.apgd import apgd

    estimator = attack.estimator
    model = PreprocessedModel(estimator, apply="predict")
    onehot = check_and_transform_label_format(y, nb_classes=estimator.nb_classes)
    labels = np.argmax(onehot, axis=1)
    x_adv = x.astype(np.float32)
    device = estimator.device
    for _ in range(max(1, params.nb_random_init)):
        predicted = np.argmax(estimator.predict(x_adv), axis=1)
        robust = predicted != labels if params.targeted else predicted == labels
        if not robust.any():
            break
        x_init = x[robust]
        start = x_adv[robust] + random_sphere(
            int(robust.sum()), int(np.prod(x.shape[1:])), params.eps, np.inf if params.norm == "inf" else 2
        ).reshape(x_init.shape).astype(np.float32)
        if estimator.clip_values is not None:
            start = np.clip(start, *estimator.clip_values)
        start = x_init + projection(start - x_init, params.eps, np.inf if params.norm == "inf" else 2)
        out = apgd(
            model,
            torch.as_tensor(x_init, device=device),
            torch.as_tensor(labels[robust], device=device),
            start=torch.as_tensor(start, device=device),
            **params.apgd_kwargs(),
        )
        x_adv[robust] = out.cpu().numpy()
    return x_adv


def generate(attack: Any, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
    """``attack.generate(x, y=y)``, with ART's APGD (without a ``mask``) on the device (see the module's note)."""
    from art_sgt._art import apgd_params_from_art

    params = apgd_params_from_art(attack) if y is not None and not kwargs else None
    if params is not None:
        return _apgd_on_device(attack, params, x, y)
    return attack.generate(x, y=y, **kwargs)


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
        return generate(attack, x, y)
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
