"""The gradient-masking checklist of the robustness report (Athalye, Carlini and Wagner, ICML 2018, Section 6;
Carlini et al. 2019, "On evaluating adversarial robustness", Section 5).

Every check compares a *challenger* attack with the report's white-box PGD on the same samples. A sound,
converged PGD is at least as strong as FGSM, as a black-box attack, as PGD transferred from another model, and
as itself run longer: a challenger that breaks significantly more samples than PGD shows that PGD's gradients
did not lead it to the adversarial examples that exist (gradient masking or an unconverged attack).

The verdict is an exact one-sided McNemar test on the paired per-sample outcomes: among the *discordant*
samples (broken by one attack only), ``b`` were broken by the challenger alone and ``c`` by PGD alone; under
the null hypothesis "the challenger is not stronger" ``b ~ Binomial(b + c, 1/2)`` at most, and the flag is
raised when ``P(B >= b) < alpha`` (``scipy.stats.binomtest``) and the accuracy drop ``(b - c) / n`` exceeds
``tolerance``. The ``large_eps`` check asks whether PGD over the whole input range leaves significantly more
than :data:`LARGE_EPS_RATE` of the samples correct (exact one-sided binomial test). Every check records ``n``,
the p-value, the counts it rests on, and whether its attack budget was adequate for it to be a real test.

| Paper link: https://arxiv.org/abs/1802.00420, https://arxiv.org/abs/1902.06705
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import binomtest

from art_sgt.evaluation._art_attacks import build_attack, build_fgsm, build_pgd, run_attack, square_supported
from art_sgt.evaluation._steps import AttackSteps

__all__ = ["CHECKS", "LARGE_EPS_RATE", "ADEQUATE", "GradientMaskingCheck", "paired_test", "run_checklist"]

#: The gradient-masking checks, by name, with what each verifies.
CHECKS = {
    "more_iterations": "PGD with more iterations and one more restart does not lower the accuracy further "
    "(the report's PGD had converged)",
    "single_step": "single-step FGSM is not stronger than iterative PGD",
    "black_box": "black-box Square is not stronger than white-box PGD",
    "large_eps": "PGD with an eps covering the whole input range brings the accuracy to 0",
    "transfer": "PGD transferred from another model is not stronger than white-box PGD",
}

#: Largest fraction of samples PGD at ``large_eps`` may leave correct before the ``large_eps`` check may fire.
LARGE_EPS_RATE = 0.01

#: The smallest budgets at which each check is a real test (Carlini et al. 2019; AutoAttack's Square: 5000).
ADEQUATE = {"strong_iter": 100, "strong_restarts": 2, "square_queries": 1000, "large_eps_iter": 50}


@dataclass
class GradientMaskingCheck:
    """One check of the gradient-masking checklist.

    :param name: Key of :data:`CHECKS`.
    :param description: What the check verifies.
    :param flagged: ``True`` when the check failed (a sign of gradient masking), ``False`` when it passed,
        ``None`` when it was not run.
    :param evidence: The accuracies and counts the verdict rests on.
    :param n: Number of samples the test used.
    :param p_value: p-value of the exact one-sided test (``None`` when not run).
    :param budget_adequate: Whether the check's attack budget made it a real test (:data:`ADEQUATE`), ``None``
        when not run.
    """

    name: str
    description: str
    flagged: bool | None
    evidence: dict[str, Any] = field(default_factory=dict)
    n: int = 0
    p_value: float | None = None
    budget_adequate: bool | None = None


def paired_test(
    reference: np.ndarray, challenger: np.ndarray, alpha: float, tolerance: float
) -> tuple[bool, float, dict[str, Any]]:
    """Exact one-sided McNemar test: does ``challenger`` break significantly more samples than ``reference``?

    :param reference: Per-sample correctness under the reference attack (boolean ``(n,)``).
    :param challenger: Per-sample correctness under the challenger on the same samples.
    :param alpha: Significance level.
    :param tolerance: Accuracy drop ``(b - c) / n`` the challenger must also exceed.
    :return: ``(flagged, p_value, counts)`` with ``counts = {"b": ..., "c": ..., "drop": ...}``.

    >>> import numpy as np
    >>> from art_sgt.evaluation.checklist import paired_test
    >>> ref, chal = np.ones(20, bool), np.r_[np.zeros(6, bool), np.ones(14, bool)]
    >>> flagged, p, counts = paired_test(ref, chal, alpha=0.05, tolerance=0.0)
    >>> flagged, round(p, 4), counts["b"], counts["c"]
    (True, 0.0156, 6, 0)
    """
    b = int(np.sum(reference & ~challenger))
    c = int(np.sum(~reference & challenger))
    p_value = float(binomtest(b, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    drop = (b - c) / len(reference)
    return bool(p_value < alpha and drop > tolerance), p_value, {"b": b, "c": c, "drop": drop}


def _large_eps_test(correct: np.ndarray, alpha: float) -> tuple[bool, float, dict[str, Any]]:
    k, n = int(correct.sum()), len(correct)
    p_value = float(binomtest(k, n, LARGE_EPS_RATE, alternative="greater").pvalue)
    return bool(p_value < alpha), p_value, {"correct": k}


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
    notes: list[str] | None = None,
    steps: AttackSteps | None = None,
) -> tuple[list[GradientMaskingCheck], dict[str, np.ndarray]]:
    """Run the five checks at ``p["check_eps"]``, reusing attack runs of the report where they exist.

    :func:`~art_sgt.evaluation.robustness.robustness_report` calls this after its attacks, with its inputs
    already validated.

    :param classifier: The ART classifier under test.
    :param x: Inputs, float32.
    :param onehot: One-hot labels of ``x``.
    :param labels: Class indices of ``x``.
    :param p: The report's parameters: ``check_eps``, ``alpha``, ``tolerance``, ``norm``, ``batch_size``,
        ``seed``, ``large_eps``, ``large_eps_iter``, ``strong_factor`` and the attacks' iterations and restarts.
    :param correct: Per-sample correctness already computed on every clean-correct sample, by ``(attack, eps)``;
        PGD and Square are reused. A cascade's runs cover only the samples the attacks before them left correct,
        so the report passes an empty mapping in a cascade and the checks run their own PGD and Square.
    :param transfer_from: A second ART classifier for the ``transfer`` check, or ``None`` (check not run).
    :param bar: A tqdm progress bar, advanced once per attack run.
    :param seconds: Filled in place with the wall-clock seconds of each check, as ``check_<name>``.
    :param notes: Filled with a line per attack that got no input gradient (see
        :func:`~art_sgt.evaluation._art_attacks.run_attack`).
    :param steps: Keeps each check's attack run, or hands back a kept one (the report's ``resume`` file);
        ``None``: every run is computed.
    :return: One :class:`GradientMaskingCheck` per key of :data:`CHECKS`, in that order, and the per-sample
        correctness of every attack the checks ran at ``check_eps`` (for the report's worst case).
    """
    e, norm, bs = p["check_eps"], p["norm"], p["batch_size"]
    alpha, tol = p["alpha"], p["tolerance"]
    runs: dict[str, np.ndarray] = {}
    notes = [] if notes is None else notes
    steps = AttackSteps(None, "") if steps is None else steps

    def outcome(key: str, make: Any, target: Any = classifier) -> np.ndarray:
        bar.set_postfix_str(f"check {key}")
        reused = correct.get((key, e)) if key in ("pgd", "square") else None
        spent = 0.0
        if reused is None:
            reused, spent = steps.run(
                f"check_{key}", lambda: run_attack(make(), target, x, onehot, labels, p, notes), notes
            )
        runs[key] = reused
        seconds[f"check_{key}"] = round(spent, 3)
        bar.update()
        return runs[key]

    pgd = outcome("pgd", lambda: build_pgd(classifier, e, norm, p["pgd_max_iter"], p["pgd_restarts"], bs))
    strong_iter, strong_restarts = p["strong_factor"] * p["pgd_max_iter"], p["pgd_restarts"] + 1
    strong = outcome("pgd_strong", lambda: build_pgd(classifier, e, norm, strong_iter, strong_restarts, bs))
    fgsm = outcome("fgsm", lambda: build_fgsm(classifier, e, norm, bs))
    square = None
    if square_supported(tuple(x.shape[1:]), norm):
        square = outcome("square", lambda: build_attack("square", classifier, e, norm, p))
    large = outcome("large_eps", lambda: build_pgd(classifier, p["large_eps"], norm, p["large_eps_iter"], 1, bs))
    runs.pop("large_eps")  # at another eps: not part of the worst case at check_eps
    transfer = None
    if transfer_from is not None:
        source = build_pgd(transfer_from, e, norm, p["pgd_max_iter"], p["pgd_restarts"], bs)
        transfer = outcome("transfer", lambda: source)

    n, base = len(x), {"eps": e, "pgd": float(pgd.mean())}

    def paired(name: str, key: str, challenger: np.ndarray | None, adequate: bool, **extra: Any) -> Any:
        if challenger is None:
            return GradientMaskingCheck(name, CHECKS[name], None, {**base, key: None, **extra})
        flagged, p_value, counts = paired_test(pgd, challenger, alpha, tol)
        evidence = {**base, key: float(challenger.mean()), **counts, **extra}
        return GradientMaskingCheck(name, CHECKS[name], flagged, evidence, n, p_value, adequate)

    large_flag, large_p, large_counts = _large_eps_test(large, alpha)
    square_queries = p["square_max_iter"] * p["square_restarts"]
    span_ok = p["large_eps"] >= p.get("large_eps_full", p["large_eps"])
    checks = [
        paired(
            "more_iterations",
            "pgd_strong",
            strong,
            strong_iter >= ADEQUATE["strong_iter"] and strong_restarts >= ADEQUATE["strong_restarts"],
            strong_iter=strong_iter,
            strong_restarts=strong_restarts,
        ),
        paired("single_step", "fgsm", fgsm, True),
        paired("black_box", "square", square, square_queries >= ADEQUATE["square_queries"], queries=square_queries),
        GradientMaskingCheck(
            "large_eps",
            CHECKS["large_eps"],
            large_flag,
            {
                "large_eps": p["large_eps"],
                "iterations": p["large_eps_iter"],
                "pgd": float(large.mean()),
                **large_counts,
            },
            n,
            large_p,
            bool(span_ok and p["large_eps_iter"] >= ADEQUATE["large_eps_iter"]),
        ),
        paired("transfer", "transfer", transfer, transfer is not None),
    ]
    return checks, runs
