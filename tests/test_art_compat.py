"""ART's own trainer contract, checked with our trainers in place of ART's ``AdversarialTrainer``.

Adapted from ART 1.20.1, ``tests/defences/trainer/test_adversarial_trainer.py`` (the PyTorch cases), on tiny
synthetic data instead of 100 MNIST images. Adaptations: exact accuracies (ART's own models and data) become
checks that training ran and changed the weights; the attack on another classifier
(``test_fit_predict_different_classifiers``) needs ``allow_transfer=True``, because these trainers refuse an
attack whose gradients come from weights they do not train unless asked. Everything else, the constructor
spellings (``attacks=``, a list of attacks, ``ratio=``), the exception types and the ``fit``/``fit_generator``
calls, is ART's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.attacks.evasion import DeepFool, FastGradientMethod
from art.data_generators import DataGenerator

from art_sgt import SaliencyGuidedAdversarialTrainer as AdversarialTrainer
from art_sgt import SaliencyGuidedTrainer
from tests.conftest import make_classifier, make_task, small_model

BATCH_SIZE = 8


@pytest.fixture(scope="module")
def data():
    x, y = make_task(n=32, seed=7)
    x_test, y_test = make_task(n=16, seed=8)
    return x, np.eye(4, dtype=np.float32)[y], x_test, np.eye(4, dtype=np.float32)[y_test]  # one-hot, as ART's


class MyDataGenerator(DataGenerator):
    def __init__(self, x, y, size, batch_size):
        super().__init__(size=size, batch_size=batch_size)
        self.x, self.y = x, y

    def get_batch(self):
        ids = np.random.choice(self.size, size=min(self.size, self.batch_size), replace=False)  # noqa: NPY002
        return self.x[ids], self.y[ids]


def _weights(classifier):
    return [p.detach().clone() for p in classifier.model.parameters()]


def _changed(before, classifier):
    return any(not torch.equal(a, b) for a, b in zip(before, classifier.model.parameters()))


def test_fit_predict(data):
    x_train, y_train, x_test, _ = data
    classifier = make_classifier()
    x_test_original = x_test.copy()
    attack = FastGradientMethod(classifier, eps=0.1)
    before = _weights(classifier)
    adv_trainer = AdversarialTrainer(classifier, attack)
    adv_trainer.fit(x_train, y_train, nb_epochs=2, batch_size=128)
    assert adv_trainer.predict(attack.generate(x_test)).shape == (len(x_test), 4)
    assert _changed(before, classifier)
    assert np.allclose(float(np.max(np.abs(x_test_original - x_test))), 0.0)


def test_fit_predict_different_classifiers_and_generator(data):
    x_train, y_train, _, _ = data
    classifier, classifier_2 = make_classifier(), make_classifier(model=small_model(seed=1))
    attack = FastGradientMethod(classifier, eps=0.1)
    adv_trainer = AdversarialTrainer(classifier_2, attack, allow_transfer=True)  # adapted: see the module doc
    adv_trainer.fit(x_train, y_train, nb_epochs=1, batch_size=128)
    generator = MyDataGenerator(x_train, y_train, size=x_train.shape[0], batch_size=16)
    adv_trainer.fit_generator(generator, nb_epochs=1)
    before = _weights(classifier_2)
    adv_trainer_2 = AdversarialTrainer(classifier_2, attack, ratio=1.0, allow_transfer=True)
    adv_trainer_2.fit_generator(generator, nb_epochs=1)
    assert _changed(before, classifier_2)


@pytest.mark.parametrize("use_generator", [False, True])
def test_two_attacks(data, use_generator, monkeypatch):
    x_train, y_train, _, _ = data
    x_train_original = x_train.copy()
    classifier = make_classifier()
    attack1 = FastGradientMethod(estimator=classifier, eps=0.1, batch_size=16)
    attack2 = DeepFool(classifier=classifier, max_iter=5, batch_size=16)
    calls = []
    original = attack2.generate
    monkeypatch.setattr(attack2, "generate", lambda *a, **k: calls.append(1) or original(*a, **k))
    adv_trainer = AdversarialTrainer(classifier, attacks=[attack1, attack2])
    if use_generator:
        adv_trainer.fit_generator(MyDataGenerator(x_train, y_train, size=x_train.shape[0], batch_size=16), nb_epochs=2)
    else:
        adv_trainer.fit(x_train, y_train, nb_epochs=2, batch_size=16)
    assert len(calls) == 2  # 2 batches per epoch, 2 epochs: the attacks are used in turn, DeepFool every second batch
    assert not attack2.verbose  # its progress bar is silenced, as ART's trainers do
    assert np.allclose(float(np.max(np.abs(x_train_original - x_train))), 0.0)


def test_targeted_attack_error(data):
    x_train, y_train, _, _ = data
    classifier = make_classifier()
    adv = FastGradientMethod(classifier, targeted=True)
    adv_trainer = AdversarialTrainer(classifier, attacks=adv)
    with pytest.raises(NotImplementedError):
        adv_trainer.fit(x_train, y_train, nb_epochs=2, batch_size=BATCH_SIZE)


def test_exceptions():
    classifier = make_classifier()
    with pytest.raises(ValueError):
        _ = AdversarialTrainer(classifier, "attack")
    with pytest.raises(ValueError):
        attack = FastGradientMethod(classifier)
        _ = AdversarialTrainer(classifier, attack, ratio=1.5)


def test_classifier_match():
    classifier = make_classifier()
    attack = FastGradientMethod(classifier)
    adv_trainer = AdversarialTrainer(classifier, attack)
    assert len(adv_trainer.attacks) == 1
    assert adv_trainer.attacks[0].estimator == adv_trainer.get_classifier()


# ---------------------------------------------------------------------- what ART pipelines pass along
def test_fit_kwargs_art_forwards_to_the_classifier(data):
    x_train, y_train, _, _ = data
    trainer = SaliencyGuidedTrainer(make_classifier())
    trainer.fit(x_train, y_train, nb_epochs=1, batch_size=12, drop_last=True, training_mode=True, verbose=False)
    with pytest.raises(TypeError, match="epochs"):
        trainer.fit(x_train, y_train, epochs=1)


def test_generator_of_unknown_size_gives_a_clear_error(data):
    x_train, y_train, _, _ = data

    class Sizeless(MyDataGenerator):
        def __init__(self):
            DataGenerator.__init__(self, size=None, batch_size=8)
            self.x, self.y = x_train, y_train

    with pytest.raises(ValueError, match="generator must have a known size"):
        SaliencyGuidedTrainer(make_classifier()).fit_generator(Sizeless(), nb_epochs=1)


def test_probability_outputs_are_detected_and_the_kl_term_uses_their_log(data):
    x_train, y_train, _, _ = data
    model = torch.nn.Sequential(small_model(), torch.nn.Softmax(dim=1))  # as ART's test models without from_logits
    trainer = SaliencyGuidedTrainer(make_classifier(model=model))
    with pytest.warns(UserWarning, match="outputs are probabilities"):
        trainer.fit(x_train, y_train, nb_epochs=1, batch_size=16, verbose=False)
    assert trainer._outputs == "probabilities"


def test_logit_outputs_are_not_taken_for_probabilities(data, recwarn):
    x_train, y_train, _, _ = data
    trainer = SaliencyGuidedTrainer(make_classifier())
    trainer.fit(x_train, y_train, nb_epochs=1, batch_size=16, verbose=False)
    assert trainer._outputs == "logits" and not [w for w in recwarn if "probabilities" in str(w.message)]


def test_a_summed_task_loss_gets_a_summed_kl_term(data):
    x_train, y_train, _, _ = data
    classifier = make_classifier()
    classifier._loss = torch.nn.CrossEntropyLoss(reduction="sum")
    assert SaliencyGuidedTrainer(classifier)._kl_reduction == "sum"
    assert SaliencyGuidedTrainer(make_classifier())._kl_reduction == "batchmean"


def test_square_attack_trains_and_validates_and_its_config_is_plain_data(data):
    """ART's ``repr`` of a SquareAttack recurses (its ``loss`` is a bound method of the attack): the recorded
    configuration takes plain values instead, and a checkpoint records them as JSON."""
    import json

    from art.attacks.evasion import SquareAttack

    x_train, y_train, _, _ = data
    classifier = make_classifier()
    square = SquareAttack(classifier, eps=0.1, max_iter=2, verbose=False)
    trainer = AdversarialTrainer(classifier, square)
    trainer.fit(x_train[:16], y_train[:16], nb_epochs=1, batch_size=8, verbose=False)
    (config,) = trainer._config()["attacks"]
    assert config["type"] == "SquareAttack" and config["eps"] == 0.1 and config["max_iter"] == 2
    assert config["loss"] == type(square.loss.__self__).__name__ + "." + square.loss.__name__  # by its name
    json.dumps(trainer._config())
    sgt = SaliencyGuidedTrainer(classifier)
    sgt.fit(
        x_train[:16],
        y_train[:16],
        nb_epochs=1,
        batch_size=8,
        verbose=False,
        robust_validation=(x_train[:8], y_train[:8]),
        robust_eval=square,
    )
    assert 0.0 <= sgt.history[-1]["robust_val_accuracy"] <= 1.0
