"""The evaluators' results: :class:`SaliencyReport` (with :class:`SaliencyEvaluator`, which builds it) and
:class:`RobustnessReport` (built by :func:`~art_sgt.evaluation.robustness.robustness_report`), with their plots.

A result object holds plain data (lists, dicts, numbers), turns into JSON and back, and combines with others of
its kind; it runs no attack, so a saved report is read, merged and plotted without the machinery that made it.

:class:`SaliencyEvaluator` computes the maps of each method once and reuses them in every metric that needs the maps
of ``x`` (masking curves, infidelity, sensitivity, sparseness, complexity, stability, both sanity checks).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from art_sgt._validation import check_choice, check_positive_int
from art_sgt.evaluation._common import as_labels, as_tensor, predict_proba, resolve_model
from art_sgt.evaluation.attribution import compute_maps, get_method
from art_sgt.evaluation.checklist import GradientMaskingCheck
from art_sgt.evaluation.faithfulness import masking_curve
from art_sgt.evaluation.metrics import complexity, infidelity, sensitivity, sparseness
from art_sgt.evaluation.sanity import cascading_randomization, random_logit
from art_sgt.evaluation.stability import adversarial_stability

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

__all__ = ["METRICS", "SaliencyReport", "SaliencyEvaluator", "summarise", "RobustnessReport", "plot_robustness"]

METRICS: tuple[str, ...] = (
    "masking",
    "infidelity",
    "sensitivity",
    "sparseness",
    "complexity",
    "stability",
    "randomization",
    "random_logit",
)
"""Names of the evaluators :class:`SaliencyEvaluator` can run."""


def summarise(values: Any) -> dict[str, float]:
    """Mean, standard deviation and median of per-sample values; NaN and infinite values are left out, counted
    under ``"nan"`` and never reach the statistics (all of them undefined: the statistics are ``nan``, written
    as JSON ``null``).

    :param values: A 1-D array or tensor.
    :return: ``{"mean", "std", "median", "nan"}``.

    >>> summarise([1.0, 2.0, float("nan"), 3.0])
    {'mean': 2.0, 'std': 0.816496580927726, 'median': 2.0, 'nan': 1}
    """
    v = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    v = v.astype(np.float64).reshape(-1)
    ok = v[np.isfinite(v)]
    if not len(ok):
        return {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "nan": int(len(v))}
    return {
        "mean": float(ok.mean()),
        "std": float(ok.std()),
        "median": float(np.median(ok)),
        "nan": int(len(v) - len(ok)),
    }


def _plain(value: Any) -> Any:
    """Plain JSON types: dataclasses via ``to_dict``, NaN and infinity as ``None``, other objects as repr."""
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _parts(config: dict[str, Any]) -> list[dict[str, Any]]:
    return list(config.get("parts", [config]))


@dataclass
class SaliencyReport:
    """Results of :class:`SaliencyEvaluator`.

    :param methods: Names of the attribution methods evaluated.
    :param metrics: Names of the evaluators run.
    :param n_samples: Number of samples.
    :param accuracy: Clean accuracy of the model on them.
    :param results: ``results[method][metric]``: a ``MaskingCurve``, ``StabilityResult``,
        ``RandomizationResult`` or ``RandomLogitResult``, or a :func:`summarise` dictionary for per-sample
        metrics (infidelity, sensitivity, sparseness, complexity).
    :param seconds: ``seconds[method][step]``: wall time of the attribution and of every evaluator.
    :param config: The evaluator's settings.
    :param maps: Maps of the first samples per method, for plots (not serialised).
    """

    methods: list[str]
    metrics: list[str]
    n_samples: int
    accuracy: float
    results: dict[str, dict[str, Any]]
    seconds: dict[str, dict[str, float]]
    config: dict[str, Any]
    maps: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, dict[str, float]]:
        """One number per method and headline quantity (areas, means, mean similarities at the largest eps).

        An entry is ``nan`` when no sample defines it (all-zero maps have no complexity; a constant map has no
        rank correlation; an attack that flips every prediction leaves no map to compare); a ``RuntimeWarning``
        then names each such entry. :meth:`support` says how many samples each entry rests on.

        :return: ``summary[method][quantity]``.
        """
        out = {method: {k: value for k, (value, _) in row.items()} for method, row in self._entries().items()}
        undefined = [f"{method} {k}" for method, row in out.items() for k, v in row.items() if math.isnan(v)]
        if undefined:
            warnings.warn(
                f"summary: undefined (no sample defines it, see support()), reported as nan: {', '.join(undefined)}.",
                RuntimeWarning,
                stacklevel=2,
            )
        return out

    def support(self) -> dict[str, dict[str, int]]:
        """How many samples each :meth:`summary` entry rests on: ``n_samples`` less those left out as undefined
        (counted by the evaluators: ``"nan"`` of a per-sample summary, ``undefined`` of the similarity results),
        and for stability's map similarities, only the samples whose prediction the attack kept.

        :return: ``support[method][quantity]``, 0 where the entry is undefined.
        """
        return {method: {k: n for k, (_, n) in row.items()} for method, row in self._entries().items()}

    def _entries(self) -> dict[str, dict[str, tuple[float, int]]]:
        """``{method: {quantity: (value, samples it rests on)}}``."""
        n = self.n_samples

        def similarity(values: Any, undefined: Mapping[str, int], key: str, of: int = n) -> tuple[float, int]:
            value = float(values)
            return value, 0 if math.isnan(value) else max(0, of - int(undefined.get(key, 0)))

        out: dict[str, dict[str, tuple[float, int]]] = {}
        for method, results in self.results.items():
            row: dict[str, tuple[float, int]] = {}
            for metric, result in results.items():
                if metric == "masking":
                    row.update({k: (v, n) for k, v in result.summary().items() if k.endswith("accuracy")})
                elif isinstance(result, dict) and "mean" in result:
                    row[metric] = (result["mean"], n - int(result.get("nan", 0)))
                elif metric == "stability":
                    undefined, compared = (result.undefined or [{}])[-1], result.n_compared[-1]
                    row["stability_accuracy"] = (result.accuracy[-1], n)
                    row["stability_flipped"] = (result.flipped[-1], n)
                    row["stability_spearman"] = similarity(result.spearman[-1], undefined, "spearman", compared)
                    row["stability_top_k"] = similarity(result.top_k[-1], undefined, "top_k", compared)
                elif metric == "randomization":
                    undefined = (result.undefined or [{}])[-1]
                    for key in ("spearman", "spearman_signed", "ssim"):
                        row[f"randomization_{key}"] = similarity(getattr(result, key)[-1], undefined, key)
                elif metric == "random_logit":
                    for key in ("spearman", "ssim"):
                        row[f"random_logit_{key}"] = similarity(getattr(result, key), result.undefined, key)
            out[method] = row
        return out

    def merge(self, other: SaliencyReport) -> SaliencyReport:
        """Combine with a report on the same samples for other methods (e.g. fewer metrics for a costly one).

        :param other: A report with the same ``n_samples`` and no method in common.
        :return: A new report holding the methods of both (``metrics``: the union, in order; ``config``:
            ``{"parts": [configs]}``).
        :raises ValueError: If the sample counts differ or a method appears in both.
        """
        if other.n_samples != self.n_samples:
            raise ValueError(f"other must cover the same samples, got {other.n_samples} and {self.n_samples}.")
        common = set(self.methods) & set(other.methods)
        if common:
            raise ValueError(f"other must not repeat methods, got {sorted(common)} in both.")
        return SaliencyReport(
            methods=[*self.methods, *other.methods],
            metrics=[*self.metrics, *(m for m in other.metrics if m not in self.metrics)],
            n_samples=self.n_samples,
            accuracy=self.accuracy,
            results={**self.results, **other.results},
            seconds={**self.seconds, **other.seconds},
            config={
                "parts": [
                    *self.config.get("parts", [self.config]),
                    *other.config.get("parts", [other.config]),
                ]
            },
            maps={**self.maps, **other.maps},
        )

    def to_dict(self) -> dict[str, Any]:
        """The report (without the example maps) as plain, JSON-serialisable Python types.

        :return: A dictionary; NaN becomes ``None``.
        """
        return _plain(
            {
                "methods": self.methods,
                "metrics": self.metrics,
                "n_samples": self.n_samples,
                "accuracy": self.accuracy,
                "summary": {m: {k: v for k, (v, _) in row.items()} for m, row in self._entries().items()},
                "support": self.support(),
                "results": self.results,
                "seconds": self.seconds,
                "config": self.config,
            }
        )

    def to_json(self, path: str | Path | None = None, indent: int = 2) -> str:
        """Serialise the report as JSON, and write it to ``path`` if given (folders are created).

        :param path: Output file, or ``None``.
        :param indent: JSON indentation.
        :return: The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text + "\n")
        return text


