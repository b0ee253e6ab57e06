"""The report's saliency columns checked with other attribution methods.

The report measures saliency quality with one method, the plain input gradient. Whether a difference between
models belongs to the models or only to that method is checked by :func:`compare_methods`: for every run done
in the cache, the masking gains against the random control and the sparseness of each method's maps on the same
test images, fill and seed, with the plain gradient recomputed and checked against the cached report; and the
differences between the report's pairs of models (its ``COMPARISONS``) over seeds, per method.
:func:`methods_markdown` renders the result.

Each run's numbers per method are kept in its cache folder (``saliency_methods.json``, keyed by the method, the
fill and a digest of the images) with the commit that computed them, so an interrupted or repeated comparison
measures only what is new.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from art_sgt.provenance import git_state, write_json
from art_sgt.reproduction.cache import RunCache
from art_sgt.reproduction.evaluate import map_quality
from art_sgt.reproduction.recipe import LABELS, RunSpec
from art_sgt.reproduction.report import COMPARISONS
from art_sgt.reproduction.statistics import difference_interval, seed_summary, verdict
from art_sgt.reproduction.training import load_trained

__all__ = ["QUALITIES", "STORE", "compare_methods", "methods_markdown"]

#: The map qualities compared, with their label (higher is better for each).
QUALITIES = {"morf_gain": "MoRF gain", "lerf_gain": "LeRF gain", "sparseness": "sparseness"}

#: Largest difference from the cached report's plain-gradient numbers still counted as a match (float rounding).
_TOLERANCE = 1e-6

#: The file in a run's cache folder that keeps its numbers per method.
STORE = "saliency_methods.json"


def _images_digest(x: np.ndarray, y: np.ndarray) -> str:
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    return hashlib.sha256(x.tobytes() + y.tobytes() + repr((x.shape, x.dtype.str, y.shape)).encode()).hexdigest()[:12]


def _qualities(quality: dict[str, Any]) -> dict[str, float]:
    masking = quality["masking"]
    return {
        "morf_gain": masking["morf_gain_accuracy"],
        "lerf_gain": masking["lerf_gain_accuracy"],
        "sparseness": quality["sparseness"],
    }


def _comparisons(rows: list[dict[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for a, b, _ in COMPARISONS:
        by_seed = {r["seed"]: r for r in rows if r["model"] == b}
        pairs = [(r, by_seed[r["seed"]]) for r in rows if r["model"] == a and r["seed"] in by_seed]
        for method in methods if pairs else ():
            for key, label in QUALITIES.items():
                xs, ys = [x["methods"][method][key] for x, _ in pairs], [y["methods"][method][key] for _, y in pairs]
                interval = difference_interval(xs, ys)
                text = verdict(interval, LABELS[a], LABELS[b], f"{label} ({method})", scale=1.0, unit="", digits=3)
                out.append(
                    {"a": a, "b": b, "method": method, "quantity": key, "interval": interval.to_dict(), "verdict": text}
                )
    return out


def compare_methods(
    cache: RunCache,
    runs: Sequence[RunSpec],
    x: np.ndarray,
    y: np.ndarray,
    methods: Sequence[str] = ("saliency", "integrated_gradients", "smoothgrad"),
    fill: str = "road",
    network: Callable[[], torch.nn.Module] | None = None,
    log: Callable[[str], None] = print,
    reuse: bool = True,
) -> dict[str, Any]:
    """Each method's map quality on every run that is done, and the report's pairs of models compared per method.

    :param cache: The run cache.
    :param runs: The runs to measure (those not done are skipped).
    :param x: Test inputs, channels first: the report's ``n_report`` (its seeded random subset of the test set,
        :func:`art_sgt.datasets.random_subset` with the recipe's ``subset_seed``) for the plain gradient to be checked.
    :param y: Their one-hot labels.
    :param methods: Attribution methods (:data:`~art_sgt.evaluation.attribution.METHODS`), ``"saliency"`` first.
    :param fill: The masking fill (the report's: the recipe's ``masking_fill``).
    :param network: Builds the network when it is not the recipe's architecture (tests).
    :param log: Receives one line per run and method.
    :param reuse: Take a run's numbers for a method from its folder's ``saliency_methods.json`` when measured on the
        same images and fill (``False``: measure again, replacing those numbers).
    :return: ``{"n", "fill", "methods", "runs" (per run: model, seed, per-method qualities and seconds, the methods
        reused), "matches_report" (``None`` when no run was evaluated on these images), "largest_difference",
        "code" (the commits that measured the numbers, and whether every tree was clean), "comparisons"}``.
    :raises ValueError: If ``methods`` does not start with ``"saliency"`` or ``x`` and ``y`` differ in length.
    """
    if not methods or methods[0] != "saliency":
        raise ValueError(f"methods must start with 'saliency', the report's method, got {list(methods)}.")
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same number of samples, got {len(x)} and {len(y)}.")
    rows, differences, codes = [], [], []
    images = _images_digest(x, y)
    for spec in runs:
        record = cache.evaluation(spec)
        if record is None:
            continue
        path = cache.folder(spec) / STORE
        stored = json.loads(path.read_text()) if path.is_file() else {}
        classifier = None
        row: dict[str, Any] = {"model": spec.model, "seed": spec.seed, "methods": {}, "seconds": {}, "reused": []}
        for method in methods:
            key = f"{method}|{fill}|n={len(x)}|{images}"
            if reuse and key in stored:
                row["reused"].append(method)
            else:
                if classifier is None:
                    classifier = load_trained(spec, cache.folder(spec), network)
                started = time.perf_counter()
                quality = _qualities(map_quality(classifier, x, y, method, fill, spec.seed)[1])
                stored[key] = {
                    "qualities": quality,
                    "seconds": round(time.perf_counter() - started, 1),
                    "git": git_state(),
                }
                write_json(path, stored)  # each method kept as soon as it is measured
            row["methods"][method], row["seconds"][method] = stored[key]["qualities"], stored[key]["seconds"]
            codes.append(stored[key]["git"])
            shown = ", ".join(f"{k} {v:.3f}" for k, v in row["methods"][method].items())
            reused = ", kept from an earlier run" if method in row["reused"] else ""
            log(f"{spec.name},{spec.seed} {method}: {shown} ({row['seconds'][method]} s{reused})")
        if record["evaluation"]["n_report"] == len(x):  # the report's images: its numbers must come back
            cached = _qualities(record["evaluation"]["saliency"])
            differences += [abs(cached[k] - row["methods"]["saliency"][k]) for k in QUALITIES]
        rows.append(row)
    largest = max(differences) if differences else None
    return {
        "n": len(x),
        "fill": fill,
        "methods": list(methods),
        "runs": rows,
        "matches_report": None if largest is None else largest <= _TOLERANCE,
        "largest_difference": largest,
        "code": {
            "commits": sorted({str(g["commit"]) for g in codes}),
            "all_clean": all(g["clean"] is True for g in codes),
        },
        "comparisons": _comparisons(rows, methods),
    }


def _cell(values: list[float]) -> str:
    s = seed_summary(values)
    return f"{s['mean']:.3f}" if s["n"] < 2 else f"{s['mean']:.3f} ± {s['std']:.3f}"


def methods_markdown(payload: dict[str, Any], title: str, provenance: str) -> str:
    """Render :func:`compare_methods`'s result.

    :param payload: Its result.
    :param title: The heading.
    :param provenance: A sentence naming the command and commit that produced it.
    :return: Markdown.
    """
    if payload["matches_report"] is None:
        check = "The plain-gradient rows are not checked against the report: no run was evaluated on these images."
    else:
        check = (
            f"The plain-gradient rows, recomputed here, match the cached report's numbers: "
            f"{payload['matches_report']} (largest difference {payload['largest_difference']:.2g})."
        )
    code = payload["code"]
    measured = (
        f"The numbers were measured at commit(s) {', '.join(c[:10] for c in code['commits']) or 'none'} "
        f"(every one from a clean tree: {code['all_clean']})."
    )
    lines = [
        f"# {title}",
        "",
        f"Every run done, on the report's {payload['n']} test images, masking fill '{payload['fill']}', each run's own "
        f"seed. {provenance} {measured}",
        "",
        check,
        "",
        "| model | method | seeds | MoRF gain | LeRF gain | sparseness |",
        "|---|---|---|---|---|---|",
    ]
    rows = payload["runs"]
    for model in dict.fromkeys(r["model"] for r in rows):
        for method in payload["methods"]:
            mine = [r["methods"][method] for r in rows if r["model"] == model]
            cells = " | ".join(_cell([m[k] for m in mine]) for k in QUALITIES)
            lines.append(f"| {LABELS.get(model, model)} | {method} | {len(mine)} | {cells} |")
    lines += [
        "",
        "Mean ± standard deviation over seeds (higher is better for each). Differences over seeds (paired "
        "t interval; one seed gives none):",
        "",
    ]
    lines += [f"- {c['verdict']}" for c in payload["comparisons"]] or ["- No pair of models is done yet."]
    return "\n".join(lines) + "\n"
