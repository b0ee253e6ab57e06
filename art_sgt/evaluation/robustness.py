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
p-value (see :mod:`~art_sgt.evaluation.checklist`). What the attacks may spend, and which run by default, is an
:class:`~art_sgt.evaluation.budget.AttackBudget` (or the name of one of its presets).

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
import os
import warnings
from collections.abc import Sequence
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
    check_non_negative_int,
    check_norm,
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
from art_sgt.evaluation._steps import AttackSteps, fingerprint, model_digest
from art_sgt.evaluation.budget import PRESETS, AttackBudget
from art_sgt.evaluation.checklist import GradientMaskingCheck, run_checklist
from art_sgt.evaluation.report import RobustnessReport

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

__all__ = ["MODES", "robustness_report"]

#: How :func:`robustness_report` runs its attacks: ``"cascade"`` (each on the samples still correct after the
#: attacks before it, as AutoAttack) or ``"independent"`` (each on every clean-correct sample).
MODES = ("cascade", "independent")


def robustness_report(
    classifier: PyTorchClassifier,
    x: np.ndarray,
    y: np.ndarray,
    eps: Sequence[float] | float = (0.1, 0.2, 0.3),
    norm: str | int | float = "inf",
    attacks: Sequence[str] | str | None = None,
    budget: str | AttackBudget = "standard",
    mode: str = "cascade",
    checklist: bool = True,
    check_eps: float | None = None,
    large_eps: float | None = None,
    transfer_from: PyTorchClassifier | None = None,
    alpha: float = 0.05,
    tolerance: float = 0.0,
    batch_size: int = 128,
    seed: int = 0,
    resume: str | os.PathLike | None = None,
    verbose: bool = True,
) -> RobustnessReport:
    """Accuracy of ``classifier`` under ART's attacks at every ``eps``, the worst case, and the checklist.

    What every attack may spend comes from ``budget``, an :class:`~art_sgt.evaluation.budget.AttackBudget` or the
    name of a preset (``AttackBudget.preset("standard").replace(apgd_max_iter=50)`` changes one field of a preset).
    With ``mode="cascade"`` the attacks run in the order of ``attacks``, each only on the samples all attacks before
    it left correct (AutoAttack's protocol, and its cost), and the report's
    :attr:`~art_sgt.evaluation.report.RobustnessReport.accuracy` holds the accuracy after each attack and those
    before it; with ``mode="independent"`` each attack runs on every clean-correct sample and the accuracy is its
    own. The worst case is the same conjunction either way (for attacks whose outcome
    on a sample does not depend on which other samples share its batch, exactly the same). PGD takes
    ``budget.pgd_max_iter`` steps of ``2.5 eps / pgd_max_iter`` (Madry et al.) from ``budget.pgd_restarts`` random
    starts (0: from ``x``); APGD starts with step ``2 eps`` (Croce and Hein); Square spends
    ``budget.square_max_iter`` queries per restart. The checklist (:mod:`~art_sgt.evaluation.checklist`) runs at
    ``check_eps``: PGD with ``budget.strong_factor`` times the iterations and one more restart; FGSM (one step of
    ``eps``); Square (reused from the attacks when run independently, else run on every clean-correct sample: a
    paired test needs both attacks on the same samples); PGD at ``large_eps`` with ``budget.large_eps_iter`` steps;
    and, given ``transfer_from``, PGD crafted on that model and evaluated on ``classifier``. Each check is decided by
    an exact one-sided test at level ``alpha`` on the paired per-sample outcomes (its ``n`` and p-value are
    recorded beside the verdict).

    The worst case at an ``eps`` counts a sample as robust only if it is classified correctly clean and under
    every attack run at that ``eps``, the checklist's attacks at ``check_eps`` included.

    With ``resume``, each attack run's per-sample outcomes are kept in that JSON file as soon as the run ends, and
    a report started again with the same classifier weights, inputs and parameters takes the kept runs instead of
    attacking again, so an interrupted report loses at most the run under way and, every attack being seeded
    just before it runs, resumes to the report an uninterrupted one gives. A file made for another classifier,
    other inputs or other parameters is ignored; the file is removed once the report is complete.

    :param classifier: An ART ``PyTorchClassifier`` returning logits.
    :param x: Inputs ``(n, *input_shape)`` within the classifier's ``clip_values``. Not modified.
    :param y: True labels, indices ``(n,)`` or one-hot ``(n, nb_classes)``.
    :param eps: Attack strength(s), each ``>= 0`` (``0`` is the clean accuracy).
    :param norm: ``"inf"`` (or ``np.inf``), ``2`` or ``1``; Square supports only ``"inf"`` and ``2``.
    :param attacks: Names from :data:`~art_sgt.evaluation.budget.ATTACKS`, in the order a cascade runs them;
        ``None``: the budget's own (``budget.attacks``), without FAB-T (and a note saying so) where it cannot run.
    :param budget: An :class:`~art_sgt.evaluation.budget.AttackBudget`, or the name of a preset (one of
        :data:`~art_sgt.evaluation.budget.PRESETS`): ``"quick"``, ``"standard"`` (default) or ``"autoattack"``.
    :param mode: ``"cascade"`` (default) or ``"independent"`` (see above).
    :param checklist: Whether to run the gradient-masking checklist.
    :param check_eps: ``eps`` of the checks; ``None``: the median of ``eps`` (the larger middle one).
    :param large_eps: ``eps`` of the ``large_eps`` check; ``None``: the whole clip range under L-inf (any input
        can then reach any other), the diameter of the input box under L2 and L1, and ``10 * max(eps)`` without
        clip values.
    :param transfer_from: A second ART classifier for the ``transfer`` check (best an adversarially trained
        one: its adversarial examples transfer better), or ``None``.
    :param alpha: Significance level of the checks' exact tests, in (0, 1).
    :param tolerance: Accuracy drop a paired check must also exceed to fire, in [0, 1).
    :param batch_size: Batch size of the attacks and predictions.
    :param seed: Seed of numpy's and torch's global generators, set before every attack.
    :param resume: A JSON file keeping the finished attack runs (see above), or ``None``.
    :param verbose: Show a progress bar over the attack runs, and print the report's
        :meth:`~art_sgt.evaluation.report.RobustnessReport.table` at the end.
    :return: The report; its ``params`` record the budget's name and fields.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or an argument has the wrong type.
    :raises ImportError: If ``attacks`` names ``fab-t`` and torchattacks is not installed.
    :raises ValueError: For a negative ``eps`` (or one beyond the clip range under L-inf), an unknown attack,
        norm or budget name, ``apgd-dlr`` or ``apgd-t`` on fewer than 3 classes, a norm an attack does not support,
        ``square`` on images smaller than ART's SquareAttack accepts (5x5 under L-inf, 6x6 under L2; the
        checklist then skips ``black_box``), labels or inputs of the wrong shape, or a ``transfer_from`` model of
        another input shape, or ``fab-t`` with ``clip_values`` other than ``(0, 1)``.

    >>> import numpy as np, torch
    >>> from art.estimators.classification import PyTorchClassifier
    >>> from art_sgt.evaluation import AttackBudget
    >>> _ = torch.manual_seed(0)
    >>> classifier = PyTorchClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)),
    ...     loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=3, clip_values=(0.0, 1.0))
    >>> x = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    >>> y = classifier.predict(x).argmax(1)  # labels the model gets right
    >>> budget = AttackBudget.preset("quick").replace(square_max_iter=20)
    >>> report = robustness_report(classifier, x, y, eps=(0.05, 0.5), budget=budget, verbose=False)
    >>> report.clean_accuracy, report.accuracy_at(0.5)  # an undefended model loses everything at eps 0.5
    (1.0, 0.0)
    >>> [check.name for check in report.checklist], report.gradient_masking
    (['more_iterations', 'single_step', 'black_box', 'large_eps', 'transfer'], False)
    >>> report.params["budget"], report.params["square_max_iter"]
    ('quick', 20)
    """
    require_pytorch_classifier("classifier", classifier)
    norm = check_norm("norm", norm, allowed=("inf", "2", "1"))
    eps_list = _check_eps(eps, norm, classifier.clip_values)
    mode = check_choice("mode", mode, MODES)
    budget = _as_budget(budget)
    if attacks is not None:
        budget = budget.replace(attacks=attacks)
    notes: list[str] = []
    names = _runnable_attacks(budget.attacks, norm, classifier.clip_values, attacks is None, notes)
    labels = _check_data(classifier, x, y, names, norm)
    p: dict[str, Any] = {
        **budget.to_dict(),
        "budget": budget.name,
        "mode": mode,
        "batch_size": check_positive_int("batch_size", batch_size),
        "seed": check_non_negative_int("seed", seed),
        "alpha": check_fraction("alpha", alpha),
        "tolerance": check_fraction("tolerance", tolerance, low_inclusive=True),
    }
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
    p["cost"] = budget.cost(len(x), sum(e > 0 for e in eps_list), names, checklist)

    onehot = np.eye(classifier.nb_classes, dtype=np.float32)[labels]
    x = x.astype(np.float32, copy=False)
    steps = AttackSteps(None, "")
    if resume is not None:
        source = None if transfer_from is None else model_digest(transfer_from)
        key = fingerprint(classifier, x, labels, p, [eps_list, names, checklist, source])
        steps = AttackSteps(resume, key)
    # ART's predict and attacks leave a model in eval mode; the user's models get their own modes back
    with contextlib.ExitStack() as modes:
        for model in (classifier.model, *([] if transfer_from is None else [transfer_from.model])):
            modes.enter_context(preserved_modes(model))
        clean = correct_mask(classifier, x, labels, p["batch_size"])
        bar = tqdm(total=len(names) * len(eps_list) + (6 if checklist else 0), desc="robustness", disable=not verbose)
        correct, seconds = _run_attacks(classifier, x, onehot, labels, clean, names, eps_list, p, bar, notes, steps)
        checks: list[GradientMaskingCheck] = []
        check_runs: dict[str, np.ndarray] = {}
        if checklist:
            # a paired check needs PGD and its challenger on the same samples: a cascade's runs are not reused
            reusable = correct if mode == "independent" else {}
            checks, check_runs = run_checklist(
                classifier, x, onehot, labels, p, reusable, transfer_from, bar, seconds, notes, steps
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
        accuracy={name: [float(correct[(name, e)].mean()) for e in eps_list] for name in names},
        worst_case=[float(w.mean()) for w in worst],
        checklist=checks,
        params=p,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        notes=list(dict.fromkeys(notes)),
        worst_case_correct=[[bool(c) for c in w] for w in worst],
    )
    steps.finish()
    if verbose:
        print(report.table())
    return report


