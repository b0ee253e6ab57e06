"""Typed records of a study: a trained run (:class:`TrainedRun`: which run, its :class:`RunCost` with the recipes
and :class:`TrainLog`, its provenance), its :class:`Evaluation` (with its :class:`GradientCheck` list and
:class:`SaliencyMetrics`), and what the report makes of them: a model's :class:`ModelSummary` over seeds and a
:class:`Comparison` of two models.

Each is a frozen dataclass built by ``from_payload`` from the JSON the run cache keeps (``evaluation.json`` and
``train_log.json``, see :class:`~art_sgt.reproduction.RunCache`) or the report writes (its ``results`` and
``comparisons``); the on-disk format is theirs, these classes only read it. A record that is written back into the
report (:func:`~art_sgt.reproduction.aggregate.assemble`'s ``runs``) keeps its payload as read, so the report
repeats the stored fields exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from art_sgt.reproduction.evaluate import from_bits
from art_sgt.reproduction.recipe import EvaluationRecipe, TrainingRecipe
from art_sgt.reproduction.statistics import Interval, McNemar

__all__ = [
    "CHALLENGERS",
    "TrainLog",
    "SaliencyMetrics",
    "GradientCheck",
    "Evaluation",
    "RunCost",
    "TrainedRun",
    "ModelSummary",
    "SeedComparison",
    "Comparison",
]

#: The attack each paired gradient-masking check pits against the report's PGD, by check name: the key of the
#: challenger's accuracy in the check's evidence (:func:`art_sgt.evaluation.checklist.run_checklist`). The
#: ``large_eps`` check has no challenger: it tests PGD alone at a large eps.
CHALLENGERS = {"more_iterations": "pgd_strong", "single_step": "fgsm", "black_box": "square", "transfer": "transfer"}

#: The code state of a piece of work whose code was not recorded.
_UNKNOWN_CODE: Mapping[str, Any] = {"commit": None, "clean": None}


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _nan_for_none(value: Any) -> float:
    return math.nan if value is None else float(value)


def _interval(payload: Mapping[str, Any]) -> Interval:
    """An :class:`Interval` from its ``to_dict`` form (``None`` ends read as NaN)."""
    return Interval(
        estimate=_nan_for_none(payload["estimate"]),
        low=_nan_for_none(payload["low"]),
        high=_nan_for_none(payload["high"]),
        confidence=float(payload["confidence"]),
        n=int(payload["n"]),
        method=str(payload["method"]),
    )


def _recipe(cls: type, payload: Mapping[str, Any]) -> Any:
    """A recipe dataclass from its ``asdict`` form: known fields only (others keep their defaults), lists as
    tuples."""
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in payload.items() if k in known}
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return cls(**values)


@dataclass(frozen=True)
class TrainLog:
    """What training a run cost and which code did it (``train_log.json``).

    :param cpu_seconds: CPU seconds over every session.
    :param cpu_seconds_per_epoch: CPU seconds per epoch (``None`` when not recorded).
    :param wall_seconds: Wall seconds over every counted session (``None`` when not recorded).
    :param epoch_seconds: Wall seconds of each epoch, from the log's ``history``.
    :param sessions: Training sessions (``None`` when not recorded).
    :param sessions_git: The code of each session (``None`` when not recorded).
    :param git: The code that wrote the log (its provenance).
    :param reused_from: The cache folder whose weights the run took instead of training (``None``: trained).
    :param payload: The log as read, for the report's copy of it.
    """

    cpu_seconds: float
    cpu_seconds_per_epoch: float | None = None
    wall_seconds: float | None = None
    epoch_seconds: tuple[float, ...] = ()
    sessions: int | None = None
    sessions_git: tuple[Mapping[str, Any], ...] | None = None
    git: Mapping[str, Any] | None = None
    reused_from: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TrainLog:
        """Read a training log.

        :param payload: The content of ``train_log.json``.
        :return: The log.

        >>> log = TrainLog.from_payload({"cpu_seconds": 30.0, "wall_seconds": 20.5,
        ...                              "history": [{"epoch": 1, "seconds": 10.0}, {"epoch": 2, "seconds": 20.0}]})
        >>> log.epoch_seconds, log.cost_complete
        ((10.0, 20.0), False)
        """
        sessions = payload.get("sessions")
        sessions_git = payload.get("sessions_git")
        return cls(
            cpu_seconds=float(payload["cpu_seconds"]),
            cpu_seconds_per_epoch=_float_or_none(payload.get("cpu_seconds_per_epoch")),
            wall_seconds=_float_or_none(payload.get("wall_seconds")),
            epoch_seconds=tuple(float(e.get("seconds", 0.0)) for e in payload.get("history", [])),
            sessions=None if sessions is None else int(sessions),
            sessions_git=None if sessions_git is None else tuple(sessions_git),
            git=payload.get("provenance", {}).get("git"),
            reused_from=payload.get("reused_from"),
            payload=payload,
        )

    @property
    def cost_complete(self) -> bool:
        """Whether :attr:`cpu_seconds` counts every epoch trained.

        A session killed before it recorded its cost leaves its epochs out of the count while the next session
        resumes from their checkpoint; its epochs then add up to more wall seconds than the counted sessions took.
        ``False`` when they exceed :attr:`wall_seconds` by more than one second; ``True`` without wall seconds.
        """
        return self.wall_seconds is None or sum(self.epoch_seconds) <= self.wall_seconds + 1.0

    def code_states(self) -> list[Mapping[str, Any]]:
        """The code of each training session; a session whose code was not recorded counts as unknown, unless
        one session did the whole training (the log's own provenance is then its code).

        :return: One ``{"commit", "clean"}`` per session.
        """
        states = self.sessions_git
        if states is None:
            one_session = self.sessions is None or self.sessions <= 1
            states = (self.git,) if one_session else (_UNKNOWN_CODE,)
        return [*states, *[_UNKNOWN_CODE] * max(0, (self.sessions or 0) - len(states))]


@dataclass(frozen=True)
class SaliencyMetrics:
    """The quality of a run's saliency maps (``evaluation["saliency"]``; all: higher is better but ``flipped``).

    :param morf_gain: Area between the random-order and the MoRF masking curve over the clean accuracy.
    :param lerf_gain: The same for the LeRF curve.
    :param sparseness: Mean Gini index of the maps.
    :param stability: The map stability under PGD (``spearman``, ``flipped``, ...; ``None`` where undefined,
        e.g. a similarity when every prediction flipped).
    """

    morf_gain: float
    lerf_gain: float
    sparseness: float
    stability: Mapping[str, float | None]

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SaliencyMetrics:
        """Read the saliency part of an evaluation.

        :param payload: ``evaluation["saliency"]``.
        :return: The metrics.

        >>> SaliencyMetrics.from_payload({"masking": {"morf_gain_accuracy": 0.5, "lerf_gain_accuracy": 0.1},
        ...                               "sparseness": 0.7, "stability": {"spearman": None, "flipped": 1.0}})
        SaliencyMetrics(morf_gain=0.5, lerf_gain=0.1, sparseness=0.7, stability={'spearman': None, 'flipped': 1.0})
        """
        masking = payload["masking"]
        return cls(
            morf_gain=float(masking["morf_gain_accuracy"]),
            lerf_gain=float(masking["lerf_gain_accuracy"]),
            sparseness=float(payload["sparseness"]),
            stability=dict(payload["stability"]),
        )

    def stability_value(self, key: str) -> float:
        """A field of the map stability, NaN when undefined or not recorded.

        :param key: E.g. ``"spearman"``.
        :return: The value.
        """
        return _nan_for_none(self.stability.get(key))


@dataclass(frozen=True)
class GradientCheck:
    """One check of the gradient-masking checklist, as a run's evaluation keeps it.

    :param name: The check (:data:`art_sgt.evaluation.checklist.CHECKS`).
    :param flagged: Whether it fired (``None``: not run).
    :param evidence: The accuracies and counts it rests on.
    :param n: Images tested.
    :param p_value: The one-sided exact p-value (``None``: not run).
    """

    name: str
    flagged: bool | None
    evidence: Mapping[str, Any]
    n: int = 0
    p_value: float | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GradientCheck:
        """Read a check.

        :param payload: One entry of ``robustness["checklist"]``.
        :return: The check.

        >>> check = GradientCheck.from_payload({"name": "black_box", "flagged": True, "n": 500, "p_value": 0.01,
        ...                                     "evidence": {"eps": 0.2, "pgd": 0.86, "square": 0.84, "b": 9}})
        >>> check.challenger, check.challenger_accuracy
        ('square', 0.84)
        """
        return cls(
            name=str(payload["name"]),
            flagged=payload["flagged"],
            evidence=dict(payload["evidence"]),
            n=int(payload.get("n", 0)),
            p_value=payload.get("p_value"),
        )

    @property
    def challenger(self) -> str | None:
        """The attack the check pits against PGD (:data:`CHALLENGERS`); ``None`` for ``large_eps``."""
        return CHALLENGERS.get(self.name)

    @property
    def challenger_accuracy(self) -> float | None:
        """The accuracy under the challenger, from the evidence (``None`` without a challenger or a result)."""
        return None if self.challenger is None else self.evidence.get(self.challenger)


@dataclass(frozen=True)
class Evaluation:
    """A trained run's evaluation (``evaluation.json``'s ``evaluation``).

    :param accuracy: The clean, PGD and worst-case accuracies, by key of
        :data:`~art_sgt.reproduction.evaluate.PER_SAMPLE` (``clean``, ``pgd_paper_eps``, ...).
    :param per_sample: The per-image outcomes behind them, as ``0`` / ``1`` strings.
    :param worst_case_eps: The eps grid of the worst case over attacks.
    :param worst_case_accuracy: The worst-case accuracy at each eps of the grid.
    :param report_clean_accuracy: The clean accuracy on the worst case's images.
    :param attack_accuracy: Each attack's accuracy on the grid of :attr:`attack_eps`.
    :param attack_eps: The eps of each entry of :attr:`attack_accuracy`.
    :param flags: The gradient-masking checks that fired.
    :param checklist: Every check of the checklist (empty when none ran).
    :param saliency: The saliency-map qualities (``None`` when not measured).
    :param cpu_seconds: CPU seconds per stage group (``pgd``, ``report``, ``saliency``; ``None`` when not recorded).
    :param stage_git: The code of each stage (``None`` for a stage whose code was not recorded).
    :param payload: The evaluation as read, for the report's copy of it.
    """

    accuracy: Mapping[str, float]
    per_sample: Mapping[str, str]
    worst_case_eps: tuple[float, ...]
    worst_case_accuracy: tuple[float, ...]
    report_clean_accuracy: float
    attack_accuracy: Mapping[str, tuple[float, ...]]
    attack_eps: tuple[float, ...]
    flags: tuple[str, ...]
    checklist: tuple[GradientCheck, ...] = ()
    saliency: SaliencyMetrics | None = None
    cpu_seconds: Mapping[str, float] | None = None
    stage_git: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Evaluation:
        """Read an evaluation.

        :param payload: ``evaluation.json``'s ``evaluation``.
        :return: The evaluation.
        """
        from art_sgt.reproduction.evaluate import PER_SAMPLE

        robustness = payload["robustness"]
        attacks = robustness.get("accuracy", {})
        saliency = payload.get("saliency")
        return cls(
            accuracy={k: float(payload[k]) for k in PER_SAMPLE if k in payload},
            per_sample=dict(payload.get("per_sample", {})),
            worst_case_eps=tuple(payload["worst_case"]["eps"]),
            worst_case_accuracy=tuple(payload["worst_case"]["accuracy"]),
            report_clean_accuracy=float(robustness["clean_accuracy"]),
            attack_accuracy={k: tuple(v) for k, v in attacks.items()},
            attack_eps=tuple(robustness.get("eps", ())),
            flags=tuple(payload["flags"]),
            checklist=tuple(map(GradientCheck.from_payload, robustness.get("checklist") or ())),
            saliency=None if saliency is None else SaliencyMetrics.from_payload(saliency),
            cpu_seconds=payload.get("cpu_seconds"),
            stage_git=dict(payload.get("stage_git", {})),
            payload=payload,
        )

    def value(self, key: str) -> float:
        """The number a report summarises under ``key``: an accuracy (:attr:`accuracy`), ``morf_gain``,
        ``lerf_gain``, ``sparseness`` or ``stability_<field>`` (NaN where undefined).

        :param key: The quantity.
        :return: Its value.
        :raises KeyError: For an accuracy not recorded, or a saliency quantity of an evaluation without saliency.
        """
        if key in self.accuracy:
            return self.accuracy[key]
        if key in ("morf_gain", "lerf_gain", "sparseness") or key.startswith("stability_"):
            if self.saliency is None:
                raise KeyError(f"{key}: the evaluation measured no saliency")
            if key.startswith("stability_"):
                return self.saliency.stability_value(key.removeprefix("stability_"))
            return float(getattr(self.saliency, key))
        raise KeyError(key)

    def outcomes(self, key: str) -> np.ndarray | None:
        """The per-image outcomes of an accuracy, or ``None`` when they are not kept.

        :param key: A key of :data:`~art_sgt.reproduction.evaluate.PER_SAMPLE`.
        :return: A boolean vector.
        """
        bits = self.per_sample.get(key)
        return None if bits is None else from_bits(bits)

    @property
    def worst_case_curve(self) -> list[float]:
        """The worst-case accuracy at eps 0 (the clean accuracy on the same images), then on the grid."""
        return [self.report_clean_accuracy, *self.worst_case_accuracy]


@dataclass(frozen=True)
class RunCost:
    """What a run's training and evaluation cost, and the recipes the cost model scales it by.

    :param model: The control (:data:`~art_sgt.reproduction.recipe.MODELS`).
    :param dataset: ``"mnist"`` or ``"cifar10"``.
    :param training: The training recipe it was trained with.
    :param evaluation_recipe: The evaluation recipe it was evaluated with (``None``: not recorded).
    :param train: Its training log.
    :param evaluation_cpu_seconds: CPU seconds per evaluation stage group (``None``: not evaluated, or not
        recorded).
    :param kept_evaluation_cpu_seconds: CPU seconds of the evaluation stages an interrupted evaluation kept.
    :param reused_from: The folder whose evaluation the run took (a twin's), so it cost nothing here.
    :param key: ``"name,seed"`` (``None`` when the record names neither).
    """

    model: str
    dataset: str
    training: TrainingRecipe
    train: TrainLog
    evaluation_recipe: EvaluationRecipe | None = None
    evaluation_cpu_seconds: Mapping[str, float] | None = None
    kept_evaluation_cpu_seconds: float = 0.0
    reused_from: str | None = None
    key: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RunCost:
        """Read the cost side of a run record (an ``evaluation.json`` or :meth:`RunCache.train_record
        <art_sgt.reproduction.RunCache.train_record>`).

        :param payload: The record (``model``, ``dataset``, ``training_config``, ``train``; optionally
            ``evaluation_config``, ``evaluation`` with its ``cpu_seconds``, ``evaluation_kept_cpu_seconds``).
        :return: The cost.

        >>> from dataclasses import asdict
        >>> from art_sgt.reproduction.recipe import TrainingRecipe
        >>> training = asdict(TrainingRecipe("mnist_cnn", 1000, 2, 64, 1e-3, 0.3, 10))
        >>> cost = RunCost.from_payload({"name": "sgt", "seed": 1, "model": "sgt", "dataset": "mnist",
        ...                              "training_config": {"training": training}, "train": {"cpu_seconds": 90.0}})
        >>> cost.key, cost.training.n_train, cost.train.cpu_seconds, cost.evaluation_cpu_seconds
        ('sgt,1', 1000, 90.0, None)
        """
        evaluation_config = payload.get("evaluation_config")
        named = "name" in payload and "seed" in payload
        return cls(
            model=str(payload["model"]),
            dataset=str(payload["dataset"]),
            training=_recipe(TrainingRecipe, payload["training_config"]["training"]),
            train=TrainLog.from_payload(payload["train"]),
            evaluation_recipe=None
            if evaluation_config is None
            else _recipe(EvaluationRecipe, evaluation_config["evaluation"]),
            evaluation_cpu_seconds=payload.get("evaluation", {}).get("cpu_seconds"),
            kept_evaluation_cpu_seconds=float(payload.get("evaluation_kept_cpu_seconds", 0.0)),
            reused_from=payload.get("reused_from"),
            key=f"{payload['name']},{payload['seed']}" if named else None,
        )


@dataclass(frozen=True)
class TrainedRun:
    """One run of a study: which run it is, what it cost (with its training log and recipes), its evaluation and
    the code that wrote its record.

    :param name: The run's name (``model`` or ``model[variant]``).
    :param variant: ``""`` for the main comparison, else the setting's name.
    :param seed: The training seed.
    :param profile: The profile it was run under (``None`` when the record does not say).
    :param cost: Its model, dataset, recipes, training log and CPU seconds.
    :param evaluation: Its evaluation (``None``: trained, not evaluated).
    :param git: The code that wrote the record (``None``: not recorded).
    """

    name: str
    variant: str
    seed: int
    profile: str | None
    cost: RunCost
    evaluation: Evaluation | None = None
    git: Mapping[str, Any] | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TrainedRun:
        """Read a run: an ``evaluation.json`` (:meth:`RunCache.records <art_sgt.reproduction.RunCache.records>`)
        or the training side of one not evaluated yet (:meth:`RunCache.train_record
        <art_sgt.reproduction.RunCache.train_record>`).

        :param payload: The record.
        :return: The run.
        """
        evaluation = payload.get("evaluation")
        return cls(
            name=str(payload["name"]),
            variant=str(payload.get("variant", "")),
            seed=int(payload["seed"]),
            profile=payload.get("profile"),
            cost=RunCost.from_payload(payload),
            evaluation=None if evaluation is None else Evaluation.from_payload(evaluation),
            git=payload.get("provenance", {}).get("git"),
        )

    @property
    def model(self) -> str:
        """The control."""
        return self.cost.model

    @property
    def dataset(self) -> str:
        """The dataset."""
        return self.cost.dataset

    @property
    def train(self) -> TrainLog:
        """The training log."""
        return self.cost.train

    @property
    def key(self) -> str:
        """``"name,seed"``, how the cost model and the command line name a run."""
        return f"{self.name},{self.seed}"

    def code_states(self) -> list[Mapping[str, Any]]:
        """The code of every piece of work behind the run: each training session, each evaluation stage, the
        writing of the record (unknown where not recorded).

        :return: One ``{"commit", "clean"}`` per piece.
        """
        stages = [] if self.evaluation is None else [g or _UNKNOWN_CODE for g in self.evaluation.stage_git.values()]
        return [*self.train.code_states(), *stages, self.git or _UNKNOWN_CODE]


@dataclass(frozen=True)
class ModelSummary:
    """One model of a report over its seeds (an entry of the report's ``results``).

    :param seeds: The seeds done.
    :param quantities: Each summarised quantity's :func:`~art_sgt.reproduction.statistics.seed_summary` (``mean``,
        ``std``, ``min``, ``max``, ``n``), by key (the report's ``QUANTITIES``, ``SALIENCY_QUANTITIES`` and
        ``stability_flipped``).
    :param flags: The gradient-masking checks that fired on any seed.
    :param flag_seeds: The seeds each of them fired on.
    :param cost_incomplete_seeds: The seeds whose training cost is counted only in part (left out of the cost).
    :param train_cpu_minutes: Training CPU minutes over the other seeds (``None`` when there is none).
    :param train_cpu_minutes_per_epoch: The same per epoch.
    :param worst_case_eps: The eps of the worst-case curve, 0 (the clean accuracy) first.
    :param worst_case_per_seed: Each seed's worst-case accuracy at those eps.
    """

    seeds: tuple[int, ...]
    quantities: Mapping[str, Mapping[str, float]]
    flags: tuple[str, ...]
    flag_seeds: Mapping[str, tuple[int, ...]]
    cost_incomplete_seeds: tuple[int, ...]
    train_cpu_minutes: Mapping[str, float] | None
    train_cpu_minutes_per_epoch: Mapping[str, float] | None
    worst_case_eps: tuple[float, ...]
    worst_case_per_seed: tuple[tuple[float, ...], ...]

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ModelSummary:
        """Read a model's summary.

        :param payload: One value of a report's ``results``.
        :return: The summary.

        >>> one = {"mean": 0.9, "std": None, "min": 0.9, "max": 0.9, "n": 1}
        >>> s = ModelSummary.from_payload({"clean": one, "cost_incomplete_seeds": [], "train_cpu_minutes": None,
        ...     "train_cpu_minutes_per_epoch": None, "worst_case_curve": {"eps": [0.0, 0.2], "per_seed": [[0.9, 0.5]]},
        ...     "flags": ["black_box"], "flag_seeds": {"black_box": [0]}, "seeds": [0]})
        >>> s.quantities["clean"]["mean"], s.flag_seeds, s.worst_case_per_seed
        (0.9, {'black_box': (0,)}, ((0.9, 0.5),))
        """
        curve = payload["worst_case_curve"]
        return cls(
            seeds=tuple(payload["seeds"]),
            quantities={k: v for k, v in payload.items() if k not in _SUMMARY_FIELDS},
            flags=tuple(payload["flags"]),
            flag_seeds={k: tuple(v) for k, v in payload["flag_seeds"].items()},
            cost_incomplete_seeds=tuple(payload["cost_incomplete_seeds"]),
            train_cpu_minutes=payload["train_cpu_minutes"],
            train_cpu_minutes_per_epoch=payload["train_cpu_minutes_per_epoch"],
            worst_case_eps=tuple(curve["eps"]),
            worst_case_per_seed=tuple(tuple(c) for c in curve["per_seed"]),
        )

    def to_payload(self) -> dict[str, Any]:
        """:return: The JSON form the report writes."""
        return {
            **self.quantities,
            "cost_incomplete_seeds": list(self.cost_incomplete_seeds),
            "train_cpu_minutes": self.train_cpu_minutes,
            "train_cpu_minutes_per_epoch": self.train_cpu_minutes_per_epoch,
            "worst_case_curve": {
                "eps": list(self.worst_case_eps),
                "per_seed": [list(c) for c in self.worst_case_per_seed],
            },
            "flags": list(self.flags),
            "flag_seeds": {k: list(v) for k, v in self.flag_seeds.items()},
            "seeds": list(self.seeds),
        }


#: The fields of a model's summary that are not a summarised quantity.
_SUMMARY_FIELDS = frozenset(
    {
        "seeds",
        "flags",
        "flag_seeds",
        "cost_incomplete_seeds",
        "train_cpu_minutes",
        "train_cpu_minutes_per_epoch",
        "worst_case_curve",
    }
)


@dataclass(frozen=True)
class SeedComparison:
    """Two models compared on one training seed's test images.

    :param seed: The seed.
    :param mcnemar: The exact McNemar test of their per-image outcomes.
    :param bootstrap: The paired bootstrap interval of their accuracy difference.
    """

    seed: int
    mcnemar: McNemar
    bootstrap: Interval

    def to_payload(self) -> dict[str, Any]:
        """:return: The JSON form the report writes."""
        return {"seed": self.seed, "mcnemar": self.mcnemar.to_dict(), "bootstrap": self.bootstrap.to_dict()}


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against model ``b`` on one quantity: the paired statistics and the verdict they support.

    :param a: The first model.
    :param b: The second model.
    :param variant: The setting both were trained in (``""``: the main comparison).
    :param quantity: The quantity compared (a key of the report's ``QUANTITIES`` or ``SALIENCY_QUANTITIES``).
    :param meaning: What the difference measures.
    :param verdict: The sentence the interval supports.
    :param across_seeds: The t interval of the difference over the seeds done for both.
    :param per_seed: Per seed, the tests over its test images (where per-image outcomes are kept).
    """

    a: str
    b: str
    variant: str
    quantity: str
    meaning: str
    verdict: str
    across_seeds: Interval
    per_seed: tuple[SeedComparison, ...] = ()

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Comparison:
        """Read a comparison.

        :param payload: One entry of a report's ``comparisons``.
        :return: The comparison.

        >>> interval = {"estimate": 0.1, "low": None, "high": None, "confidence": 0.95, "n": 1, "method": "t"}
        >>> c = Comparison.from_payload({"a": "asgt", "b": "standard", "variant": "", "quantity": "clean",
        ...                              "meaning": "m", "verdict": "v", "across_seeds": interval, "per_seed": []})
        >>> c.across_seeds.low, c.to_payload()["across_seeds"] == interval
        (nan, True)
        """
        per_seed = tuple(
            SeedComparison(int(e["seed"]), McNemar(**e["mcnemar"]), _interval(e["bootstrap"]))
            for e in payload["per_seed"]
        )
        return cls(
            a=str(payload["a"]),
            b=str(payload["b"]),
            variant=str(payload["variant"]),
            quantity=str(payload["quantity"]),
            meaning=str(payload.get("meaning", "")),
            verdict=str(payload.get("verdict", "")),
            across_seeds=_interval(payload["across_seeds"]),
            per_seed=per_seed,
        )

    def to_payload(self) -> dict[str, Any]:
        """:return: The JSON form the report writes."""
        return {
            "across_seeds": self.across_seeds.to_dict(),
            "per_seed": [entry.to_payload() for entry in self.per_seed],
            "a": self.a,
            "b": self.b,
            "variant": self.variant,
            "quantity": self.quantity,
            "meaning": self.meaning,
            "verdict": self.verdict,
        }

    def verdict_interval(self) -> tuple[Interval, float | None]:
        """The interval the verdict rests on, and with one seed the exact McNemar p-value that must agree with it.

        With two or more seeds (or no per-image outcomes) it is the t interval over seeds; with one, the paired
        bootstrap over that seed's test images, whose percentile interval alone is liberal when few images
        disagree.

        :return: ``(interval, p_value or None)``.
        """
        if self.across_seeds.n >= 2 or not self.per_seed:
            return self.across_seeds, None
        one = self.per_seed[0]
        method = "one seed: paired bootstrap over test images, seed spread not measured"
        return replace(one.bootstrap, method=method), float(one.mcnemar.p_value)
