import numpy as np
import pytest
import torch
from art.attacks.evasion import (
    AutoProjectedGradientDescent,
    DeepFool,
    FastGradientMethod,
    ProjectedGradientDescent,
)

from art_sgt import SaliencyGuidedAdversarialTrainer
from art_sgt.attacks import pgd
from art_sgt.losses import asgt_loss
from art_sgt.masking import least_salient_mask
from art_sgt.saliency import input_gradient
from tests.conftest import make_classifier, make_task, small_model


def _pgd(classifier, eps=0.15, **kwargs):
    params = dict(eps=eps, eps_step=eps / 5, max_iter=10, num_random_init=0, verbose=False)
    return ProjectedGradientDescent(classifier, **{**params, **kwargs})


def _robust_accuracy(classifier, x, y, eps=0.15):
    x_adv = _pgd(classifier, eps=eps).generate(x, y=y)
    return float((classifier.predict(x_adv).argmax(1) == y).mean())


def test_fast_path_loss_equals_hand_computation():
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer(
        classifier, _pgd(classifier), mask_fraction=0.25, kl_weight=0.5, fill="zero"
    )
    assert trainer.uses_fast_path
    trainer.fit(x, y, nb_epochs=1, batch_size=16, verbose=False, seed=0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss = trainer._batch_loss(xt, yt).loss

    model = classifier.model
    x_adv = torch.from_numpy(_pgd(classifier).generate(x, y=y))
    saliency = input_gradient(model, x_adv, yt, of="log_prob")
    masked = torch.where(least_salient_mask(saliency, 0.25), torch.zeros(()), x_adv)
    expected = asgt_loss(model(xt), model(x_adv), model(masked), yt, kl_weight=0.5)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-4)


def test_asgt_is_more_robust_than_standard_training():
    x, y = make_task(n=512, seed=1)
    x_test, y_test = make_task(n=200, seed=2)
    standard = make_classifier(model=small_model(seed=0))
    standard.fit(x, y, nb_epochs=6, batch_size=32)
    adversarial = make_classifier(model=small_model(seed=0))
    trainer = SaliencyGuidedAdversarialTrainer(adversarial, _pgd(adversarial, eps=0.25, num_random_init=1))
    trainer.fit(x, y, nb_epochs=6, batch_size=32, verbose=False, seed=0)
    clean = float((adversarial.predict(x_test).argmax(1) == y_test).mean())
    robust_std = _robust_accuracy(standard, x_test, y_test, eps=0.25)
    robust_asgt = _robust_accuracy(adversarial, x_test, y_test, eps=0.25)
    assert clean > 0.8
    assert robust_asgt > robust_std + 0.2, (robust_std, robust_asgt)


def _asgt_weights(seed):
    x, y = make_task(n=96, seed=5)
    classifier = make_classifier(model=small_model(seed=3))
    attack = _pgd(classifier, max_iter=3, num_random_init=1)  # random starts and uniform fill draw noise
    state = torch.get_rng_state()
    SaliencyGuidedAdversarialTrainer(classifier, attack).fit(x, y, nb_epochs=2, batch_size=32, seed=seed, verbose=False)
    assert torch.equal(state, torch.get_rng_state())  # the caller's global generator is left as it was
    return torch.cat([p.detach().flatten() for p in classifier.model.parameters()])


def test_same_seed_same_weights_different_seed_different_weights():
    first, again, other = _asgt_weights(4), _asgt_weights(4), _asgt_weights(5)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_general_path_with_deepfool_and_prediction_target():
    x, y = make_task(n=64, seed=5)
    classifier = make_classifier()
    attack = DeepFool(classifier, max_iter=3, verbose=False)
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack, saliency_target="prediction")
    assert not trainer.uses_fast_path
    before = [p.detach().clone() for p in classifier.model.parameters()]
    trainer.fit(x, y, nb_epochs=1, batch_size=32, verbose=False, seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(before, classifier.model.parameters()))
    assert np.isfinite(trainer.history[-1]["loss"])


def test_fgsm_uses_fast_path_and_matches_art():
    x, y = make_task(n=8)
    classifier = make_classifier()
    attack = FastGradientMethod(classifier, eps=0.1)
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack)
    assert trainer.uses_fast_path
    ours = trainer._craft(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(ours.numpy(), attack.generate(x, y=y), atol=1e-5)


def test_attack_on_another_estimator_is_rejected_unless_transfer():
    classifier, other = make_classifier(), make_classifier()
    with pytest.raises(ValueError, match="takes its gradients from another model"):
        SaliencyGuidedAdversarialTrainer(classifier, _pgd(other))
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(other), allow_transfer=True)
    assert not trainer.uses_fast_path


@pytest.mark.parametrize("loss_type", ["cross_entropy", "difference_logits_ratio"])
def test_apgd_with_loss_type_wraps_the_same_module_and_attacks_the_live_weights(loss_type):
    x, y = make_task(n=16, seed=2)
    classifier = make_classifier()
    attack = AutoProjectedGradientDescent(classifier, eps=0.1, max_iter=2, nb_random_init=1, loss_type=loss_type)
    assert attack.estimator is not classifier  # ART built its own wrapper ...
    assert attack.estimator.model is classifier.model  # ... of the module being trained: live, so accepted
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack)
    before = [p.detach().clone() for p in classifier.model.parameters()]
    trainer.fit(x, y, nb_epochs=1, batch_size=8, verbose=False, seed=0)
    assert not trainer.uses_fast_path
    assert any(not torch.equal(a, b) for a, b in zip(before, classifier.model.parameters()))


