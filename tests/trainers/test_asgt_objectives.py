"""The adversarial objectives of SaliencyGuidedAdversarialTrainer: ASGT (default), Madry-style and TRADES."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from art.attacks.evasion import DeepFool, ProjectedGradientDescent
from art.defences.trainer import AdversarialTrainerTRADESPyTorch

from art_sgt import SaliencyGuidedAdversarialTrainer
from art_sgt.attacks import trades_pgd
from art_sgt.losses import asgt_loss, madry_sgt_loss, trades_sgt_loss
from art_sgt.masking import least_salient_mask
from art_sgt.saliency import input_gradient
from tests.conftest import make_classifier, make_task, small_model
from tests.trainers.test_asgt import forwards_without_saliency


def _pgd(classifier, eps=0.15, **kwargs):
    params = dict(eps=eps, eps_step=eps / 5, max_iter=4, num_random_init=0, verbose=False)
    return ProjectedGradientDescent(classifier, **{**params, **kwargs})


class _Whole(torch.nn.Module):
    """small_model behind a plain Module: ART's TRADES trainer reads ``outputs[0]`` of its model wrapper, which for
    an ``nn.Sequential`` is the first layer's output, not the logits, and fails."""

    def __init__(self, seed):
        super().__init__()
        self.net = small_model(seed=seed)

    def forward(self, x):
        return self.net(x)


def _weights(classifier):
    return [p.detach().clone() for p in classifier.model.parameters()]


def _zhang_x_adv(model, x_natural, noise, step_size, epsilon, perturb_steps):
    """The crafting of Zhang et al.'s ``trades_loss`` (yaodongyu/TRADES, trades.py, L-inf), transcribed."""
    criterion_kl = torch.nn.KLDivLoss(reduction="sum")
    model.eval()
    x_adv = x_natural.detach() + 0.001 * noise
    for _ in range(perturb_steps):
        x_adv.requires_grad_()
        loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x_natural), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x_natural - epsilon), x_natural + epsilon)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    return x_adv.detach()


def test_trades_pgd_equals_the_authors_crafting():
    x, _ = make_task(n=16, seed=3)
    x = torch.from_numpy(x)
    model = small_model(seed=2)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    expected = _zhang_x_adv(model, x, noise, 0.03, 0.15, 5)
    clip = (torch.tensor(0.0), torch.tensor(1.0))
    ours = trades_pgd(model, x, 0.15, 0.03, 5, clip, "logits", torch.Generator().manual_seed(7))
    assert torch.equal(ours, expected)
    assert float((ours - x).abs().max()) <= 0.15 + 1e-6
    assert float((ours - x).abs().max()) > 0.1  # it moved to the ball's edge, not stayed at the start
    assert model.training  # the mode is restored


def test_trades_pgd_increases_the_kl_and_leaves_x_alone():
    x, _ = make_task(n=16, seed=4)
    x = torch.from_numpy(x)
    before = x.clone()
    model = small_model(seed=2)
    x_adv = trades_pgd(model, x, 0.2, 0.05, 6, None, None, torch.Generator().manual_seed(0))
    assert torch.equal(x, before)
    with torch.no_grad():
        start = F.kl_div(F.log_softmax(model(x + 0.001), 1), F.softmax(model(x), 1), reduction="sum")
        end = F.kl_div(F.log_softmax(model(x_adv), 1), F.softmax(model(x), 1), reduction="sum")
    assert float(end) > 10 * float(start)


@pytest.mark.parametrize("path", ["fast", "general"])
def test_trades_without_sgt_term_equals_art_trades_for_one_step(path):
    x, y = make_task(n=32, seed=3)
    ours, theirs = (make_classifier(model=_Whole(seed=3), optimizer="sgd", lr=0.5) for _ in range(2))

    def attack(classifier):
        return _pgd(classifier) if path == "fast" else DeepFool(classifier, max_iter=3, verbose=False)

    art = AdversarialTrainerTRADESPyTorch(theirs, attack(theirs), beta=3.0)
    art_loss, _, n = art._batch_process(x, y)
    trainer = SaliencyGuidedAdversarialTrainer(
        ours, attack(ours), objective="trades", beta=3.0, kl_weight=0.0, craft="attack"
    )
    assert trainer.uses_fast_path == (path == "fast")
    trainer.fit(x, y, nb_epochs=1, batch_size=32, seed=0, verbose=False)
    assert trainer.history[0]["loss"] == pytest.approx(art_loss / n, rel=1e-5)
    moved = [
        float((a - b).abs().max()) for a, b in zip(_weights(ours), _weights(make_classifier(model=_Whole(seed=3))))
    ]
    assert min(moved) > 1e-3  # a real step, so the comparison below compares updates
    for a, b in zip(_weights(ours), _weights(theirs)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_trades_loss_equals_hand_computation_with_kl_crafting():
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer(
        classifier, _pgd(classifier), objective="trades", beta=2.0, kl_weight=0.5, fill="zero"
    )
    trainer.fit(x, y, nb_epochs=1, batch_size=16, verbose=False, seed=0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    trainer._noise.manual_seed(11)
    loss = trainer._batch_loss(xt, yt).loss

    model = classifier.model
    x_adv = _zhang_x_adv(model, xt, torch.randn(xt.shape, generator=torch.Generator().manual_seed(11)), 0.03, 0.15, 4)
    masked = torch.where(least_salient_mask(input_gradient(model, x_adv, yt, of="log_prob"), 0.5), 0.0, x_adv)
    expected = trades_sgt_loss(model(xt), model(x_adv), model(masked), yt, beta=2.0, kl_weight=0.5)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    craft_attack = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier), objective="trades", craft="attack")
    assert not torch.allclose(craft_attack._craft(xt, yt), x_adv, atol=1e-3)  # CE and KL craft different x_adv