def _run_attacks(
    classifier: PyTorchClassifier,
    x: np.ndarray,
    onehot: np.ndarray,
    labels: np.ndarray,
    clean: np.ndarray,
    names: list[str],
    eps_list: list[float],
    p: dict[str, Any],
    bar: Any,
    notes: list[str],
    steps: AttackSteps,
) -> tuple[dict[tuple[str, float], np.ndarray], dict[str, float]]:
    """Every attack at every ``eps``, in ``p["mode"]``: per ``(attack, eps)`` the samples correct under it (and, in
    a cascade, under every attack before it), and each attack's wall-clock seconds summed over ``eps``. Each run
    goes through ``steps``, which keeps it or hands back a kept one."""
    seconds: dict[str, float] = dict.fromkeys(names, 0.0)
    correct: dict[tuple[str, float], np.ndarray] = {}
    still = {e: clean.copy() for e in eps_list}  # the cascade's survivors at each eps
    for name in names:
        for position, e in enumerate(eps_list):
            bar.set_postfix_str(f"{name} eps={e:g}")
            sub = np.arange(len(x)) if p["mode"] == "independent" else np.flatnonzero(still[e])
            if e == 0 or not sub.size:  # eps 0 is the clean accuracy; a cascade may have nothing left to attack
                outcome = clean[sub]
            else:

                def work(name: str = name, e: float = e, sub: np.ndarray = sub) -> np.ndarray:
                    attack = build_attack(name, classifier, e, p["norm"], p)
                    return run_attack(attack, classifier, x[sub], onehot[sub], labels[sub], p, notes)

                outcome, spent = steps.run(f"{name} eps={e!r} ({position})", work, notes, samples=sub)
                seconds[name] += spent
            still[e][sub] = outcome
            correct[(name, e)] = still[e].copy()
            if p["mode"] == "independent":
                still[e] = clean.copy()  # every attack on every clean-correct sample
            bar.update()
    return correct, seconds


