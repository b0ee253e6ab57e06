"""Adversarial robustness report built on ART's own attacks, with a gradient-masking checklist.

:func:`robustness_report` runs ART's ``ProjectedGradientDescent``, ``AutoProjectedGradientDescent`` (cross-entropy
and difference-of-logits-ratio losses, untargeted and targeted), ``SquareAttack`` and FAB-T (torchattacks' ``FAB``,
an optional extra) at every ``eps``, and records the per-sample worst case over the attacks (AutoAttack's robust
accuracy: a sample counts as robust only if it is classified correctly clean and under every attack). By default
the attacks run as a cascade, as AutoAttack runs them: in the stated order, each only on the samples every attack
before it left correct, so an attack spends nothing on a sample already broken and the worst case is the same
conjunction; ``mode="independent"`` runs every attack on every clean-correct sample instead and records each
attack's own accuracy. It then runs the checks of Athalye, Carlini and Wagner (ICML 2018, Section 6) that reveal
gradient masking, each raising a flag when it fails:

- ``more_iterations``: PGD with more iterations and restarts must not give a *lower* accuracy than PGD (else the
  report's PGD had not converged);
- ``single_step``: single-step FGSM must not be stronger than iterative PGD;
- ``black_box``: black-box Square must not be stronger than white-box PGD;
- ``large_eps``: PGD with an ``eps`` covering the whole input range must bring the accuracy to 0;
- ``transfer``: PGD transferred from another model must not be stronger than white-box PGD (only when
  ``transfer_from`` is given).

Each check is decided by an exact one-sided test on the paired per-sample outcomes, reported with its ``n`` and
p-value (see :mod:`~art_sgt.evaluation.checklist`). The attack budget is a preset of :data:`BUDGETS`.

As in AutoAttack, every attack is run only on the samples of ``x`` the model classifies correctly (in a cascade,
only on those the attacks before it left correct; APGD-T's run for each target only on those that survived the
targets before it), with numpy's and torch's global generators seeded to ``seed`` just before, so any number in
the report equals the same ART attack run by hand on those samples after ``np.random.seed(seed)`` and
``torch.manual_seed(seed)``. ART's APGD runs on the classifier's device (:mod:`art_sgt.apgd`), its random starts
still ART's draws and its iterates ART's to float rounding; it returns any adversarial iterate it met, as the
original APGD does, where ART keeps only the last.

| Paper link: https://arxiv.org/abs/1802.00420 (Athalye et al.), https://arxiv.org/abs/2003.01690 (AutoAttack)
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from art_sgt._art import require_pytorch_classifier
from art_sgt._validation import (
    check_array,
    check_choice,
    check_finite,
    check_fraction,
    check_labels,
    check_non_negative,
    check_positive_int,
    preserved_modes,
)
from art_sgt.evaluation._art_attacks import (
    FAB_MISSING,
    SQUARE_MIN_SIDE,
    SQUARE_NORMS,
    build_attack,
    correct_mask,
    fab_available,
    run_attack,
    square_supported,
)
from art_sgt.evaluation.checklist import GradientMaskingCheck, run_checklist

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

__all__ = [
    "ATTACKS",
    "BUDGETS",
    "MODES",
    "PRESET_ATTACKS",
    "RobustnessReport",
    "robustness_report",
    "plot_robustness",
]

#: Attack names accepted by :func:`robustness_report`: PGD, APGD with the cross-entropy and the DLR loss, APGD-T
#: (targeted APGD with the DLR loss against the ``apgd_targets`` most likely other classes, as in AutoAttack),
#: FAB-T (torchattacks' multi-targeted FAB against as many targets; needs ``pip install art-sgt[autoattack]``)
#: and Square.
ATTACKS = ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square")

#: The attacks each budget preset runs by default, in the order a cascade runs them. ``"autoattack"`` is
#: AutoAttack's standard version: APGD-CE, APGD-T, FAB-T, Square (without torchattacks installed, FAB-T is skipped
#: and the report's notes say so).
PRESET_ATTACKS: dict[str, tuple[str, ...]] = {
    "quick": ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square"),
    "standard": ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square"),
    "autoattack": ("apgd-ce", "apgd-t", "fab-t", "square"),
}

#: How :func:`robustness_report` runs its attacks: ``"cascade"`` (each on the samples still correct after the
#: attacks before it, as AutoAttack) or ``"independent"`` (each on every clean-correct sample).
MODES = ("cascade", "independent")

#: Attack budgets of :func:`robustness_report`, by preset name. ``"quick"`` is for smoke runs only (its
#: checks are not all real tests); ``"standard"`` follows Carlini et al. 2019 (PGD 50 steps with 2 restarts,
#: APGD 100 steps, Square 5000 queries); ``"autoattack"`` matches AutoAttack's standard version (APGD and FAB 100
#: steps, 9 targets, Square 5000 queries) and gives its checklist PGD 100 steps with 5 restarts.
BUDGETS: dict[str, dict[str, int]] = {
    "quick": {
        "pgd_max_iter": 20, "pgd_restarts": 1, "apgd_max_iter": 25, "apgd_restarts": 1, "apgd_targets": 3,
        "fab_max_iter": 25, "square_max_iter": 1000, "square_restarts": 1, "strong_factor": 4, "large_eps_iter": 50,
    },
    "standard": {
        "pgd_max_iter": 50, "pgd_restarts": 2, "apgd_max_iter": 100, "apgd_restarts": 1, "apgd_targets": 3,
        "fab_max_iter": 100, "square_max_iter": 5000, "square_restarts": 1, "strong_factor": 4, "large_eps_iter": 100,
    },
    "autoattack": {
        "pgd_max_iter": 100, "pgd_restarts": 5, "apgd_max_iter": 100, "apgd_restarts": 1, "apgd_targets": 9,
        "fab_max_iter": 100, "square_max_iter": 5000, "square_restarts": 1, "strong_factor": 2, "large_eps_iter": 100,
    },
}  # fmt: skip


@dataclass
class RobustnessReport:
    """Accuracy per attack and ``eps``, the per-sample worst case, and the gradient-masking checklist.

    :param eps: Attack strengths, in the order given.
    :param norm: The norm, ``"inf"``, ``"2"`` or ``"1"``.
    :param attacks: Attack names (see :data:`ATTACKS`).
    :param n_samples: Number of samples attacked.
    :param clean_accuracy: Accuracy on ``x``.
    :param accuracy: ``{attack: [robust accuracy at each eps]}``: the fraction of samples correct clean and under
        the attack (only the samples correct clean are attacked, as in AutoAttack); in a cascade
        (``params["mode"]``), correct under the attack and every attack before it, so the last equals the worst
        case over the attacks.
    :param worst_case: Per ``eps``, the fraction of samples correct clean and under every attack.
    :param checklist: The checks (see :data:`~art_sgt.evaluation.checklist.CHECKS`).
    :param params: The attack parameters used: the ``budget`` preset, every attack's iterations, queries and
        restarts, ``cost`` (an upper bound on the model evaluations each attack may spend), the checks' ``alpha``
        and ``tolerance``, and ``worst_case_attacks`` (per ``eps``, the attacks its worst case covers).
    :param seconds: Wall-clock seconds per attack (summed over ``eps``) and per check.
    :param notes: Warnings about the run, e.g. an attack that got no input gradient from the model.
    :param worst_case_correct: Per ``eps``, the per-sample outcomes behind :attr:`worst_case` (``True``: correct
        clean and under every attack), for paired tests between models on the same samples.
    """

    eps: list[float]
    norm: str
    attacks: list[str]
    n_samples: int
    clean_accuracy: float
    accuracy: dict[str, list[float]]
    worst_case: list[float]
    checklist: list[GradientMaskingCheck]
    params: dict[str, Any]
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)
    worst_case_correct: list[list[bool]] = field(default_factory=list)

    @property
    def gradient_masking(self) -> bool:
        """Whether any check of the checklist raised its flag."""
        return any(check.flagged for check in self.checklist)

    @property
    def flags(self) -> list[str]:
        """Names of the checks that raised their flag."""
        return [check.name for check in self.checklist if check.flagged]

    def accuracy_at(self, eps: float, attack: str = "worst_case") -> float:
        """Accuracy at one of the report's ``eps`` under one attack, or the worst case.

        :param eps: One of :attr:`eps`.
        :param attack: An attack of :attr:`attacks` or ``"worst_case"``.
        :return: The accuracy.
        :raises ValueError: If ``eps`` or ``attack`` is not in the report.
        """
        matches = [i for i, e in enumerate(self.eps) if math.isclose(e, float(eps), rel_tol=1e-9, abs_tol=1e-12)]
        if not matches:
            raise ValueError(f"eps must be one of {self.eps}, got {eps!r}.")
        if attack == "worst_case":
            return self.worst_case[matches[0]]
        if attack not in self.accuracy:
            raise ValueError(f"attack must be one of {[*self.accuracy, 'worst_case']}, got {attack!r}.")
        return self.accuracy[attack][matches[0]]

    def table(self) -> str:
        """A one-screen summary: accuracy per attack and ``eps``, the worst case, and every check's verdict with
        its evidence (``n``, p-value, the accuracies compared, whether its budget was adequate).

        :return: The table as text.
        """
        width = max(12, *(len(name) for name in self.accuracy))
        head = f"{'attack':<{width}}" + "".join(f"{f'eps {e:g}':>11}" for e in self.eps)
        rows = [
            f"robustness: n={self.n_samples}, norm L{'-inf' if self.norm == 'inf' else self.norm}, "
            f"budget {self.params.get('budget', '?')}, clean accuracy {self.clean_accuracy:.4f}",
            *(
                ["cascade: each row is the accuracy under its attack and every attack above it"]
                if self.params.get("mode") == "cascade"
                else []
            ),  # fmt: skip
            head,
            "-" * len(head),
        ]
        for name, values in {**self.accuracy, "worst case": self.worst_case}.items():
            rows.append(f"{name:<{width}}" + "".join(f"{v:>11.4f}" for v in values))
        if self.checklist:
            rows.append(f"gradient-masking checks (exact one-sided tests, alpha {self.params.get('alpha')}):")
        for check in self.checklist:
            verdict = {True: "FLAG", False: "ok", None: "not run"}[check.flagged]
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in check.evidence.items()}
            p_value = "" if check.p_value is None else f" n={check.n} p={check.p_value:.3g}"
            budget = {True: "", False: " [budget too small to be a real test]", None: ""}[check.budget_adequate]
            rows.append(f"  {check.name:<16}{verdict:<8}{p_value}{budget} {shown}")
        rows.extend(f"note: {note}" for note in self.notes)
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python types, with ``gradient_masking`` and ``flags`` added.

        :return: A JSON-serialisable dictionary.
        """
        return {**asdict(self), "gradient_masking": self.gradient_masking, "flags": self.flags}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RobustnessReport:
        """The report back from :meth:`to_dict` (e.g. read from JSON).

        :param data: The dictionary.
        :return: The report.
        """
        fields = {k: v for k, v in data.items() if k not in ("gradient_masking", "flags")}
        fields["checklist"] = [GradientMaskingCheck(**check) for check in fields.get("checklist", [])]
        return cls(**fields)

    @classmethod
    def concatenate(cls, reports: Sequence[RobustnessReport]) -> RobustnessReport:
        """One report from reports of the same model, samples and budget at different ``eps``.

        Every attack is seeded alike before each run, so the reports of ``robustness_report`` called once per
        ``eps`` (the checklist in at most one of the calls) concatenate to the report of a single call over all of
        them, except for the ``seconds`` measured; this lets a long evaluation be kept and resumed ``eps`` by ``eps``.

        :param reports: The reports, in the order their ``eps`` should appear.
        :return: The concatenated report (``seconds`` and the ``cost`` bounds are summed per key).
        :raises ValueError: If ``reports`` is empty, if they differ in norm, attacks, samples, clean accuracy or
            budget, if an ``eps`` appears twice, or if more than one holds a checklist.
        """
        reports = list(reports)
        if not reports:
            raise ValueError("reports must hold at least one RobustnessReport, got an empty sequence.")
        per_eps = ("cost", "worst_case_attacks", "check_eps", "large_eps", "large_eps_full")
        first = reports[0]
        for other in reports[1:]:
            same = (other.norm, other.attacks, other.n_samples, other.clean_accuracy) == (
                first.norm, first.attacks, first.n_samples, first.clean_accuracy)  # fmt: skip
            budget = {k: v for k, v in other.params.items() if k not in per_eps}
            if not same or budget != {k: v for k, v in first.params.items() if k not in per_eps}:
                raise ValueError("reports must share norm, attacks, samples, clean accuracy and budget.")
        eps = [e for r in reports for e in r.eps]
        if any(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for i, a in enumerate(eps) for b in eps[i + 1 :]):
            raise ValueError(f"reports must be at different eps, got {eps}.")
        checked = [r for r in reports if r.checklist]
        if len(checked) > 1:
            raise ValueError(f"at most one of reports may hold a checklist, got {len(checked)}.")
        base = checked[0] if checked else first

        def summed(maps: list[Mapping[str, float]]) -> dict[str, Any]:
            return {k: sum(m.get(k, 0) for m in maps) for k in dict.fromkeys(k for m in maps for k in m)}

        params = {
            **base.params,
            "cost": summed([r.params.get("cost", {}) for r in reports]),
            "worst_case_attacks": [a for r in reports for a in r.params.get("worst_case_attacks", [])],
        }
        return cls(
            eps=eps,
            norm=first.norm,
            attacks=list(first.attacks),
            n_samples=first.n_samples,
            clean_accuracy=first.clean_accuracy,
            accuracy={name: [a for r in reports for a in r.accuracy[name]] for name in first.accuracy},
            worst_case=[w for r in reports for w in r.worst_case],
            checklist=list(base.checklist),
            params=params,
            seconds={k: round(v, 3) for k, v in summed([r.seconds for r in reports]).items()},
            notes=list(dict.fromkeys(n for r in reports for n in r.notes)),
            worst_case_correct=[w for r in reports for w in r.worst_case_correct],
        )


