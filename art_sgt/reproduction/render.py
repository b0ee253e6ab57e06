"""The study report rendered: markdown of the full report and the README's section, from the report payload.

Every function here reads a payload of :func:`~art_sgt.reproduction.aggregate.assemble` (or the JSON file that
``art-sgt reproduce`` writes from it); its model summaries, comparisons and gradient-masking checks are read as
:class:`~art_sgt.reproduction.records.ModelSummary`, :class:`~art_sgt.reproduction.records.Comparison` and
:class:`~art_sgt.reproduction.records.GradientCheck`.
Every conclusion names the interval it rests on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from art_sgt.reproduction import decisive
from art_sgt.reproduction.aggregate import COMPARISONS, SALIENCY_QUANTITIES, eps_labels
from art_sgt.reproduction.recipe import LABELS
from art_sgt.reproduction.records import Comparison, GradientCheck, ModelSummary
from art_sgt.reproduction.statistics import claim_standing

__all__ = ["write_markdown", "readme_section", "claim_lines", "flag_evidence", "per_seed_detail"]


def _summaries(payload: Mapping[str, Any]) -> dict[str, ModelSummary]:
    """The payload's per-model summaries, read."""
    return {name: ModelSummary.from_payload(s) for name, s in payload["results"].items()}


def _flags_cell(summary: ModelSummary) -> str:
    """The flags that fired on a model, each with the seeds it fired on when that is not every seed."""
    cells = []
    for flag in summary.flags:
        fired = summary.flag_seeds[flag]
        if len(fired) < len(summary.seeds):
            flag += f" (seed{'s' * (len(fired) > 1)} {', '.join(map(str, fired))} of {len(summary.seeds)})"
        cells.append(flag)
    return ", ".join(cells) or "none"


def _comparisons(payload: Mapping[str, Any]) -> list[Comparison]:
    """The payload's comparisons, read."""
    return [Comparison.from_payload(c) for c in payload["comparisons"]]


def per_seed_detail(comparison: Mapping[str, Any] | Comparison, scale: float = 100.0) -> str:
    """Each training seed's difference over its own test images, shown beside an across-seed verdict.

    With two or more seeds a verdict rests on the t interval over seeds, which is wide when few seeds are done; each
    seed's paired bootstrap interval and exact McNemar p-value say whether the models differ on that seed's
    images (not whether the difference would hold for another seed). With one seed they are the verdict itself, so
    nothing is added.

    :param comparison: One entry of a payload's ``comparisons``, or the comparison.
    :param scale: Factor to percentage points.
    :return: A sentence starting with a space, or ``""``.

    >>> from art_sgt.reproduction.records import Comparison, SeedComparison
    >>> from art_sgt.reproduction.statistics import Interval, McNemar
    >>> boot = Interval(-0.074, -0.1, -0.05, 0.95, 500, "percentile bootstrap")
    >>> seeds = tuple(SeedComparison(s, McNemar(500, 3, 40, -0.074, 2.46e-8), boot) for s in (0, 1))
    >>> across = Interval(-0.074, -0.2, 0.05, 0.95, 2, "paired t interval over seeds")
    >>> comparison = Comparison("asgt", "mixed_at", "", "clean", "", "", across, seeds)
    >>> head, body = per_seed_detail(comparison).split(": ", 1)
    >>> head
    ' Per seed, over its test images (paired bootstrap, exact McNemar)'
    >>> body
    'seed 0 -7.4 [-10.0, -5.0], p = 2.46e-08; seed 1 -7.4 [-10.0, -5.0], p = 2.46e-08.'
    >>> from dataclasses import replace
    >>> per_seed_detail(replace(comparison, across_seeds=replace(across, n=1), per_seed=seeds[:1]))
    ''
    """
    c = comparison if isinstance(comparison, Comparison) else Comparison.from_payload(comparison)
    if c.across_seeds.n < 2 or not c.per_seed:
        return ""
    parts = []
    for entry in c.per_seed:
        e, lo, hi = (scale * v for v in (entry.bootstrap.estimate, entry.bootstrap.low, entry.bootstrap.high))
        parts.append(f"seed {entry.seed} {e:+.1f} [{lo:+.1f}, {hi:+.1f}], p = {entry.mcnemar.p_value:.3g}")
    return f" Per seed, over its test images (paired bootstrap, exact McNemar): {'; '.join(parts)}."