class SaliencyEvaluator:
    """Run a chosen set of saliency evaluators on a classifier, sharing the maps between them.

    :param classifier: An ART ``PyTorchClassifier``, or a ``torch.nn.Module`` returning logits (then without
        the ``"stability"`` evaluator, which needs an ART estimator to attack).
    :param methods: Attribution methods: names, Captum classes or instances, callables or ``Method`` objects
        (see :func:`~art_sgt.evaluation.attribution.get_method`).
    :param metrics: A subset of :data:`METRICS`.
    :param options: Keyword arguments per evaluator, e.g. ``{"masking": {"fill": "uniform"},
        "stability": {"eps": (0.0, 0.1)}}``.
    :param batch_size: Batch size of every step.
    :param seed: Seed of every step.
    :param n_examples: Number of leading samples whose maps are kept in the report for plots.
    :param progress: Show a progress bar (tqdm) over the steps.
    :raises ValueError: If a metric name or an ``options`` key is unknown.
    :raises TypeError: If ``"stability"`` is asked of a plain module.

    >>> import numpy as np, torch
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> x = np.random.default_rng(0).random((8, 1, 4, 4), dtype=np.float32)
    >>> evaluator = SaliencyEvaluator(model, ["saliency"], ["sparseness", "masking"])
    >>> report = evaluator.evaluate(x, np.arange(8) % 3)
    >>> sorted(report.results["saliency"])
    ['masking', 'sparseness']
    """

    def __init__(
        self,
        classifier: PyTorchClassifier | torch.nn.Module,
        methods: Sequence[Any] = ("saliency", "integrated_gradients"),
        metrics: Sequence[str] = METRICS,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        batch_size: int = 256,
        seed: int = 0,
        n_examples: int = 8,
        progress: bool = False,
    ) -> None:
        self.resolved = resolve_model("classifier", classifier)
        self.classifier = classifier
        self.methods = [get_method(m) for m in ([methods] if isinstance(methods, str) else methods)]
        if not self.methods:
            raise ValueError("methods must name at least one attribution method, got none.")
        self.metrics = [
            check_choice("metrics", m, METRICS) for m in ([metrics] if isinstance(metrics, str) else metrics)
        ]
        self.options = {check_choice("options", k, METRICS): dict(v) for k, v in (options or {}).items()}
        if "stability" in self.metrics and self.resolved.classifier is None:
            raise TypeError("metrics 'stability' needs classifier to be an art PyTorchClassifier, got a torch module.")
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.seed = int(seed)
        self.n_examples = int(n_examples)
        self.progress = bool(progress)

    def _run(self, metric: str, method: Any, x: torch.Tensor, y: torch.Tensor, maps: torch.Tensor) -> Any:
        common = {"batch_size": self.batch_size, "seed": self.seed, **self.options.get(metric, {})}
        model = self.resolved
        if metric == "masking":
            return masking_curve(model, x, y, maps, **common)
        if metric == "infidelity":
            # Infidelity reads the map as a signed linear predictor: absolute maps are replaced by signed ones.
            signed = method.signed()
            if signed is not method:
                maps = compute_maps(model, x, y, signed, self.batch_size, self.seed)
            common.setdefault("multiply_by_inputs", method.multiply_by_inputs)
            return summarise(infidelity(model, x, y, maps, **common))
        if metric == "sensitivity":
            return summarise(sensitivity(model, x, y, method, maps=maps, **common))
        if metric == "sparseness":
            return summarise(sparseness(maps))
        if metric == "complexity":
            return summarise(complexity(maps))
        if metric == "stability":
            return adversarial_stability(self.classifier, x, y, method, maps=maps, **common)
        if metric == "randomization":
            return cascading_randomization(model, x, y, method, maps=maps, **common)
        return random_logit(model, x, y, method, maps=maps, **common)

    def evaluate(self, x: Any, y: Any) -> SaliencyReport:
        """Compute each method's maps once, then run every chosen evaluator on them.

        :param x: Inputs, channels first, numpy or torch. Not modified.
        :param y: True classes, indices or one-hot.
        :return: The report.
        :raises ValueError: If ``x`` and ``y`` differ in length or are invalid.
        """
        from tqdm.auto import tqdm

        x_t = as_tensor("x", x, self.resolved.device)
        y_t = as_labels("y", y, len(x_t), self.resolved.nb_classes, self.resolved.device)
        accuracy = float((predict_proba(self.resolved, x_t, self.batch_size).argmax(1) == y_t).double().mean())
        results: dict[str, dict[str, Any]] = {}
        seconds: dict[str, dict[str, float]] = {}
        kept: dict[str, np.ndarray] = {}
        bar = tqdm(total=len(self.methods) * (1 + len(self.metrics)), disable=not self.progress, desc="saliency")
        with bar:
            for method in self.methods:
                bar.set_postfix_str(f"{method.name}: maps")
                start = time.perf_counter()
                maps = compute_maps(self.resolved, x_t, y_t, method, self.batch_size, self.seed)
                seconds[method.name] = {"attribution": time.perf_counter() - start}
                kept[method.name] = maps[: self.n_examples].cpu().numpy()
                bar.update()
                results[method.name] = {}
                for metric in self.metrics:
                    bar.set_postfix_str(f"{method.name}: {metric}")
                    start = time.perf_counter()
                    results[method.name][metric] = self._run(metric, method, x_t, y_t, maps)
                    seconds[method.name][metric] = time.perf_counter() - start
                    bar.update()
        config = {"batch_size": self.batch_size, "seed": self.seed, "options": self.options}
        return SaliencyReport(
            methods=[m.name for m in self.methods],
            metrics=list(self.metrics),
            n_samples=len(x_t),
            accuracy=accuracy,
            results=results,
            seconds=seconds,
            config=config,
            maps=kept,
        )


