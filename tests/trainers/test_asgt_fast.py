"""Tests of the fast (single-step) ASGT recipe, ``SaliencyGuidedAdversarialTrainer.fast``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier

from art_sgt import CatastrophicOverfittingWarning, SaliencyGuidedAdversarialTrainer
from art_sgt.attacks import n_fgsm, pgd
from art_sgt.trainers.asgt import FAST_NOISE, FAST_STEP
from tests.conftest import make_classifier, make_task, small_model


def _craft_with_seed(trainer, x, y, seed):
    trainer._noise.manual_seed(seed)
    return trainer._craft(torch.from_numpy(x), torch.from_numpy(y))


def test_default_recipe_builds_a_single_step_art_attack_on_the_fast_path():
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.2, mask_fraction=0.25)
    attack = trainer.attack
    assert type(attack) is ProjectedGradientDescent and attack.estimator is classifier
    assert (attack.norm, attack.eps, attack.max_iter, attack.num_random_init) == (np.inf, 0.2, 1, 1)
    assert attack.eps_step == pytest.approx(FAST_STEP * 0.2)
    assert trainer.uses_fast_path
    assert FAST_NOISE is None and trainer.single_step is None  # FGSM-RS: the attack itself crafts x_adv
    assert trainer.mask_fraction == 0.25  # the other parameters reach the trainer


def test_n_fgsm_recipe_crafts_with_n_fgsm_from_the_trainers_generator():
    x, y = make_task(n=16, seed=1)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.1, step=1.0, noise=2.0)
    ours = _craft_with_seed(trainer, x, y, seed=5)
    xt, yt, generator = torch.from_numpy(x), torch.from_numpy(y), torch.Generator().manual_seed(5)
    expected = n_fgsm(trainer._attack_net, xt, yt, eps_step=0.1, noise=0.2, clip_values=(0, 1), generator=generator)
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    assert float((ours - torch.from_numpy(x)).abs().max()) > 0.1 + 1e-3  # not projected onto the eps ball


def test_fgsm_rs_recipe_is_one_projected_step_from_a_random_start():
    x, y = make_task(n=16, seed=1)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.1, step=1.25, noise=None)
    assert trainer.single_step is None and trainer.uses_fast_path
    assert trainer.attack.eps_step == pytest.approx(0.125)
    ours = _craft_with_seed(trainer, x, y, seed=5)
    xt, yt, generator = torch.from_numpy(x), torch.from_numpy(y), torch.Generator().manual_seed(5)
    single_step = {"eps": 0.1, "eps_step": 0.125, "max_iter": 1, "num_random_init": 1, "clip_values": (0.0, 1.0)}
    expected = pgd(trainer._attack_net, xt, yt, **single_step, generator=generator)
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    assert float((ours - torch.from_numpy(x)).abs().max()) <= 0.1 + 1e-6


def test_recipe_trains_and_records_its_single_step_in_the_configuration():
    x, y = make_task(n=32, seed=2)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.1, step=1.0, noise=2.0)
    before = [p.detach().clone() for p in classifier.model.parameters()]
    trainer.fit(x, y, nb_epochs=1, batch_size=16, seed=0, verbose=False)
    assert any(not torch.equal(a, b) for a, b in zip(before, classifier.model.parameters()))
    assert trainer._config()["single_step"] == {"method": "n-fgsm", "eps_step": 0.1, "noise": 0.2}


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"eps": 0.0}, ValueError, "eps"),
        ({"eps": -0.1}, ValueError, "eps"),
        ({"eps": float("nan")}, ValueError, "eps"),
        ({"eps": "0.3"}, TypeError, "eps"),
        ({"eps": 0.1, "step": 0.0}, ValueError, "step"),
        ({"eps": 0.1, "step": float("inf")}, ValueError, "step"),
        ({"eps": 0.1, "noise": -1.0}, ValueError, "noise"),
        ({"eps": 0.1, "noise": True}, TypeError, "noise"),
    ],
)
def test_bad_eps_step_or_noise_raise_naming_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=rf"^{name} "):
        SaliencyGuidedAdversarialTrainer.fast(make_classifier(), **kwargs)


@pytest.mark.parametrize("given", ["attacks", "attack"])
def test_recipe_refuses_an_attack_of_the_callers(given):
    classifier = make_classifier()
    attack = ProjectedGradientDescent(classifier, eps=0.1, verbose=False)
    with pytest.raises(TypeError, match=f"do not pass {given}"):
        SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.1, **{given: attack})


def test_n_fgsm_needs_the_fast_path_fgsm_rs_does_not():
    model = small_model()
    classifier = PyTorchClassifier(  # a smoothed loss: only ART's own attacks reproduce it, no fast path
        model,
        loss=torch.nn.CrossEntropyLoss(label_smoothing=0.1),
        input_shape=(1, 8, 8),
        nb_classes=4,
        optimizer=torch.optim.Adam(model.parameters()),
        clip_values=(0.0, 1.0),
    )
    with pytest.raises(ValueError, match="noise"):
        SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.1, noise=2.0)
    trainer = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.1, noise=None)
    assert not trainer.uses_fast_path


# ---------------------------------------------------------------------------------- the catastrophic-overfitting guard
def _deeper_model(seed: int = 0) -> torch.nn.Module:
    """Enough capacity to bend its loss surface against one step (the small conftest model is nearly linear)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 8 * 8, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 4),
    )


