"""The screening of the saliency-guided objectives: per-variant summaries and the pre-registered selection rule.

The screening (:func:`art_sgt.reproduction.screening_runs`, the ``screening`` profile) trains every candidate and
control of :data:`~art_sgt.reproduction.recipe.SCREENING` with two seeds and evaluates each at eps 0.3. This module
reads the runs' records, summarises each variant over its seeds, and applies
:data:`~art_sgt.reproduction.recipe.SCREENING_RULE` (:func:`choose`) to name the variants of the decisive study.
Two seeds rank the variants; they do not make a claim, and the outputs say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from art_sgt.reproduction.recipe import LABELS, SCREENING_CONTROLS, SCREENING_RULE
from art_sgt.reproduction.records import TrainedRun

__all__ = ["MAP_METRICS", "run_numbers", "summarise", "choose", "screening_payload", "write_markdown"]

#: The map qualities the rule counts, each higher-is-better: the masking curve's MoRF gain over the random
#: control, the maps' Gini sparseness, and their Spearman stability under PGD.
MAP_METRICS = ("morf_gain", "sparseness", "stability")

#: How far below the best control's worst case (in accuracy, 3 points) a candidate may fall and stay eligible.
ELIGIBLE_MARGIN = 0.03


def run_numbers(run: TrainedRun) -> dict[str, Any]:
    """The numbers of one evaluated run that the screening compares.

    :param run: An evaluated run (:meth:`TrainedRun.from_payload <art_sgt.reproduction.records.TrainedRun.from_payload>`
        of a record of :func:`~art_sgt.reproduction.run_pieces`).
    :return: ``{"name", "seed", "clean", "pgd", "worst_case", "morf_gain", "lerf_gain", "sparseness",
        "stability", "flags", "train_cpu_seconds", "train_threads", "eval_cpu_seconds"}`` (accuracies and gains as
        fractions; ``train_threads``: torch's threads while training, ``None`` where not recorded: CPU seconds on
        two threads are not those of one).
    :raises ValueError: If the run is not evaluated.
    """
    ev = run.evaluation
    if ev is None:
        raise ValueError(f"run must be evaluated, got {run.key} trained only.")
    return {
        "name": run.name,
        "seed": run.seed,
        "clean": ev.value("clean"),
        "pgd": ev.value("pgd_standard_eps"),
        "worst_case": ev.value("worst_case_standard_eps"),
        **{key: ev.value(key) for key in ("morf_gain", "lerf_gain", "sparseness")},
        "stability": ev.value("stability_spearman"),
        "flags": list(ev.flags),
        "train_cpu_seconds": run.train.cpu_seconds,
        "train_threads": run.train.payload.get("torch_threads"),
        "eval_cpu_seconds": round(sum((ev.cpu_seconds or {}).values()), 2),
    }


def _seed_mean(values: Sequence[float]) -> float:
    """The mean over seeds of the defined values (a map stability is undefined where every prediction flipped);
    NaN when none is, and a NaN never beats a control in :func:`choose`."""
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def summarise(records: Sequence[Mapping[str, Any] | TrainedRun]) -> dict[str, dict[str, Any]]:
    """Per variant: its runs' numbers and their means over seeds.

    :param records: Evaluated runs, or their records as the run cache holds them.
    :return: ``{variant name: {"seeds", "mean": {quantity: mean}, "flags": {seed: flags}, "runs": [...]}}``.
    """
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        numbers = run_numbers(record if isinstance(record, TrainedRun) else TrainedRun.from_payload(record))
        by_name.setdefault(numbers["name"], []).append(numbers)
    out = {}
    for name, runs in by_name.items():
        runs.sort(key=lambda r: r["seed"])
        keys = ("clean", "pgd", "worst_case", "morf_gain", "lerf_gain", "sparseness", "stability", "train_cpu_seconds")
        out[name] = {
            "seeds": [r["seed"] for r in runs],
            "mean": {k: _seed_mean([r[k] for r in runs]) for k in keys},
            "flags": {str(r["seed"]): r["flags"] for r in runs},
            "runs": runs,
        }
    return out


def choose(
    summary: Mapping[str, Mapping[str, Any]], controls: Sequence[str] = SCREENING_CONTROLS, n_chosen: int = 2
) -> dict[str, Any]:
    """Apply :data:`~art_sgt.reproduction.recipe.SCREENING_RULE` to a :func:`summarise` result.

    :param summary: Per-variant summaries, holding every control of ``controls`` and at least one candidate.
    :param controls: The control variants' names.
    :param n_chosen: How many eligible candidates go to the decisive study.
    :return: ``{"best_control", "candidates": {name: {"difference", "eligible", "map_wins", "flagged"}},
        "chosen": [names], "passed": bool}`` (``passed``: at least one candidate was eligible).
    :raises ValueError: If a control or every candidate is missing.

    >>> def variant(wc, morf, sparse, stab, flags=()):
    ...     mean = {"worst_case": wc, "morf_gain": morf, "sparseness": sparse, "stability": stab}
    ...     return {"mean": mean, "flags": {"0": list(flags)}}
    >>> summary = {"ctl": variant(0.80, 0.4, 0.5, 0.7), "a": variant(0.78, 0.5, 0.6, 0.6),
    ...            "b": variant(0.70, 0.9, 0.9, 0.9), "c": variant(0.81, 0.3, 0.4, 0.8, ["black_box"])}
    >>> result = choose(summary, controls=("ctl",))
    >>> result["chosen"], result["passed"], result["candidates"]["a"]["map_wins"]
    (['a'], True, 2)
    """
    missing = [c for c in controls if c not in summary]
    if missing:
        raise ValueError(f"summary must hold every control, missing {missing}.")
    candidates = [name for name in summary if name not in controls]
    if not candidates:
        raise ValueError("summary must hold at least one candidate besides the controls.")
    best = max(controls, key=lambda c: summary[c]["mean"]["worst_case"])
    reference = summary[best]["mean"]
    table = {}
    for name in candidates:
        mean = summary[name]["mean"]
        flagged = any(summary[name]["flags"].values())
        difference = mean["worst_case"] - reference["worst_case"]
        table[name] = {
            "difference": difference,
            "flagged": flagged,
            "eligible": difference >= -ELIGIBLE_MARGIN - 1e-12 and not flagged,
            "map_wins": int(sum(mean[k] > reference[k] for k in MAP_METRICS)),
        }
    eligible = sorted(
        (n for n in candidates if table[n]["eligible"]), key=lambda n: (-table[n]["map_wins"], -table[n]["difference"])
    )
    chosen = eligible[:n_chosen] or [max(candidates, key=lambda n: table[n]["difference"])]
    return {"best_control": best, "candidates": table, "chosen": chosen, "passed": bool(eligible)}


def screening_payload(
    records: Sequence[Mapping[str, Any] | TrainedRun], label: str, variants: Sequence[str], seeds: Sequence[int]
) -> dict[str, Any]:
    """The screening's JSON payload: the rule, the per-variant summaries and what the rule chose.

    :param records: The evaluated runs' records (any subset of the screening's).
    :param label: The profile's label.
    :param variants: The names of every variant of the screening (:attr:`RunSpec.name
        <art_sgt.reproduction.RunSpec.name>`).
    :param seeds: The screening's seeds.
    :return: ``{"label", "rule", "variants", "expected", "selection"}``; ``selection`` is ``None`` until every
        variant has every seed, the rule being stated over both seeds.
    """
    summary = summarise(records)
    complete = set(summary) == set(variants) and all(v["seeds"] == sorted(seeds) for v in summary.values())
    return {
        "label": label,
        "rule": SCREENING_RULE,
        "variants": summary,
        "expected": {"variants": list(variants), "seeds": sorted(seeds)},
        "selection": choose(summary) if complete else None,
    }


def _label(name: str) -> str:
    model, _, variant = name.partition("[")
    return LABELS.get(model, model) + (f" [{variant}" if variant else "")


def _threads(runs: Sequence[Mapping[str, Any]]) -> str:
    """The torch threads the runs trained on, e.g. ``"1"`` or ``"2, 1"`` (``"?"`` where not recorded)."""
    return ", ".join(dict.fromkeys(str(r.get("train_threads") or "?") for r in runs))


def write_markdown(payload: Mapping[str, Any], path: str | Path) -> str:
    """Write the screening's markdown table (seed means) and the rule's outcome to ``path``.

    :param payload: :func:`screening_payload`'s result.
    :param path: The markdown file.
    :return: The markdown.
    """
    variants = payload["variants"]
    expected = len(payload["expected"]["variants"])
    seeds = ", ".join(map(str, payload["expected"]["seeds"]))
    lines = [
        "# MNIST screening of saliency-guided objectives",
        "",
        payload["label"] + ".",
        "",
        f"{len(variants)} of {expected} variants evaluated (seeds {seeds} wanted). Seed means (two seeds rank "
        "the variants for the decisive study; they make no claim).",
        "",
        "| variant | seeds | clean | PGD-40 eps 0.3 | worst case eps 0.3 | MoRF gain | LeRF gain | sparseness "
        "| stability | flags | train CPU min (threads) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in variants.items():
        m = v["mean"]
        flags = "; ".join(f"seed {s}: {', '.join(f)}" for s, f in v["flags"].items() if f) or "none"
        lines.append(
            f"| {_label(name)} | {','.join(map(str, v['seeds']))} | {m['clean']:.3f} | {m['pgd']:.3f} "
            f"| {m['worst_case']:.3f} | {m['morf_gain']:.3f} | {m['lerf_gain']:.3f} | {m['sparseness']:.3f} "
            f"| {m['stability']:.3f} | {flags} | {m['train_cpu_seconds'] / 60:.1f} ({_threads(v['runs'])}) |"
        )
    lines += ["", "Rule, fixed before the runs were evaluated: " + payload["rule"], ""]
    selection = payload["selection"]
    if selection is None:
        lines.append("The rule is applied once every variant has both seeds.")
    else:
        outcome = "passed" if selection["passed"] else "no candidate was eligible; the best worst case goes on"
        lines.append(
            f"Best control: {_label(selection['best_control'])}. Chosen for the decisive study: "
            f"{', '.join(map(_label, selection['chosen']))} ({outcome})."
        )
    text = "\n".join(lines) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    return text
