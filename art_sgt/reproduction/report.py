"""The report, assembled from the cached runs: per-model summaries over seeds, paired comparisons, markdown.

:func:`assemble` turns the cached records of a profile into a JSON payload (every number is read from the
cache); :func:`write_markdown` renders it with every conclusion naming the interval it rests on;
:func:`readme_section` renders the README's "Does the paper's claim hold?" section from one or more payloads;
:func:`estimate_cost` extrapolates a profile's CPU time from measured per-epoch timings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from art_sgt.reproduction.evaluate import from_bits
from art_sgt.reproduction.recipe import ADVERSARIAL, LABELS, PAPER, Profile, RunSpec
from art_sgt.reproduction.statistics import (
    Interval,
    claim_standing,
    difference_interval,
    mcnemar_exact,
    paired_bootstrap,
    seed_summary,
    verdict,
)

__all__ = [
    "QUANTITIES",
    "SALIENCY_QUANTITIES",
    "COMPARISONS",
    "assemble",
    "write_markdown",
    "readme_section",
    "attack_units",
    "claim_lines",
    "estimate_cost",
    "cost_summary",
    "flag_evidence",
    "per_seed_detail",
    "training_cost_complete",
]

#: The accuracies summarised per model, with their label (``{paper}`` / ``{standard}``: the eps).
QUANTITIES = {
    "clean": "clean accuracy",
    "pgd_paper_eps": "PGD accuracy at eps {paper}",
    "worst_case_paper_eps": "worst-case accuracy at eps {paper}",
    "pgd_standard_eps": "PGD accuracy at eps {standard}",
    "worst_case_standard_eps": "worst-case accuracy at eps {standard}",
}

#: The saliency-map qualities summarised per model, with their label (all: higher is better). Their per-image
#: values are not kept, so they are compared across seeds only.
SALIENCY_QUANTITIES = {
    "morf_gain": "MoRF gain over random",
    "lerf_gain": "LeRF gain over random",
    "sparseness": "saliency sparseness (Gini)",
    "stability_spearman": "map stability under PGD at eps {paper} (Spearman, unflipped)",
}

#: The comparisons ``(a, b, what the difference measures)``.
COMPARISONS = [
    ("asgt", "standard", "ASGT against no defence"),
    ("asgt", "pgd_at", "ASGT against Madry PGD-AT (the clean loss and the saliency term together)"),
    ("asgt", "mixed_at", "the saliency/KL term alone (ASGT without it is mixed AT)"),
    ("sgt", "standard", "SGT alone against no defence"),
]


def _eps_label(dataset: str) -> dict[str, str]:
    return {k.split("_")[0]: f"{v:.3g}" for k, v in PAPER[dataset].items() if k.endswith("eps")}


def _value(record: dict[str, Any], key: str) -> float:
    """A run's number for a key of :data:`QUANTITIES` or :data:`SALIENCY_QUANTITIES` (NaN when undefined)."""
    saliency = record["evaluation"].get("saliency", {})
    if key in ("morf_gain", "lerf_gain"):  # areas against the random control, divided by the clean accuracy
        return float(saliency["masking"][f"{key}_accuracy"])
    if key == "sparseness":
        return float(saliency["sparseness"])
    if key.startswith("stability_"):
        return _stability(record, key.removeprefix("stability_"))
    return float(record["evaluation"][key])


def _stability(record: dict[str, Any], key: str) -> float:
    """A field of the map stability under PGD (its similarities are over samples whose prediction did not flip)."""
    value = record["evaluation"]["saliency"]["stability"].get(key)
    return float("nan") if value is None else float(value)


def training_cost_complete(train: Mapping[str, Any]) -> bool:
    """Whether a training log's CPU seconds count every epoch it trained.

    Until training sessions kept their cost at each checkpoint (``art_sgt.reproduction.training.SessionCost``), a
    session killed before its end left its epochs out of the count, while the next session resumed from their
    checkpoint.
    The epochs of such a log add up to more wall seconds than its counted sessions took; those of a run trained in
    one session, or in sessions that each recorded their cost, do not.

    :param train: A training log (``train_log.json``, with its ``history`` of epochs).
    :return: ``False`` when the epochs' wall seconds exceed the counted wall seconds by more than one second;
        ``True`` for a log without wall seconds, which cannot show it.

    >>> training_cost_complete({"wall_seconds": 30.5, "history": [{"seconds": 10.0}, {"seconds": 20.0}]})
    True
    >>> training_cost_complete({"wall_seconds": 20.5, "history": [{"seconds": 10.0}, {"seconds": 20.0}]})
    False
    """
    if "wall_seconds" not in train:
        return True
    epochs = sum(float(e.get("seconds", 0.0)) for e in train.get("history", []))
    return epochs <= float(train["wall_seconds"]) + 1.0


