"""The report's figures, drawn from a report payload (so from the cache, never from live models).

- ``accuracy_vs_eps.png``: worst-case robust accuracy against eps, per model, mean over seeds with the seed
  range shaded (the figure a reader looks at first);
- ``robust_vs_cpu.png``: worst-case accuracy at the paper's eps against training CPU-minutes, per model (the
  CPU over the seeds whose training cost is complete, see ``training_cost_complete``);
- ``saliency_quality.png``: masking areas against the random control (ROAD fill), sparseness and stability
  under PGD, per model, mean with the seed range;
- ``masking_curves.png``: MoRF / LeRF / random masking curves, mean over seeds, one panel per model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from art_sgt.reproduction.recipe import LABELS
from art_sgt.reproduction.records import ModelSummary

__all__ = ["write_figures"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(plt: Any, n: int) -> list[Any]:
    """``n`` distinct colours (matplotlib's tab10, or tab20 beyond ten models)."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(k % cmap.N) for k in range(n)]


def _summaries(payload: Mapping[str, Any]) -> dict[str, ModelSummary]:
    return {name: ModelSummary.from_payload(s) for name, s in payload["results"].items()}


def _spread(summary: Mapping[str, float]) -> tuple[float, float]:
    """Distance from the mean to the seed minimum and maximum (zero for one seed)."""
    return summary["mean"] - summary["min"], summary["max"] - summary["mean"]


def _accuracy_vs_eps(plt: Any, payload: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    colors = _colors(plt, len(payload["results"]))
    for k, (name, s) in enumerate(_summaries(payload).items()):
        curve = np.asarray(s.worst_case_per_seed, dtype=float)
        eps = s.worst_case_eps
        style = "-" if "[" not in name else ":"
        ax.plot(
            eps,
            curve.mean(0),
            style,
            marker="o",
            color=colors[k],
            label=f"{LABELS.get(name, name)} ({len(curve)} seed{'s' if len(curve) > 1 else ''})",
        )
        if len(curve) > 1:
            ax.fill_between(eps, curve.min(0), curve.max(0), color=colors[k], alpha=0.2)
    paper = payload["paper"]["paper_eps"]
    ax.axvline(paper, color="grey", lw=0.8, ls="--")
    ax.text(paper, 1.0, " paper eps\n (+ checklist attacks)", fontsize=7, color="grey", va="top")
    ax.set(xlabel="eps (L-inf)", ylabel="worst-case robust accuracy", ylim=(-0.02, 1.02))
    ax.set_title(
        f"{payload['dataset']} / {payload['profile']}: worst case over attacks (mean, seed range shaded)", fontsize=8
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cost_label(name: str, summary: Mapping[str, Any] | ModelSummary) -> str:
    """A model's legend entry on the cost figure, naming the seeds its cost rests on when not all of them.

    :param name: The model's name.
    :param summary: Its entry of the payload's ``results``, or that entry read.
    :return: The label.
    """
    s = summary if isinstance(summary, ModelSummary) else ModelSummary.from_payload(summary)
    text = f"{LABELS.get(name, name)}: {s.train_cpu_minutes_per_epoch['mean']:.1f} CPU-min/epoch"
    left_out = len(s.cost_incomplete_seeds)
    return f"{text} (cost of {len(s.seeds) - left_out} of {len(s.seeds)} seeds)" if left_out else text


def _robust_vs_cpu(plt: Any, payload: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    colors = _colors(plt, len(payload["results"]))
    for k, (name, s) in enumerate(_summaries(payload).items()):
        x, y = s.train_cpu_minutes, s.quantities["worst_case_paper_eps"]
        if x is None:  # no seed of this model has a complete training cost
            continue
        ax.errorbar(
            [x["mean"]],
            [y["mean"]],
            xerr=np.array([_spread(x)]).T,
            yerr=np.array([_spread(y)]).T,
            fmt="o" if "[" not in name else "s",
            color=colors[k],
            capsize=3,
            label=_cost_label(name, s),
        )
    ax.set(
        xlabel="training CPU-minutes (time.process_time)",
        ylabel=f"worst-case accuracy at eps {payload['paper']['paper_eps']:.3g}",
        ylim=(-0.02, 1.02),
    )
    ax.set_xlim(left=0)  # costs compared from zero, not from the cheapest model
    ax.set_title(
        f"{payload['dataset']} / {payload['profile']}: robustness against training cost (mean, bars: seed range)",
        fontsize=8,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


_QUALITY = {
    "morf_gain": "MoRF gain over random\n(higher: more faithful)",
    "lerf_gain": "LeRF gain over random\n(higher: more faithful)",
    "sparseness": "sparseness (Gini)",
    "stability_spearman": "stability under PGD\n(Spearman, unflipped predictions)",
}


def _saliency_quality(plt: Any, payload: dict[str, Any], path: Path) -> None:
    summaries = _summaries(payload)
    names = list(summaries)
    fig, axes = plt.subplots(1, len(_QUALITY), figsize=(3.0 * len(_QUALITY), 3.6))
    for ax, (key, title) in zip(axes, _QUALITY.items()):
        stats = [summaries[n].quantities[key] for n in names]
        ax.bar(
            range(len(names)),
            [s["mean"] for s in stats],
            color=_colors(plt, len(names)),
            yerr=np.array([_spread(s) for s in stats]).T,
            capsize=3,
        )
        ax.set_xticks(range(len(names)), [n.replace("[", "\n[") for n in names], rotation=90, fontsize=6)
        ax.set_title(title, fontsize=8)
        ax.axhline(0, color="black", lw=0.6)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(
        f"{payload['dataset']} / {payload['profile']}: saliency quality per model (mean, bars: seed range; "
        f"masking fill '{payload['recipe']['evaluation']['masking_fill']}')",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _masking_curves(plt: Any, payload: dict[str, Any], path: Path) -> None:
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in payload["runs"]:
        runs.setdefault(r["name"], []).append(r["evaluation"]["saliency"]["masking_curves"])
    cols = min(5, len(runs))
    rows = -(-len(runs) // cols)
    width = max(2.8 * cols, 5.6)  # room for the title when there are only one or two panels
    fig, axes = plt.subplots(rows, cols, figsize=(width, 2.8 * rows), squeeze=False, sharey=True)
    for ax in axes.flat[len(runs) :]:
        ax.set_visible(False)
    for ax, (name, curves) in zip(axes.flat, runs.items()):
        fractions = curves[0]["fractions"]
        for k, order in enumerate(curves[0]["accuracy"]):
            ax.plot(
                fractions,
                np.mean([c["accuracy"][order] for c in curves], axis=0),
                marker=".",
                color=f"C{k}",
                label=order,
            )
        ax.set_title(LABELS.get(name, name), fontsize=7)
        ax.set_xlabel("fraction replaced")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        f"{payload['dataset']} / {payload['profile']}: masking curves, fill "
        f"'{payload['recipe']['evaluation']['masking_fill']}' (mean over seeds)",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_figures(payload: dict[str, Any], folder: str | Path) -> dict[str, str]:
    """Write the four figures of a report payload.

    :param payload: From :func:`~art_sgt.reproduction.report.assemble`, with at least one model done.
    :param folder: Folder of the PNG files (created).
    :return: ``{figure name: path}``.
    :raises ValueError: If the payload holds no model.
    """
    if not payload["results"]:
        raise ValueError("payload must hold at least one evaluated model to draw figures.")
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawers = {
        "accuracy_vs_eps": _accuracy_vs_eps,
        "robust_vs_cpu": _robust_vs_cpu,
        "saliency_quality": _saliency_quality,
        "masking_curves": _masking_curves,
    }
    paths = {}
    for name, draw in drawers.items():
        paths[name] = str(folder / f"{name}.png")
        draw(plt, payload, Path(paths[name]))
    return paths