def test_madry_loss_with_clean_sgt_input_and_prediction_target_equals_hand_computation():
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer(
        classifier,
        _pgd(classifier),
        objective="madry",
        sgt_input="clean",
        saliency_target="prediction",
        kl_weight=0.7,
        fill="zero",
    )
    trainer.fit(x, y, nb_epochs=1, batch_size=16, verbose=False, seed=0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss, clean_logits, _ = trainer._batch_loss(xt, yt)

    model = classifier.model
    x_adv = torch.from_numpy(_pgd(classifier).generate(x, y=y))
    predicted = model(xt).argmax(1)
    masked = torch.where(least_salient_mask(input_gradient(model, xt, predicted, of="log_prob"), 0.5), 0.0, xt)
    expected = madry_sgt_loss(model(x_adv), model(masked), yt, kl_weight=0.7, sgt_logits=model(xt))
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-4)
    torch.testing.assert_close(clean_logits, model(xt).detach(), rtol=1e-5, atol=1e-6)


def test_asgt_with_clean_sgt_input_equals_hand_computation():
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier), sgt_input="clean", fill="zero")
    trainer.fit(x, y, nb_epochs=1, batch_size=16, verbose=False, seed=0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss = trainer._batch_loss(xt, yt).loss

    model = classifier.model
    x_adv = torch.from_numpy(_pgd(classifier).generate(x, y=y))
    masked = torch.where(least_salient_mask(input_gradient(model, xt, yt, of="log_prob"), 0.5), 0.0, xt)
    expected = asgt_loss(model(xt), model(x_adv), model(masked), yt, sgt_logits=model(xt))
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-4)


def test_the_default_objective_is_the_paper_asgt():
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier))
    assert (trainer.objective, trainer.sgt_input, trainer.beta, trainer.craft) == ("asgt", "adversarial", None, None)
    config = trainer._config()  # the paper's objective records nothing new: older checkpoints still resume
    assert not {"objective", "sgt_input", "beta", "craft"} & set(config)
    trades = SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier), objective="trades", sgt_input="clean")
    config = trades._config()
    assert (config["objective"], config["beta"], config["craft"], config["sgt_input"]) == ("trades", 6.0, "kl", "clean")
    assert SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier), objective="madry")._config()["objective"]


def _fit_weights(objective, **kwargs):
    x, y = make_task(n=48, seed=5)
    classifier = make_classifier(model=small_model(seed=3))
    attack = kwargs.pop("attack", None)
    attack = _pgd(classifier, num_random_init=1) if attack is None else attack(classifier)
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack, objective=objective, **kwargs)
    trainer.fit(x, y, nb_epochs=1, batch_size=16, seed=1, verbose=False)
    assert np.isfinite(trainer.history[-1]["loss"])
    return torch.cat([p.detach().flatten() for p in classifier.model.parameters()])


@pytest.mark.parametrize(
    ("objective", "kwargs"),
    [
        ("madry", {}),
        ("madry", {"sgt_input": "clean", "attack": lambda c: DeepFool(c, max_iter=2, verbose=False)}),
        ("trades", {}),
        ("trades", {"sgt_input": "clean", "saliency_target": "prediction"}),
        ("trades", {"craft": "attack", "attack": lambda c: DeepFool(c, max_iter=2, verbose=False)}),
        ("asgt", {"sgt_input": "clean", "attack": lambda c: DeepFool(c, max_iter=2, verbose=False)}),
    ],
)
def test_each_objective_trains_deterministically_on_both_paths(objective, kwargs):
    first = _fit_weights(objective, **kwargs)
    assert torch.equal(first, _fit_weights(objective, **kwargs))
    assert not torch.equal(first, torch.cat([p.flatten() for p in small_model(seed=3).parameters()]))


def test_objectives_train_different_weights():
    paper = _fit_weights("asgt")
    assert torch.equal(paper, _fit_weights("asgt", sgt_input="adversarial"))
    others = [_fit_weights("madry"), _fit_weights("trades"), _fit_weights("asgt", sgt_input="clean")]
    assert all(not torch.equal(paper, other) for other in others)