def _summaries(records: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (*QUANTITIES, *SALIENCY_QUANTITIES, "stability_flipped")
    out: dict[str, Any] = {k: seed_summary([_value(r, k) for r in records]) for k in keys}
    costed = [r for r in records if training_cost_complete(r["train"])]  # the others' cost is only in part
    out["cost_incomplete_seeds"] = [r["seed"] for r in records if r not in costed]
    for key, field in (("train_cpu_minutes", "cpu_seconds"), ("train_cpu_minutes_per_epoch", "cpu_seconds_per_epoch")):
        out[key] = seed_summary([r["train"][field] / 60 for r in costed]) if costed else None
    grid = [0.0, *records[0]["evaluation"]["worst_case"]["eps"]]  # eps 0: clean accuracy on the same images
    out["worst_case_curve"] = {"eps": grid, "per_seed": [
        [r["evaluation"]["robustness"]["clean_accuracy"], *r["evaluation"]["worst_case"]["accuracy"]] for r in records
    ]}  # fmt: skip
    out["flags"] = sorted({f for r in records for f in r["evaluation"]["flags"]})
    out["flag_seeds"] = {f: [r["seed"] for r in records if f in r["evaluation"]["flags"]] for f in out["flags"]}
    out["seeds"] = [r["seed"] for r in records]
    return out


def _flags_cell(summary: Mapping[str, Any]) -> str:
    """The flags that fired on a model, each with the seeds it fired on when that is not every seed.

    >>> _flags_cell({"flags": ["black_box"], "flag_seeds": {"black_box": [0, 1]}, "seeds": [0, 1, 2]})
    'black_box (seeds 0, 1 of 3)'
    >>> _flags_cell({"flags": ["black_box"], "flag_seeds": {"black_box": [0, 1, 2]}, "seeds": [0, 1, 2]})
    'black_box'
    >>> _flags_cell({"flags": [], "seeds": [0]})
    'none'
    """
    cells = []
    for flag in summary["flags"]:
        fired = summary.get("flag_seeds", {}).get(flag)  # absent in payloads written before it was kept
        if fired is not None and len(fired) < len(summary["seeds"]):
            flag += f" (seed{'s' * (len(fired) > 1)} {', '.join(map(str, fired))} of {len(summary['seeds'])})"
        cells.append(flag)
    return ", ".join(cells) or "none"


def _compare(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Across-seed t interval (seeds present in both) and per-seed McNemar / bootstrap where outcomes are kept."""
    by_seed = {r["seed"]: r for r in b}
    pairs = [(r, by_seed[r["seed"]]) for r in a if r["seed"] in by_seed]
    pairs = [(x, y) for x, y in pairs if not (math.isnan(_value(x, key)) or math.isnan(_value(y, key)))]
    if not pairs:
        return {"across_seeds": {"n": 0}, "per_seed": []}
    across = difference_interval([_value(x, key) for x, _ in pairs], [_value(y, key) for _, y in pairs])
    out: dict[str, Any] = {"across_seeds": across.to_dict(), "per_seed": []}
    for x, y in pairs:
        bits_x, bits_y = x["evaluation"]["per_sample"].get(key), y["evaluation"]["per_sample"].get(key)
        if bits_x is None or bits_y is None:
            continue
        cx, cy = from_bits(bits_x), from_bits(bits_y)
        out["per_seed"].append({"seed": x["seed"], "mcnemar": mcnemar_exact(cx, cy).to_dict(),
                                "bootstrap": paired_bootstrap(cx, cy, seed=x["seed"]).to_dict()})  # fmt: skip
    return out


def _interval(comparison: dict[str, Any]) -> tuple[Interval, float | None]:
    """The interval a verdict rests on (across seeds when there are two or more, else the one seed's images), and
    with one seed the exact McNemar p-value that must agree with it (the percentile bootstrap alone is liberal
    when few images disagree)."""
    across = comparison["across_seeds"]
    if across["n"] >= 2 or not comparison["per_seed"]:
        return Interval(**{k: (math.nan if v is None else v) for k, v in across.items()}), None
    boot, test = comparison["per_seed"][0]["bootstrap"], comparison["per_seed"][0]["mcnemar"]
    method = "one seed: paired bootstrap over test images, seed spread not measured"
    return Interval(**{**boot, "method": method}), float(test["p_value"])


def per_seed_detail(comparison: Mapping[str, Any], scale: float = 100.0) -> str:
    """Each training seed's difference over its own test images, shown beside an across-seed verdict.

    With two or more seeds a verdict rests on the t interval over seeds, which is wide when few seeds are done; each
    seed's paired bootstrap interval and exact McNemar p-value say whether the models differ on that seed's
    images (not whether the difference would hold for another seed). With one seed they are the verdict itself, so
    nothing is added.

    :param comparison: One entry of a payload's ``comparisons``.
    :param scale: Factor to percentage points.
    :return: A sentence starting with a space, or ``""``.

    >>> boot = {"estimate": -0.074, "low": -0.1, "high": -0.05}
    >>> per_seed = [{"seed": s, "bootstrap": boot, "mcnemar": {"p_value": 2.46e-8}} for s in (0, 1)]
    >>> head, body = per_seed_detail({"across_seeds": {"n": 2}, "per_seed": per_seed}).split(": ", 1)
    >>> head
    ' Per seed, over its test images (paired bootstrap, exact McNemar)'
    >>> body
    'seed 0 -7.4 [-10.0, -5.0], p = 2.46e-08; seed 1 -7.4 [-10.0, -5.0], p = 2.46e-08.'
    >>> per_seed_detail({"across_seeds": {"n": 1}, "per_seed": per_seed[:1]})
    ''
    """
    if comparison["across_seeds"]["n"] < 2 or not comparison["per_seed"]:
        return ""
    parts = []
    for entry in comparison["per_seed"]:
        e, lo, hi = (scale * entry["bootstrap"][k] for k in ("estimate", "low", "high"))
        parts.append(f"seed {entry['seed']} {e:+.1f} [{lo:+.1f}, {hi:+.1f}], p = {entry['mcnemar']['p_value']:.3g}")
    return f" Per seed, over its test images (paired bootstrap, exact McNemar): {'; '.join(parts)}."


_UNKNOWN = {"commit": None, "clean": None}


def _code_states(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The code (commit, clean tree) of every piece of work behind a record: each training session, each
    evaluation stage, the writing of the record. A session or stage whose code was not recorded (records made
    before it was) counts as unknown, unless one session did the whole training."""
    train = record["train"]
    sessions = train.get("sessions_git")
    if sessions is None:
        sessions = [train["provenance"]["git"]] if train.get("sessions", 1) <= 1 else [_UNKNOWN]
    sessions = [*sessions, *[_UNKNOWN] * max(0, int(train.get("sessions", 0)) - len(sessions))]
    stages = [g or _UNKNOWN for g in record["evaluation"].get("stage_git", {}).values()]
    return [*sessions, *stages, record["provenance"]["git"]]


def _provenance(records: list[dict[str, Any]]) -> dict[str, Any]:
    gits = [g for r in records for g in _code_states(r)]
    return {"commits": sorted({str(g["commit"]) for g in gits}), "all_clean": all(g["clean"] is True for g in gits)}


def assemble(profile: Profile, records: list[dict[str, Any]], manifest: dict[str, Any],
             run: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The report's JSON payload, from the cached records of a profile's runs.

    :param profile: The profile.
    :param records: The cached records of its runs that are done (:meth:`RunCache.records`), in recipe order.
    :param manifest: The cache manifest of ``runs``.
    :param run: Provenance of the assembly (:func:`art_sgt.provenance.run_info`).
    :return: The payload.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["name"], []).append(record)
    comparisons = []
    for variant in dict.fromkeys(r["variant"] for r in records):  # the main comparison, then each setting
        suffix = f"[{variant}]" if variant else ""
        for a, b, meaning in COMPARISONS:
            if a + suffix not in groups or b + suffix not in groups:
                continue
            if not {r["seed"] for r in groups[a + suffix]} & {r["seed"] for r in groups[b + suffix]}:
                continue  # no seed done for both: nothing is paired yet
            for key, label in {**QUANTITIES, **SALIENCY_QUANTITIES}.items():
                c = _compare(groups[a + suffix], groups[b + suffix], key)
                if not c["across_seeds"]["n"]:
                    continue  # e.g. a stability undefined (every prediction flipped) on every shared seed
                what = label.format(**_eps_label(profile.dataset)) + (f" ({variant})" if variant else "")
                interval, p_value = _interval(c)
                scale = dict(scale=1.0, unit="", digits=3) if key in SALIENCY_QUANTITIES else {}
                c.update(a=a, b=b, variant=variant, quantity=key, meaning=meaning,
                         verdict=verdict(interval, LABELS[a], LABELS[b], what, claims=profile.claims,
                                         p_value=p_value, **scale))  # fmt: skip
                comparisons.append(c)
    return {
        "dataset": profile.dataset,
        "profile": records[0]["profile"] if records else profile.name,
        "label": profile.label,
        "claims": profile.claims,
        "paper": PAPER[profile.dataset],
        "run": run,
        "recipe": {
            "training": asdict(profile.training),
            "evaluation": asdict(profile.evaluation),
            "seeds": list(profile.seeds),
            "extra_train_eps": list(profile.extra_train_eps),
        },  # fmt: skip
        "manifest": manifest,
        "pieces": _provenance(records) if records else {"commits": [], "all_clean": None},
        "results": {name: _summaries(recs) for name, recs in groups.items()},
        "comparisons": comparisons,
        "runs": [_compact(r) for r in records],
    }


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    ev = {k: v for k, v in record["evaluation"].items() if k not in ("per_sample", "robustness")}
    ev["checklist"] = record["evaluation"]["robustness"].get("checklist")
    robustness = record["evaluation"]["robustness"]
    ev["attack_accuracy"] = {"eps": robustness["eps"], **robustness["accuracy"]}  # what a flag is read against
    train = {k: v for k, v in record["train"].items() if k != "provenance"}
    return {"name": record["name"], "seed": record["seed"], "train": train, "evaluation": ev,
            "git": record["provenance"]["git"]}  # fmt: skip


def flag_evidence(run: Mapping[str, Any]) -> list[str]:
    """One sentence per gradient-masking check that fired on a run, with the evidence it rests on.

    A check pits its challenger against the report's PGD (cross-entropy loss); beside it stands the strongest
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
    for check in ev.get("checklist") or []:
        if not check["flagged"]:
            continue
        e, head = check["evidence"], f"{LABELS.get(run['name'], run['name'])}, seed {run['seed']}: {check['name']}"
        if check["name"] == "large_eps":
            lines.append(f"{head}: PGD at eps {e['large_eps']:.3g} leaves {e['pgd']:.3f} of the images correct "
                         f"({e['correct']} of {check['n']}; one-sided exact p = {check['p_value']:.3g}).")  # fmt: skip
            continue
        challenger = next(k for k in e if k not in ("eps", "pgd", "b", "c", "drop", "queries", "strong_iter",
                                                    "strong_restarts"))  # fmt: skip
        name = f"PGD-{e['strong_iter']} x {e['strong_restarts']} starts" if "strong_iter" in e else challenger
        text = (f"{head} at eps {e['eps']:.3g}: {name} {e[challenger]:.3f} against PGD {e['pgd']:.3f} "
                f"({e['b']} images broken by {name} alone, {e['c']} by PGD alone; one-sided exact p = "
                f"{check['p_value']:.3g})")  # fmt: skip
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


def _cell(summary: dict[str, float], digits: int = 3) -> str:
    if summary["n"] < 2:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def _table(payload: dict[str, Any]) -> list[str]:
    eps = _eps_label(payload["dataset"])
    lines = [
        f"| model | seeds | clean | PGD eps {eps['paper']} | worst case eps {eps['paper']} | PGD eps {eps['standard']} "
        f"| worst case eps {eps['standard']} | MoRF gain | LeRF gain | sparseness "
        "| stability (Spearman, unflipped) | flipped by PGD | masking flags | training CPU min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in payload["results"].items():
        cells = [_cell(s[k]) for k in ("clean", "pgd_paper_eps", "worst_case_paper_eps", "pgd_standard_eps",
                                       "worst_case_standard_eps", "morf_gain", "lerf_gain", "sparseness",
                                       "stability_spearman", "stability_flipped")]  # fmt: skip
        label = LABELS.get(name, name)
        lines.append(f"| {label} | {len(s['seeds'])} | {' | '.join(cells)} | {_flags_cell(s)} | {_cost_cell(s)} |")
    return lines


def _readme_table(payload: dict[str, Any]) -> list[str]:
    """The main comparison's models at the paper's eps: what the differences below are differences of."""
    eps = _eps_label(payload["dataset"])["paper"]
    lines = [
        f"| model | seeds | clean | PGD eps {eps} | worst case eps {eps} | gradient-masking flags | training CPU min |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in payload["results"].items():
        if "[" in name:  # a second setting or an ablation: in the full report
            continue
        cells = " | ".join(_cell(s[k]) for k in ("clean", "pgd_paper_eps", "worst_case_paper_eps"))
        lines.append(f"| {LABELS.get(name, name)} | {len(s['seeds'])} | {cells} | {_flags_cell(s)} | {_cost_cell(s)} |")
    return lines


def _cost_cell(summary: dict[str, Any]) -> str:
    """Training CPU minutes over the seeds whose cost is complete, naming the seeds left out."""
    left_out = summary.get("cost_incomplete_seeds", [])
    if not left_out:
        return _cell(summary["train_cpu_minutes"], 1)
    seeds = ", ".join(map(str, left_out))
    note = f"seed {seeds} not counted: its cost is incomplete" if len(left_out) == 1 else f"seeds {seeds} not counted"
    if summary["train_cpu_minutes"] is None:
        return f"unknown ({note})"
    return f"{_cell(summary['train_cpu_minutes'], 1)} ({note})"


def _conclusions(payload: dict[str, Any], keys: Sequence[str]) -> list[str]:
    return [
        f"- {c['verdict']}{per_seed_detail(c)} ({c['meaning']}.)"
        for c in payload["comparisons"]
        if c["quantity"] in keys
    ] or ["- No pair of controls is done yet."]


#: The accuracies the paper's claim is set against, with their short label.
_CLAIM_QUANTITIES = {"pgd_paper_eps": "PGD", "worst_case_paper_eps": "worst case"}


def claim_lines(payload: Mapping[str, Any]) -> list[str]:
    """The paper's claimed gain set against ASGT's difference from each control at the paper's eps.

    One line per control ASGT was compared with (main comparison): the PGD and the worst-case difference, each with
    the interval its verdict rests on and where the claim stands against it (:func:`claim_standing`), reading the
    claim as absolute percentage points.

    :param payload: From :func:`assemble`.
    :return: Markdown lines (none when no comparison of ASGT is done, or the profile makes no claims).
    """
    if not payload["claims"]:
        return []
    claimed, eps = payload["paper"]["claimed_gain"], _eps_label(payload["dataset"])["paper"]
    lines = []
    for a, b, meaning in COMPARISONS:
        if a != "asgt":
            continue
        found = {c["quantity"]: c for c in payload["comparisons"] if (c["a"], c["b"]) == (a, b) and not c["variant"]}
        shown = [(what, *_interval(found[key])) for key, what in _CLAIM_QUANTITIES.items() if key in found]
        parts = []
        for what, interval, p_value in shown:
            e, lo, hi = (100 * v for v in (interval.estimate, interval.low, interval.high))
            span = "no interval" if math.isnan(lo) or math.isnan(hi) else f"[{lo:+.1f}, {hi:+.1f}]"
            parts.append(f"{what} {e:+.1f} {span}: {claim_standing(interval, claimed, p_value=p_value)}")
        if parts:
            sizes = {what: interval.n for what, interval, _ in shown}
            n = (f"n={shown[0][1].n}" if len(set(sizes.values())) == 1
                 else ", ".join(f"n={size} ({what})" for what, size in sizes.items()))  # fmt: skip
            method = f"{shown[0][1].method}, {n}"
            lines.append(f"- ASGT - {LABELS[b]}: {'; '.join(parts)}. ({meaning[0].upper()}{meaning[1:]}; {method}.)")
    if not lines:
        return []
    head = (f"Read as absolute percentage points, the paper's claim (+{claimed:g} at eps {eps}) against each "
            "control, at this budget (95% intervals):")  # fmt: skip
    return [head, "", *lines]


def _paper_line(payload: dict[str, Any]) -> list[str]:
    """The paper's headline figure, and where this report's ASGT comparisons stand beside it (if any is done)."""
    p = payload["paper"]
    claim = f"The paper's headline gain at eps {p['paper_eps']:.3g} is about {p['claimed_gain']:.0f}"
    if not any(c["a"] == "asgt" for c in payload["comparisons"]):
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
        also = f" and the training of {_runs(cost['trained_runs'])} not yet evaluated" if cost.get(
            "trained_runs") else ""  # fmt: skip
        lines.append(f"- Measured: {cost['measured_cpu_hours']:.1f} CPU-hours for {_runs(cost['done_runs'])} done"
                     f"{also} ({cost['measured_training_cpu_hours']:.1f} training, "
                     f"{cost['measured_evaluation_cpu_hours']:.1f} evaluation; one thread per run).")  # fmt: skip
        if cost.get("cost_incomplete"):
            lines.append(f"- Counted only in part: the training cost of {', '.join(cost['cost_incomplete'])} (a "
                         "session ended before recording its epochs); it is left out of the per-model CPU columns, "
                         "the cost figure and the rates of the estimates.")  # fmt: skip
        rest = cost.get("remaining")
        if rest is not None:
            lines.append(f"- {_runs(cost['missing_runs'])} not done: {_hours(rest)} for {rest['estimated_runs']} of "
                         f"them ({rest['note']}).")  # fmt: skip
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
    parts = [f"{'Main comparison' if not v else v}: {s.count('done')} of {len(s)} runs done"
             for v, s in groups.items() if not v or len(s) > 1]  # fmt: skip
    single = [s[0] for v, s in groups.items() if v and len(s) == 1]  # e.g. the ablations, one run per variant
    if single:
        what = "other settings" if parts else "Settings"
        parts.append(f"{what} (one run each): {single.count('done')} of {len(single)} runs done")
    text = "; ".join(parts) + "."
    if not payload["claims"]:
        return text
    if any(status != "done" for status in groups.get("", [])):
        seeds = sorted({r["seed"] for r in payload["runs"]})
        text += (f" **Interim report**: the comparisons rest on the runs done so far (seeds {seeds or 'none'}); "
                 "where one seed is done, their intervals are over test images and say nothing of the spread "
                 "between training seeds.")  # fmt: skip
    elif pending := [v for v, s in groups.items() if v and len(s) > 1 and any(x != "done" for x in s)]:
        text += (f" The main comparison is complete; **interim for {', '.join(pending)}**: its comparisons rest on "
                 "the runs done so far.")  # fmt: skip
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
    eps = _eps_label(payload["dataset"])
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

    :param payload: From :func:`assemble`.
    :param path: Write the markdown here when given.
    :return: The markdown.
    """
    run, pieces, m = payload["run"], payload["pieces"], payload["manifest"]["counts"]
    eps = _eps_label(payload["dataset"])
    names = ", ".join(LABELS.get(n, n) for n in payload["results"]) or "no run done yet"
    lines = [f"# {payload['dataset']} / {payload['profile']}: {names}", ""]
    if not payload["claims"]:
        lines += ["**Smoke test: this profile makes no claims.** Its models are far from trained; the numbers only "
                  "show that the pipeline runs end to end.", ""]  # fmt: skip
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
        "Mean ± standard deviation over seeds. Clean and PGD columns: ART PGD on the first "
        f"{payload['recipe']['evaluation']['n_eval']} test images; worst case (per-sample minimum over the robustness "
        f"report's attacks, budget '{payload['recipe']['evaluation']['budget']}'), saliency columns: the first "
        f"{payload['recipe']['evaluation']['n_report']}. Masking areas use the "
        f"'{payload['recipe']['evaluation']['masking_fill']}' fill; a gain is the area between the random-order curve "
        "and the MoRF (LeRF) curve divided by the accuracy before masking (higher: more faithful). Stability: "
        f"Spearman of the maps under PGD at eps {eps['paper']}, over the samples whose prediction did not flip. "
        f"The worst case at eps {eps['paper']} also counts the gradient-masking checklist's attacks, run at that eps "
        "only (PGD with more iterations and restarts, FGSM and, for every model but the standard one, PGD "
        "transferred from the standard model of the same seed), so it is a stronger attack than at the other eps "
        "(the accuracy-vs-eps figure marks it).",
        "",
        *_flags_section(payload),
        *_comparison_sections(payload),
        *_costs(payload),
    ]
    text = "\n".join(lines)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return text


_TABLE_NOTE = (
    "Mean ± standard deviation over seeds. Clean and PGD accuracy on the first {n_eval} test images, the worst "
    "case on the first {n_report} (so it can exceed the PGD column). The worst case counts a test image as robust "
    "only if every attack fails on it (APGD-CE, APGD-DLR, APGD-T, Square, PGD with restarts, and at this eps the "
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

    :param payloads: From :func:`assemble` (or the JSON files ``art-sgt reproduce`` writes).
    :return: Markdown, starting with the section heading.
    """
    lines = ["## Does the paper's claim hold?", ""]
    for p in payloads:
        lines += [f"### {p['dataset']}, {p['profile']} profile", "", f"{p['label']}.", "", _progress(p), ""]
        if not p["claims"]:
            lines += ["This profile is a smoke test and makes no claims.", ""]
        else:
            keys = ("worst_case_paper_eps", "pgd_paper_eps")
            verdicts = [f"- {c['verdict']}{per_seed_detail(c)}" for c in p["comparisons"]
                        if c["a"] == "asgt" and c["quantity"] in keys and not c["variant"]]  # fmt: skip
            maps = [f"- {c['verdict']}" for c in p["comparisons"]
                    if (c["a"], c["b"]) == ("asgt", "mixed_at") and c["quantity"] in SALIENCY_QUANTITIES
                    and not c["variant"]]  # fmt: skip
            if maps:
                verdicts += ["", "The saliency term's effect on the maps (ASGT - mixed AT, over seeds):", "", *maps]
            none = "- No comparison of ASGT with a control is done yet."
            note = _TABLE_NOTE.format(**p["recipe"]["evaluation"])
            table = [*_readme_table(p), "", note, ""] if p["results"] else []
            detail = ["The differences in detail:", "", *verdicts]
            lines += [*table, *_paper_line(p), "", *detail, ""] if verdicts else [*table, none, ""]
        cost = _cost_lines(p)
        lines += ["CPU time:", "", *cost, ""] if cost else []
    return "\n".join(lines).rstrip() + "\n"


def cost_summary(records: Sequence[dict[str, Any]], missing: Sequence[RunSpec], cores: int = 2,
                 trained: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:  # fmt: skip
    """The CPU time spent so far (what a run reused from a twin is not counted again), and an estimate for the
    runs not done.

    :param records: Cached records of the runs done.
    :param missing: The runs not done yet; those whose model has no measured run are left out of the estimate
        and named (see :func:`estimate_cost` with ``partial=True``).
    :param cores: Cores available, one run per core.
    :param trained: Training records of runs trained but not evaluated yet (:meth:`RunCache.train_record`): their
        training counts as spent, their training rate as measured, and only their evaluation is estimated, less
        the CPU seconds of the evaluation stages they kept (counted as spent).
    :return: ``{"done_runs", "trained_runs", "measured_training_cpu_hours", "measured_evaluation_cpu_hours",
        "measured_cpu_hours", "missing_runs", "cost_incomplete", "remaining"}``; ``cost_incomplete`` names the
        runs whose training cost is counted only in part (:func:`training_cost_complete`); ``remaining`` is absent
        when nothing is missing.
    """
    own = [r for r in [*records, *trained] if not r["train"].get("reused_from")]  # a twin's weights cost nothing
    training = sum(float(r["train"]["cpu_seconds"]) for r in own) / 3600
    own = [r for r in records if not r.get("reused_from")]
    spent = {f"{t['name']},{t['seed']}": float(t.get("evaluation_kept_cpu_seconds", 0.0)) for t in trained}
    evaluation = (sum(sum(r["evaluation"].get("cpu_seconds", {}).values()) for r in own) + sum(spent.values())) / 3600
    out: dict[str, Any] = {
        "done_runs": len(records), "trained_runs": len(trained), "measured_training_cpu_hours": training,
        "measured_evaluation_cpu_hours": evaluation, "measured_cpu_hours": training + evaluation,
        "missing_runs": len(missing),
        "cost_incomplete": [f"{r['name']},{r['seed']}" for r in [*records, *trained]
                            if not training_cost_complete(r["train"])],
    }  # fmt: skip
    if missing:
        names = [f"{r['name']},{r['seed']}" for r in trained]
        out["remaining"] = estimate_cost([*records, *trained], missing, cores, trained=names, partial=True,
                                         spent=spent)  # fmt: skip
    return out


def attack_units(dataset: str, evaluation: dict[str, Any]) -> dict[str, float]:
    """Work of each evaluation stage, in image x forward-backward passes (a Square query counts 1/3: forward only).

    The robustness report's budget is its preset (:data:`art_sgt.evaluation.robustness.BUDGETS`) with the
    recipe's explicit arguments applied over it.

    :param dataset: ``"mnist"`` or ``"cifar10"`` (the paper's and the standard eps join the grid).
    :param evaluation: An :class:`EvaluationRecipe` as a dictionary.
    :return: ``{"pgd": ..., "report": ..., "saliency": ...}``.
    """
    from art_sgt.evaluation.robustness import BUDGETS

    b = {**BUDGETS[evaluation["budget"]], **dict(map(tuple, evaluation["report_kwargs"]))}
    eps = {*evaluation["report_eps"], PAPER[dataset]["paper_eps"], PAPER[dataset]["standard_eps"]}
    pgd = b["pgd_max_iter"] * max(1, b["pgd_restarts"])
    apgd = b["apgd_max_iter"] * b["apgd_restarts"] * (2 + b["apgd_targets"])  # APGD-CE, APGD-DLR, APGD-T per target
    per_eps = pgd + apgd + b["square_max_iter"] * b["square_restarts"] / 3
    checklist = b["strong_factor"] * b["pgd_max_iter"] * (b["pgd_restarts"] + 1) + b["large_eps_iter"] + 2 * pgd + 1
    return {
        "pgd": evaluation["n_eval"] * 2 * evaluation["pgd_iter"] * max(1, evaluation["pgd_restarts"]),
        "report": evaluation["n_report"] * (len(eps) * per_eps + checklist),
        "saliency": evaluation["n_report"] * (1 + evaluation["stability_iter"]),
    }


def estimate_cost(measured: Sequence[dict[str, Any]], runs: Sequence[RunSpec], cores: int = 2,
                  trained: Sequence[str] = (), partial: bool = False,
                  spent: Mapping[str, float] | None = None) -> dict[str, Any]:  # fmt: skip
    """Estimate the CPU time of ``runs`` from measured records of the same architectures.

    Training: proportional to images x epochs, at the CPU seconds per image-epoch of the measured runs of that
    model (mean over them). Evaluation (when the records hold per-stage CPU seconds): proportional to
    :func:`attack_units`, at the measured CPU seconds per unit of the same model, else (``partial``) of the
    measured models of the same kind (adversarially trained or not) and architecture, else of the architecture;
    attacks stop early on samples already misclassified, so a rate measured on a weak model underestimates the cost
    for a robust one. The wall time assumes ``cores`` pieces run side by side, one thread each. It is an estimate,
    and says so.

    :param measured: Cached records (e.g. of the quick profile); records with a ``train`` log and no evaluation
        count for the training rate only, and a training cost counted only in part
        (:func:`training_cost_complete`) for none.
    :param runs: The runs to estimate (e.g. the standard profile's recipe).
    :param cores: Cores available.
    :param trained: ``"name,seed"`` of the runs whose training is done: only their evaluation is estimated.
    :param partial: Instead of raising, leave out the runs whose model has no measured training (listed under
        ``not_estimated``), and estimate an evaluation from the measured evaluations of the same kind, then of the
        same architecture, when its model has none.
    :param spent: ``{"name,seed": CPU seconds}`` already spent on a run's evaluation (its kept stages), taken off
        its estimate.
    :return: ``{"training_cpu_hours", "evaluation_cpu_hours", "cpu_hours", "wall_hours_on_cores",
        "not_estimated", ...}``.
    :raises ValueError: If a model of ``runs`` has no measured run of the same architecture (unless ``partial``).
    """
    train_rate: dict[tuple[str, str], list[float]] = {}
    eval_rate: dict[tuple[str, str], list[dict[str, float]]] = {}
    for r in measured:
        t, key = r["training_config"]["training"], (r["model"], r["training_config"]["training"]["arch"])
        if training_cost_complete(r["train"]):
            train_rate.setdefault(key, []).append(r["train"]["cpu_seconds"] / (t["n_train"] * t["epochs"]))
        if "cpu_seconds" in r.get("evaluation", {}):
            units = attack_units(r["dataset"], r["evaluation_config"]["evaluation"])
            eval_rate.setdefault(key, []).append({k: r["evaluation"]["cpu_seconds"][k] / units[k] for k in units})
    by_arch: dict[str, list[dict[str, float]]] = {}
    by_kind: dict[tuple[bool, str], list[dict[str, float]]] = {}
    for (model, arch), rates in eval_rate.items():
        by_arch.setdefault(arch, []).extend(rates)
        by_kind.setdefault((model in ADVERSARIAL, arch), []).extend(rates)
    training = evaluation = 0.0
    not_estimated = []
    for spec in runs:
        key = (spec.model, spec.training.arch)
        if f"{spec.name},{spec.seed}" not in trained:
            if key not in train_rate:
                if not partial:
                    raise ValueError(f"measured must hold a run of {key[0]} on {key[1]} to estimate {spec.name}.")
                not_estimated.append(f"{spec.name},{spec.seed}")
                continue
            training += float(np.mean(train_rate[key])) * spec.training.n_train * spec.training.epochs
        rates = eval_rate.get(key)
        if partial and not rates:
            arch = spec.training.arch
            rates = by_kind.get((spec.model in ADVERSARIAL, arch)) or by_arch.get(arch)
        if rates:
            units = attack_units(spec.dataset, asdict(spec.evaluation))
            estimate = sum(float(np.mean([rate[k] for rate in rates])) * units[k] for k in units)
            evaluation += max(0.0, estimate - (spent or {}).get(f"{spec.name},{spec.seed}", 0.0))
    total = training + evaluation
    return {
        "per_model_cpu_seconds_per_image_epoch": {f"{m} ({a})": float(np.mean(v)) for (m, a), v in train_rate.items()},
        "training_cpu_hours": training / 3600,
        "evaluation_cpu_hours": evaluation / 3600,
        "cpu_hours": total / 3600,
        "wall_hours_on_cores": total / 3600 / cores,
        "cores": cores,
        "estimated_runs": len(runs) - len(not_estimated),
        "not_estimated": not_estimated,
        "note": "extrapolated from the measured runs, linear in images x epochs and in attack iterations x images; "
        "attacks stop early on the images a model already gets wrong, so a rate measured on a less robust model "
        "than the one estimated (e.g. a quick-profile model) underestimates its evaluation",
    }
