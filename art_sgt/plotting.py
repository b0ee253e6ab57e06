"""Figures for the saliency evaluators: map grids, masking curves, stability and randomisation curves.

matplotlib (a dependency of art-sgt) is imported on the first call, so that ``import art_sgt`` stays light. Every
function returns the ``matplotlib.figure.Figure`` (close it with ``plt.close(fig)`` when done) and, given
``path``, also saves it (folders are created).
Results may be given flat (``{label: result}``, one panel) or nested (``{panel title: {label: result}}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_map_grid", "plot_masking_curves", "plot_stability", "plot_randomization"]

_ORDER_STYLE = {"morf": ("-", "MoRF"), "lerf": ("--", "LeRF"), "random": (":", "random")}


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("art_sgt.plotting needs matplotlib (an art-sgt dependency): pip install matplotlib") from err
    return plt


def _panels(results: Mapping[str, Any], kind: type | tuple[type, ...]) -> dict[str, Mapping[str, Any]]:
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty mapping {label: result} or {panel: {label: result}}.")
    first = next(iter(results.values()))
    if isinstance(first, Mapping):
        return dict(results)
    if not isinstance(first, kind):
        raise TypeError(f"results must hold {kind} objects, got {type(first).__name__}.")
    return {"": results}


def _save(fig: Any, path: str | Path | None, title: str | None = None) -> Any:
    if title:
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def _image(x: np.ndarray) -> tuple[np.ndarray, str | None]:
    """A channels-first image as something ``imshow`` shows: 2-D grey or channels-last RGB."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[0] == 1:
        return x[0], "gray"
    if x.ndim == 3 and x.shape[0] == 3:
        return np.clip(np.moveaxis(x, 0, -1), 0, 1), None
    return x, "gray"


def plot_map_grid(
    images: Any,
    maps: Mapping[str, Any],
    n: int = 6,
    titles: Sequence[str] | None = None,
    absolute: bool = True,
    title: str | None = None,
    path: str | Path | None = None,
) -> Any:
    """A grid with one row per sample: the image, then one map per entry of ``maps`` (method and/or model).

    Maps are summed over channels; absolute maps are shown in ``hot`` scaled to each map's 99th percentile,
    signed maps in ``bwr`` centred on zero.

    :param images: Images ``(m, c, h, w)``, channels first.
    :param maps: ``{column title: maps (m, c, h, w)}``.
    :param n: Number of rows (samples).
    :param titles: Optional row labels (e.g. the true classes).
    :param absolute: Show ``|map|``.
    :param title: Optional figure title (e.g. how to read it).
    :param path: Save the figure here.
    :return: The figure.
    """
    plt = _pyplot()
    images = np.asarray(images)
    n = min(int(n), len(images), *(len(np.asarray(m)) for m in maps.values()))
    cols = 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n), squeeze=False)
    for i in range(n):
        img, cmap = _image(images[i])
        axes[i, 0].imshow(img, cmap=cmap, vmin=0, vmax=1 if cmap else None)
        if titles is not None:
            axes[i, 0].set_ylabel(str(titles[i]), rotation=0, labelpad=14, va="center")
        for j, (label, m) in enumerate(maps.items(), start=1):
            a = np.asarray(m[i], dtype=np.float64)
            a = a.sum(axis=0) if a.ndim == 3 else a
            if absolute:
                a = np.abs(a)
                axes[i, j].imshow(a, cmap="hot", vmin=0, vmax=max(np.percentile(a, 99), 1e-12))
            else:
                v = max(np.percentile(np.abs(a), 99), 1e-12)
                axes[i, j].imshow(a, cmap="bwr", vmin=-v, vmax=v)
            if i == 0:
                axes[i, j].set_title(label, fontsize=8)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path, title)


def plot_masking_curves(
    curves: Mapping[str, Any],
    quantity: str = "accuracy",
    orders: Sequence[str] = ("morf", "lerf", "random"),
    title: str | None = None,
    path: str | Path | None = None,
) -> Any:
    """Masking curves: a colour per label, a line style per order (MoRF solid, LeRF dashed, random dotted).

    The legend gives each curve's normalised area (AUC).

    :param curves: ``{label: MaskingCurve}`` or ``{panel: {label: MaskingCurve}}``.
    :param quantity: ``"accuracy"`` or ``"probability"``.
    :param orders: Orders drawn (when evaluated).
    :param title: Optional figure title (e.g. how to read it).
    :param path: Save the figure here.
    :return: The figure.
    """
    from art_sgt.evaluation.faithfulness import MaskingCurve

    plt = _pyplot()
    panels = _panels(curves, MaskingCurve)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.6), squeeze=False, sharey=True)
    for ax, (panel, group) in zip(axes[0], panels.items()):
        for k, (label, curve) in enumerate(group.items()):
            values = curve.accuracy if quantity == "accuracy" else curve.probability
            for order in orders:
                if order not in values:
                    continue
                style, name = _ORDER_STYLE[order]
                auc = curve.auc(order, quantity)
                ax.plot(
                    curve.fractions,
                    values[order],
                    style,
                    color=f"C{k}",
                    marker=".",
                    label=f"{label} {name} (AUC {auc:.2f})",
                )
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("fraction of features replaced")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    axes[0, 0].set_ylabel("accuracy" if quantity == "accuracy" else "mean true-class probability")
    fig.tight_layout()
    return _save(fig, path, title)