def test_madry_without_sgt_term_computes_no_saliency(monkeypatch):
    x, y = make_task(n=16, seed=3)
    classifier = make_classifier()
    steps = 3
    trainer = SaliencyGuidedAdversarialTrainer(
        classifier, _pgd(classifier, max_iter=steps), objective="madry", kl_weight=0.0
    )
    loss, seen = forwards_without_saliency(monkeypatch, trainer, x, y)
    # steps forwards to craft, one train-mode forward of x_adv, one eval-mode forward of x for the accuracy
    assert seen == (steps + 2) * len(x)
    x_adv = trainer._craft(torch.from_numpy(x), torch.from_numpy(y))
    expected = F.cross_entropy(classifier.model(x_adv), torch.from_numpy(y)).detach()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_fast_recipe_takes_an_objective():
    classifier = make_classifier()
    trainer = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.2, objective="trades")
    assert trainer.craft == "kl" and trainer.uses_fast_path
    with pytest.raises(ValueError, match="craft='attack' or noise=None"):
        SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.2, noise=2.0, objective="trades")
    nfgsm = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.2, noise=2.0, objective="trades", craft="attack")
    assert nfgsm.single_step is not None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "mart"}, r"objective must be one of 'asgt', 'madry', 'trades', got 'mart'"),
        ({"sgt_input": "masked"}, r"sgt_input must be one of 'adversarial', 'clean'"),
        ({"beta": 6.0}, r"beta is an option of objective='trades', got objective='asgt'"),
        ({"objective": "madry", "craft": "kl"}, r"craft is an option of objective='trades'"),
        ({"objective": "trades", "craft": "pgd"}, r"craft must be one of 'kl', 'attack'"),
        ({"objective": "trades", "beta": -1.0}, r"beta must be"),
        ({"objective": "madry", "ratio": 1.0}, r"ratio must stay 0.5, got 1.0"),
        ({"objective": "trades", "attack": "deepfool"}, r"craft='kl'.*got DeepFool.*craft='attack'"),
        ({"objective": "trades", "attack": "l2"}, r"craft='kl'.*L-inf.*got ProjectedGradientDescent"),
    ],
)
def test_bad_objective_options(kwargs, match):
    classifier = make_classifier()
    kind = kwargs.pop("attack", None)
    if kind == "deepfool":
        attack = DeepFool(classifier, verbose=False)
    else:
        attack = _pgd(classifier, norm=2, eps=1.0, eps_step=0.2) if kind == "l2" else _pgd(classifier)
    with pytest.raises(ValueError, match=match):
        SaliencyGuidedAdversarialTrainer(classifier, attack, **kwargs)


def test_resuming_a_trades_run_checks_its_objective(tmp_path):
    x, y = make_task(n=32, seed=5)

    def trainer(**kwargs):
        classifier = make_classifier(model=small_model(seed=3))
        return SaliencyGuidedAdversarialTrainer(classifier, _pgd(classifier), **kwargs)

    trainer(objective="trades", beta=2.0).fit(
        x, y, nb_epochs=1, batch_size=16, seed=0, verbose=False, checkpoint_dir=str(tmp_path)
    )
    resumed = trainer(objective="trades", beta=2.0)
    resumed.fit(x, y, nb_epochs=2, batch_size=16, seed=0, verbose=False, checkpoint_dir=str(tmp_path), resume=True)
    assert [record["epoch"] for record in resumed.history] == [1, 2]
    with pytest.raises(ValueError, match=r"beta: 2.0 -> 1.0"):
        trainer(objective="trades", beta=1.0).fit(
            x, y, nb_epochs=3, batch_size=16, seed=0, verbose=False, checkpoint_dir=str(tmp_path), resume=True
        )
    with pytest.raises(ValueError, match=r"objective"):
        trainer().fit(
            x, y, nb_epochs=3, batch_size=16, seed=0, verbose=False, checkpoint_dir=str(tmp_path), resume=True
        )


def test_trades_pgd_reads_a_model_ending_in_softmax_as_its_distribution():
    x, _ = make_task(n=16, seed=6)
    x = torch.from_numpy(x)
    logits_model = small_model(seed=2)
    softmax_model = torch.nn.Sequential(logits_model, torch.nn.Softmax(dim=1))
    clip = (torch.tensor(0.0), torch.tensor(1.0))
    ours = trades_pgd(softmax_model, x, 0.1, 0.02, 3, clip, None, torch.Generator().manual_seed(3))
    expected = trades_pgd(logits_model, x, 0.1, 0.02, 3, clip, "logits", torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"model": "net"}, TypeError, "model"),
        ({"x": np.zeros((2, 4), dtype=np.float32)}, TypeError, "x must"),
        ({"x": torch.zeros(4)}, ValueError, "x must"),
        ({"eps": -0.1}, ValueError, "eps"),
        ({"eps_step": 0.0}, ValueError, "eps_step"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"outputs": "scores"}, ValueError, "outputs"),
        ({"generator": 3}, TypeError, "generator"),
    ],
)
def test_trades_pgd_refuses_bad_arguments_naming_them(kwargs, error, name):
    arguments = {"model": torch.nn.Linear(4, 3), "x": torch.zeros(2, 4), "eps": 0.1, "eps_step": 0.02, "max_iter": 2}
    with pytest.raises(error, match=name):
        trades_pgd(**{**arguments, **kwargs})
