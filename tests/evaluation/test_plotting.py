"""Tests of art_sgt.plotting: every figure renders to PNG; a clear error without matplotlib."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from art_sgt import plotting
from art_sgt.evaluation import MaskingCurve, RandomizationResult, StabilityResult

pytest.importorskip("matplotlib")


def _curve(shift: float) -> MaskingCurve:
    f = [0.0, 0.5]
    return MaskingCurve(
        f,
        {"morf": [1.0, 0.2 + shift], "lerf": [1.0, 0.9]},
        {"morf": [0.9, 0.1], "lerf": [0.9, 0.8]},
        "road",
        4,
    )


def test_figures_are_written(tmp_path):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    images = rng.random((3, 1, 8, 8))
    figs = [
        plotting.plot_map_grid(
            images,
            {"a": rng.standard_normal((3, 1, 8, 8)), "b": rng.random((3, 1, 8, 8))},
            titles=["0", "1", "2"],
            path=tmp_path / "grid.png",
        ),
        plotting.plot_map_grid(
            rng.random((2, 3, 8, 8)),
            {"rgb": rng.random((2, 3, 8, 8))},
            absolute=False,
            path=tmp_path / "rgb.png",
        ),
        plotting.plot_masking_curves(
            {"left": {"m1": _curve(0.0)}, "right": {"m2": _curve(0.1)}}, path=tmp_path / "curves.png"
        ),
        plotting.plot_stability(
            {
                "m": StabilityResult(
                    [0.0, 0.1], [1.0, 0.5], [1.0, 0.7], [1.0, 0.6], [1.0, 0.9], "saliency", "PGD", 0.1, 4
                )
            },
            path=tmp_path / "stab.png",
        ),
        plotting.plot_randomization(
            {"m": RandomizationResult(["fc", "conv"], [0.5, 0.1], [0.4, 0.1], [0.8, 0.6], "saliency", 4)},
            path=tmp_path / "rand.png",
        ),
    ]
    for fig in figs:
        plt.close(fig)
    for name in ("grid", "rgb", "curves", "stab", "rand"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    with pytest.raises(TypeError, match="results must hold"):
        plotting.plot_stability({"m": _curve(0.0)})


def test_missing_matplotlib_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plotting.plot_map_grid(np.zeros((1, 1, 2, 2)), {"a": np.zeros((1, 1, 2, 2))})