def _as_budget(budget: Any) -> AttackBudget:
    """``budget`` itself, or the preset it names."""
    if isinstance(budget, AttackBudget):
        return budget
    if not isinstance(budget, str):
        raise TypeError(
            f"budget must be an AttackBudget or the name of a preset ({', '.join(PRESETS)}), got {budget!r}."
        )
    return AttackBudget.preset(budget)


def _check_data(classifier: PyTorchClassifier, x: Any, y: Any, names: list[str], norm: str) -> np.ndarray:
    """Check ``x`` and ``y`` against the classifier and the attacks; return the labels as class indices."""
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
    return labels


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


def _runnable_attacks(
    attacks: tuple[str, ...], norm: str, clip_values: Any, from_budget: bool, notes: list[str]
) -> list[str]:
    """The attacks that can run under ``norm`` and ``clip_values``. FAB-T where it cannot run: an error when named
    explicitly; left out, with a note and a warning, when it came from the budget."""
    names = list(attacks)
    if "square" in names and norm not in SQUARE_NORMS:
        raise ValueError(f"norm must be 'inf' or 2 when attacks include 'square' (ART's SquareAttack), got {norm!r}.")
    if "fab-t" not in names:
        return names
    unit = clip_values is not None and bool(
        np.all(np.asarray(clip_values[0]) == 0) and np.all(np.asarray(clip_values[1]) == 1)
    )
    if not fab_available():
        reason = FAB_MISSING
    elif not unit:
        reason = "FAB-T (torchattacks) needs inputs in [0, 1]: classifier clip_values must be (0, 1)"
    elif norm not in SQUARE_NORMS:
        reason = "FAB-T runs under the L-inf and L2 norms only"
    else:
        return names
    if not from_budget:
        error = ImportError if reason == FAB_MISSING else ValueError
        raise error(f"attacks must not include 'fab-t' here: {reason}.")
    names.remove("fab-t")
    notes.append(f"fab-t skipped, the worst case is over {', '.join(names)} only: {reason}.")
    warnings.warn(notes[-1], stacklevel=3)
    return names


def _full_range_eps(clip_values: Any, norm: str, dim: int) -> float | None:
    """The smallest ``eps`` under ``norm`` whose ball around any input covers the whole input box."""
    if clip_values is None:
        return None
    span = float(np.max(clip_values[1]) - np.min(clip_values[0]))
    return span if norm == "inf" else span * math.sqrt(dim) if norm == "2" else span * dim