def test_apgd_on_another_model_is_stale_and_refused():
    classifier = make_classifier()
    attack = AutoProjectedGradientDescent(make_classifier(), eps=0.1, max_iter=2, loss_type="cross_entropy")
    with pytest.raises(ValueError, match="AutoProjectedGradientDescent takes its gradients from another model"):
        SaliencyGuidedAdversarialTrainer(classifier, attack)


@pytest.mark.parametrize(
    ("attack", "error", "match"),
    [
        (None, TypeError, "pass the attack"),
        ("pgd", ValueError, "attacks must be an ART EvasionAttack"),  # ART's AdversarialTrainer: ValueError too
        ([], ValueError, "non-empty list"),
    ],
)
def test_bad_attacks(attack, error, match):
    classifier = make_classifier()
    with pytest.raises(error, match=match):
        SaliencyGuidedAdversarialTrainer(classifier, attack)


def test_targeted_attack_raises_not_implemented_in_fit_as_art_does():
    x, y = make_task(n=8)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier, targeted=True))
    before = [p.detach().clone() for p in classifier.model.parameters()]
    with pytest.raises(NotImplementedError, match="targeted"):
        trainer.fit(x, y, nb_epochs=1, verbose=False)
    assert all(torch.equal(a, b) for a, b in zip(before, classifier.model.parameters()))


def test_eps_beyond_clip_range_warns_and_trains():
    x, y = make_task(n=8)
    classifier = make_classifier()
    with pytest.warns(UserWarning, match="exceeds the classifier's clip range"):
        trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier, eps=1.5, eps_step=0.1, max_iter=2))
    trainer.fit(x, y, nb_epochs=1, batch_size=8, verbose=False, seed=0)
    assert len(trainer.history) == 1


def test_eps_within_clip_range_does_not_warn(recwarn):
    classifier = make_classifier()
    SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier, eps=0.5))
    assert not [w for w in recwarn if "clip range" in str(w.message)]


def test_bad_saliency_target():
    classifier = make_classifier()
    with pytest.raises(ValueError, match="saliency_target"):
        SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier), saliency_target="logits")


def test_fast_path_pgd_is_the_ground_floor_function():
    x, y = make_task(n=8)
    classifier = make_classifier(preprocessing=(0.5, 0.25))
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier))
    ours = trainer._craft(torch.from_numpy(x), torch.from_numpy(y))
    direct = pgd(
        trainer._net, torch.from_numpy(x), torch.from_numpy(y), eps=0.15, eps_step=0.03, max_iter=10, clip_values=(0, 1)
    )
    assert torch.equal(ours, direct)
    np.testing.assert_allclose(ours.numpy(), _pgd(classifier).generate(x, y=y), atol=1e-5)


def test_seed_covers_art_attacks_drawing_from_numpy_and_restores_numpy_state():
    x, y = make_task(n=64, seed=5)
    source = make_classifier(model=small_model(seed=8))  # a fixed model to transfer from: ART's own generate runs

    def weights():
        classifier = make_classifier(model=small_model(seed=3))
        attack = _pgd(source, max_iter=2, num_random_init=1)  # random start from numpy's global generator
        trainer = SaliencyGuidedAdversarialTrainer(classifier, attack, allow_transfer=True)
        assert not trainer.uses_fast_path
        state = np.random.get_state()[1].copy()  # noqa: NPY002 - the global state ART draws from
        trainer.fit(x, y, nb_epochs=1, batch_size=32, seed=4, verbose=False)
        assert np.array_equal(state, np.random.get_state()[1])  # noqa: NPY002
        return torch.cat([p.detach().flatten() for p in classifier.model.parameters()])

    first = weights()
    np.random.seed(123)  # noqa: NPY002 - the caller's own numpy state must not matter
    assert torch.equal(first, weights())


@pytest.mark.parametrize("ratio", [0.5, 0.8])
def test_mixed_training_loss_is_exactly_the_weighted_cross_entropies(ratio):
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier), kl_weight=0.0, ratio=ratio)
    trainer.fit(x, y, nb_epochs=1, batch_size=16, verbose=False, seed=0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss = trainer._batch_loss(xt, yt).loss

    x_adv = trainer._craft(xt, yt)  # no random start: the same x_adv as inside _batch_loss
    logits, adv_logits = classifier.model(torch.cat([xt, x_adv])).split(len(xt))  # one forward, as the trainer's
    ce = torch.nn.functional.cross_entropy
    expected = 2.0 * ((1.0 - ratio) * ce(logits, yt) + ratio * ce(adv_logits, yt))
    assert float(loss.detach()) == float(expected.detach())


def forwards_without_saliency(monkeypatch, trainer, x, y):
    """One ``_batch_loss`` of ``trainer`` with saliency forbidden: the loss, and how many samples the model's
    forwards saw in all."""

    def no_saliency(*args, **kwargs):
        raise AssertionError("saliency computed although kl_weight == 0")

    monkeypatch.setattr(trainer, "_saliency_mask", no_saliency)
    seen = []
    hook = trainer.get_classifier().model.register_forward_hook(lambda m, inputs, out: seen.append(len(inputs[0])))
    try:
        loss = trainer._batch_loss(torch.from_numpy(x), torch.from_numpy(y)).loss
    finally:
        hook.remove()
    return loss, sum(seen)


def test_mixed_training_computes_no_saliency_and_no_masked_forward(monkeypatch):
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    steps = 4
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier, max_iter=steps), kl_weight=0.0)
    loss, seen = forwards_without_saliency(monkeypatch, trainer, x, y)
    # steps forwards to craft x_adv, then one forward of x and x_adv together (no saliency, no masked input)
    assert seen == (steps + 2) * len(x)
    assert torch.isfinite(loss)
