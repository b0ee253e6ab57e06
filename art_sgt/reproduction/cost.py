"""The CPU cost of a study: what its runs cost, and an estimate, from measured runs, for the runs not done.

Training is costed per image-epoch of the same model and architecture; an evaluation per unit of attack work
(:func:`attack_units`: images x forward-backward passes) of the same model, else of the same kind of model
(adversarially trained or not) and architecture, else of the architecture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from art_sgt.reproduction.recipe import ADVERSARIAL, PAPER, RunSpec
from art_sgt.reproduction.records import RunCost, TrainedRun, TrainLog

__all__ = ["attack_budget", "attack_units", "training_cost_complete", "estimate_cost", "cost_summary"]


def _costs(records: Sequence[Mapping[str, Any] | TrainedRun | RunCost]) -> list[RunCost]:
    """The cost side of each record (:meth:`RunCost.from_payload <art_sgt.reproduction.records.RunCost.from_payload>`
    for a record still a payload)."""
    return [
        r.cost if isinstance(r, TrainedRun) else r if isinstance(r, RunCost) else RunCost.from_payload(r)
        for r in records
    ]


def attack_budget(name: str, overrides: Mapping[str, Any]) -> Any:
    """The robustness report's budget preset ``name`` with ``overrides`` applied over it, fields as attributes.

    :param name: A preset of :meth:`art_sgt.evaluation.AttackBudget.preset`.
    :param overrides: Budget fields (an evaluation recipe's ``report_kwargs``).
    :return: The budget (``pgd_max_iter``, ``apgd_restarts``, ...).
    """
    from art_sgt.evaluation import AttackBudget

    return AttackBudget.preset(name).replace(**overrides)


def attack_units(dataset: str, evaluation: Mapping[str, Any]) -> dict[str, float]:
    """Work of each evaluation stage, in image x forward-backward passes (a Square query counts 1/3: forward only).

    :param dataset: ``"mnist"`` or ``"cifar10"`` (the paper's and the standard eps join the grid).
    :param evaluation: An :class:`~art_sgt.reproduction.recipe.EvaluationRecipe` as a dictionary.
    :return: ``{"pgd": ..., "report": ..., "saliency": ...}``.
    """
    b = attack_budget(evaluation["budget"], dict(map(tuple, evaluation["report_kwargs"])))
    radii = evaluation.get("eps_keys", ("paper_eps", "standard_eps"))  # absent: the recipe's default, both
    eps = {*evaluation["report_eps"], *(PAPER[dataset][key] for key in radii)}
    pgd = b.pgd_max_iter * max(1, b.pgd_restarts)
    apgd = b.apgd_max_iter * b.apgd_restarts
    per_attack = {
        "pgd": pgd,
        "apgd-ce": apgd,
        "apgd-dlr": apgd,
        "apgd-t": apgd * b.apgd_targets,
        "fab-t": 2 * b.fab_max_iter * b.apgd_targets,  # about two evaluations per FAB step and target
        "square": b.square_max_iter * b.square_restarts / 3,
    }
    per_eps = sum(per_attack[name] for name in b.attacks)
    checklist = b.strong_factor * b.pgd_max_iter * (b.pgd_restarts + 1) + b.large_eps_iter + 2 * pgd + 1
    n_saliency = evaluation.get("n_saliency") or evaluation["n_report"]
    return {
        "pgd": evaluation["n_eval"] * len(radii) * evaluation["pgd_iter"] * max(1, evaluation["pgd_restarts"]),
        "report": evaluation["n_report"] * (len(eps) * per_eps + checklist),
        "saliency": n_saliency * (1 + evaluation["stability_iter"]),
    }


def training_cost_complete(train: Mapping[str, Any] | TrainLog) -> bool:
    """Whether a training log's CPU seconds count every epoch it trained (:attr:`TrainLog.cost_complete
    <art_sgt.reproduction.records.TrainLog.cost_complete>`).

    :param train: A training log (``train_log.json``, with its ``history`` of epochs), or one read.
    :return: ``False`` when the epochs' wall seconds exceed the counted wall seconds by more than one second;
        ``True`` for a log without wall seconds, which cannot show it.

    >>> training_cost_complete({"cpu_seconds": 60.0, "cpu_seconds_per_epoch": 30.0, "wall_seconds": 30.5,
    ...                         "history": [{"seconds": 10.0}, {"seconds": 20.0}]})
    True
    >>> training_cost_complete({"cpu_seconds": 60.0, "cpu_seconds_per_epoch": 30.0, "wall_seconds": 20.5,
    ...                         "history": [{"seconds": 10.0}, {"seconds": 20.0}]})
    False
    """
    return (train if isinstance(train, TrainLog) else TrainLog.from_payload(train)).cost_complete


def cost_summary(
    records: Sequence[Mapping[str, Any] | TrainedRun | RunCost],
    missing: Sequence[RunSpec],
    cores: int = 2,
    trained: Sequence[Mapping[str, Any] | TrainedRun | RunCost] = (),
) -> dict[str, Any]:
    """The CPU time spent so far (what a run reused from a twin is not counted again), and an estimate for the
    runs not done.

    :param records: Cached records of the runs done.
    :param missing: The runs not done yet; those whose model has no measured run are left out of the estimate
        and named (see :func:`estimate_cost` with ``partial=True``).
    :param cores: Cores available, one run per core.
    :param trained: Training records of runs trained but not evaluated yet
        (:meth:`~art_sgt.reproduction.RunCache.train_record`): their training counts as spent, their
        training rate as measured, and only their evaluation is estimated, less the CPU seconds of the evaluation
        stages they kept (counted as spent).
    :return: ``{"done_runs", "trained_runs", "measured_training_cpu_hours", "measured_evaluation_cpu_hours",
        "measured_cpu_hours", "missing_runs", "cost_incomplete", "remaining"}``; ``cost_incomplete`` names the
        runs whose training cost is counted only in part (:func:`training_cost_complete`); ``remaining`` is absent
        when nothing is missing.
    """
    done, pending = _costs(records), _costs(trained)
    own = [r for r in [*done, *pending] if not r.train.reused_from]  # a twin's weights cost nothing
    training = sum(r.train.cpu_seconds for r in own) / 3600
    spent = {t.key: t.kept_evaluation_cpu_seconds for t in pending}
    stages = [r.evaluation_cpu_seconds or {} for r in done if not r.reused_from]
    evaluation = (sum(sum(seconds.values()) for seconds in stages) + sum(spent.values())) / 3600
    out: dict[str, Any] = {
        "done_runs": len(done),
        "trained_runs": len(pending),
        "measured_training_cpu_hours": training,
        "measured_evaluation_cpu_hours": evaluation,
        "measured_cpu_hours": training + evaluation,
        "missing_runs": len(missing),
        "cost_incomplete": [r.key for r in [*done, *pending] if not r.train.cost_complete],
    }
    if missing:
        names = [t.key for t in pending]
        out["remaining"] = estimate_cost([*done, *pending], missing, cores, trained=names, partial=True, spent=spent)
    return out


def _rates(
    measured: Sequence[RunCost],
) -> tuple[dict[tuple[str, str], list[float]], dict[tuple[str, str], list[dict[str, float]]]]:
    """Per ``(model, arch)``: the measured training CPU seconds per image-epoch, and the measured evaluation CPU
    seconds per attack unit of each stage."""
    train_rate: dict[tuple[str, str], list[float]] = {}
    eval_rate: dict[tuple[str, str], list[dict[str, float]]] = {}
    for r in measured:
        t, key = r.training, (r.model, r.training.arch)
        if r.train.cost_complete:
            train_rate.setdefault(key, []).append(r.train.cpu_seconds / (t.n_train * t.epochs))
        seconds = r.evaluation_cpu_seconds
        if seconds is not None and r.evaluation_recipe is not None:
            units = attack_units(r.dataset, asdict(r.evaluation_recipe))
            eval_rate.setdefault(key, []).append({k: seconds[k] / units[k] for k in units})
    return train_rate, eval_rate


def estimate_cost(
    measured: Sequence[Mapping[str, Any] | TrainedRun | RunCost],
    runs: Sequence[RunSpec],
    cores: int = 2,
    trained: Sequence[str] = (),
    partial: bool = False,
    spent: Mapping[str, float] | None = None,
) -> dict[str, Any]:
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
    train_rate, eval_rate = _rates(_costs(measured))
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
