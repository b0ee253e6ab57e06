"""The gradient-masking checklist of the robustness report (Athalye, Carlini and Wagner, ICML 2018, Section 6).

| Paper link: https://arxiv.org/abs/1802.00420
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from art_sgt.evaluation._art_attacks import build_attack, build_fgsm, build_pgd, run_attack, square_supported

__all__ = ["CHECKS", "GradientMaskingCheck", "run_checklist"]

#: The gradient-masking checks, by name, with what each verifies.
CHECKS = {
    "more_iterations": "more PGD iterations and restarts do not give a higher accuracy than PGD",
    "single_step": "single-step FGSM is not stronger than iterative PGD",
    "black_box": "black-box Square is not stronger than white-box PGD",
    "large_eps": "accuracy goes to about 0 under PGD at a very large eps",
    "transfer": "PGD transferred from another model is not stronger than white-box PGD",
}


@dataclass
class GradientMaskingCheck:
    """One check of the gradient-masking checklist.

    :param name: Key of :data:`CHECKS`.
    :param description: What the check verifies.
    :param flagged: ``True`` when the check failed (a sign of gradient masking), ``False`` when it passed,
        ``None`` when it was not run.
    :param evidence: The accuracies the verdict rests on.
    """

    name: str
    description: str
    flagged: bool | None
    evidence: dict[str, Any] = field(default_factory=dict)


def run_checklist(
    classifier: Any,
    x: np.ndarray,
    onehot: np.ndarray,
    labels: np.ndarray,
    p: dict[str, Any],
    correct: dict[tuple[str, float], np.ndarray],
    transfer_from: Any,
    bar: Any,
    seconds: dict[str, float],
) -> list[GradientMaskingCheck]:
    """Run the five checks at ``p["check_eps"]``, reusing attack runs of the report where they exist.

    :func:`~art_sgt.evaluation.robustness.robustness_report` calls this after its attacks, with its inputs
    already validated.

    :param classifier: The ART classifier under test.
    :param x: Inputs, float32.
    :param onehot: One-hot labels of ``x``.
    :param labels: Class indices of ``x``.
    :param p: The report's parameters: ``check_eps``, ``tolerance``, ``norm``, ``batch_size``, ``seed``,
        ``large_eps``, ``strong_factor`` and the attacks' iterations and restarts.
    :param correct: Per-sample correctness already computed, by ``(attack, eps)``; PGD and Square are reused.
    :param transfer_from: A second ART classifier for the ``transfer`` check, or ``None`` (check not run).
    :param bar: A tqdm progress bar, advanced once per check.
    :param seconds: Filled in place with the wall-clock seconds of each check, as ``check_<name>``.
    :return: One :class:`GradientMaskingCheck` per key of :data:`CHECKS`, in that order.
    """
    e, tol, norm, bs = p["check_eps"], p["tolerance"], p["norm"], p["batch_size"]

    def accuracy_of(key: str, make: Any, target: Any = classifier) -> float:
        bar.set_postfix_str(f"check {key}")
        started = time.perf_counter()
        if key in ("pgd", "square") and (key, e) in correct:
            acc = float(correct[(key, e)].mean())
        else:
            attack = make()
            acc = float(run_attack(attack, target, x, onehot, labels, p).mean()) if attack is not None else float("nan")
        seconds[f"check_{key}"] = round(time.perf_counter() - started, 3)
        bar.update()
        return acc

    pgd = accuracy_of("pgd", lambda: build_pgd(classifier, e, norm, p["pgd_max_iter"], p["pgd_restarts"], bs))
    strong_iter, strong_restarts = p["strong_factor"] * p["pgd_max_iter"], p["pgd_restarts"] + 1
    strong = accuracy_of("pgd_strong", lambda: build_pgd(classifier, e, norm, strong_iter, strong_restarts, bs))
    fgsm = accuracy_of("fgsm", lambda: build_fgsm(classifier, e, norm, bs))
    square = float("nan")
    if square_supported(tuple(x.shape[1:]), norm):
        square = accuracy_of("square", lambda: build_attack("square", classifier, e, norm, p))
    else:
        bar.update()
    large = accuracy_of("large_eps", lambda: build_pgd(classifier, p["large_eps"], norm, p["pgd_max_iter"], 1, bs))
    transfer = float("nan")
    if transfer_from is not None:
        source = build_pgd(transfer_from, e, norm, p["pgd_max_iter"], p["pgd_restarts"], bs)
        transfer = accuracy_of("transfer", lambda: source)
    else:
        bar.update()

    def flag(value: float, condition: bool) -> bool | None:
        return None if math.isnan(value) else bool(condition)

    return [
        GradientMaskingCheck(
            "more_iterations",
            CHECKS["more_iterations"],
            flag(strong, strong > pgd + tol),
            {
                "eps": e,
                "pgd": pgd,
                "pgd_strong": strong,
                "strong_iter": strong_iter,
                "strong_restarts": strong_restarts,
            },
        ),
        GradientMaskingCheck(
            "single_step",
            CHECKS["single_step"],
            flag(fgsm, fgsm < pgd - tol),
            {"eps": e, "pgd": pgd, "fgsm": fgsm},
        ),
        GradientMaskingCheck(
            "black_box",
            CHECKS["black_box"],
            flag(square, square < pgd - tol),
            {"eps": e, "pgd": pgd, "square": None if math.isnan(square) else square},
        ),
        GradientMaskingCheck(
            "large_eps",
            CHECKS["large_eps"],
            flag(large, large > tol),
            {"large_eps": p["large_eps"], "pgd": large},
        ),
        GradientMaskingCheck(
            "transfer",
            CHECKS["transfer"],
            flag(transfer, transfer < pgd - tol),
            {"eps": e, "pgd": pgd, "transfer": None if math.isnan(transfer) else transfer},
        ),
    ]
