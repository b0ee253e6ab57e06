"""The catastrophic-overfitting guard's decision and the best-epoch choice, on histories written by hand."""

from __future__ import annotations

import pytest
import torch

from art_sgt.trainers._selection import (
    COLLAPSE_DROP,
    COLLAPSE_GAP,
    CatastrophicOverfittingWarning,
    EpochSelection,
    catastrophic_overfitting,
)


def _run(history, keep_best=None, measure=None):
    """Feed ``(robust, single_step)`` pairs to a selection, as the loop does; the model's weight is the epoch."""
    selection = EpochSelection(keep_best, measure)
    model = torch.nn.Linear(1, 1, bias=False)
    records = []
    for epoch, (robust, single) in enumerate(history, start=1):
        record = {"epoch": epoch, "robust_val_accuracy": robust, "single_step_val_accuracy": single}
        with torch.no_grad():
            model.weight.fill_(epoch)
        selection.update(record, model, speak=True)
        records.append(record)
    return selection, records, model


def test_fires_on_a_collapse_while_single_step_stays_high():
    # Wong et al.'s picture: PGD accuracy falls to about 0 within an epoch, FGSM accuracy stays high
    history = [(0.30, 0.40), (0.45, 0.55), (0.50, 0.60), (0.02, 0.85)]
    with pytest.warns(CatastrophicOverfittingWarning, match=r"epoch 4: .*0\.0200 \(best so far 0\.5000\).*0\.8500"):
        _, records, _ = _run(history)
    assert [r["catastrophic_overfitting"] for r in records] == [False, False, False, True]


def test_does_not_fire_on_a_steady_history():
    history = [(0.30, 0.40), (0.45, 0.55), (0.50, 0.60), (0.48, 0.58)]  # a small dip of robust overfitting
    _, records, _ = _run(history)
    assert not any(r["catastrophic_overfitting"] for r in records)


def test_does_not_fire_when_both_accuracies_fall_together():
    _, records, _ = _run([(0.50, 0.60), (0.10, 0.15)])  # a worse model, not a catastrophically overfitted one
    assert not any(r["catastrophic_overfitting"] for r in records)


def test_does_not_fire_on_a_large_gap_without_a_drop():
    # a model that was never robust to PGD but is to FGSM (gradient masking from the start): no collapse to see
    _, records, _ = _run([(0.05, 0.80), (0.06, 0.85)])
    assert not any(r["catastrophic_overfitting"] for r in records)


def test_never_fires_on_the_first_epoch():
    assert not catastrophic_overfitting(robust=0.0, single_step=1.0, best_robust=None)


@pytest.mark.parametrize(
    ("robust", "single_step", "fires"),
    [
        (0.5 - COLLAPSE_DROP, 0.5 - COLLAPSE_DROP + COLLAPSE_GAP, True),  # both thresholds met exactly
        (0.5 - COLLAPSE_DROP + 0.01, 0.9, False),  # not far enough below the best
        (0.5 - COLLAPSE_DROP, 0.5 - COLLAPSE_DROP + COLLAPSE_GAP - 0.01, False),  # gap too small
    ],
)
def test_thresholds_are_inclusive(robust, single_step, fires):
    assert catastrophic_overfitting(robust, single_step, best_robust=0.5) is fires


def test_keep_best_keeps_the_earliest_best_epochs_weights():
    history = [(0.30, 0.40), (0.50, 0.60), (0.50, 0.62), (0.02, 0.85)]
    with pytest.warns(CatastrophicOverfittingWarning):
        selection, _, model = _run(history, "robust", "robust_val_accuracy")
    assert (selection.epoch, selection.score) == (2, 0.50)  # a tie with epoch 3 keeps epoch 2
    assert selection.file_payload()["model"]["weight"].item() == 2.0
    selection.restore(model)
    assert model.weight.item() == 2.0


def test_the_selection_travels_through_its_state():
    selection, _, _ = _run([(0.30, 0.40), (0.50, 0.60)], "robust", "robust_val_accuracy")
    resumed = EpochSelection("robust", "robust_val_accuracy")
    resumed.load_state_dict(selection.state_dict())
    model = torch.nn.Linear(1, 1, bias=False)
    with pytest.warns(CatastrophicOverfittingWarning):  # the best so far came from before the resume
        resumed.update({"epoch": 3, "robust_val_accuracy": 0.0, "single_step_val_accuracy": 0.9}, model, speak=True)
    assert (resumed.epoch, resumed.best_robust) == (2, 0.50)


def test_without_keep_best_nothing_is_kept():
    selection, _, _ = _run([(0.30, 0.40), (0.50, 0.60)])
    assert selection.epoch is None and selection.weights is None
