import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from art_sgt import SaliencyGuidedTrainer
from art_sgt.trainers._interrupt import DeferredInterrupt
from tests.conftest import make_classifier, make_task, small_model

ROOT = Path(__file__).resolve().parents[2]


def _child(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tests.trainers._train_child", *map(str, args)], cwd=ROOT, env=env)


def _weights(path):
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("name", ["sgt", "asgt"])
def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path, name):
    # 192 samples / batch 32 = 6 batches per epoch; batch 9 is in the middle of epoch 2
    assert _child(name, tmp_path / "ref_ckpt", tmp_path / "ref.pt", -1, "fresh").returncode == 0
    killed = _child(name, tmp_path / "ckpt", tmp_path / "run.pt", 9, "fresh")
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "ckpt" / "checkpoint.pt").is_file()
    assert not (tmp_path / "run.pt").exists()
    assert _child(name, tmp_path / "ckpt", tmp_path / "run.pt", -1, "resume").returncode == 0
    ref, run = _weights(tmp_path / "ref.pt"), _weights(tmp_path / "run.pt")
    assert ref.keys() == run.keys()
    assert all(torch.equal(ref[k], run[k]) for k in ref)


class _InterruptAt(SaliencyGuidedTrainer):
    """At its ``at``-th batch: raises KeyboardInterrupt at once (``mode`` ``None``); sends itself the signal
    ``mode`` (SIGINT: Ctrl-C; SIGTERM: a scheduler's stop request) in the middle of the batch; or (``mode``
    ``(signal, "then fail")``) sends it and then fails before the batch changes anything, as a fetch fails when
    the same signal has killed DataLoader workers; ``"fail"`` fails the same way without any signal."""

    def __init__(self, *args, at=-1, mode=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.at, self.mode, self.calls = at, mode, 0

    def _batch_loss(self, x, y):
        self.calls += 1
        if self.calls == self.at:
            if self.mode is None:
                raise KeyboardInterrupt
            if isinstance(self.mode, tuple):
                os.kill(os.getpid(), self.mode[0])
            if self.mode == "fail" or isinstance(self.mode, tuple):
                raise RuntimeError("DataLoader worker exited unexpectedly")
        out = super()._batch_loss(x, y)
        if self.calls == self.at:
            os.kill(os.getpid(), self.mode)
        return out


def _fit(trainer, x, y, **kwargs):
    trainer.fit(x, y, nb_epochs=2, batch_size=32, seed=5, verbose=False, **kwargs)


def _sigterm_not_deferred(signum, frame):
    raise RuntimeError("SIGTERM reached the test's own handler: the loop did not defer it")


@pytest.fixture
def default_handlers(monkeypatch):
    """SIGINT with Python's default handler, as in an interactive session (a background job, e.g. under CI, may
    start with it ignored). SIGTERM's default would end pytest itself: the test's handler stands in for it, as the
    default the loop replaces."""
    previous = (
        signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.signal(signal.SIGTERM, _sigterm_not_deferred),
    )
    monkeypatch.setattr(
        DeferredInterrupt,
        "DEFAULTS",
        ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _sigterm_not_deferred)),
    )
    yield
    signal.signal(signal.SIGINT, previous[0])
    signal.signal(signal.SIGTERM, previous[1])


