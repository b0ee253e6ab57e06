"""art_sgt.apgd: the on-device APGD's iterates equal ART's AutoProjectedGradientDescent's from the same random
starts; its default return rule (the original APGD's) breaks every sample ART's breaks, and more."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from art.attacks.evasion import AutoProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier

import art_sgt.apgd
from art_sgt._art import apgd_params_from_art
from art_sgt.apgd import APGDParams, apgd, apgd_checkpoints
from art_sgt.evaluation._art_attacks import generate

CLASSES = 5


def _classifier(seed: int = 0) -> PyTorchClassifier:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, CLASSES)
    )
    return PyTorchClassifier(
        model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=CLASSES, clip_values=(0.0, 1.0)
    )


def _inputs(n: int = 40) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)


@pytest.fixture
def arts_return_rule(monkeypatch):
    """The on-device path with ART's return rule (keep="last"): its output is then the trajectory's last iterate
    where adversarial, as ART's is, so comparing outputs compares the trajectories."""
    monkeypatch.setattr(art_sgt.apgd, "apgd", functools.partial(art_sgt.apgd.apgd, keep="last"))


def _both(attack: AutoProjectedGradientDescent, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ART's generate and the on-device path, each after the same seeding of numpy's global generator."""
    np.random.seed(1)  # noqa: NPY002 - ART draws its random starts from numpy's global generator
    ref = attack.generate(x, y=y)
    np.random.seed(1)  # noqa: NPY002
    return ref, generate(attack, x, y)


@pytest.mark.parametrize("norm", [np.inf, 2])
@pytest.mark.parametrize(
    ("loss_type", "targeted"),
    [("cross_entropy", False), ("difference_logits_ratio", False), ("difference_logits_ratio", True)],
)
@pytest.mark.usefixtures("arts_return_rule")
def test_on_device_apgd_iterates_equal_arts_from_the_same_starts(norm, loss_type, targeted) -> None:
    classifier = _classifier()
    x = _inputs()
    labels = classifier.predict(x).argmax(1)
    eye = np.eye(CLASSES, dtype=np.float32)
    y = eye[(labels + 1) % CLASSES] if targeted else eye[labels]
    eps = 0.05 if norm == np.inf else 0.5
    # two restarts and batches of 16: ART's restart and batch structure, not only its step loop
    attack = AutoProjectedGradientDescent(
        classifier,
        norm=norm,
        eps=eps,
        eps_step=2 * eps,
        max_iter=30,
        nb_random_init=2,
        batch_size=16,
        loss_type=loss_type,
        targeted=targeted,
        verbose=False,
    )
    assert apgd_params_from_art(attack) is not None  # the fast path runs
    ref, out = _both(attack, x, y)
    fooled = classifier.predict(ref).argmax(1) != labels
    assert 0 < fooled.sum() < len(x) or not targeted  # the attack does something, and not everything
    if norm == np.inf:
        np.testing.assert_array_equal(out, ref)  # the same float32 operations in the same order
    else:
        # L2 norms are summed in another order than numpy's: iterates agree to float rounding, except where a
        # rounding difference flips one of APGD's exact comparisons (a best loss equal to the last one), which
        # then sends that sample down another path; at most 10% of the samples here.
        far = np.abs(out - ref).reshape(len(x), -1).max(1) > 1e-5
        assert far.sum() <= 0.1 * len(x), far.sum()
        same = (classifier.predict(out).argmax(1) != labels) == fooled
        assert same.mean() >= 0.9


@pytest.mark.usefixtures("arts_return_rule")
def test_a_user_loss_of_plain_cross_entropy_runs_on_the_device_and_equals_art() -> None:
    classifier = _classifier(seed=1)
    x = _inputs(24)
    y = np.eye(CLASSES, dtype=np.float32)[classifier.predict(x).argmax(1)]
    attack = AutoProjectedGradientDescent(classifier, eps=0.05, eps_step=0.1, max_iter=12, verbose=False)
    assert apgd_params_from_art(attack).loss == "ce"
    ref, out = _both(attack, x, y)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize(("loss_type", "targeted"), [("cross_entropy", False), ("difference_logits_ratio", True)])
def test_the_default_return_rule_breaks_every_sample_art_breaks_and_returns_arts_point_there(
    loss_type, targeted
) -> None:
    classifier = _classifier(seed=2)
    x = _inputs()
    labels = classifier.predict(x).argmax(1)
    eye = np.eye(CLASSES, dtype=np.float32)
    y = eye[(labels + 1) % CLASSES] if targeted else eye[labels]
    attack = AutoProjectedGradientDescent(
        classifier,
        eps=0.1,
        eps_step=0.2,
        max_iter=30,
        nb_random_init=1,
        batch_size=16,
        loss_type=loss_type,
        targeted=targeted,
        verbose=False,
    )
    ref, out = _both(attack, x, y)  # one restart: the same start for every sample

    def broken(points: np.ndarray) -> np.ndarray:
        pred = classifier.predict(points).argmax(1)
        return pred == y.argmax(1) if targeted else pred != labels

    by_art, by_us = broken(ref), broken(out)
    assert 0 < by_art.sum() < len(x)
    assert not (by_art & ~by_us).any()  # every sample ART breaks, we break
    np.testing.assert_array_equal(out[by_art], ref[by_art])  # with ART's point
    assert float(np.abs(out - x).max()) <= 0.1 + 1e-6 and 0.0 <= out.min() and out.max() <= 1.0


def test_an_adversarial_iterate_met_on_the_way_counts_where_arts_last_iterate_is_not_adversarial() -> None:
    # A known case: 5 steps at eps 0.05 from one random start; one sample's trajectory crosses the decision
    # boundary and ends back on the correct side, so ART returns its start and counts it robust.
    classifier = _classifier(seed=1)
    x = _inputs()
    labels = classifier.predict(x).argmax(1)
    y = np.eye(CLASSES, dtype=np.float32)[labels]
    attack = AutoProjectedGradientDescent(
        classifier, eps=0.05, eps_step=0.1, max_iter=5, nb_random_init=1, batch_size=16, verbose=False
    )
    ref, out = _both(attack, x, y)
    by_art = classifier.predict(ref).argmax(1) != labels
    by_us = classifier.predict(out).argmax(1) != labels
    assert not (by_art & ~by_us).any()
    only_ours = np.flatnonzero(by_us & ~by_art)
    assert only_ours.size == 1, only_ours
    assert float(np.abs(out[only_ours] - x[only_ours]).max()) <= 0.05 + 1e-6


def test_what_the_fast_path_does_not_reproduce_runs_arts_own_generate() -> None:
    classifier = _classifier()
    l1 = AutoProjectedGradientDescent(classifier, norm=1, eps=2.0, eps_step=4.0, max_iter=5, verbose=False)
    assert apgd_params_from_art(l1) is None
    assert apgd_params_from_art(object()) is None
    x = _inputs(8)
    y = np.eye(CLASSES, dtype=np.float32)[classifier.predict(x).argmax(1)]
    attack = AutoProjectedGradientDescent(classifier, eps=0.05, eps_step=0.1, max_iter=5, verbose=False)
    mask = np.ones((1, 1, 8, 8), dtype=np.float32)
    mask[..., :4] = 0
    np.random.seed(0)  # noqa: NPY002
    out = generate(attack, x, y, mask=mask)  # a mask: ART's generate, which honours it
    np.random.seed(0)  # noqa: NPY002
    np.testing.assert_array_equal(out, attack.generate(x, y=y, mask=mask))


def test_apgd_stays_in_the_ball_restores_the_model_and_writes_no_gradients() -> None:
    model = _classifier().model.train()
    x = torch.as_tensor(_inputs(12))
    y = model.eval()(x).argmax(1)
    model.train()
    out = apgd(model, x, y, eps=0.1, eps_step=0.2, max_iter=10, clip_values=(0.0, 1.0), batch_size=5)
    assert out.shape == x.shape and float((out - x).abs().max()) <= 0.1 + 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
    out2 = apgd(model, x, y, eps=0.5, eps_step=1.0, max_iter=10, norm=2, loss="dlr")
    assert float(torch.linalg.vector_norm((out2 - x).flatten(1), dim=1).max()) <= 0.5 + 1e-5


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"eps": 0.0}, ValueError, "eps"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"loss": "hinge"}, ValueError, "loss"),
        ({"norm": 1}, ValueError, "norm"),
        ({"targeted": 1}, TypeError, "targeted"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"start": torch.zeros(2, 1, 8, 8)}, ValueError, "start"),
        ({"keep": "first"}, ValueError, "keep"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, error, name) -> None:
    model = _classifier().model
    x = torch.as_tensor(_inputs(4))
    args = {"eps": 0.1, "eps_step": 0.2, "max_iter": 3, **kwargs}
    with pytest.raises(error, match=name):
        apgd(model, x, torch.zeros(4, dtype=torch.long), **args)


def test_checkpoints_and_params_are_arts() -> None:
    assert apgd_checkpoints(100) == [0, 22, 41, 58, 70, 80, 87, 93, 99]
    assert apgd_checkpoints(5) == [0, 2, 3, 3, 4, 4, 5, 5, 5]  # repeats kept: ART looks up the first
    attack = AutoProjectedGradientDescent(
        _classifier(),
        eps=0.1,
        eps_step=0.2,
        max_iter=7,
        batch_size=9,
        loss_type="difference_logits_ratio",
        targeted=True,
        verbose=False,
    )
    assert apgd_params_from_art(attack) == APGDParams(
        eps=0.1,
        eps_step=0.2,
        max_iter=7,
        norm="inf",
        loss="dlr",
        targeted=True,
        clip_values=(0.0, 1.0),
        nb_random_init=5,
        batch_size=9,
    )
