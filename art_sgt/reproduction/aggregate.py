"""From a study's runs to its report payload: per-model summaries over seeds and paired comparisons.

:func:`assemble` reads the cached records of a profile's runs (:class:`~art_sgt.reproduction.records.TrainedRun`)
and returns the report's JSON payload; every number in it is read from the records or computed from them by
:mod:`art_sgt.reproduction.statistics`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from art_sgt.reproduction.recipe import LABELS, PAPER, Profile
from art_sgt.reproduction.records import Comparison, Evaluation, ModelSummary, SeedComparison, TrainedRun
from art_sgt.reproduction.statistics import (
    Interval,
    difference_interval,
    mcnemar_exact,
    paired_bootstrap,
    seed_summary,
    verdict,
)

__all__ = ["QUANTITIES", "SALIENCY_QUANTITIES", "COMPARISONS", "eps_labels", "assemble"]

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


def _runs(records: Iterable[Mapping[str, Any] | TrainedRun]) -> list[TrainedRun]:
    """Runs from cached records, read with :meth:`TrainedRun.from_payload` where they are still payloads.

    :param records: Records (``evaluation.json`` contents, training records) or runs.
    :return: The runs, in order.
    """
    return [r if isinstance(r, TrainedRun) else TrainedRun.from_payload(r) for r in records]


def eps_labels(dataset: str) -> dict[str, str]:
    """The paper's and the standard eps of a dataset, as the report prints them.

    :param dataset: ``"mnist"`` or ``"cifar10"``.
    :return: ``{"paper": ..., "standard": ...}``.

    >>> eps_labels("mnist")
    {'paper': '0.2', 'standard': '0.3'}
    """
    return {k.split("_")[0]: f"{v:.3g}" for k, v in PAPER[dataset].items() if k.endswith("eps")}


def _value(run: TrainedRun, key: str) -> float:
    return _evaluation(run).value(key)


def _evaluation(run: TrainedRun) -> Evaluation:
    if run.evaluation is None:
        raise ValueError(f"run {run.key} is not evaluated: a report summarises evaluated runs only.")
    return run.evaluation


def _summaries(runs: Sequence[TrainedRun]) -> ModelSummary:
    """One model's summary over its seeds: each quantity's mean and spread, training cost, curve and flags."""
    keys = (*QUANTITIES, *SALIENCY_QUANTITIES, "stability_flipped")
    costed = [r for r in runs if r.train.cost_complete]  # the others' cost is only in part
    minutes = [r.train.cpu_seconds / 60 for r in costed]
    per_epoch = [r.train.cpu_seconds_per_epoch / 60 for r in costed]
    flags = sorted({f for r in runs for f in _evaluation(r).flags})
    return ModelSummary(
        seeds=tuple(r.seed for r in runs),
        quantities={k: seed_summary([_value(r, k) for r in runs]) for k in keys},
        flags=tuple(flags),
        flag_seeds={f: tuple(r.seed for r in runs if f in _evaluation(r).flags) for f in flags},
        cost_incomplete_seeds=tuple(r.seed for r in runs if not r.train.cost_complete),
        train_cpu_minutes=seed_summary(minutes) if costed else None,
        train_cpu_minutes_per_epoch=seed_summary(per_epoch) if costed else None,
        worst_case_eps=(0.0, *_evaluation(runs[0]).worst_case_eps),  # eps 0: clean accuracy on the same images
        worst_case_per_seed=tuple(tuple(_evaluation(r).worst_case_curve) for r in runs),
    )


def _compare(
    a: Sequence[TrainedRun], b: Sequence[TrainedRun], key: str
) -> tuple[Interval, list[SeedComparison]] | None:
    """The across-seed t interval (seeds present in both, the quantity defined for both) and per seed the McNemar
    test and paired bootstrap where per-image outcomes are kept; ``None`` when no seed pairs."""
    by_seed = {r.seed: r for r in b}
    pairs = [(x, by_seed[x.seed]) for x in a if x.seed in by_seed]
    pairs = [(x, y) for x, y in pairs if not (math.isnan(_value(x, key)) or math.isnan(_value(y, key)))]
    if not pairs:
        return None
    across = difference_interval([_value(x, key) for x, _ in pairs], [_value(y, key) for _, y in pairs])
    per_seed = []
    for x, y in pairs:
        cx, cy = _evaluation(x).outcomes(key), _evaluation(y).outcomes(key)
        if cx is None or cy is None:
            continue
        per_seed.append(SeedComparison(x.seed, mcnemar_exact(cx, cy), paired_bootstrap(cx, cy, seed=x.seed)))
    return across, per_seed


def _comparisons(
    profile: Profile, runs: Sequence[TrainedRun], groups: Mapping[str, list[TrainedRun]]
) -> list[Comparison]:
    """Every comparison of :data:`COMPARISONS` on every quantity, for the main comparison then each setting."""
    found = []
    for variant in dict.fromkeys(r.variant for r in runs):
        suffix = f"[{variant}]" if variant else ""
        for a, b, meaning in COMPARISONS:
            if a + suffix not in groups or b + suffix not in groups:
                continue
            if not {r.seed for r in groups[a + suffix]} & {r.seed for r in groups[b + suffix]}:
                continue  # no seed done for both: nothing is paired yet
            for key, label in {**QUANTITIES, **SALIENCY_QUANTITIES}.items():
                paired = _compare(groups[a + suffix], groups[b + suffix], key)
                if paired is None:
                    continue  # e.g. a stability undefined (every prediction flipped) on every shared seed
                what = label.format(**eps_labels(profile.dataset)) + (f" ({variant})" if variant else "")
                comparison = Comparison(a, b, variant, key, meaning, "", paired[0], tuple(paired[1]))
                interval, p_value = comparison.verdict_interval()
                scale: dict[str, Any] = dict(scale=1.0, unit="", digits=3) if key in SALIENCY_QUANTITIES else {}
                sentence = verdict(
                    interval, LABELS[a], LABELS[b], what, claims=profile.claims, p_value=p_value, **scale
                )
                found.append(replace(comparison, verdict=sentence))
    return found


def _provenance(runs: Sequence[TrainedRun]) -> dict[str, Any]:
    """The commits behind every piece of work of the runs, and whether each ran from a clean tree."""
    if not runs:
        return {"commits": [], "all_clean": None}
    states = [g for r in runs for g in r.code_states()]
    return {"commits": sorted({str(g["commit"]) for g in states}), "all_clean": all(g["clean"] is True for g in states)}


def _compact(run: TrainedRun) -> dict[str, Any]:
    """A run as the report lists it: the stored evaluation and training log without the per-image outcomes, the
    robustness report (its checklist and per-attack accuracies kept: what a flag is read against) and the
    provenance."""
    stored = _evaluation(run).payload
    evaluation = {k: v for k, v in stored.items() if k not in ("per_sample", "robustness")}
    evaluation["checklist"] = stored["robustness"].get("checklist")
    evaluation["attack_accuracy"] = {"eps": stored["robustness"]["eps"], **stored["robustness"]["accuracy"]}
    train = {k: v for k, v in run.train.payload.items() if k != "provenance"}
    return {"name": run.name, "seed": run.seed, "train": train, "evaluation": evaluation, "git": run.git}


def assemble(
    profile: Profile,
    records: Sequence[Mapping[str, Any] | TrainedRun],
    manifest: dict[str, Any],
    run: dict[str, Any],
) -> dict[str, Any]:
    """The report's JSON payload, from the cached records of a profile's runs.

    :param profile: The profile.
    :param records: The cached records of its runs that are done, in recipe order, as read from the cache
        (:meth:`~art_sgt.reproduction.RunCache.records`) or as :class:`~art_sgt.reproduction.records.TrainedRun`.
    :param manifest: The cache manifest of ``runs``.
    :param run: Provenance of the assembly (:func:`art_sgt.provenance.run_info`).
    :return: The payload.
    """
    runs = _runs(records)
    groups: dict[str, list[TrainedRun]] = {}
    for r in runs:
        groups.setdefault(r.name, []).append(r)
    return {
        "dataset": profile.dataset,
        "profile": runs[0].profile if runs else profile.name,
        "label": profile.label,
        "claims": profile.claims,
        "paper": PAPER[profile.dataset],
        "run": run,
        "recipe": {
            "training": asdict(profile.training),
            "evaluation": asdict(profile.evaluation),
            "seeds": list(profile.seeds),
            "extra_train_eps": list(profile.extra_train_eps),
        },
        "manifest": manifest,
        "pieces": _provenance(runs),
        "results": {name: _summaries(group).to_payload() for name, group in groups.items()},
        "comparisons": [c.to_payload() for c in _comparisons(profile, runs, groups)],
        "runs": [_compact(r) for r in runs],
    }
