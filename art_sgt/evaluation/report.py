"""``SaliencyEvaluator``: runs a chosen set of evaluators on shared maps and returns a ``SaliencyReport``.

The maps of each method are computed once and reused by every metric that needs the maps of ``x``
(masking curves, infidelity, sensitivity, sparseness, complexity, stability, both sanity checks).
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
from art_sgt.evaluation.faithfulness import masking_curve
from art_sgt.evaluation.metrics import complexity, infidelity, sensitivity, sparseness
from art_sgt.evaluation.sanity import cascading_randomization, random_logit
from art_sgt.evaluation.stability import adversarial_stability

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

__all__ = ["METRICS", "SaliencyReport", "SaliencyEvaluator", "summarise"]

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
