"""The decisive study's goal: is a saliency-guided objective non-inferior to the best adversarial-training control
in its worst case, with better maps?

The decisive study (:func:`art_sgt.reproduction.decisive_runs`, the ``decisive`` profile) trains the paper's ASGT,
the screening's chosen variants and the controls on full MNIST. :func:`assess` applies :data:`DECISIVE_RULE` to
its evaluated runs: every candidate against the best control, seeds paired, with the family's multiplicity
accounted for by Holm's adjustment (:func:`~art_sgt.reproduction.statistics.holm`), the exact sign-flip test
beside each t test, and per seed the exact McNemar test over the shared test images. :func:`goal_lines` renders
the outcome for the study's markdown report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from art_sgt.reproduction.recipe import DECISIVE_FULL_SEEDS, DECISIVE_MODELS, LABELS
from art_sgt.reproduction.records import TrainedRun
from art_sgt.reproduction.statistics import (
    difference_interval,
    holm,
    mcnemar_exact,
    paired_t_test,
    sign_flip_test,
)

__all__ = ["DECISIVE_CONTROLS", "DECISIVE_RULE", "GOAL_MAPS", "NON_INFERIORITY_MARGIN", "assess", "goal_lines"]

#: The adversarial-training controls the best control is chosen from: those trained with every seed.
DECISIVE_CONTROLS = tuple(m for m in DECISIVE_FULL_SEEDS if m != "asgt")

#: The map qualities of the goal (the report's keys), each higher-is-better.
GOAL_MAPS = {"morf_gain": "MoRF gain", "sparseness": "sparseness", "stability_spearman": "stability"}

#: How far below the best control a candidate's worst case may be and count as non-inferior (1 point).
NON_INFERIORITY_MARGIN = 0.01

#: The quantity of the non-inferiority test: the worst case at eps 0.3 (the report's key).
WORST_CASE = "worst_case_standard_eps"

#: The goal, fixed before any decisive run was evaluated.
DECISIVE_RULE = (
    "The best control is the control trained with every seed (mixed AT, TRADES) with the higher mean worst case "
    "at eps 0.3. A candidate (the paper's ASGT and the screening's chosen variants) meets the goal when, seeds "
    "paired with the best control, (1) its worst case at eps 0.3 is non-inferior: the one-sided 95% t lower bound "
    "of the difference is at least -1 point, and (2) it beats the control on at least two of MoRF gain, sparseness "
    "and map stability: one-sided 95% t lower bound above 0; and both still hold when the family's one-sided t "
    "tests (4 per candidate) are Holm-adjusted at 0.05. The exact sign-flip test of each hypothesis and, per seed, "
    "the exact McNemar test over the shared test images are reported beside them."
)


def _runs(records: Iterable[Mapping[str, Any] | TrainedRun]) -> dict[str, list[TrainedRun]]:
    groups: dict[str, list[TrainedRun]] = {}
    for record in records:
        run = record if isinstance(record, TrainedRun) else TrainedRun.from_payload(record)
        if run.evaluation is not None:
            groups.setdefault(run.name, []).append(run)
    return {name: sorted(runs, key=lambda r: r.seed) for name, runs in groups.items()}


def _label(name: str) -> str:
    model, _, variant = name.partition("[")
    return LABELS.get(model, model) + (f" [{variant}" if variant else "")


def _mean(runs: Sequence[TrainedRun], key: str) -> float:
    values = [v for v in (r.evaluation.value(key) for r in runs) if not math.isnan(v)]  # type: ignore[union-attr]
    return float(np.mean(values)) if values else math.nan


def _test(
    candidate: Sequence[TrainedRun], control: Sequence[TrainedRun], key: str, margin: float
) -> dict[str, Any] | None:
    """One hypothesis, ``candidate - control > margin`` on ``key``, over the seeds where both define it."""
    by_seed = {r.seed: r for r in control}
    pairs = [(c, by_seed[c.seed]) for c in candidate if c.seed in by_seed]
    pairs = [
        (c, b)
        for c, b in pairs
        if not (math.isnan(c.evaluation.value(key)) or math.isnan(b.evaluation.value(key)))  # type: ignore[union-attr]
    ]
    if not pairs:
        return None
    a = [c.evaluation.value(key) for c, _ in pairs]  # type: ignore[union-attr]
    b = [x.evaluation.value(key) for _, x in pairs]  # type: ignore[union-attr]
    d = np.subtract(a, b)
    interval = difference_interval(a, b, confidence=0.90)  # its low end is the one-sided 95% lower bound
    return {
        "seeds": [c.seed for c, _ in pairs],
        "differences": d.tolist(),
        "difference": float(d.mean()),
        "lower_bound": interval.low,
        "margin": margin,
        "t_p": paired_t_test(d, margin=margin, alternative="greater"),
        "sign_flip_p": sign_flip_test(d, margin=margin, alternative="greater"),
    }


def _per_seed(candidate: Sequence[TrainedRun], control: Sequence[TrainedRun]) -> list[dict[str, Any]]:
    """Per seed, the exact McNemar test of the worst case at each eps over the shared test images."""
    by_seed = {r.seed: r for r in control}
    rows = []
    for c in candidate:
        if c.seed not in by_seed:
            continue
        row: dict[str, Any] = {"seed": c.seed}
        for key in ("worst_case_paper_eps", WORST_CASE):
            x, y = c.evaluation.outcomes(key), by_seed[c.seed].evaluation.outcomes(key)  # type: ignore[union-attr]
            if x is not None and y is not None and len(x) == len(y):
                row[key] = mcnemar_exact(x, y).to_dict()
        rows.append(row)
    return rows


def _train_minutes(runs: Sequence[TrainedRun]) -> float | None:
    complete = [r.train.cpu_seconds for r in runs if r.train.cost_complete]
    return round(float(np.mean(complete)) / 60, 2) if complete else None


def assess(
    records: Iterable[Mapping[str, Any] | TrainedRun], seeds: Sequence[int] | None = None, alpha: float = 0.05
) -> dict[str, Any] | None:
    """Apply :data:`DECISIVE_RULE` to the decisive study's evaluated runs.

    The rule is stated over every seed: until each control of :data:`DECISIVE_CONTROLS` and each candidate has
    all of ``seeds``, the assessment is marked incomplete (``"complete": False``) and renders as provisional.

    :param records: The runs, or their records as the run cache holds them; runs not yet evaluated are left out.
    :param seeds: The study's seeds (``None``: the assessment counts as complete with the seeds there are).
    :param alpha: Level of the one-sided tests, before and after Holm's adjustment.
    :return: ``{"rule", "complete", "seeds", "best_control", "controls", "candidates": {name: {...}},
        "family_size", "met": [names]}``, or ``None`` while no control and no candidate are evaluated. A candidate
        holds its ``tests`` (the non-inferiority test ``worst_case`` and one per map quality: seeds, differences,
        lower bound, t and sign-flip p-values, the Holm-adjusted t p-value), its ``per_seed`` McNemar tests, its
        mean training CPU minutes beside the control's, and ``meets`` (the interval criterion), ``meets_holm`` and
        ``met``.
    """
    groups = _runs(records)
    controls = {c: _mean(groups[c], WORST_CASE) for c in DECISIVE_CONTROLS if c in groups}
    candidates = [n for n in groups if n not in DECISIVE_MODELS or n == "asgt"]
    if not controls or not candidates:
        return None
    best = max(controls, key=lambda c: -math.inf if math.isnan(controls[c]) else controls[c])
    table: dict[str, dict[str, Any]] = {}
    for name in candidates:
        tests = {"worst_case": _test(groups[name], groups[best], WORST_CASE, -NON_INFERIORITY_MARGIN)}
        tests.update({label: _test(groups[name], groups[best], key, 0.0) for key, label in GOAL_MAPS.items()})
        table[name] = {
            "seeds": [r.seed for r in groups[name]],
            "tests": tests,
            "per_seed": _per_seed(groups[name], groups[best]),
            "train_cpu_minutes": _train_minutes(groups[name]),
            "control_train_cpu_minutes": _train_minutes(groups[best]),
        }
    family = [(n, t) for n in table for t, v in table[n]["tests"].items() if v is not None and not math.isnan(v["t_p"])]
    adjusted = holm([table[n]["tests"][t]["t_p"] for n, t in family])
    for entry in table.values():
        for test in entry["tests"].values():
            if test is not None:
                test["holm_p"] = math.nan  # a test without a p-value (no spread over seeds) is not in the family
    for (n, t), p in zip(family, adjusted):
        table[n]["tests"][t]["holm_p"] = p
    for entry in table.values():
        tests = entry["tests"]
        ni = tests["worst_case"]
        maps = [tests[label] for label in GOAL_MAPS.values() if tests[label] is not None]
        entry["map_wins"] = sum(m["lower_bound"] > 0 for m in maps)
        entry["map_wins_holm"] = sum(m["holm_p"] < alpha for m in maps)
        entry["non_inferior"] = ni is not None and ni["lower_bound"] >= -NON_INFERIORITY_MARGIN
        entry["meets"] = entry["non_inferior"] and entry["map_wins"] >= 2
        entry["meets_holm"] = ni is not None and ni["holm_p"] < alpha and entry["map_wins_holm"] >= 2
        entry["met"] = entry["meets"] and entry["meets_holm"]
    wanted = set(seeds) if seeds is not None else None
    complete = wanted is None or all(
        {r.seed for r in groups.get(name, [])} >= wanted for name in (*DECISIVE_CONTROLS, *candidates)
    )
    return _json_safe(
        {
            "rule": DECISIVE_RULE,
            "complete": complete,
            "seeds": None if seeds is None else sorted(seeds),
            "alpha": alpha,
            "best_control": best,
            "controls": {c: {"seeds": [r.seed for r in groups[c]], "worst_case": v} for c, v in controls.items()},
            "candidates": table,
            "family_size": len(family),
            "met": [n for n, e in table.items() if e["met"]],
        }
    )


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN (an undefined bound or p-value) as ``None``, so the payload is valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _number(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "undefined" if value is None else f"{scale * value:{spec}}"


def _cell(test: Mapping[str, Any] | None, scale: float, digits: int) -> str:
    if test is None:
        return "no paired seed"
    return (
        f"{scale * test['difference']:+.{digits}f} (lower bound {_number(test['lower_bound'], f'+.{digits}f', scale)}"
        f"; t p {_number(test['t_p'], '.3g')}, Holm {_number(test['holm_p'], '.3g')}; sign-flip p "
        f"{test['sign_flip_p']:.3g}; n={len(test['seeds'])})"
    )


def goal_lines(goal: Mapping[str, Any] | None) -> list[str]:
    """The markdown section of :func:`assess`'s outcome.

    :param goal: :func:`assess`'s result (``None``: a line saying nothing is evaluated yet).
    :return: The section's lines.
    """
    lines = ["## The goal: non-inferior worst case, better maps", ""]
    if goal is None:
        return [*lines, "No control or candidate of the decisive study is evaluated yet.", ""]
    best = goal["best_control"]
    lines += [
        "Rule, fixed before the decisive runs were evaluated: " + goal["rule"],
        "",
        f"Best control: {_label(best)} (seeds {', '.join(map(str, goal['controls'][best]['seeds']))}). "
        f"{goal['family_size']} one-sided tests with a p-value in the family. With n seeds the exact sign-flip test "
        "cannot fall below 2^-n (1/32 for five seeds).",
        "",
        "| candidate | worst case eps 0.3 minus control, points | "
        + " | ".join(f"{label} minus control" for label in GOAL_MAPS.values())
        + " | train CPU min (control) | goal |",
        "|---|---|" + "---|" * len(GOAL_MAPS) + "---|---|",
    ]
    for name, entry in goal["candidates"].items():
        tests = entry["tests"]
        maps = " | ".join(_cell(tests[label], 1.0, 3) for label in GOAL_MAPS.values())
        if entry["met"]:
            outcome = "met"
        elif entry["meets"]:
            outcome = "met on the intervals, not after Holm"
        else:
            outcome = "not met" + ("" if entry["non_inferior"] else " (not non-inferior)")
        minutes = f"{entry['train_cpu_minutes']} ({entry['control_train_cpu_minutes']})"
        lines.append(f"| {_label(name)} | {_cell(tests['worst_case'], 100.0, 1)} | {maps} | {minutes} | {outcome} |")
    lines.append("")
    met = goal["met"]
    if not goal["complete"]:
        lines.append(
            "**Provisional**: not every control and candidate has every seed yet, and the rule is stated over all "
            "of them; the table shows where the tests stand, not a verdict."
        )
    elif met:
        lines.append(f"Goal met by: {', '.join(map(_label, met))}.")
    else:
        lines.append(
            "No candidate meets the goal at this budget: none is both non-inferior to the best control's worst "
            "case and better on two of the three map qualities."
        )
    lines += ["", "Per seed, exact McNemar tests of the worst case against the best control on the same images:", ""]
    for name, entry in goal["candidates"].items():
        for row in entry["per_seed"]:
            parts = [
                f"eps {'0.2' if key == 'worst_case_paper_eps' else '0.3'}: {100 * row[key]['difference']:+.1f} "
                f"points, p {row[key]['p_value']:.3g}"
                for key in ("worst_case_paper_eps", WORST_CASE)
                if key in row
            ]
            lines.append(f"- {_label(name)}, seed {row['seed']}: {'; '.join(parts) or 'no per-image outcomes'}")
    return [*lines, ""]