def _check_eps(eps: Any, norm: str, clip_values: Any) -> list[float]:
    values = [eps] if isinstance(eps, numbers.Real) else eps
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"eps must be a real number or a non-empty sequence of them, got {eps!r}.")
    out = [check_non_negative("eps", e) for e in values]
    if clip_values is not None and norm == "inf":
        span = float(np.max(clip_values[1]) - np.min(clip_values[0]))
        too_big = [e for e in out if e > span]
        if too_big:
            raise ValueError(
                f"eps must not exceed the classifier's clip range {span:g} under the L-inf norm, got {too_big[0]!r}."
            )
    return out


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 0, got {value!r}.")
    if value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}.")
    return int(value)


def _check_norm(norm: Any) -> str:
    if isinstance(norm, str):
        key = {"inf": "inf", "np.inf": "inf", "1": "1", "2": "2"}.get(norm)
    elif isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        key = {math.inf: "inf", 1.0: "1", 2.0: "2"}.get(float(norm))
    else:
        key = None
    if key is None:
        raise ValueError(f"norm must be one of 'inf', 2 or 1, got {norm!r}.")
    return key


def _check_attacks(attacks: Any, norm: str, budget: Any, clip_values: Any, notes: list[str]) -> list[str]:
    """The attack names, checked; ``None``: the preset's, without FAB-T (and a note saying so) where it cannot run."""
    preset = attacks is None
    if preset:
        attacks = PRESET_ATTACKS.get(budget, PRESET_ATTACKS["standard"]) if isinstance(budget, str) else ()
    names = [attacks] if isinstance(attacks, str) else list(attacks)
    if not names:
        raise ValueError("attacks must name at least one attack, got an empty sequence.")
    for name in names:
        if name not in ATTACKS:
            raise ValueError(f"attacks must hold names from {', '.join(map(repr, ATTACKS))}, got {name!r}.")
    if len(set(names)) != len(names):
        raise ValueError(f"attacks must not repeat a name, got {names}.")
    if "square" in names and norm not in SQUARE_NORMS:
        raise ValueError(f"norm must be 'inf' or 2 when attacks include 'square' (ART's SquareAttack), got {norm!r}.")
    if "fab-t" in names:
        unit = clip_values is not None and np.all(np.asarray(clip_values[0]) == 0) and np.all(
            np.asarray(clip_values[1]) == 1)  # fmt: skip
        reason = (
            FAB_MISSING if not fab_available()
            else "FAB-T (torchattacks) needs inputs in [0, 1]: classifier clip_values must be (0, 1)" if not unit
            else "FAB-T runs under the L-inf and L2 norms only" if norm not in SQUARE_NORMS
            else None
        )  # fmt: skip
        if reason is not None and not preset:
            raise (ImportError if reason == FAB_MISSING else ValueError)(
                f"attacks must not include 'fab-t' here: {reason}."
            )
        if reason is not None:
            names.remove("fab-t")
            notes.append(f"fab-t skipped, the worst case is over {', '.join(names)} only: {reason}.")
            warnings.warn(notes[-1], stacklevel=3)
    return names


