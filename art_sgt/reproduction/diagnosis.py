"""Trace a saliency-guided adversarial training epoch by epoch, to see when and why its maps degenerate.

In the standard MNIST study two of three ASGT seeds ended with degenerate maps (MoRF gain near 0, negative LeRF
gain, map stability under PGD about 0.2) and a gradient-obfuscation signature (Square stronger than PGD). The
trace asks when that happens and what goes with it: after every epoch it records the trainer's own history (the
epoch's loss and its components, robust validation accuracy under PGD and FGSM) and, on a fixed probe set, the
saliency maps' normalised entropy and Gini sparseness and the masking curve's MoRF and LeRF gains. At the end it
compares PGD with black-box Square on the probe set: Square stronger than PGD is the obfuscation signature.

Training epoch by epoch goes through the trainer's checkpoints (``fit(nb_epochs=k, resume=True)``), which resume
to bitwise the weights of one uninterrupted run, so the trace measures the run it would have been anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["map_statistics", "trace_run"]


def map_statistics(maps: np.ndarray) -> dict[str, float]:
    """Mean normalised entropy and mean Gini sparseness of saliency maps.

    The entropy is :func:`~art_sgt.evaluation.metrics.complexity` divided by ``ln d`` (``d`` the positions of one
    map after summing channels), so it lies in [0, 1]: 1 for a constant map, 0 when one position holds all the
    mass. Degenerate, noise-like maps sit near 1.

    :param maps: Maps ``(n, c, h, w)`` or ``(n, d)``.
    :return: ``{"entropy", "sparseness"}``.

    >>> stats = map_statistics(np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 2.0]]))
    >>> {k: round(v, 4) for k, v in stats.items()}
    {'entropy': 0.5, 'sparseness': 0.375}
    """
    import warnings

    from art_sgt.evaluation import complexity, sparseness

    maps = np.asarray(maps)
    positions = int(np.prod(maps.shape[2:])) if maps.ndim == 4 else int(np.prod(maps.shape[1:]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-zero map has no entropy: left out as nan
        entropy = complexity(maps) / math.log(positions)
    return {"entropy": float(np.nanmean(entropy)), "sparseness": float(np.mean(sparseness(maps)))}


def _probe(classifier: Any, x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
    from art_sgt.reproduction.evaluate import map_quality

    maps, quality = map_quality(classifier, x, y, "saliency", "road", seed)
    masking = quality["masking"]
    return {
        **map_statistics(maps),
        "morf_gain": float(masking["morf_gain_accuracy"]),
        "lerf_gain": float(masking["lerf_gain_accuracy"]),
        "probe_accuracy": float(np.mean(classifier.predict(x).argmax(1) == y.argmax(1))),
    }


def _obfuscation(classifier: Any, x: np.ndarray, y: np.ndarray, eps: float, seed: int) -> dict[str, float]:
    """PGD and Square accuracy on the same clean-correct probe images (independent runs, no checklist)."""
    from art_sgt.evaluation import robustness_report

    report = robustness_report(
        classifier,
        x,
        y,
        eps=eps,
        attacks=("pgd", "square"),
        budget="standard",
        mode="independent",
        checklist=False,
        seed=seed,
        verbose=False,
    )
    accuracy = report.accuracy
    return {
        "eps": eps,
        "pgd": float(accuracy["pgd"][0]),
        "square": float(accuracy["square"][0]),
        "worst_case": float(report.worst_case[0]),
    }


def trace_run(
    make_trainer: Callable[[], Any],
    x: np.ndarray,
    y: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    probe: tuple[np.ndarray, np.ndarray],
    folder: str | Path,
    epochs: int,
    seed: int,
    batch_size: int = 128,
    eps: float = 0.3,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the trainer ``make_trainer()`` builds for ``epochs`` epochs, one at a time, tracing each epoch.

    :param make_trainer: Builds the trainer on its classifier (called once per epoch: each call must return a
        trainer on the same classifier with the same arguments, as a resumed run needs).
    :param x: Training inputs.
    :param y: Training labels (one-hot).
    :param validation: ``(x_val, y_val)`` held out from training: the trainer's robust validation set.
    :param probe: ``(x_probe, y_probe)``: the images the maps and the final PGD-versus-Square check are measured on.
    :param folder: The run's checkpoint folder.
    :param epochs: Epochs.
    :param seed: The training seed (and the probes').
    :param batch_size: Batch size.
    :param eps: Radius of the final PGD-versus-Square check.
    :param log: Where a line per epoch goes.
    :return: ``{"epochs": [per-epoch record: the trainer's history record and the probe's statistics],
        "obfuscation": {"eps", "pgd", "square", "worst_case"}}``.
    """
    records: list[dict[str, Any]] = []
    trainer = None
    for epoch in range(1, epochs + 1):
        trainer = make_trainer()
        trainer.fit(
            x,
            y,
            batch_size=batch_size,
            nb_epochs=epoch,
            seed=seed,
            verbose=False,
            checkpoint_dir=str(folder),
            resume=epoch > 1,
            robust_validation=validation,
        )
        history: Mapping[str, Any] = trainer.history[-1]
        record = {
            **{k: v for k, v in history.items() if not isinstance(v, (list, dict))},
            **_probe(trainer.get_classifier(), *probe, seed),
        }
        records.append(record)
        log(
            f"epoch {epoch}: loss {record['loss']:.3f}, robust val {record.get('robust_val_accuracy', math.nan):.3f}, "
            f"map entropy {record['entropy']:.3f}, MoRF gain {record['morf_gain']:.3f}"
        )
    assert trainer is not None
    return {"epochs": records, "obfuscation": _obfuscation(trainer.get_classifier(), *probe, eps, seed)}
