"""The loss terms each epoch's history record holds: present, finite, adding up to the loss, and known answers."""

from __future__ import annotations

import math

import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent

from art_sgt import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer
from art_sgt.attacks import pgd
from tests.conftest import make_classifier, make_task, small_model

TERMS = {"ce_clean", "ce_adv", "kl_saliency", "kl_trades"}


def _pgd(classifier):
    return ProjectedGradientDescent(classifier, eps=0.1, eps_step=0.04, max_iter=3, num_random_init=0, verbose=False)


def _asgt(objective="asgt", kl_weight=1.0, lr=0.01, **kwargs):
    classifier = make_classifier(model=small_model(seed=3), lr=lr, optimizer="sgd")
    return SaliencyGuidedAdversarialTrainer(
        classifier, _pgd(classifier), objective=objective, kl_weight=kl_weight, **kwargs
    )


def _fit(trainer, n=64, nb_epochs=2):
    x, y = make_task(n=n, seed=8)
    trainer.fit(x, y, nb_epochs=nb_epochs, batch_size=16, seed=0, verbose=False)
    return x, y


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ("asgt", ("ce_clean", "ce_adv", "kl_saliency")),
        ("madry", ("ce_adv", "kl_saliency")),
        ("trades", ("ce_clean", "kl_trades", "kl_saliency")),
    ],
)
@pytest.mark.parametrize("kl_weight", [0.0, 0.7])
def test_each_record_holds_the_objectives_terms_finite_and_adding_up_to_the_loss(objective, expected, kl_weight):
    trainer = _asgt(objective, kl_weight)
    _fit(trainer)
    assert trainer.loss_terms == expected
    for record in trainer.history:
        assert set(record) & TERMS == set(expected)
        assert all(math.isfinite(record[name]) for name in expected)
        if objective == "asgt":
            total = record["ce_clean"] + record["ce_adv"] + kl_weight * record["kl_saliency"]
        elif objective == "madry":
            total = record["ce_adv"] + kl_weight * record["kl_saliency"]
        else:
            total = record["ce_clean"] + trainer.beta * record["kl_trades"] + kl_weight * record["kl_saliency"]
        assert record["loss"] == pytest.approx(total, rel=1e-6, abs=1e-9)
        # the SGT term is measured only when it is trained on: KL(p || p) = 0 with kl_weight 0
        assert (record["kl_saliency"] > 0) == (kl_weight > 0)


def test_paper_asgt_batch_loss_is_the_sum_of_its_terms_and_ratio_weighs_the_cross_entropies():
    x, y = make_task(n=16, seed=2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for ratio in (0.5, 0.8):
        trainer = _asgt(kl_weight=0.5, ratio=ratio)
        _fit(trainer, nb_epochs=1)
        batch = trainer._batch_loss(xt, yt)
        terms = {name: float(value) for name, value in batch.terms.items()}
        expected = 2 * ((1 - ratio) * terms["ce_clean"] + ratio * terms["ce_adv"]) + 0.5 * terms["kl_saliency"]
        assert float(batch.loss.detach()) == pytest.approx(expected, rel=1e-6)
        assert all(not value.requires_grad for value in batch.terms.values())


def test_sgt_terms_add_up_to_the_loss():
    trainer = SaliencyGuidedTrainer(make_classifier(model=small_model(seed=3)), kl_weight=0.3)
    _fit(trainer)
    for record in trainer.history:
        assert set(record) & TERMS == {"ce_clean", "kl_saliency"}
        assert record["loss"] == pytest.approx(record["ce_clean"] + 0.3 * record["kl_saliency"], rel=1e-6)
        assert record["kl_saliency"] > 0


def test_with_fixed_weights_the_cross_entropies_are_those_of_the_whole_set():
    """With a learning rate of 0 the weights never move: the epoch's mean clean and adversarial cross-entropies
    (equal batches) are those of the whole set, computed here without the trainer."""
    trainer = _asgt(kl_weight=1.0, lr=0.0)
    x, y = _fit(trainer, nb_epochs=1)
    model, xt, yt = trainer.get_classifier().model, torch.from_numpy(x), torch.from_numpy(y)
    with torch.no_grad():
        ce_clean = torch.nn.functional.cross_entropy(model(xt), yt)
    x_adv = pgd(model, xt, yt, norm="inf", eps=0.1, eps_step=0.04, max_iter=3, clip_values=(0.0, 1.0))
    with torch.no_grad():
        ce_adv = torch.nn.functional.cross_entropy(model(x_adv), yt)
    (record,) = trainer.history
    assert record["ce_clean"] == pytest.approx(float(ce_clean), rel=1e-5)
    assert record["ce_adv"] == pytest.approx(float(ce_adv), rel=1e-5)
    assert record["ce_adv"] > record["ce_clean"]  # the attack raised the loss