def _resolve_budget(budget: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset ``budget`` with the explicitly given (not ``None``) parameters laid over it, all checked."""
    if not isinstance(budget, str) or budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(map(repr, BUDGETS))}, got {budget!r}.")
    merged = {**BUDGETS[budget], **{k: v for k, v in overrides.items() if v is not None}}
    out = {k: check_positive_int(k, v) for k, v in merged.items() if k != "pgd_restarts"}
    out["pgd_restarts"] = _check_count("pgd_restarts", merged["pgd_restarts"])
    if out["strong_factor"] < 2:
        raise ValueError(f"strong_factor must be an integer >= 2, got {merged['strong_factor']!r}.")
    return out


def _costs(p: dict[str, Any], n: int, n_eps: int, names: Sequence[str], checklist: bool) -> dict[str, int]:
    """Upper bounds on the model evaluations (forward, or forward + backward) each attack may spend on ``x``."""
    runs = {
        "pgd": p["pgd_max_iter"] * max(1, p["pgd_restarts"]),
        "apgd-ce": p["apgd_max_iter"] * p["apgd_restarts"],
        "apgd-dlr": p["apgd_max_iter"] * p["apgd_restarts"],
        "apgd-t": p["apgd_max_iter"] * p["apgd_restarts"] * p["apgd_targets"],
        "fab-t": 2 * p["fab_max_iter"] * p["apgd_targets"],  # a forward and backward, and a forward, per step
        "square": p["square_max_iter"] * p["square_restarts"],
    }
    cost = {name: runs[name] * n * n_eps for name in names}
    if checklist:
        cost["check_pgd_strong"] = p["strong_factor"] * p["pgd_max_iter"] * (p["pgd_restarts"] + 1) * n
        cost["check_fgsm"] = n
        cost["check_large_eps"] = p["large_eps_iter"] * n
        cost["check_square"] = runs["square"] * n
    return cost


def robustness_report(
    classifier: PyTorchClassifier,
    x: np.ndarray,
    y: np.ndarray,
    eps: Sequence[float] | float = (0.1, 0.2, 0.3),
    norm: str | int | float = "inf",
    attacks: Sequence[str] | None = None,
    budget: str = "standard",
    mode: str = "cascade",
    pgd_max_iter: int | None = None,
    pgd_restarts: int | None = None,
    apgd_max_iter: int | None = None,
    apgd_restarts: int | None = None,
    apgd_targets: int | None = None,
    fab_max_iter: int | None = None,
    square_max_iter: int | None = None,
    square_restarts: int | None = None,
    checklist: bool = True,
    check_eps: float | None = None,
    strong_factor: int | None = None,
    large_eps: float | None = None,
    large_eps_iter: int | None = None,
    transfer_from: PyTorchClassifier | None = None,
    alpha: float = 0.05,
    tolerance: float = 0.0,
    batch_size: int = 128,
    seed: int = 0,
    verbose: bool = True,
) -> RobustnessReport:
    """Accuracy of ``classifier`` under ART's attacks at every ``eps``, the worst case, and the checklist.

    The attack budget comes from the preset ``budget`` (:data:`BUDGETS`); any budget parameter given
    explicitly overrides its preset value. With ``mode="cascade"`` the attacks run in the order of ``attacks``, each
    only on the samples all attacks before it left correct (AutoAttack's protocol, and its cost), and
    :attr:`RobustnessReport.accuracy` holds the accuracy after each attack and those before it; with
    ``mode="independent"`` each attack runs on every clean-correct sample and the accuracy is its own. The worst
    case is the same conjunction either way (for attacks whose outcome on a sample does not depend on which other
    samples share its batch, exactly the same). PGD takes ``pgd_max_iter`` steps of ``2.5 eps / pgd_max_iter``
    (Madry et al.) from ``pgd_restarts`` random starts (0: from ``x``); APGD starts with step ``2 eps`` (Croce
    and Hein); Square spends ``square_max_iter`` queries per restart. The checklist
    (:mod:`~art_sgt.evaluation.checklist`) runs at ``check_eps``: PGD with ``strong_factor`` times the
    iterations and one more restart; FGSM (one step of ``eps``); Square (reused from the attacks when run
    independently, else run on every clean-correct sample: a paired test needs both attacks on the same samples);
    PGD at ``large_eps`` with ``large_eps_iter`` steps; and, given ``transfer_from``, PGD crafted on that model and
    evaluated on ``classifier``. Each check is decided by an exact one-sided test at level ``alpha``
    on the paired per-sample outcomes (its ``n`` and p-value are recorded beside the verdict).

    The worst case at an ``eps`` counts a sample as robust only if it is classified correctly clean and under
    every attack run at that ``eps``, the checklist's attacks at ``check_eps`` included.

    :param classifier: An ART ``PyTorchClassifier`` returning logits.
    :param x: Inputs ``(n, *input_shape)`` within the classifier's ``clip_values``. Not modified.
    :param y: True labels, indices ``(n,)`` or one-hot ``(n, nb_classes)``.
    :param eps: Attack strength(s), each ``>= 0`` (``0`` is the clean accuracy).
    :param norm: ``"inf"`` (or ``np.inf``), ``2`` or ``1``; Square supports only ``"inf"`` and ``2``.
    :param attacks: Names from :data:`ATTACKS`, in the order a cascade runs them; ``None``: the preset's
        (:data:`PRESET_ATTACKS`).
    :param budget: ``"quick"``, ``"standard"`` (default) or ``"autoattack"`` (see :data:`BUDGETS`).
    :param mode: ``"cascade"`` (default) or ``"independent"`` (see above).
    :param pgd_max_iter: PGD iterations (``None``: the preset's).
    :param pgd_restarts: PGD random restarts (ART's ``num_random_init``), >= 0.
    :param apgd_max_iter: APGD iterations.
    :param apgd_restarts: APGD restarts (ART's ``nb_random_init``).
    :param apgd_targets: Target classes of APGD-T per sample: the most likely classes other than the label
        (at most ``nb_classes - 1``); AutoAttack uses 9. FAB-T uses as many.
    :param fab_max_iter: FAB-T steps per target.
    :param square_max_iter: Square queries per restart.
    :param square_restarts: Square restarts.
    :param checklist: Whether to run the gradient-masking checklist.
    :param check_eps: ``eps`` of the checks; ``None``: the median of ``eps`` (the larger middle one).
    :param strong_factor: Iteration multiplier of the stronger PGD of the ``more_iterations`` check, >= 2.
    :param large_eps: ``eps`` of the ``large_eps`` check; ``None``: the whole clip range under L-inf (any input
        can then reach any other), the diameter of the input box under L2 and L1, and ``10 * max(eps)`` without
        clip values.
    :param large_eps_iter: PGD iterations of the ``large_eps`` check.
    :param transfer_from: A second ART classifier for the ``transfer`` check (best an adversarially trained
        one: its adversarial examples transfer better), or ``None``.
    :param alpha: Significance level of the checks' exact tests, in (0, 1).
    :param tolerance: Accuracy drop a paired check must also exceed to fire, in [0, 1).
    :param batch_size: Batch size of the attacks and predictions.
    :param seed: Seed of numpy's and torch's global generators, set before every attack.
    :param verbose: Show a progress bar over the attack runs, and print :meth:`RobustnessReport.table` at the end.
    :return: The report.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or an argument has the wrong type.
    :raises ImportError: If ``attacks`` names ``fab-t`` and torchattacks is not installed.
    :raises ValueError: For a negative ``eps`` (or one beyond the clip range under L-inf), an unknown attack,
        norm or budget, ``apgd-dlr`` or ``apgd-t`` on fewer than 3 classes, a norm an attack does not support,
        ``square`` on images smaller than ART's SquareAttack accepts (5x5 under L-inf, 6x6 under L2; the
        checklist then skips ``black_box``), labels or inputs of the wrong shape, or a ``transfer_from`` model of
        another input shape, or ``fab-t`` with ``clip_values`` other than ``(0, 1)``.

    >>> import numpy as np, torch
    >>> from art.estimators.classification import PyTorchClassifier
    >>> _ = torch.manual_seed(0)
    >>> classifier = PyTorchClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)),
    ...     loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=3, clip_values=(0.0, 1.0))
    >>> x = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    >>> y = classifier.predict(x).argmax(1)  # labels the model gets right
    >>> report = robustness_report(classifier, x, y, eps=(0.05, 0.5), budget="quick", square_max_iter=20,
    ...     verbose=False)
    >>> report.clean_accuracy, report.accuracy_at(0.5)  # an undefended model loses everything at eps 0.5
    (1.0, 0.0)
    >>> [check.name for check in report.checklist], report.gradient_masking
    (['more_iterations', 'single_step', 'black_box', 'large_eps', 'transfer'], False)
    """
    require_pytorch_classifier("classifier", classifier)
    norm = _check_norm(norm)
    eps_list = _check_eps(eps, norm, classifier.clip_values)
    mode = check_choice("mode", mode, MODES)
    notes: list[str] = []
    names = _check_attacks(attacks, norm, budget, classifier.clip_values, notes)
    for dlr in ("apgd-dlr", "apgd-t"):
        if dlr in names and classifier.nb_classes < 3:
            raise ValueError(
                f"attacks must not include {dlr!r} for a classifier of {classifier.nb_classes} classes: the DLR "
                "loss needs at least 3."
            )
    check_array("x", x, min_ndim=2)
    check_finite("x", x)
    if tuple(x.shape[1:]) != tuple(classifier.input_shape):
        raise ValueError(f"x must have shape (n, *{tuple(classifier.input_shape)}), got {x.shape}.")
    if "square" in names and not square_supported(tuple(x.shape[1:]), norm):
        raise ValueError(
            f"attacks must not include 'square' for inputs of shape {tuple(x.shape[1:])}: ART's SquareAttack needs "
            f"images (c, h, w) of at least {SQUARE_MIN_SIDE[norm]}x{SQUARE_MIN_SIDE[norm]} pixels under this norm."
        )
    labels = check_labels("y", y, classifier.nb_classes)
    if len(labels) != len(x):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(labels)}.")
    p: dict[str, Any] = _resolve_budget(
        budget,
        {
            "pgd_max_iter": pgd_max_iter,
            "pgd_restarts": pgd_restarts,
            "apgd_max_iter": apgd_max_iter,
            "apgd_restarts": apgd_restarts,
            "apgd_targets": apgd_targets,
            "fab_max_iter": fab_max_iter,
            "square_max_iter": square_max_iter,
            "square_restarts": square_restarts,
            "strong_factor": strong_factor,
            "large_eps_iter": large_eps_iter,
        },
    )
    p.update(
        budget=budget,
        mode=mode,
        batch_size=check_positive_int("batch_size", batch_size),
        seed=_check_count("seed", seed),
        alpha=check_fraction("alpha", alpha),
        tolerance=check_fraction("tolerance", tolerance, low_inclusive=True),
    )
    positive = sorted(e for e in eps_list if e > 0)
    if check_eps is None:
        check_eps = positive[len(positive) // 2] if positive else None
    elif check_non_negative("check_eps", check_eps) == 0:
        raise ValueError(f"check_eps must be a real number > 0, got {check_eps!r}.")
    if checklist and check_eps is None:
        raise ValueError("eps must hold a value > 0 for the checklist, or pass check_eps (or checklist=False).")
    full = _full_range_eps(classifier.clip_values, norm, int(np.prod(x.shape[1:])))
    if large_eps is None:
        large_eps = full if full is not None else 10.0 * max(eps_list + [0.1])
    large_eps = _check_eps(large_eps, norm, classifier.clip_values)[0]
    if transfer_from is not None:
        require_pytorch_classifier("transfer_from", transfer_from)
        if tuple(transfer_from.input_shape) != tuple(classifier.input_shape):
            raise ValueError(
                f"transfer_from must take inputs of shape {tuple(classifier.input_shape)} like classifier, "
                f"got {tuple(transfer_from.input_shape)}."
            )
    p.update(norm=norm, check_eps=check_eps, large_eps=large_eps, large_eps_full=full if full else large_eps)
    p["cost"] = _costs(p, len(x), sum(e > 0 for e in eps_list), names, checklist)

    onehot = np.eye(classifier.nb_classes, dtype=np.float32)[labels]
    x = x.astype(np.float32, copy=False)
    # ART's predict and attacks leave a model in eval mode; the user's models get their own modes back
    with contextlib.ExitStack() as modes:
        for model in (classifier.model, *([] if transfer_from is None else [transfer_from.model])):
            modes.enter_context(preserved_modes(model))
        clean = correct_mask(classifier, x, labels, p["batch_size"])
        jobs = [(name, e) for name in names for e in eps_list]
        seconds: dict[str, float] = dict.fromkeys(names, 0.0)
        correct: dict[tuple[str, float], np.ndarray] = {}
        bar = tqdm(total=len(jobs) + (6 if checklist else 0), desc="robustness", disable=not verbose)
        still = {e: clean.copy() for e in eps_list}  # the cascade's survivors at each eps
        for name, e in jobs:
            bar.set_postfix_str(f"{name} eps={e:g}")
            started = time.perf_counter()
            attack = None if e == 0 else build_attack(name, classifier, e, norm, p)
            if mode == "independent":
                correct[(name, e)] = run_attack(attack, classifier, x, onehot, labels, p, notes)
            else:
                sub = np.flatnonzero(still[e])
                if attack is not None and sub.size:
                    still[e][sub] = run_attack(attack, classifier, x[sub], onehot[sub], labels[sub], p, notes)
                correct[(name, e)] = still[e].copy()
            seconds[name] += time.perf_counter() - started
            bar.update()
        accuracy = {name: [float(correct[(name, e)].mean()) for e in eps_list] for name in names}

        checks: list[GradientMaskingCheck] = []
        check_runs: dict[str, np.ndarray] = {}
        if checklist:
            # a paired check needs PGD and its challenger on the same samples: a cascade's runs are not reused
            reusable = correct if mode == "independent" else {}
            checks, check_runs = run_checklist(
                classifier, x, onehot, labels, p, reusable, transfer_from, bar, seconds, notes
            )
        bar.close()
    worst, worst_attacks = [], []
    for e in eps_list:
        runs = {name: correct[(name, e)] for name in names}
        if checklist and math.isclose(e, check_eps, rel_tol=1e-9, abs_tol=1e-12):
            runs.update({f"check_{key}": value for key, value in check_runs.items() if key not in names})
        worst.append(np.logical_and.reduce([clean, *runs.values()]))
        worst_attacks.append(sorted(runs))
    p["worst_case_attacks"] = worst_attacks
    report = RobustnessReport(
        eps=eps_list,
        norm=norm,
        attacks=names,
        n_samples=len(x),
        clean_accuracy=float(clean.mean()),
        accuracy=accuracy,
        worst_case=[float(w.mean()) for w in worst],
        checklist=checks,
        params=p,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        notes=list(dict.fromkeys(notes)),
        worst_case_correct=[[bool(c) for c in w] for w in worst],
    )
    if verbose:
        print(report.table())
    return report


def _full_range_eps(clip_values: Any, norm: str, dim: int) -> float | None:
    """The smallest ``eps`` under ``norm`` whose ball around any input covers the whole input box."""
    if clip_values is None:
        return None
    span = float(np.max(clip_values[1]) - np.min(clip_values[0]))
    return span if norm == "inf" else span * math.sqrt(dim) if norm == "2" else span * dim


def plot_robustness(
    reports: RobustnessReport | Mapping[str, RobustnessReport],
    path: str | Path | None = None,
) -> Any:
    """Accuracy vs ``eps``: one panel per report (model), one line per attack, the worst case dashed, clean a star.

    :param reports: A report, or ``{title: report}``.
    :param path: Save the figure here (folders are created).
    :return: The ``matplotlib`` figure.
    :raises TypeError: If ``reports`` holds something other than :class:`RobustnessReport` objects.
    """
    import matplotlib.pyplot as plt

    panels = {"": reports} if isinstance(reports, RobustnessReport) else dict(reports)
    if not panels or not all(isinstance(r, RobustnessReport) for r in panels.values()):
        raise TypeError("reports must be a RobustnessReport or a non-empty mapping {title: RobustnessReport}.")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.4), squeeze=False, sharey=True)
    for ax, (title, report) in zip(axes[0], panels.items()):
        for k, (name, values) in enumerate(report.accuracy.items()):
            ax.plot(report.eps, values, marker="o", color=f"C{k}", label=name)
        ax.plot(report.eps, report.worst_case, "k--", marker="s", label="worst case")
        ax.plot([0.0], [report.clean_accuracy], "k*", markersize=9, label="clean")
        flags = ", ".join(report.flags) or "none"
        ax.set_title(f"{title}\nmasking flags: {flags}" if title else f"masking flags: {flags}", fontsize=9)
        ax.set_xlabel(f"eps (L{'-inf' if report.norm == 'inf' else report.norm})")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