@pytest.mark.usefixtures("default_handlers")
@pytest.mark.parametrize(
    ("mode", "at", "position"),
    [
        (None, 6, (1, 1)),  # KeyboardInterrupt raised at once at batch 2 of epoch 2: batch 1 was the last finished
        (signal.SIGINT, 7, (1, 3)),  # a real Ctrl-C during batch 3 of epoch 2: the loop finishes batch 3, then stops
        (signal.SIGTERM, 7, (1, 3)),  # a scheduler's SIGTERM: the same
        ((signal.SIGTERM, "then fail"), 7, (1, 2)),  # SIGTERM, then batch 3 fails: batch 2 was the last finished
    ],
    ids=["raised", "sigint", "sigterm", "sigterm-then-error"],
)
def test_ctrl_c_writes_a_consistent_checkpoint_and_resume_matches(tmp_path, mode, at, position):
    x, y = make_task(n=128, seed=6)
    reference = make_classifier(model=small_model(seed=2))
    reference_trainer = _InterruptAt(reference)
    _fit(reference_trainer, x, y)
    reference_history = reference_trainer.history

    classifier = make_classifier(model=small_model(seed=2))
    with pytest.raises(KeyboardInterrupt) as stopped:
        _fit(_InterruptAt(classifier, at=at, mode=mode), x, y, checkpoint_dir=tmp_path)
    assert isinstance(stopped.value.__cause__, RuntimeError) == isinstance(mode, tuple)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert (payload["epoch"], payload["batch"]) == position
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are put back
    assert signal.getsignal(signal.SIGTERM) is _sigterm_not_deferred

    resumed = make_classifier(model=small_model(seed=77))  # different start: everything comes from the checkpoint
    trainer = _InterruptAt(resumed)
    _fit(trainer, x, y, checkpoint_dir=tmp_path, resume=True)
    for a, b in zip(reference.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert _records(trainer.history) == _records(reference_history)  # the interrupted epoch's loss counts every batch


def test_the_loss_terms_of_an_interrupted_epoch_count_every_batch_after_resume(tmp_path):
    x, y = make_task(n=128, seed=6)
    reference = _InterruptAt(make_classifier(model=small_model(seed=2)))
    _fit(reference, x, y)
    with pytest.raises(KeyboardInterrupt):  # 4 batches an epoch: the 6th is the second of epoch 2
        _fit(_InterruptAt(make_classifier(model=small_model(seed=2)), at=6), x, y, checkpoint_dir=tmp_path)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert (payload["epoch"], payload["batch"]) == (1, 1)
    assert set(payload["loss_term_totals"]) == {"ce_clean", "kl_saliency"}
    resumed = _InterruptAt(make_classifier(model=small_model(seed=2)))
    _fit(resumed, x, y, checkpoint_dir=tmp_path, resume=True)
    assert [[r[name] for name in ("loss", "ce_clean", "kl_saliency")] for r in resumed.history] == [
        [r[name] for name in ("loss", "ce_clean", "kl_saliency")] for r in reference.history
    ]


def _records(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


class _StopDuringValidation(torch.nn.Module):
    """The small model; once ``armed``, its next eval-mode forward (the epoch's validation) sends two Ctrl-Cs:
    the first is deferred, the second stops at once, in the middle of the epoch's end."""

    def __init__(self):
        super().__init__()
        self.net, self.armed = small_model(seed=2), False

    def forward(self, x):
        if self.armed and not self.training:
            self.armed = False
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return self.net(x)


class _ArmAt(SaliencyGuidedTrainer):
    def __init__(self, *args, at=-1, **kwargs):
        super().__init__(*args, **kwargs)
        self.at, self.calls = at, 0

    def _batch_loss(self, x, y):
        self.calls += 1
        self._classifier.model.armed = self.calls == self.at
        return super()._batch_loss(x, y)


@pytest.mark.usefixtures("default_handlers")
def test_a_stop_during_the_epochs_end_resumes_without_doing_that_end_twice(tmp_path):
    """Stopped in the validation after the scheduler stepped: the checkpoint holds the last batch boundary, so the
    resumed run steps the scheduler once for that epoch and records the epoch once, with its full loss."""
    x, y = make_task(n=128, seed=6)

    def run(at, checkpoint_dir, resume=False):
        classifier = make_classifier(model=_StopDuringValidation(), lr=0.05, optimizer="sgd")
        scheduler = torch.optim.lr_scheduler.StepLR(classifier.optimizer, step_size=1, gamma=0.5)
        trainer = _ArmAt(classifier, at=at)
        trainer.fit(
            x,
            y,
            nb_epochs=3,
            batch_size=32,
            seed=5,
            verbose=False,
            scheduler=scheduler,
            validation_data=(x, y),
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )
        return classifier, trainer

    reference, reference_trainer = run(-1, None)
    with pytest.raises(KeyboardInterrupt):
        run(4, tmp_path)  # batch 4 is the last of epoch 1: its validation is interrupted
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert (payload["epoch"], payload["batch"], payload["history"]) == (0, 4, [])
    resumed, trainer = run(-1, tmp_path, resume=True)
    assert resumed.optimizer.param_groups[0]["lr"] == reference.optimizer.param_groups[0]["lr"] == 0.05 * 0.5**3
    assert _records(trainer.history) == _records(reference_trainer.history)
    for a, b in zip(reference.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.usefixtures("default_handlers")
def test_an_error_with_no_stop_requested_is_raised_as_it_is_and_writes_nothing_mid_epoch(tmp_path):
    x, y = make_task(n=128, seed=6)
    with pytest.raises(RuntimeError, match="DataLoader worker"):
        _fit(_InterruptAt(make_classifier(model=small_model(seed=2)), at=7, mode="fail"), x, y, checkpoint_dir=tmp_path)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert (payload["epoch"], payload["batch"]) == (1, 0)  # the end of epoch 1's checkpoint, none for epoch 2


def test_deferral_takes_only_signals_left_at_their_default_and_puts_them_back():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL), signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with DeferredInterrupt(enabled=True) as deferred:
            assert signal.getsignal(signal.SIGTERM) == deferred._handle  # the system default: deferred
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # ignored by the process: left alone
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        with DeferredInterrupt(enabled=False):  # no checkpoint folder: nothing to defer for
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_non_finite_loss_keeps_last_checkpoint(tmp_path):
    x, y = make_task(n=64, seed=1)
    classifier = make_classifier()
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit(x, y, nb_epochs=1, batch_size=32, verbose=False, checkpoint_dir=tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with torch.no_grad():
        next(classifier.model.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1"):
        trainer.fit(x, y, nb_epochs=1, batch_size=32, verbose=False, checkpoint_dir=tmp_path)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_resume_errors(tmp_path):
    x, y = make_task(n=32)
    trainer = SaliencyGuidedTrainer(make_classifier())
    with pytest.raises(FileNotFoundError, match="checkpoint_dir"):
        trainer.fit(x, y, nb_epochs=1, checkpoint_dir=tmp_path, resume=True, verbose=False)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(x, y, nb_epochs=1, checkpoint_dir=tmp_path, resume=True, verbose=False)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(x, y, nb_epochs=1, resume=True, verbose=False)


def test_checkpoint_every_and_contents(tmp_path):
    x, y = make_task(n=64)
    classifier = make_classifier()
    scheduler = torch.optim.lr_scheduler.StepLR(classifier.optimizer, step_size=1, gamma=0.5)
    SaliencyGuidedTrainer(classifier).fit(
        x,
        y,
        nb_epochs=3,
        batch_size=32,
        checkpoint_dir=tmp_path,
        checkpoint_every=2,
        scheduler=scheduler,
        verbose=False,
    )
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert payload["epoch"] == 3 and payload["batch"] == 0
    assert payload["scheduler"]["last_epoch"] == 3
    assert set(payload["rng"]) >= {"torch", "numpy", "python", "generators"}
    assert not list(tmp_path.glob(".checkpoint-*"))  # no temporary file left behind


def test_a_run_killed_in_its_first_write_into_a_used_folder_names_the_kept_checkpoint(tmp_path):
    from art_sgt.trainers._checkpoint import keep_previous

    x, y = make_task(n=64)
    run = {"nb_epochs": 2, "batch_size": 32, "verbose": False, "checkpoint_dir": tmp_path}
    SaliencyGuidedTrainer(make_classifier()).fit(x, y, **{**run, "nb_epochs": 1})
    # What a fresh run (resume=False) leaves when it is killed during its first write: the earlier run's
    # checkpoint moved aside, and the temporary file it was writing.
    kept = keep_previous(tmp_path)
    (tmp_path / ".checkpoint-killed.tmp").write_bytes(b"half a checkpoint")
    trainer = SaliencyGuidedTrainer(make_classifier())
    with pytest.raises(FileNotFoundError) as info:
        trainer.fit(x, y, **run, resume=True)
    message = str(info.value)
    assert str(kept) in message and "rename it to" in message and "resume=True" in message, message
    assert not list(tmp_path.glob(".checkpoint-*.tmp"))  # the stale temporary file is gone at this start
    kept.rename(tmp_path / "checkpoint.pt")  # what the message says to do
    trainer.fit(x, y, **run, resume=True)
    assert [record["epoch"] for record in trainer.history] == [1, 2]
