"""Resuming never mixes two runs or damages the user's model; checkpoints are never lost (issue 12)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from art_sgt import SaliencyGuidedTrainer
from art_sgt.trainers import _checkpoint
from tests.conftest import make_classifier, make_task, small_model

X, Y = make_task(n=32, seed=5)


def _fit(classifier, folder, resume=False, nb_epochs=1, **kwargs):
    trainer_kwargs = {k: kwargs.pop(k) for k in ("mask_fraction",) if k in kwargs}
    trainer = SaliencyGuidedTrainer(classifier, **trainer_kwargs)
    trainer.fit(
        X, Y, nb_epochs=nb_epochs, batch_size=16, seed=1, verbose=False, checkpoint_dir=folder, resume=resume, **kwargs
    )
    return trainer


def _weights(classifier):
    return [p.detach().clone() for p in classifier.model.parameters()]


def _unchanged(before, classifier):
    return all(torch.equal(a, b) for a, b in zip(before, classifier.model.parameters()))


def test_a_different_configuration_is_refused_before_loading_and_named(tmp_path):
    _fit(make_classifier(), tmp_path)
    classifier = make_classifier(model=small_model(seed=3))
    before = _weights(classifier)
    with pytest.raises(ValueError, match=r"differing fields: mask_fraction: 0\.5 -> 0\.25.*allow_config_change"):
        _fit(classifier, tmp_path, resume=True, nb_epochs=2, mask_fraction=0.25)
    assert _unchanged(before, classifier)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"drop_last": True}, "drop_last"), ({"training_mode": False}, "training_mode"), ({"n": 24}, "n_samples")],
)
def test_a_change_of_the_epochs_batches_is_refused(tmp_path, change, field):
    """drop_last and the data's length move the batch bounds, so a saved batch index would point elsewhere."""
    _fit(make_classifier(), tmp_path)
    n = change.pop("n", len(X))
    trainer = SaliencyGuidedTrainer(make_classifier())
    with pytest.raises(ValueError, match=f"differing fields: {field}"):
        trainer.fit(
            X[:n],
            Y[:n],
            nb_epochs=2,
            batch_size=16,
            seed=1,
            verbose=False,
            checkpoint_dir=tmp_path,
            resume=True,
            **change,
        )


def test_a_deliberate_change_resumes_with_a_warning(tmp_path, caplog):
    _fit(make_classifier(), tmp_path)
    with caplog.at_level(logging.WARNING):
        trainer = _fit(
            make_classifier(), tmp_path, resume=True, nb_epochs=2, mask_fraction=0.25, allow_config_change=True
        )
    assert "mask_fraction" in caplog.text and len(trainer.history) == 2


def test_another_architecture_is_refused_even_with_the_override(tmp_path):
    _fit(make_classifier(), tmp_path)
    wider = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(16 * 64, 4)
    )
    classifier = make_classifier(model=wider)
    before = _weights(classifier)
    with pytest.raises(ValueError, match="architecture"):
        _fit(classifier, tmp_path, resume=True, nb_epochs=2, allow_config_change=True)
    assert _unchanged(before, classifier)


def test_another_optimizer_type_is_refused_before_loading(tmp_path):
    _fit(make_classifier(optimizer="adam"), tmp_path)
    classifier = make_classifier(optimizer="sgd")
    before = _weights(classifier)
    with pytest.raises(ValueError, match="optimizer: 'Adam' -> 'SGD'"):
        _fit(classifier, tmp_path, resume=True, nb_epochs=2)
    assert _unchanged(before, classifier)


def test_the_same_configuration_resumes(tmp_path):
    _fit(make_classifier(), tmp_path)
    assert len(_fit(make_classifier(), tmp_path, resume=True, nb_epochs=2).history) == 2


def test_a_fresh_run_keeps_the_earlier_checkpoint_under_a_new_name(tmp_path):
    _fit(make_classifier(), tmp_path)
    first = (tmp_path / "checkpoint.pt").read_bytes()
    _fit(make_classifier(model=small_model(seed=8)), tmp_path)
    kept = list(tmp_path.glob("checkpoint.previous-*.pt"))
    assert len(kept) == 1 and kept[0].read_bytes() == first
    assert (tmp_path / "checkpoint.pt").read_bytes() != first


def test_a_folder_without_a_checkpoint_keeps_nothing_aside(tmp_path):
    _fit(make_classifier(), tmp_path)
    assert not list(tmp_path.glob("checkpoint.previous-*"))


def test_temporary_files_of_a_killed_write_are_removed_at_the_next_start(tmp_path):
    leftover = tmp_path / ".checkpoint-abc123.tmp"
    leftover.write_bytes(b"half a checkpoint")
    _fit(make_classifier(), tmp_path)
    assert not leftover.exists()


def test_a_failed_write_keeps_the_trained_weights_and_says_where(tmp_path, monkeypatch):
    def failing_save(directory, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_checkpoint, "save_checkpoint", failing_save)
    classifier = make_classifier()
    with pytest.raises(OSError, match=r"weights are saved in (\S+\.pt)") as info:
        _fit(classifier, tmp_path)
    path = str(info.value).split("weights are saved in ")[1].split(" ")[0]
    rescued = torch.load(path, weights_only=True)
    Path(path).unlink()
    assert all(torch.equal(rescued[k], v) for k, v in classifier.model.state_dict().items())


class _InterruptedStep(torch.optim.Adam):
    """Raises KeyboardInterrupt right after its ``at``-th step has changed the weights."""

    at = -1

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.steps = 0

    def step(self, closure=None):
        out = super().step(closure)
        self.steps += 1
        if self.steps == self.at:
            raise KeyboardInterrupt
        return out


def _classifier_with(optimizer_at):
    from art.estimators.classification import PyTorchClassifier

    model = small_model(seed=2)
    optimizer = _InterruptedStep(model.parameters(), lr=0.01)
    optimizer.at = optimizer_at
    return PyTorchClassifier(
        model,
        torch.nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=4,
        optimizer=optimizer,
        clip_values=(0.0, 1.0),
    )


def test_an_interrupt_after_the_optimizer_step_never_checkpoints_a_half_done_batch(tmp_path):  # bug 3
    reference = _classifier_with(-1)
    SaliencyGuidedTrainer(reference).fit(X, Y, nb_epochs=2, batch_size=8, seed=4, verbose=False)
    classifier = _classifier_with(6)  # batch 2 of epoch 2 (4 batches per epoch)
    with pytest.raises(KeyboardInterrupt):
        SaliencyGuidedTrainer(classifier).fit(
            X, Y, nb_epochs=2, batch_size=8, seed=4, verbose=False, checkpoint_dir=tmp_path
        )
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert (payload["epoch"], payload["batch"]) == (1, 0)  # the last consistent snapshot: the end of epoch 1
    resumed = _classifier_with(-1)
    SaliencyGuidedTrainer(resumed).fit(
        X, Y, nb_epochs=2, batch_size=8, seed=4, verbose=False, checkpoint_dir=tmp_path, resume=True
    )
    assert all(torch.equal(a, b) for a, b in zip(reference.model.parameters(), resumed.model.parameters()))
