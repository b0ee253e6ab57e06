import numpy as np
import pytest
import torch
from art.data_generators import NumpyDataGenerator
from art.defences.trainer import AdversarialTrainer

from art_sgt import SaliencyGuidedTrainer
from art_sgt.losses import sgt_loss
from art_sgt.masking import least_salient_mask
from art_sgt.saliency import input_gradient
from tests.conftest import make_classifier, make_task, small_model


def _accuracy(classifier, x, y):
    return float((classifier.predict(x).argmax(1) == y).mean())


def _pipeline(trainer_factory):
    """A small pipeline as written for ART's AdversarialTrainer: construct, fit, get_classifier().predict."""
    x, y = make_task(n=256, seed=1)
    x_test, y_test = make_task(n=128, seed=2)
    classifier = make_classifier()
    trainer = trainer_factory(classifier)
    trainer.fit(x, y, nb_epochs=4, batch_size=32)
    return _accuracy(trainer.get_classifier(), x_test, y_test)


def test_drop_in_for_art_adversarial_trainer():
    from art.attacks.evasion import FastGradientMethod

    art_acc = _pipeline(lambda c: AdversarialTrainer(c, FastGradientMethod(c, eps=0.05), ratio=0.5))
    sgt_acc = _pipeline(lambda c: SaliencyGuidedTrainer(c))
    assert art_acc > 0.6
    assert sgt_acc > 0.8  # 4 classes: chance is 0.25


@pytest.mark.parametrize("fused", [True, False])
def test_batch_loss_equals_hand_computed_sgt_loss(fused):
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    saliency = "gradient" if fused else (lambda m, xx, t: input_gradient(m, xx, t))
    trainer = SaliencyGuidedTrainer(classifier, mask_fraction=0.25, kl_weight=0.7, fill="zero", saliency=saliency)
    trainer.fit(x, y, nb_epochs=1, batch_size=16, verbose=False, seed=0)
    assert trainer._fused is fused
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss = trainer._batch_loss(xt, yt).loss

    model = classifier.model
    grad = input_gradient(model, xt, yt, of="log_prob" if fused else "logit")  # a callable decides for itself
    mask = least_salient_mask(grad, 0.25)
    masked = torch.where(mask, torch.zeros(()), xt)
    expected = sgt_loss(model(xt), model(masked), yt, kl_weight=0.7)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_inputs_untouched_params_change_and_own_optimizer_used(task):
    x, y = task
    x_before, y_before = x.copy(), y.copy()
    classifier = make_classifier()
    weights_before = [p.detach().clone() for p in classifier.model.parameters()]
    SaliencyGuidedTrainer(classifier).fit(x, y, nb_epochs=1, batch_size=64, verbose=False)
    assert np.array_equal(x, x_before) and np.array_equal(y, y_before)
    assert any(not torch.equal(a, b) for a, b in zip(weights_before, classifier.model.parameters()))
    state = classifier.optimizer.state_dict()["state"]
    assert state and all(int(s["step"]) == 4 for s in state.values())  # Adam: 256 / 64 = 4 steps


def test_one_hot_and_index_labels_train_identically(task):
    x, y = task
    weights = []
    for labels in (y, np.eye(4, dtype=np.float32)[y]):
        classifier = make_classifier()
        SaliencyGuidedTrainer(classifier).fit(x, labels, nb_epochs=1, batch_size=64, seed=3, verbose=False)
        weights.append(torch.cat([p.detach().flatten() for p in classifier.model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_same_seed_same_weights_and_global_rng_untouched(task):
    x, y = task
    runs = []
    for _ in range(2):
        classifier = make_classifier(model=small_model(seed=5))
        state = torch.get_rng_state()
        SaliencyGuidedTrainer(classifier).fit(x, y, nb_epochs=2, batch_size=64, seed=11, verbose=False)
        assert torch.equal(state, torch.get_rng_state())
        runs.append(torch.cat([p.detach().flatten() for p in classifier.model.parameters()]))
    assert torch.equal(runs[0], runs[1])


def test_preprocessing_and_dropout_model_trains(task):
    x, y = task
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 64, 4),
    )
    classifier = make_classifier(model=model, preprocessing=(0.5, 0.25))
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit(x, y, nb_epochs=4, batch_size=32, verbose=False, seed=0, validation_data=(x[:64], y[:64]))
    assert not trainer._fused  # dropout: saliency needs its own eval-mode pass
    assert trainer.history[-1]["val_accuracy"] > 0.8


def test_fill_respects_clip_values(task):
    x, y = task
    trainer = SaliencyGuidedTrainer(make_classifier(), fill=5.0, saliency=lambda m, xx, t: torch.randn_like(xx))
    xt = torch.from_numpy(x[:4])
    _, masked = trainer._saliency_mask(xt, torch.from_numpy(y[:4]))
    assert float(masked.max()) == 1.0
    assert int((masked == 1.0).sum()) >= 4 * 32


def test_scheduler_and_validation_history(task):
    x, y = task
    classifier = make_classifier()
    scheduler = torch.optim.lr_scheduler.StepLR(classifier.optimizer, step_size=1, gamma=0.5)
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit(x, y, nb_epochs=2, batch_size=64, scheduler=scheduler, validation_data=(x, y), verbose=False)
    assert classifier.optimizer.param_groups[0]["lr"] == pytest.approx(0.0025)
    assert [h["epoch"] for h in trainer.history] == [1, 2]
    assert all(0.0 <= h["val_accuracy"] <= 1.0 for h in trainer.history)


def test_fit_generator_with_art_data_generator(task):
    x, y = task
    classifier = make_classifier()
    trainer = SaliencyGuidedTrainer(classifier)
    trainer.fit_generator(NumpyDataGenerator(x, y, batch_size=32), nb_epochs=4, verbose=False, seed=0)
    assert _accuracy(classifier, x, y) > 0.8


def test_captum_saliency_class(task):
    from captum.attr import InputXGradient

    x, y = task
    classifier = make_classifier()
    SaliencyGuidedTrainer(classifier, saliency=InputXGradient, absolute=True).fit(x, y, nb_epochs=3, verbose=False)
    assert _accuracy(classifier, x, y) > 0.7


def test_non_finite_loss_names_epoch_and_batch(task):
    x, y = task

    class NanLoss(torch.nn.Module):
        def forward(self, logits, labels):
            return torch.nn.functional.cross_entropy(logits, labels) * float("nan")

    classifier = make_classifier()
    classifier._loss = NanLoss()
    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        SaliencyGuidedTrainer(classifier).fit(x, y, nb_epochs=1, verbose=False)


def test_zero_kl_weight_is_plain_training_without_saliency_or_masked_forward(monkeypatch):
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    trainer = SaliencyGuidedTrainer(classifier, kl_weight=0.0)
    trainer.fit(x, y, nb_epochs=1, batch_size=16, verbose=False, seed=0)

    def no_saliency(*args, **kwargs):
        raise AssertionError("saliency computed although kl_weight == 0")

    monkeypatch.setattr(trainer, "_saliency_mask", no_saliency)
    seen = []
    classifier.model.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss = trainer._batch_loss(xt, yt).loss
    assert sum(seen) == len(x)  # one forward of x: no saliency, no masked input
    expected = torch.nn.functional.cross_entropy(classifier.model(xt), yt)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