def flag_evidence(run: Mapping[str, Any]) -> list[str]:
    """One sentence per gradient-masking check that fired on a run, with the evidence it rests on.

    A check pits its challenger (:data:`~art_sgt.reproduction.records.CHALLENGERS`) against the report's PGD
    (cross-entropy loss); beside it stands the strongest
    white-box attack at the same eps, which says whether a gradient attack with another loss (APGD-DLR, APGD-T)
    already finds what the challenger found, and the worst case, which counts every attack's successes.

    :param run: One entry of a payload's ``runs``.
    :return: The sentences (none when no check fired).

    >>> check = {"name": "black_box", "flagged": True, "p_value": 0.0107,
    ...          "evidence": {"eps": 0.2, "pgd": 0.862, "square": 0.846, "b": 9, "c": 1}}
    >>> run = {"name": "asgt", "seed": 0, "evaluation": {"checklist": [check],
    ...        "attack_accuracy": {"eps": [0.2], "pgd": [0.862], "apgd-dlr": [0.842], "square": [0.846]},
    ...        "worst_case": {"eps": [0.2], "accuracy": [0.826]}}}
    >>> for part in flag_evidence(run)[0].split("; "):
    ...     print(part)
    ASGT, seed 0: black_box at eps 0.2: square 0.846 against PGD 0.862 (9 images broken by square alone, 1 by PGD alone
    one-sided exact p = 0.0107)
    strongest white-box attack at this eps: apgd-dlr 0.842
    worst case 0.826.
    >>> flag_evidence({**run, "evaluation": {**run["evaluation"], "checklist": [{**check, "flagged": False}]}})
    []
    """
    ev, lines = run["evaluation"], []
    for check in map(GradientCheck.from_payload, ev.get("checklist") or []):
        if not check.flagged:
            continue
        e, head = check.evidence, f"{LABELS.get(run['name'], run['name'])}, seed {run['seed']}: {check.name}"
        if check.challenger is None:  # large_eps: PGD alone, at an eps covering the input range
            lines.append(
                f"{head}: PGD at eps {e['large_eps']:.3g} leaves {e['pgd']:.3f} of the images correct "
                f"({e['correct']} of {check.n}; one-sided exact p = {check.p_value:.3g})."
            )
            continue
        name = f"PGD-{e['strong_iter']} x {e['strong_restarts']} starts" if "strong_iter" in e else check.challenger
        text = (
            f"{head} at eps {e['eps']:.3g}: {name} {check.challenger_accuracy:.3f} against PGD {e['pgd']:.3f} "
            f"({e['b']} images broken by {name} alone, {e['c']} by PGD alone; one-sided exact p = "
            f"{check.p_value:.3g})"
        )
        accuracy = ev.get("attack_accuracy", {})
        index = next((i for i, x in enumerate(accuracy.get("eps", [])) if math.isclose(x, e["eps"])), None)
        if index is not None:
            white = {k: v[index] for k, v in accuracy.items() if k not in ("eps", "square")}
            best = min(white, key=white.get)
            worst = ev["worst_case"]["accuracy"][ev["worst_case"]["eps"].index(accuracy["eps"][index])]
            text += f"; strongest white-box attack at this eps: {best} {white[best]:.3f}; worst case {worst:.3f}"
        lines.append(text + ".")
    return lines


def _flags_section(payload: dict[str, Any]) -> list[str]:
    runs = payload["runs"]
    if not runs:
        return []
    found = [f"- {line}" for run in runs for line in flag_evidence(run)]
    lead = (
        "Each check pits a challenger against the report's PGD (cross-entropy) on the same images and fires when "
        "the challenger breaks significantly more of them. Beside each flag stand the strongest white-box attack "
        "at that eps (a gradient attack with another loss finding as much points at the loss, not at the "
        "gradients) and the worst case, which already counts the challenger's successes."
    )
    body = [lead, "", *found] if found else ["No check of the gradient-masking checklist fired on any run."]
    return ["## Gradient-masking flags", "", *body, ""]