def _train_guarded(make_trainer, nb_epochs):
    """Train on the brightest-quadrant task at eps 0.25 with robust validation and keep_best="robust"."""
    x, y = make_task(n=256, seed=0)
    x_val, y_val = make_task(n=200, seed=100)
    classifier = make_classifier(model=_deeper_model(), lr=0.01)
    trainer = make_trainer(classifier)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(
            x,
            y,
            nb_epochs=nb_epochs,
            batch_size=32,
            seed=0,
            verbose=False,
            robust_validation=(x_val, y_val),
            keep_best="robust",
        )
    robust_returned = float(
        (classifier.predict(_default_pgd(classifier).generate(x_val, y=y_val)).argmax(1) == y_val).mean()
    )
    fired = [w for w in caught if issubclass(w.category, CatastrophicOverfittingWarning)]
    return trainer, fired, robust_returned


def _default_pgd(classifier):
    # robust validation's default attack: 10 steps of eps / 4 at the training eps, no random start
    return ProjectedGradientDescent(classifier, eps=0.25, eps_step=0.25 / 4, max_iter=10, verbose=False)


def test_guard_fires_on_catastrophic_overfitting_and_keep_best_returns_the_epoch_before():
    # FGSM without random start (noise=0, one step of eps), trained on adversarial examples only: known to overfit
    # catastrophically (Wong et al. 2020). Seeded, it reaches about 0.8 PGD accuracy by epoch 3 and collapses in
    # epoch 4 (PGD accuracy about 0.5 while FGSM accuracy stays near 1).
    def fgsm(classifier):
        return SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.25, step=1.0, noise=0.0, ratio=1.0, kl_weight=0)

    trainer, fired, robust_returned = _train_guarded(fgsm, nb_epochs=4)
    history = trainer.history
    assert [r.get("catastrophic_overfitting", False) for r in history] == [False, False, False, True]
    assert len(fired) == 1 and "epoch 4" in str(fired[0].message)
    collapsed = history[-1]
    assert collapsed["single_step_val_accuracy"] - collapsed["robust_val_accuracy"] >= 0.3
    assert trainer.best_epoch == 3
    assert robust_returned == pytest.approx(history[2]["robust_val_accuracy"])  # the weights are epoch 3's ...
    assert robust_returned > collapsed["robust_val_accuracy"] + 0.2  # ... which were more robust


def test_guard_stays_silent_in_sound_pgd_training():
    def pgd_training(classifier):
        attack = ProjectedGradientDescent(
            classifier, eps=0.25, eps_step=0.25 / 4, max_iter=5, num_random_init=1, verbose=False
        )
        return SaliencyGuidedAdversarialTrainer(classifier, attack, ratio=1.0, kl_weight=0)

    trainer, fired, _ = _train_guarded(pgd_training, nb_epochs=4)
    assert fired == []
    assert not any(r.get("catastrophic_overfitting", False) for r in trainer.history)
    assert trainer.history[-1]["robust_val_accuracy"] > trainer.history[0]["robust_val_accuracy"]