def plot_stability(
    results: Mapping[str, Any],
    quantities: Sequence[str] = ("accuracy", "spearman", "top_k"),
    title: str | None = None,
    path: str | Path | None = None,
) -> Any:
    """Accuracy and map similarity against attack strength: one column per quantity, one row per panel.

    :param results: ``{label: StabilityResult}`` or ``{panel: {label: StabilityResult}}``.
    :param quantities: Fields of ``StabilityResult`` drawn: ``accuracy``, ``flipped``, ``spearman``,
        ``spearman_signed``, ``top_k``, ``cosine``, ``ssim`` (similarities are over the samples whose prediction
        the attack did not flip).
    :param title: Optional figure title (e.g. how to read it).
    :param path: Save the figure here.
    :return: The figure.
    """
    from art_sgt.evaluation.stability import StabilityResult

    plt = _pyplot()
    panels = _panels(results, StabilityResult)
    names = {
        "accuracy": "accuracy under PGD",
        "flipped": "fraction of predictions flipped",
        "spearman": "Spearman(|map(x)|, |map(x')|), unflipped",
        "spearman_signed": "Spearman(map(x), map(x')), unflipped",
        "top_k": "top-k intersection, unflipped",
        "cosine": "cosine similarity, unflipped",
        "ssim": "SSIM, unflipped",
    }
    rows, cols = len(panels), len(quantities)
    fig, axes = plt.subplots(rows, cols, figsize=(3.9 * cols, 3.2 * rows), squeeze=False)
    for r, (panel, group) in enumerate(panels.items()):
        for c, quantity in enumerate(quantities):
            ax = axes[r, c]
            for k, (label, result) in enumerate(group.items()):
                ax.plot(result.eps, getattr(result, quantity), "-o", color=f"C{k}", label=label, markersize=4)
            ax.set_title(
                f"{panel}: {names.get(quantity, quantity)}" if panel else names.get(quantity, quantity),
                fontsize=9,
            )
            ax.set_xlabel("eps (L-inf)")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path, title)


def plot_randomization(
    results: Mapping[str, Any],
    quantity: str | Sequence[str] = "spearman",
    random_logit: Mapping[str, Any] | None = None,
    title: str | None = None,
    path: str | Path | None = None,
) -> Any:
    """Similarity to the original maps as layers are randomised from the top (cascading randomisation).

    :param results: ``{label: RandomizationResult}`` or ``{panel: {label: RandomizationResult}}``.
    :param quantity: ``"spearman"``, ``"spearman_signed"``, ``"top_k"``, ``"cosine"`` or ``"ssim"``, or one of
        them per panel.
    :param random_logit: Optional ``{label: RandomLogitResult}``: drawn in every panel as a dashed line at the
        similarity of the maps of the predicted and of a random class, in the colour of the same label.
    :param title: Optional figure title (e.g. how to read it).
    :param path: Save the figure here.
    :return: The figure.
    """
    from art_sgt.evaluation.sanity import RandomizationResult

    plt = _pyplot()
    panels = _panels(results, RandomizationResult)
    quantities = [quantity] * len(panels) if isinstance(quantity, str) else list(quantity)
    if len(quantities) != len(panels):
        raise ValueError(f"quantity must name one quantity or one per panel ({len(panels)}), got {quantity!r}.")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (panel, group), name in zip(axes[0], panels.items(), quantities):
        low = 0.0
        for k, (label, result) in enumerate(group.items()):
            values = [1.0, *getattr(result, name)]
            low = min(low, *(v for v in values if v == v))
            ax.plot(range(len(values)), values, "-o", color=f"C{k}", label=label, markersize=4)
            ax.set_xticks(range(len(values)), ["none", *result.layers], rotation=30, fontsize=8)
            if random_logit is not None and label in random_logit:
                ax.axhline(
                    getattr(random_logit[label], name),
                    color=f"C{k}",
                    linestyle="--",
                    linewidth=1,
                    label=f"{label}: map of a random class",
                )
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("randomised down to layer")
        ax.set_ylabel(f"{name} with original maps")
        ax.set_ylim(min(-0.02, low - 0.05), 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path, title)
