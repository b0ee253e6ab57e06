"""Robust validation, keeping the best epoch and the catastrophic-overfitting guard in ``fit`` (issue 14)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from art.attacks.attack import EvasionAttack
from art.attacks.evasion import DeepFool, FastGradientMethod, ProjectedGradientDescent
from art.data_generators import DataGenerator

import art_sgt
from art_sgt import CatastrophicOverfittingWarning, SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer
from tests.conftest import make_classifier, make_task

X, Y = make_task(n=64, seed=3)
X_VAL, Y_VAL = make_task(n=48, seed=4)
EPS = 0.25
ROBUST_KEYS = {"robust_val_accuracy", "robust_val_clean_accuracy", "single_step_val_accuracy"}


def _pgd(classifier, eps=EPS, **kwargs):
    params = {"eps_step": eps / 4, "max_iter": 10, "num_random_init": 0, **kwargs}
    return ProjectedGradientDescent(classifier, eps=eps, verbose=False, **params)


def _art_accuracy(classifier, attack=None, x=X_VAL, y=Y_VAL):
    """Accuracy by ART alone: ``attack.generate`` on the whole set, then ``classifier.predict``."""
    x_adv = x if attack is None else attack.generate(x, y=np.eye(classifier.nb_classes, dtype=np.float32)[y])
    return float((classifier.predict(x_adv).argmax(1) == y).mean())


def _weights(classifier):
    return {k: v.detach().clone() for k, v in classifier.model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


#: The keywords most fits of this file share: the batch, the seed, quiet, and the robust-validation set.
_ROBUST_FIT = {"batch_size": 16, "seed": 0, "verbose": False, "robust_validation": (X_VAL, Y_VAL)}


def _collapsing_schedule(classifier):
    """Ordinary training for two epochs, then gradient *ascent*: the later epochs are clearly worse."""
    return torch.optim.lr_scheduler.LambdaLR(classifier.optimizer, lambda epoch: 1.0 if epoch < 2 else -1.0)


def _fit_sgt(nb_epochs=4, keep_best="robust", classifier=None, **kwargs):
    classifier = make_classifier() if classifier is None else classifier
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit(
        X,
        Y,
        nb_epochs=nb_epochs,
        batch_size=16,
        seed=0,
        verbose=False,
        scheduler=_collapsing_schedule(classifier),
        robust_validation=(X_VAL, Y_VAL),
        robust_eval=_pgd(classifier),
        keep_best=keep_best,
        **kwargs,
    )
    return trainer, classifier


# --------------------------------------------------------------------------------------------- known answers
def test_robust_accuracy_equals_arts_pgd_on_the_last_epochs_weights():
    classifier = make_classifier()
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit(X, Y, nb_epochs=2, robust_eval=_pgd(classifier), **_ROBUST_FIT)
    last = trainer.history[-1]
    assert ROBUST_KEYS | {"catastrophic_overfitting"} <= set(last) and "val_accuracy" not in last
    assert 0.0 < last["robust_val_accuracy"] < 1.0  # a real value, not a saturated one
    assert last["robust_val_accuracy"] == _art_accuracy(classifier, _pgd(classifier))
    fgsm = FastGradientMethod(classifier, eps=EPS, eps_step=EPS)
    assert last["single_step_val_accuracy"] == _art_accuracy(classifier, fgsm)
    assert last["robust_val_clean_accuracy"] == _art_accuracy(classifier)
    assert last["catastrophic_overfitting"] is False
    assert trainer.best_epoch is None and trainer.best_measure is None


@pytest.mark.parametrize(("norm", "eps"), [(np.inf, EPS), (2, 2.0)])
def test_asgt_default_is_a_ten_step_pgd_at_the_training_eps_and_norm(norm, eps):
    classifier = make_classifier()
    attack = ProjectedGradientDescent(
        classifier, norm=norm, eps=eps, eps_step=eps / 2, max_iter=2, num_random_init=1, verbose=False
    )
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack)
    trainer.fit(X, Y, nb_epochs=1, batch_size=16, seed=0, verbose=False, robust_validation=(X_VAL, Y_VAL))
    record = trainer.history[-1]
    assert record["robust_val_accuracy"] == pytest.approx(_art_accuracy(classifier, _pgd(classifier, eps, norm=norm)))
    fgsm = FastGradientMethod(classifier, norm=norm, eps=eps, eps_step=eps)
    assert record["single_step_val_accuracy"] == pytest.approx(_art_accuracy(classifier, fgsm))


def test_an_attack_off_the_fast_path_runs_its_generate():
    classifier = make_classifier()
    trainer = SaliencyGuidedTrainer(classifier)
    deepfool = DeepFool(classifier, max_iter=5, verbose=False)
    trainer.fit(X, Y, nb_epochs=1, robust_eval=deepfool, **_ROBUST_FIT)
    record = trainer.history[-1]
    assert record["robust_val_accuracy"] == _art_accuracy(classifier, DeepFool(classifier, max_iter=5, verbose=False))
    # DeepFool has no eps: no single-step accuracy, so no guard
    assert "single_step_val_accuracy" not in record and "catastrophic_overfitting" not in record


def test_fit_generator_measures_the_same_way():
    class Batches(DataGenerator):
        def __init__(self):
            super().__init__(size=len(X), batch_size=16)
            self.at = 0

        def get_batch(self):
            start, self.at = self.at, (self.at + 16) % len(X)
            return X[start : start + 16], Y[start : start + 16]

    classifier = make_classifier()
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit_generator(
        Batches(),
        nb_epochs=2,
        seed=0,
        verbose=False,
        validation_data=(X_VAL, Y_VAL),
        robust_validation=(X_VAL, Y_VAL),
        robust_eval=_pgd(classifier),
    )
    assert [r["robust_val_accuracy"] for r in trainer.history][-1] == _art_accuracy(classifier, _pgd(classifier))
    assert trainer.history[-1]["val_accuracy"] == trainer.history[-1]["robust_val_clean_accuracy"]


def test_every_epoch_is_measured_with_the_same_random_start_and_training_is_untouched():
    # lr 0: the weights never change, so a measurement with the same random draws gives the same value each epoch
    noisy = {"eps": 0.5, "eps_step": 0.01, "max_iter": 1, "num_random_init": 1}
    classifier = make_classifier(lr=0.0)
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit(
        X, Y, nb_epochs=3, robust_eval=ProjectedGradientDescent(classifier, verbose=False, **noisy), **_ROBUST_FIT
    )
    assert len({r["robust_val_accuracy"] for r in trainer.history}) == 1
    # ... while two random starts differ (so that the check above could fail)
    np.random.seed(0)  # noqa: NPY002 - ART's random start draws from numpy's global generator
    twice = [_art_accuracy(classifier, ProjectedGradientDescent(classifier, verbose=False, **noisy)) for _ in "ab"]
    assert twice[0] != twice[1]


def test_robust_validation_does_not_change_the_trained_weights():
    # with momentum (decay) ART's PGD runs its own generate, drawing random starts from numpy's global generator,
    # both in training and in the measurement: a measurement that consumed it would change training
    def random_start_pgd(classifier, eps):
        return ProjectedGradientDescent(
            classifier, eps=eps, eps_step=eps / 2, max_iter=2, num_random_init=1, decay=0.5, verbose=False
        )

    def train(**robust):
        classifier = make_classifier()
        robust = {"robust_eval": random_start_pgd(classifier, EPS), **robust} if robust else {}
        trainer = SaliencyGuidedAdversarialTrainer(classifier, random_start_pgd(classifier, 0.1))
        trainer.fit(X, Y, nb_epochs=2, batch_size=16, seed=0, verbose=False, **robust)
        return _weights(classifier)

    assert _same(train(), train(robust_validation=(X_VAL, Y_VAL)))


# ------------------------------------------------------------------------------------------------- keep_best
def test_keep_best_ends_with_the_best_epochs_weights_and_writes_best_pt(tmp_path, caplog):
    with caplog.at_level("INFO", logger="art_sgt.trainers.base"):
        trainer, classifier = _fit_sgt(checkpoint_dir=tmp_path)
    robust = [r["robust_val_accuracy"] for r in trainer.history]
    assert trainer.best_epoch == 2 and robust[1] > max(robust[2:])  # the gradient ascent made epochs 3-4 worse
    assert trainer.best_epoch == 1 + robust.index(max(robust))
    assert trainer.best_measure == "robust_val_accuracy" and trainer.best_score == robust[1]
    assert f"keeping epoch 2 of 4: robust_val_accuracy {robust[1]:.4f}" in caplog.text
    _, two_epochs = _fit_sgt(nb_epochs=2, keep_best=None)
    assert _same(_weights(classifier), _weights(two_epochs))
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert (best["epoch"], best["measure"], best["score"]) == (2, "robust_val_accuracy", robust[1])
    assert _same(best["model"], _weights(two_epochs))
    # checkpoint.pt keeps the last epoch's weights, to continue training from
    last = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    assert not _same(last, best["model"])


def test_keep_best_clean_uses_validation_data():
    trainer, _ = _fit_sgt(keep_best="clean", validation_data=(X[:32], Y[:32]))
    val = [r["val_accuracy"] for r in trainer.history]
    assert trainer.best_measure == "val_accuracy" and trainer.best_epoch == 1 + val.index(max(val))
    assert trainer.best_epoch <= 2


def test_ties_keep_the_earliest_epoch():
    classifier = make_classifier(lr=0.0)  # every epoch scores the same
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit(X, Y, nb_epochs=3, robust_eval=_pgd(classifier), keep_best="clean", **_ROBUST_FIT)
    assert trainer.best_epoch == 1 and trainer.best_measure == "robust_val_clean_accuracy"


def test_a_resumed_run_keeps_the_same_epoch_bitwise(tmp_path):
    straight, straight_classifier = _fit_sgt(checkpoint_dir=tmp_path / "straight")
    _fit_sgt(nb_epochs=2, checkpoint_dir=tmp_path / "split")
    resumed, resumed_classifier = _fit_sgt(checkpoint_dir=tmp_path / "split", resume=True)
    assert resumed.best_epoch == straight.best_epoch == 2 and resumed.best_score == straight.best_score
    assert resumed.history == [{**r, "seconds": s["seconds"]} for r, s in zip(straight.history, resumed.history)]
    assert _same(_weights(resumed_classifier), _weights(straight_classifier))


def test_keep_best_is_part_of_the_run_configuration(tmp_path):
    _fit_sgt(nb_epochs=1, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"keep_best: 'robust' -> 'clean'"):
        _fit_sgt(nb_epochs=2, keep_best="clean", checkpoint_dir=tmp_path, resume=True)


def test_keep_best_added_on_resume_chooses_among_the_epochs_trained_after_it(tmp_path, caplog):
    _fit_sgt(nb_epochs=2, keep_best=None, checkpoint_dir=tmp_path)
    with caplog.at_level("WARNING"):
        trainer, _ = _fit_sgt(checkpoint_dir=tmp_path, resume=True, allow_config_change=True)
    assert "records no best epoch by robust_val_accuracy" in caplog.text
    robust = [r["robust_val_accuracy"] for r in trainer.history]
    assert trainer.best_epoch == 3 + robust[2:].index(max(robust[2:])) and max(robust[:2]) > max(robust[2:])


def test_a_fresh_run_keeps_an_earlier_best_pt_aside(tmp_path):
    _fit_sgt(nb_epochs=1, checkpoint_dir=tmp_path)
    first = (tmp_path / "best.pt").read_bytes()
    _fit_sgt(nb_epochs=1, keep_best=None, checkpoint_dir=tmp_path)
    assert not (tmp_path / "best.pt").exists()
    assert [p.read_bytes() for p in tmp_path.glob("best.previous-*.pt")] == [first]


# ---------------------------------------------------------------------------------- the guard, end to end
class _CollapseAfter(EvasionAttack):
    """An L-inf attack of tiny eps that leaves inputs alone for its first ``good`` calls, then swaps every input
    for one of another class: robust accuracy collapses while FGSM at that eps barely moves (by construction)."""

    attack_params = [*EvasionAttack.attack_params, "eps", "norm"]
    _estimator_requirements = ()

    def __init__(self, classifier, good):
        super().__init__(estimator=classifier)
        self.eps, self.norm, self.good, self.calls = 0.01, np.inf, good, 0

    def generate(self, x, y=None, **kwargs):
        self.calls += 1
        if self.calls <= self.good:
            return x.copy()
        labels = y.argmax(1)
        return np.stack([x[np.flatnonzero(labels != label)[0]] for label in labels])


def _fit_collapse(keep_best, good):
    classifier = make_classifier()
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit(X, Y, nb_epochs=3, robust_eval=_CollapseAfter(classifier, good), keep_best=keep_best, **_ROBUST_FIT)
    return trainer, classifier


def test_the_guard_warns_when_robust_accuracy_collapses_and_keep_best_returns_the_last_good_epoch():
    with pytest.warns(CatastrophicOverfittingWarning, match=r"epoch 3: robust_val_accuracy 0\.0000") as caught:
        trainer, classifier = _fit_collapse("robust", good=2)
    assert len(caught) == 1
    assert [r["catastrophic_overfitting"] for r in trainer.history] == [False, False, True]
    assert trainer.history[2]["single_step_val_accuracy"] >= 0.9 and trainer.history[2]["robust_val_accuracy"] == 0
    assert trainer.best_epoch in (1, 2)
    assert trainer.history[trainer.best_epoch - 1]["robust_val_clean_accuracy"] == _art_accuracy(classifier)


def test_the_guard_stays_silent_on_a_steady_run():
    with warnings.catch_warnings():
        warnings.simplefilter("error", CatastrophicOverfittingWarning)
        trainer, _ = _fit_collapse(None, good=3)
    assert [r["catastrophic_overfitting"] for r in trainer.history] == [False, False, False]


def test_the_warning_is_public():
    assert issubclass(CatastrophicOverfittingWarning, UserWarning)
    assert "CatastrophicOverfittingWarning" in art_sgt.__all__ and "CatastrophicOverfittingWarning" in dir(
        art_sgt.trainers
    )


# ------------------------------------------------------------------------------------------------ bad input
def _refused(exception, match, classifier=None, **kwargs):
    classifier = make_classifier() if classifier is None else classifier
    before = _weights(classifier)
    with pytest.raises(exception, match=match):
        SaliencyGuidedTrainer(classifier).fit(X, Y, nb_epochs=1, batch_size=16, verbose=False, **kwargs)
    assert _same(before, _weights(classifier))


def test_keep_best_robust_without_robust_validation_is_refused_before_work():
    _refused(ValueError, r"keep_best='robust' needs robust_validation", keep_best="robust")


def test_keep_best_clean_without_any_validation_is_refused():
    _refused(ValueError, r"keep_best='clean' needs validation_data or robust_validation", keep_best="clean")


def test_an_unknown_keep_best_is_refused():
    _refused(ValueError, r"keep_best must be one of 'robust', 'clean'", keep_best="last")


def test_sgt_robust_validation_needs_robust_eval():
    _refused(ValueError, r"robust_validation needs robust_eval", robust_validation=(X_VAL, Y_VAL))


def test_robust_eval_without_robust_validation_is_refused():
    _refused(ValueError, r"robust_eval is used only with robust_validation", robust_eval="pgd")


@pytest.mark.parametrize(
    ("value", "exception", "match"),
    [
        (X_VAL, TypeError, r"robust_validation must be a tuple \(x_val, y_val\)"),
        ((X_VAL[:, :, :4], Y_VAL), ValueError, r"robust_validation\[0\] must have shape"),
        ((X_VAL, Y_VAL[:5]), ValueError, r"robust_validation\[0\].*robust_validation\[1\]"),
        ((X_VAL, np.full(len(Y_VAL), 9)), ValueError, r"robust_validation\[1\]"),
        ((X_VAL[:0], Y_VAL[:0]), ValueError, r"robust_validation\[0\] must not be empty"),
    ],
)
def test_bad_robust_validation_is_refused_naming_the_parameter(value, exception, match):
    _refused(exception, match, robust_validation=value, robust_eval=None)


def test_robust_eval_must_be_an_art_attack_on_this_classifier():
    classifier = make_classifier()
    _refused(
        TypeError, r"robust_eval must be an ART EvasionAttack", robust_validation=(X_VAL, Y_VAL), robust_eval="pgd"
    )
    _refused(
        ValueError,
        r"robust_eval ProjectedGradientDescent takes its gradients from another model",
        robust_validation=(X_VAL, Y_VAL),
        robust_eval=_pgd(classifier),
    )
    _refused(
        ValueError,
        r"robust_eval must be an untargeted attack",
        classifier,
        robust_validation=(X_VAL, Y_VAL),
        robust_eval=_pgd(classifier, targeted=True),
    )
