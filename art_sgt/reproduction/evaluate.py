"""Evaluate one trained model: per-sample clean and PGD outcomes, the worst case over attacks, saliency quality.

Every number comes from ART's attacks and the evaluators of :mod:`art_sgt.evaluation`, never from the
trainers' fast-path PGD. The per-sample outcomes (one character ``0`` / ``1`` per test image) are kept so
that two models can be compared on the same images (:func:`~art_sgt.reproduction.statistics.mcnemar_exact`).
The worst case is kept per sample too (from :attr:`RobustnessReport.worst_case_correct
<art_sgt.evaluation.report.RobustnessReport.worst_case_correct>`), so it is compared between models the same way.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from art_sgt.reproduction.recipe import PAPER, EvaluationRecipe, RunSpec

__all__ = [
    "PER_SAMPLE",
    "per_sample_keys",
    "evaluate_run",
    "kept_stages",
    "map_quality",
    "bits",
    "from_bits",
    "robust_pgd",
]

#: The per-sample outcomes every evaluation keeps (the comparisons pair them image by image).
PER_SAMPLE = ("clean", "pgd_paper_eps", "pgd_standard_eps", "worst_case_paper_eps", "worst_case_standard_eps")


def per_sample_keys(ev: EvaluationRecipe) -> tuple[str, ...]:
    """The per-sample outcomes an evaluation made with ``ev`` keeps: :data:`PER_SAMPLE` for the radii it measures.

    :param ev: The evaluation recipe.
    :return: ``"clean"``, then ``"pgd_<key>"`` and ``"worst_case_<key>"`` for each of ``ev.eps_keys``.
    """
    return ("clean", *(f"pgd_{k}" for k in ev.eps_keys), *(f"worst_case_{k}" for k in ev.eps_keys))


def bits(correct: np.ndarray) -> str:
    """Per-sample outcomes as a string of ``0`` / ``1``.

    :param correct: Boolean vector.
    :return: The string, one character per sample.
    """
    return "".join("1" if c else "0" for c in np.asarray(correct, dtype=bool))


def from_bits(text: str) -> np.ndarray:
    """Inverse of :func:`bits`.

    :param text: A string of ``0`` / ``1``.
    :return: The boolean vector.
    """
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def robust_pgd(per_sample: dict[str, str]) -> dict[str, str]:
    """``per_sample`` with each PGD outcome counted robust only where the image is also correct clean.

    The PGD stages of evaluations written before the attacks ran only on the images correct clean attacked every
    image, and an attack's random start could turn a wrong prediction right; this counts those images as the
    current code does.

    :param per_sample: Per-sample outcomes as :func:`bits` strings, holding ``"clean"``.
    :return: A new mapping; the other outcomes unchanged.
    """
    clean = from_bits(per_sample["clean"])
    return {k: bits(from_bits(v) & clean) if k.startswith("pgd_") else v for k, v in per_sample.items()}


def _correct(classifier: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return classifier.predict(x, batch_size=256).argmax(1) == y.argmax(1)


def _pgd_correct(
    classifier: Any, x: np.ndarray, y: np.ndarray, eps: float, ev: EvaluationRecipe, seed: int
) -> np.ndarray:
    """Per sample: correct clean and under the recipe's PGD (Madry's step, ``ev.pgd_restarts`` random starts)."""
    from art_sgt.evaluation import AttackBudget, robustness_report

    report = robustness_report(
        classifier,
        x,
        y,
        eps=eps,
        attacks=("pgd",),
        budget=AttackBudget.preset("standard").replace(pgd_max_iter=ev.pgd_iter, pgd_restarts=ev.pgd_restarts),
        checklist=False,
        batch_size=256,
        seed=seed,
        verbose=False,
    )
    return np.asarray(report.worst_case_correct[0], dtype=bool)


def _robustness(
    classifier: Any,
    x: np.ndarray,
    y: np.ndarray,
    eps: float,
    check_eps: float,
    ev: EvaluationRecipe,
    transfer_from: Any,
    seed: int,
    resume: Path | None,
) -> dict[str, Any]:
    """``robustness_report`` at one ``eps`` with the recipe's budget (the checklist at ``check_eps`` only), its
    finished attack runs kept in ``resume``."""
    from art_sgt.evaluation import AttackBudget, robustness_report

    checklist = math.isclose(eps, check_eps, rel_tol=1e-9)
    budget = AttackBudget.preset(ev.budget).replace(**dict(ev.report_kwargs))
    report = robustness_report(
        classifier,
        x,
        y,
        eps=[eps],
        check_eps=check_eps,
        checklist=checklist,
        transfer_from=transfer_from,
        budget=budget,
        mode=ev.report_mode,
        seed=seed,
        resume=resume,
        verbose=False,
    )
    return report.to_dict()


def _stability(
    classifier: Any, x: np.ndarray, y: np.ndarray, maps: np.ndarray, eps: float, ev: EvaluationRecipe, seed: int
) -> dict[str, Any]:
    """Map stability under PGD at ``eps``; the fields on unchanged predictions are kept when the evaluator has them."""
    from art_sgt.evaluation import adversarial_stability

    result = adversarial_stability(
        classifier, x, y, method="saliency", eps=(eps,), maps=maps, max_iter=ev.stability_iter, seed=seed
    ).to_dict()
    return {
        k: (v[-1] if isinstance(v, list) and v and not isinstance(v[-1], (list, dict)) else v)
        for k, v in result.items()
        if k != "eps"
    }


def map_quality(
    classifier: Any, x: np.ndarray, y: np.ndarray, method: str = "saliency", fill: str = "road", seed: int = 0
) -> tuple[np.ndarray, dict[str, Any]]:
    """The maps of one attribution method and their quality: masking curves against the random control, sparseness.

    The report's saliency columns are this with ``method="saliency"``; other methods (integrated gradients,
    SmoothGrad) check that a difference between models is not an artefact of the plain gradient.

    :param classifier: The ART classifier.
    :param x: Inputs, channels first.
    :param y: One-hot labels (the maps explain the true class).
    :param method: A method of :data:`~art_sgt.evaluation.attribution.METHODS`.
    :param fill: The masking fill (:func:`~art_sgt.evaluation.faithfulness.masking_curve`).
    :param seed: Seed of the method's and the masking's random draws.
    :return: The maps and ``{"method", "masking_fill", "masking" (the curve's summary), "masking_curves",
        "sparseness"}``.
    :raises ValueError: For an unknown ``method`` or ``fill``.
    """
    from art_sgt.evaluation import attribute, masking_curve, sparseness

    maps = attribute(classifier, x, y, method=method, seed=seed)
    curve = masking_curve(classifier, x, y, maps, fill=fill, seed=seed)
    return maps, {
        "method": "saliency (|input gradient|)" if method == "saliency" else method,
        "masking_fill": curve.fill,
        "masking": curve.summary(),
        "masking_curves": {"fractions": list(curve.fractions), "accuracy": curve.accuracy},
        "sparseness": float(np.mean(sparseness(maps))),
    }


def _saliency(
    classifier: Any, x: np.ndarray, y: np.ndarray, ev: EvaluationRecipe, eps: float, seed: int
) -> dict[str, Any]:
    maps, quality = map_quality(classifier, x, y, "saliency", ev.masking_fill, seed)
    return {**quality, "stability": _stability(classifier, x, y, maps, eps, ev, seed)}


def kept_stages(path: str | Path, key: str) -> dict[str, dict[str, Any]]:
    """The finished stages an interrupted evaluation kept in ``path``, when made with the configuration ``key``.

    :param path: The JSON file (it may not exist).
    :param key: The evaluation's hash (:meth:`~art_sgt.reproduction.RunSpec.evaluation_hash`).
    :return: ``{stage name: {"value", "cpu", "wall", "git"}}`` (``git``: the commit and clean state of the code
        that ran the stage), empty when there is no such file or it is stale.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    kept = json.loads(path.read_text())
    return dict(kept["stages"]) if kept.get("evaluation_hash") == key else {}


class _Stages:
    """Stages of an evaluation, each run once: its result and CPU / wall seconds are kept in ``path`` (when given)
    as soon as it ends, so an interrupted evaluation resumes after its last finished stage.

    :param path: The JSON file, or ``None`` (nothing kept).
    :param key: The evaluation's hash; a file made for another configuration is ignored.
    """

    def __init__(self, path: str | Path | None, key: str) -> None:
        self.path, self.key = (None if path is None else Path(path)), key
        self.done: dict[str, dict[str, Any]] = {} if path is None else kept_stages(path, key)

    def run(self, name: str, work: Callable[[], Any]) -> Any:
        """The result of stage ``name``: kept, or computed by ``work()`` (JSON-serialisable) and kept."""
        if name not in self.done:
            from art_sgt.provenance import git_state

            git = git_state()  # the code that runs the stage: read before it runs, not hours later
            cpu, wall = time.process_time(), time.perf_counter()
            value = work()
            self.done[name] = {
                "value": value,
                "cpu": round(time.process_time() - cpu, 2),
                "wall": round(time.perf_counter() - wall, 2),
                "git": git,
            }
            if self.path is not None:
                from art_sgt.provenance import write_json

                write_json(self.path, {"evaluation_hash": self.key, "stages": self.done})
        return self.done[name]["value"]

    def seconds(self, kind: str) -> dict[str, float]:
        """CPU (``kind="cpu"``) or wall seconds per stage group (the first word of a stage's name)."""
        out: dict[str, float] = {}
        for name, stage in self.done.items():
            group = name.split()[0]
            out[group] = round(out.get(group, 0.0) + stage[kind], 2)
        return out


def _attack_runs(partial: str | Path | None, eps: float) -> Path | None:
    """Where the report at ``eps`` keeps its finished attack runs: beside ``partial``, or nowhere."""
    return None if partial is None else Path(partial).with_name(f"robustness_runs_eps{eps:.6g}.json")


def evaluate_run(
    spec: RunSpec,
    classifier: Any,
    x: np.ndarray,
    y: np.ndarray,
    transfer_from: Any = None,
    partial: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a trained run on seeded random subsets of the test set.

    The clean and PGD outcomes are measured on ``n_eval`` test images, the worst case on ``n_report`` and the
    saliency on ``n_saliency`` (default: the ``n_report`` images), each drawn by
    :func:`art_sgt.datasets.random_subset` from the whole test set with the recipe's ``subset_seed`` (so every
    model of a study sees the same images); the indices are recorded in ``test_subsets``.

    The work runs in stages (PGD; the worst case at each ``eps`` of the grid, the checklist at the first radius of
    the recipe's ``eps_keys``; saliency), each kept in ``partial`` as soon as it ends, so an evaluation interrupted
    (a session's end, Ctrl-C) resumes after its last finished stage; within a worst-case stage, each attack run is
    kept beside ``partial`` in ``robustness_runs_eps<eps>.json`` (the ``resume`` file of
    :func:`~art_sgt.evaluation.robustness_report`), so the stage resumes after its last finished attack run (its
    CPU seconds then count the last session's only; the report's per-attack wall seconds count every session).
    Every attack is seeded alike per stage, so the numbers equal those of one uninterrupted pass
    (:meth:`RobustnessReport.concatenate <art_sgt.evaluation.report.RobustnessReport.concatenate>`).

    :param spec: The run (its evaluation recipe and seed).
    :param classifier: The trained classifier.
    :param x: The whole test set, channels first (at least ``n_eval`` and ``n_report`` images).
    :param y: Its one-hot labels.
    :param transfer_from: The standard model of the same seed, source of the checklist's transfer check.
    :param partial: A JSON file keeping the finished stages, or ``None``.
    :return: JSON-ready numbers (``test_subsets``: ``n_total``, ``seed`` and the ``eval_indices`` and
        ``report_indices`` into the test set, and ``saliency_indices`` with ``n_saliency``; per-sample outcomes as
        :func:`bits` strings, in the order of those indices; CPU and wall seconds per stage group ``pgd`` /
        ``report`` / ``saliency``, summed over the sessions that ran them; ``stage_git``: the code each stage ran,
        as :func:`art_sgt.provenance.git_state`).
    """
    from art_sgt.evaluation import RobustnessReport

    ev, eps = spec.evaluation, PAPER[spec.dataset]
    stages = _Stages(partial, spec.evaluation_hash())
    from art_sgt.datasets import random_subset

    eval_idx = random_subset(len(x), ev.n_eval, seed=ev.subset_seed)
    report_idx = random_subset(len(x), ev.n_report, seed=ev.subset_seed)
    xe, ye, xr, yr = x[eval_idx], y[eval_idx], x[report_idx], y[report_idx]
    out: dict[str, Any] = {"n_eval": len(xe), "n_report": len(xr)}
    out["test_subsets"] = {
        "n_total": len(x),
        "seed": ev.subset_seed,
        "eval_indices": eval_idx.tolist(),
        "report_indices": report_idx.tolist(),
    }
    xs, ys = xr, yr
    if ev.n_saliency is not None:
        saliency_idx = random_subset(len(x), ev.n_saliency, seed=ev.subset_seed)
        xs, ys = x[saliency_idx], y[saliency_idx]
        out["n_saliency"] = len(xs)
        out["test_subsets"]["saliency_indices"] = saliency_idx.tolist()

    def pgd() -> dict[str, str]:
        per_sample = {"clean": _correct(classifier, xe, ye)}
        for key in ev.eps_keys:
            per_sample[f"pgd_{key}"] = _pgd_correct(classifier, xe, ye, eps[key], ev, spec.seed)
        return {k: bits(v) for k, v in per_sample.items()}

    out["per_sample"] = robust_pgd(stages.run("pgd", pgd))  # a PGD stage kept by older code may need it
    out.update({k: float(from_bits(v).mean()) for k, v in out["per_sample"].items()})
    check_eps = eps[ev.eps_keys[0]]  # the checklist's and the map stability's radius
    grid = sorted({*ev.report_eps, *(eps[key] for key in ev.eps_keys)})
    parts = [
        stages.run(
            f"report eps {e:.6g}",
            lambda e=e: _robustness(
                classifier, xr, yr, e, check_eps, ev, transfer_from, spec.seed, _attack_runs(partial, e)
            ),
        )
        for e in grid
    ]
    report = RobustnessReport.concatenate([RobustnessReport.from_dict(p) for p in parts])
    out["robustness"] = {k: v for k, v in report.to_dict().items() if k != "worst_case_correct"}  # kept as bits
    out["worst_case"] = {"eps": list(report.eps), "accuracy": list(report.worst_case)}
    for key in ev.eps_keys:
        out[f"worst_case_{key}"] = report.accuracy_at(eps[key])
        index = next(i for i, e in enumerate(report.eps) if math.isclose(e, eps[key], rel_tol=1e-9))
        out["per_sample"][f"worst_case_{key}"] = bits(np.array(report.worst_case_correct[index]))
    out["flags"] = list(report.flags)
    transfer = next((c for c in report.checklist if c.name == "transfer"), None)  # kept stages may predate the source
    out["transfer_source"] = "standard" if transfer is not None and transfer.flagged is not None else None
    out["saliency"] = stages.run("saliency", lambda: _saliency(classifier, xs, ys, ev, check_eps, spec.seed))
    out["cpu_seconds"], out["wall_seconds"] = stages.seconds("cpu"), stages.seconds("wall")
    out["stage_git"] = {name: stage.get("git") for name, stage in stages.done.items()}
    out["eval_seconds"] = round(sum(out["wall_seconds"].values()), 1)
    return out