def _cell(summary: Mapping[str, float], digits: int = 3) -> str:
    if summary["n"] < 2:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def _table(payload: dict[str, Any]) -> list[str]:
    eps = eps_labels(payload["dataset"])
    lines = [
        f"| model | seeds | clean | PGD eps {eps['paper']} | worst case eps {eps['paper']} | PGD eps {eps['standard']} "
        f"| worst case eps {eps['standard']} | MoRF gain | LeRF gain | sparseness "
        "| stability (Spearman, unflipped) | flipped by PGD | masking flags | training CPU min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in _summaries(payload).items():
        cells = [
            _cell(s.quantities[k])
            for k in (
                "clean",
                "pgd_paper_eps",
                "worst_case_paper_eps",
                "pgd_standard_eps",
                "worst_case_standard_eps",
                "morf_gain",
                "lerf_gain",
                "sparseness",
                "stability_spearman",
                "stability_flipped",
            )
        ]
        label = LABELS.get(name, name)
        lines.append(f"| {label} | {len(s.seeds)} | {' | '.join(cells)} | {_flags_cell(s)} | {_cost_cell(s)} |")
    return lines


def _readme_table(payload: dict[str, Any]) -> list[str]:
    """The main comparison's models at the paper's eps: what the differences below are differences of."""
    eps = eps_labels(payload["dataset"])["paper"]
    lines = [
        f"| model | seeds | clean | PGD eps {eps} | worst case eps {eps} | gradient-masking flags | training CPU min |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in _summaries(payload).items():
        if "[" in name:  # a second setting or an ablation: in the full report
            continue
        cells = " | ".join(_cell(s.quantities[k]) for k in ("clean", "pgd_paper_eps", "worst_case_paper_eps"))
        lines.append(f"| {LABELS.get(name, name)} | {len(s.seeds)} | {cells} | {_flags_cell(s)} | {_cost_cell(s)} |")
    return lines


def _cost_cell(summary: ModelSummary) -> str:
    """Training CPU minutes over the seeds whose cost is complete, naming the seeds left out."""
    left_out, minutes = summary.cost_incomplete_seeds, summary.train_cpu_minutes
    seeds = ", ".join(map(str, left_out))
    note = f"seed {seeds} not counted: its cost is incomplete" if len(left_out) == 1 else f"seeds {seeds} not counted"
    if minutes is None:  # no seed's cost is complete
        return f"unknown ({note})"
    return f"{_cell(minutes, 1)} ({note})" if left_out else _cell(minutes, 1)


def _conclusions(payload: dict[str, Any], keys: Sequence[str]) -> list[str]:
    return [
        f"- {c.verdict}{per_seed_detail(c)} ({c.meaning}.)" for c in _comparisons(payload) if c.quantity in keys
    ] or ["- No pair of controls is done yet."]


#: The accuracies the paper's claim is set against, with their short label.
_CLAIM_QUANTITIES = {"pgd_paper_eps": "PGD", "worst_case_paper_eps": "worst case"}


def claim_lines(payload: Mapping[str, Any]) -> list[str]:
    """The paper's claimed gain set against ASGT's difference from each control at the paper's eps.

    One line per control ASGT was compared with (main comparison): the PGD and the worst-case difference, each with
    the interval its verdict rests on and where the claim stands against it (:func:`claim_standing`), reading the
    claim as absolute percentage points.

    :param payload: From :func:`~art_sgt.reproduction.aggregate.assemble`.
    :return: Markdown lines (none when no comparison of ASGT is done, or the profile makes no claims).
    """
    if not payload["claims"]:
        return []
    claimed, eps = payload["paper"]["claimed_gain"], eps_labels(payload["dataset"])["paper"]
    lines = []
    for a, b, meaning in COMPARISONS:
        if a != "asgt":
            continue
        found = {c.quantity: c for c in _comparisons(payload) if (c.a, c.b) == (a, b) and not c.variant}
        shown = [(what, *found[key].verdict_interval()) for key, what in _CLAIM_QUANTITIES.items() if key in found]
        parts = []
        for what, interval, p_value in shown:
            e, lo, hi = (100 * v for v in (interval.estimate, interval.low, interval.high))
            span = "no interval" if math.isnan(lo) or math.isnan(hi) else f"[{lo:+.1f}, {hi:+.1f}]"
            parts.append(f"{what} {e:+.1f} {span}: {claim_standing(interval, claimed, p_value=p_value)}")
        if parts:
            sizes = {what: interval.n for what, interval, _ in shown}
            n = (
                f"n={shown[0][1].n}"
                if len(set(sizes.values())) == 1
                else ", ".join(f"n={size} ({what})" for what, size in sizes.items())
            )
            method = f"{shown[0][1].method}, {n}"
            lines.append(f"- ASGT - {LABELS[b]}: {'; '.join(parts)}. ({meaning[0].upper()}{meaning[1:]}; {method}.)")
    if not lines:
        return []
    head = (
        f"Read as absolute percentage points, the paper's claim (+{claimed:g} at eps {eps}) against each "
        "control, at this budget (95% intervals):"
    )
    return [head, "", *lines]


def _paper_line(payload: dict[str, Any]) -> list[str]:
    """The paper's headline figure, and where this report's ASGT comparisons stand beside it (if any is done)."""
    p = payload["paper"]
    claim = f"The paper's headline gain at eps {p['paper_eps']:.3g} is about {p['claimed_gain']:.0f}"
    if not any(c.a == "asgt" for c in _comparisons(payload)):
        return [f"{claim}; no comparison of ASGT with a control is done yet, so nothing here stands beside it."]
    standing = claim_lines(payload)
    return [
        f"{claim}; its abstract leaves open whether that is absolute points or a relative per cent, and against "
        "which baseline, so the measured differences against each baseline stand beside it, each with its "
        "interval.",
        *(["", *standing] if standing else []),
    ]


def _hours(c: dict[str, Any]) -> str:
    return (
        f"about {c['cpu_hours']:.1f} CPU-hours ({c['training_cpu_hours']:.1f} training, "
        f"{c['evaluation_cpu_hours']:.1f} evaluation), {c['wall_hours_on_cores']:.1f} hours on {c['cores']} cores"
    )


def _runs(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'}"


def _cost_lines(payload: dict[str, Any]) -> list[str]:
    """What the runs done cost, and what the missing ones (and the larger profiles) are estimated to cost."""
    lines = []
    cost = payload.get("cost")
    if cost is not None:
        also = (
            f" and the training of {_runs(cost['trained_runs'])} not yet evaluated" if cost.get("trained_runs") else ""
        )
        lines.append(
            f"- Measured: {cost['measured_cpu_hours']:.1f} CPU-hours for {_runs(cost['done_runs'])} done"
            f"{also} ({cost['measured_training_cpu_hours']:.1f} training, "
            f"{cost['measured_evaluation_cpu_hours']:.1f} evaluation; one thread per run)."
        )
        if cost.get("cost_incomplete"):
            lines.append(
                f"- Counted only in part: the training cost of {', '.join(cost['cost_incomplete'])} (a "
                "session ended before recording its epochs); it is left out of the per-model CPU columns, "
                "the cost figure and the rates of the estimates."
            )
        rest = cost.get("remaining")
        if rest is not None:
            lines.append(
                f"- {_runs(cost['missing_runs'])} not done: {_hours(rest)} for {rest['estimated_runs']} of "
                f"them ({rest['note']})."
            )
            if rest["not_estimated"]:
                names = ", ".join(rest["not_estimated"])
                lines.append(f"- Not estimated, no run of their model measured yet: {names}.")
    for name, c in payload.get("cost_estimates", {}).items():
        lines.append(f"- {name}: {_hours(c)} ({c['note']})." if "cpu_hours" in c else f"- {name}: {c['note']}.")
    return lines


def _costs(payload: dict[str, Any]) -> list[str]:
    lines = _cost_lines(payload)
    return ["## Cost", "", *lines, ""] if lines else []


def _progress(payload: Mapping[str, Any]) -> str:
    """Runs done of the main comparison and of each second setting; an interim note while any is missing (for the
    whole report while the main comparison is, else for the settings not done)."""
    rows = payload["manifest"]["runs"]
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row["variant"], []).append(row["status"])
    parts = [
        f"{'Main comparison' if not v else v}: {s.count('done')} of {len(s)} runs done"
        for v, s in groups.items()
        if not v or len(s) > 1
    ]
    single = [s[0] for v, s in groups.items() if v and len(s) == 1]  # e.g. the ablations, one run per variant
    if single:
        what = "other settings" if parts else "Settings"
        parts.append(f"{what} (one run each): {single.count('done')} of {len(single)} runs done")
    text = "; ".join(parts) + "."
    if not payload["claims"]:
        return text
    if any(status != "done" for status in groups.get("", [])):
        seeds = sorted({r["seed"] for r in payload["runs"]})
        text += (
            f" **Interim report**: the comparisons rest on the runs done so far (seeds {seeds or 'none'}); "
            "where one seed is done, their intervals are over test images and say nothing of the spread "
            "between training seeds."
        )
    elif pending := [v for v, s in groups.items() if v and len(s) > 1 and any(x != "done" for x in s)]:
        text += (
            f" The main comparison is complete; **interim for {', '.join(pending)}**: its comparisons rest on "
            "the runs done so far."
        )
    return text


def _multiplicity(payload: dict[str, Any]) -> str:
    n = len(payload["comparisons"])
    return (
        f"Each interval is a 95% interval on its own; the {n} comparisons of this report are not corrected for "
        "multiplicity, so about one in twenty differences that are truly zero would still show an interval "
        "excluding zero: a lone difference just past zero deserves less weight than its interval suggests."
    )


_SALIENCY_NOTE = (
    "The saliency qualities of the table (higher is better for each), compared over training seeds with a paired t "
    "interval: their per-image values are not kept, so with one seed there is no interval."
)


def _comparison_sections(payload: dict[str, Any]) -> list[str]:
    """The comparisons at the paper's and the standard eps, and the paper's figure beside them (not for ablations)."""
    if not any("[" not in name for name in payload["results"]):  # ablations: variants only, nothing to pair
        return []
    eps = eps_labels(payload["dataset"])
    return [
        *([_multiplicity(payload), ""] if payload["comparisons"] else []),
        f"## Comparisons at the paper's eps ({eps['paper']})",
        "",
        *_conclusions(payload, ("pgd_paper_eps", "worst_case_paper_eps", "clean")),
        "",
        f"## Comparisons at the standard eps ({eps['standard']})",
        "",
        *_conclusions(payload, ("pgd_standard_eps", "worst_case_standard_eps")),
        "",
        *_paper_line(payload),
        "",
        "## Comparisons of the saliency maps",
        "",
        _SALIENCY_NOTE,
        "",
        *_conclusions(payload, tuple(SALIENCY_QUANTITIES)),
        "",
    ]


def write_markdown(payload: dict[str, Any], path: str | Path | None = None) -> str:
    """Render the report: scope, provenance, the per-model table, the comparisons with their intervals.

    :param payload: From :func:`~art_sgt.reproduction.aggregate.assemble`.
    :param path: Write the markdown here when given.
    :return: The markdown.
    """
    run, pieces, m = payload["run"], payload["pieces"], payload["manifest"]["counts"]
    eps = eps_labels(payload["dataset"])
    names = ", ".join(LABELS.get(n, n) for n in payload["results"]) or "no run done yet"
    lines = [f"# {payload['dataset']} / {payload['profile']}: {names}", ""]
    if not payload["claims"]:
        lines += [
            "**Smoke test: this profile makes no claims.** Its models are far from trained; the numbers only "
            "show that the pipeline runs end to end.",
            "",
        ]
    lines += [
        f"{payload['label']}. Assembled by `{run['command']}` from the run cache; runs done: {m['done']} of "
        f"{sum(m.values())} ({', '.join(f'{k} {v}' for k, v in m.items() if v and k != 'done') or 'none missing'}).",
        "",
        _progress(payload),
        "",
        f"Code: the runs at commit(s) {', '.join(c[:10] for c in pieces['commits']) or 'none'} (every run from a "
        f"clean tree: {pieces['all_clean']}); this report at {str(run['git']['commit'])[:10]} (clean tree: "
        f"{run['git']['clean']}).",
        "",
        *_table(payload),
        "",
        "Mean ± standard deviation over seeds. Clean and PGD columns: ART PGD on "
        f"{_images(payload['recipe']['evaluation'], 'n_eval')}; worst case (per-sample minimum over the robustness "
        f"report's attacks, budget '{payload['recipe']['evaluation']['budget']}') on "
        f"{_images(payload['recipe']['evaluation'], 'n_report')}, saliency columns on "
        f"{_images(payload['recipe']['evaluation'], 'n_saliency')}. Masking areas use the "
        f"'{payload['recipe']['evaluation']['masking_fill']}' fill; a gain is the area between the random-order curve "
        "and the MoRF (LeRF) curve divided by the accuracy before masking (higher: more faithful). Stability: "
        f"Spearman of the maps under PGD at eps {eps['paper']}, over the samples whose prediction did not flip. "
        f"The worst case at eps {eps['paper']} also counts the gradient-masking checklist's attacks, run at that eps "
        "only (PGD with more iterations and restarts, FGSM and, for every model but the standard one, PGD "
        "transferred from the standard model of the same seed), so it is a stronger attack than at the other eps "
        "(the accuracy-vs-eps figure marks it).",
        "",
        *_flags_section(payload),
        *(decisive.goal_lines(payload["goal"]) if "goal" in payload else []),
        *_comparison_sections(payload),
        *_costs(payload),
    ]
    text = "\n".join(lines)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return text


def _images(evaluation: dict[str, Any], key: str) -> str:
    """Which test images a recipe's ``n_eval`` / ``n_report`` / ``n_saliency`` were: a seeded random subset for
    recipes that record a ``subset_seed``, the first images of the test set for those written before."""
    n = evaluation.get(key) or evaluation["n_report"]
    if "subset_seed" in evaluation:
        return f"{n} random test images (seed {evaluation['subset_seed']})"
    return f"the first {n} test images"


#: How the report names the robustness report's attacks.
_ATTACK_NAMES = {
    "pgd": "PGD with restarts",
    "apgd-ce": "APGD-CE",
    "apgd-dlr": "APGD-DLR",
    "apgd-t": "APGD-T",
    "fab-t": "FAB-T",
    "square": "Square",
}


def _table_note(evaluation: dict[str, Any]) -> str:
    from art_sgt.evaluation import AttackBudget

    attacks = ", ".join(_ATTACK_NAMES[a] for a in AttackBudget.preset(evaluation["budget"]).attacks)
    return _TABLE_NOTE.format(
        eval_images=_images(evaluation, "n_eval"), report_images=_images(evaluation, "n_report"), attacks=attacks
    )


_TABLE_NOTE = (
    "Mean ± standard deviation over seeds. Clean and PGD accuracy on {eval_images}, the worst "
    "case on {report_images} (so it can exceed the PGD column). The worst case counts a test image as robust "
    "only if every attack fails on it ({attacks}, and at this eps the "
    "gradient-masking checklist's attacks); a flag means a check found the gradient attacks weaker than they "
    "should be on that model (the full report describes each check), and the worst case already counts the "
    "stronger attack's successes."
)


def readme_section(payloads: Sequence[dict[str, Any]]) -> str:
    """The README's "Does the paper's claim hold?" section, from report payloads (one per dataset/profile).

    For each payload: its scope and how many of its runs are done (an interim note while some are missing), then
    a table of the main comparison's models at the paper's eps (accuracies, masking flags, training CPU), then
    where the paper's claim stands against each control (:func:`claim_lines`), then in detail ASGT against
    standard, Madry PGD-AT and mixed AT at the paper's eps (worst case and PGD) and ASGT against mixed AT on the
    saliency qualities, each with its interval (a profile that makes no claims is said to make none), then the
    CPU time measured and estimated.

    :param payloads: From :func:`~art_sgt.reproduction.aggregate.assemble` (or the JSON files ``art-sgt reproduce``
        writes).
    :return: Markdown, starting with the section heading.
    """
    lines = ["## Does the paper's claim hold?", ""]
    for p in payloads:
        lines += [f"### {p['dataset']}, {p['profile']} profile", "", f"{p['label']}.", "", _progress(p), ""]
        if not p["claims"]:
            lines += ["This profile is a smoke test and makes no claims.", ""]
        else:
            keys = ("worst_case_paper_eps", "pgd_paper_eps")
            main = [c for c in _comparisons(p) if c.a == "asgt" and not c.variant]
            verdicts = [f"- {c.verdict}{per_seed_detail(c)}" for c in main if c.quantity in keys]
            maps = [f"- {c.verdict}" for c in main if c.b == "mixed_at" and c.quantity in SALIENCY_QUANTITIES]
            if maps:
                verdicts += ["", "The saliency term's effect on the maps (ASGT - mixed AT, over seeds):", "", *maps]
            none = "- No comparison of ASGT with a control is done yet."
            note = _table_note(p["recipe"]["evaluation"])
            table = [*_readme_table(p), "", note, ""] if p["results"] else []
            detail = ["The differences in detail:", "", *verdicts]
            lines += [*table, *_paper_line(p), "", *detail, ""] if verdicts else [*table, none, ""]
        cost = _cost_lines(p)
        lines += ["CPU time:", "", *cost, ""] if cost else []
    return "\n".join(lines).rstrip() + "\n"
