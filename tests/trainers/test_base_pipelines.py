"""Pipelines a user builds with ART that the trainers must run faithfully (issue 12, confirmed bugs 1-10).

Each test failed on the trainers before the fix it names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.defences.preprocessor import CutoutPyTorch
from art.estimators.classification import PyTorchClassifier

from art_sgt import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer
from art_sgt._art import PreprocessedModel
from tests.conftest import make_classifier, make_task, small_model


def _pgd(classifier, **kwargs):
    params = {"eps": 0.1, "eps_step": 0.03, "max_iter": 4, "num_random_init": 0, "verbose": False, **kwargs}
    return ProjectedGradientDescent(classifier, **params)


def _sgd_classifier(model: torch.nn.Module, **kwargs) -> PyTorchClassifier:
    """A classifier of the 8x8, 4-class task around ``model``, trained by SGD, with ART's other ``kwargs``."""
    return PyTorchClassifier(
        model,
        torch.nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=4,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        **kwargs,
    )


def _bn_model() -> torch.nn.Module:
    torch.manual_seed(0)  # BatchNorm1d: one sample gives one value per channel, which training mode refuses
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 4)
    )


def test_per_channel_standardisation_as_art_broadcasts_it():  # bug 1
    x, y = make_task(n=16, channels=3)
    mean, std = np.array([0.4, 0.5, 0.6], np.float32), np.array([0.2, 0.25, 0.3], np.float32)
    classifier = make_classifier(channels=3, preprocessing=(mean, std))
    ours = PreprocessedModel(classifier, apply="predict")(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours, classifier.predict(x), rtol=1e-5, atol=1e-6)
    SaliencyGuidedTrainer(classifier).fit(x, y, nb_epochs=1, batch_size=8, verbose=False, seed=0)
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier))
    np.testing.assert_allclose(
        trainer._craft(torch.from_numpy(x), torch.from_numpy(y)).numpy(), _pgd(classifier).generate(x, y=y), atol=1e-5
    )


def test_fast_path_attacks_through_the_predict_chain_as_art_does():  # bug 2
    x, y = make_task(n=16)
    cutout = CutoutPyTorch(length=4, apply_fit=True, apply_predict=False)
    model = small_model()
    classifier = _sgd_classifier(model, clip_values=(0.0, 1.0), preprocessing_defences=[cutout])
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier))
    assert trainer.uses_fast_path
    ours = trainer._craft(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(ours, _pgd(classifier).generate(x, y=y), atol=1e-5)


def test_attack_parameters_are_read_when_crafting():  # bug 4
    x, y = make_task(n=16)
    classifier = make_classifier()
    attack = _pgd(classifier)
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack)
    attack.set_params(eps=0.3, eps_step=0.1)  # an eps ramp
    ours = trainer._craft(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    assert np.abs(ours - x).max() > 0.1 + 1e-3
    np.testing.assert_allclose(ours, attack.generate(x, y=y), atol=1e-5)


def test_per_feature_clip_values_train_both_trainers():  # bug 5
    x, y = make_task(n=16)
    high = np.ones((1, 8, 8), np.float32)
    high[..., :2] = 0.5
    x = np.minimum(x, high)
    model = small_model()
    classifier = _sgd_classifier(model, clip_values=(np.zeros_like(high), high))
    trainer = SaliencyGuidedTrainer(classifier, fill=5.0)
    trainer.fit(x, y, nb_epochs=1, batch_size=8, verbose=False, seed=0)
    _, masked = trainer._saliency_mask(torch.from_numpy(x), torch.from_numpy(y))
    assert bool((masked <= torch.from_numpy(high)).all()) and float(masked.max()) == 1.0
    asgt = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier))
    asgt.fit(x, y, nb_epochs=1, batch_size=8, verbose=False, seed=0)
    assert bool((asgt._craft(torch.from_numpy(x), torch.from_numpy(y)) <= torch.from_numpy(high) + 1e-6).all())


def test_non_finite_saliency_stops_training():  # bug 8
    x, y = make_task(n=16)
    classifier = make_classifier()
    trainer = SaliencyGuidedTrainer(classifier, saliency=lambda m, xx, t: torch.full_like(xx, float("nan")))
    with pytest.raises(FloatingPointError, match="saliency map holds NaN.*epoch 1, batch 1"):
        trainer.fit(x, y, nb_epochs=1, batch_size=8, verbose=False)


def test_batchnorm_model_with_a_last_batch_of_one_sample_trains():  # bug 9
    x, y = make_task(n=17)
    trainer = SaliencyGuidedTrainer(make_classifier(model=_bn_model()))
    trainer.fit(x, y, nb_epochs=1, batch_size=8, verbose=False, seed=0)  # 8 + 9: the single sample is merged
    assert len(trainer.history) == 1


@pytest.mark.parametrize(("drop_last", "batches"), [(True, 2), (False, 3)])
def test_arts_drop_last_and_training_mode_keywords(drop_last, batches):  # bug 9 / ART's fit kwargs
    x, y = make_task(n=20)
    classifier = make_classifier()
    scheduler = torch.optim.lr_scheduler.OneCycleLR(classifier.optimizer, max_lr=0.01, total_steps=10)
    trainer = SaliencyGuidedTrainer(classifier)
    once = {"nb_epochs": 1, "batch_size": 8, "verbose": False, "seed": 0}
    trainer.fit(x, y, scheduler=scheduler, drop_last=drop_last, training_mode=True, **once)
    assert scheduler.last_epoch == batches  # OneCycleLR is stepped after every batch (bug 10)


@pytest.mark.parametrize(("drop_last", "sizes"), [(True, [8, 8]), (False, [8, 8, 4])])
def test_fit_generator_honours_drop_last_as_fit_does(drop_last, sizes):
    from art.data_generators import NumpyDataGenerator

    x, y = make_task(n=20)

    def recording(trainer, seen):
        batch_loss = trainer._batch_loss
        trainer._batch_loss = lambda xb, yb: (seen.append(len(xb)), batch_loss(xb, yb))[1]
        return trainer

    for run in ("fit", "fit_generator"):
        seen = []
        trainer = recording(SaliencyGuidedTrainer(make_classifier()), seen)
        if run == "fit":
            trainer.fit(x, y, nb_epochs=1, batch_size=8, verbose=False, seed=0, drop_last=drop_last)
        else:
            generator = NumpyDataGenerator(x, y, batch_size=8, shuffle=False, drop_remainder=False)
            trainer.fit_generator(generator, nb_epochs=1, verbose=False, seed=0, drop_last=drop_last)
        assert seen == sizes, run


def test_epoch_schedulers_are_still_stepped_per_epoch():
    x, y = make_task(n=20)
    classifier = make_classifier()
    scheduler = torch.optim.lr_scheduler.StepLR(classifier.optimizer, step_size=1)
    SaliencyGuidedTrainer(classifier).fit(x, y, nb_epochs=2, batch_size=8, verbose=False, scheduler=scheduler)
    assert scheduler.last_epoch == 2


def test_seed_none_leaves_the_callers_torch_generator_alone():  # bug 10
    x, y = make_task(n=16)
    classifier = make_classifier()
    state = torch.get_rng_state()
    SaliencyGuidedTrainer(classifier).fit(x, y, nb_epochs=1, batch_size=8, verbose=False)
    assert torch.equal(torch.get_rng_state(), state)