@dataclass
class RobustnessReport:
    """Accuracy per attack and ``eps``, the per-sample worst case, and the gradient-masking checklist.

    :param eps: Attack strengths, in the order given.
    :param norm: The norm, ``"inf"``, ``"2"`` or ``"1"``.
    :param attacks: Attack names (see :data:`~art_sgt.evaluation.budget.ATTACKS`), in the order they ran.
    :param n_samples: Number of samples attacked.
    :param clean_accuracy: Accuracy on ``x``.
    :param accuracy: ``{attack: [robust accuracy at each eps]}``: the fraction of samples correct clean and under
        the attack (only the samples correct clean are attacked, as in AutoAttack); in a cascade
        (``params["mode"]``), correct under the attack and every attack before it, so the last equals the worst
        case over the attacks.
    :param worst_case: Per ``eps``, the fraction of samples correct clean and under every attack.
    :param checklist: The checks (see :data:`~art_sgt.evaluation.checklist.CHECKS`).
    :param params: The parameters the report ran with: ``budget`` (the name of its
        :class:`~art_sgt.evaluation.budget.AttackBudget`) and the budget's fields
        (:meth:`~art_sgt.evaluation.budget.AttackBudget.to_dict`: every attack's iterations, queries and restarts),
        ``cost`` (an upper bound on the model evaluations each attack may spend), ``mode``, ``norm``,
        ``batch_size``, ``seed``, the checks' ``check_eps``, ``large_eps``, ``alpha`` and ``tolerance``, and
        ``worst_case_attacks`` (per ``eps``, the attacks its worst case covers).
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
        cascade = self.params.get("mode") == "cascade"
        head = f"{'attack':<{width}}" + "".join(f"{f'eps {e:g}':>11}" for e in self.eps)
        rows = [
            f"robustness: n={self.n_samples}, norm L{'-inf' if self.norm == 'inf' else self.norm}, "
            f"budget {self.params.get('budget', '?')}, clean accuracy {self.clean_accuracy:.4f}",
            *(["cascade: each row is the accuracy under its attack and every attack above it"] if cascade else []),
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
        shared = (first.norm, first.attacks, first.n_samples, first.clean_accuracy)
        for other in reports[1:]:
            same = (other.norm, other.attacks, other.n_samples, other.clean_accuracy) == shared
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
