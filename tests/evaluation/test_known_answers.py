"""Known answers of the robustness report: closed-form robust accuracy of linear models, and a zoo of models
whose gradient masking is known, each flagged by the checks that must catch it.

Every check of :data:`~art_sgt.evaluation.checklist.CHECKS` has a model on which it fires and a sound model on
which it stays quiet; every masked model raises at least one flag at the default budget.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.estimators.classification import PyTorchClassifier
from scipy.stats import binomtest

from art_sgt.evaluation import CHECKS, AttackBudget, robustness_report
from art_sgt.evaluation.checklist import ADEQUATE, LARGE_EPS_RATE, paired_test

SHAPE = (1, 8, 8)
D = 64


def _bayes_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: the mean pixel below / above 0.5 (0.15 to 0.3 away, so every sample breaks at eps 0.45)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    centre = np.where(y == 1, 0.5 + rng.uniform(0.15, 0.3, n), 0.5 - rng.uniform(0.15, 0.3, n))
    x = np.clip(centre[:, None, None, None] + rng.uniform(-0.1, 0.1, (n, *SHAPE)), 0, 1)
    return x.astype(np.float32), y.astype(np.int64)


def _mean_pixel_linear() -> torch.nn.Linear:
    """The Bayes classifier of :func:`_bayes_data`: logit difference 40 (mean pixel - 0.5)."""
    linear = torch.nn.Linear(D, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([-20.0, 20.0])[:, None].repeat(1, D) / D)
        linear.bias.copy_(torch.tensor([10.0, -10.0]))
    return linear


def _classifier(model: torch.nn.Module, classes: int = 2, clip: bool = True) -> PyTorchClassifier:
    return PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=SHAPE,
        nb_classes=classes,
        clip_values=(0.0, 1.0) if clip else None,
    )


class Quantise(torch.nn.Module):
    """Input quantisation with ``torch.round``: the gradient is zero almost everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 10) / 10


class Saturate(torch.nn.Module):
    """Logits times 1e4: the float32 softmax saturates to exactly 0 / 1 and the cross-entropy gradient vanishes."""

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * 1e4


class RandomTransform(torch.nn.Module):
    """A randomised input transformation: the identity in value, a fresh random Jacobian ``1 + R`` (``R ~
    N(0, 100^2)``) on every call, so each gradient is dominated by noise of random sign (stochastic gradients)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = 100.0 * torch.randn_like(x)
        return x + r * x - (r * x).detach()


class Detach(torch.nn.Module):
    """``x.detach()`` before the first layer: ART gets no input gradient at all."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()


def _zoo(name: str) -> PyTorchClassifier:
    layers = {
        "sound": [torch.nn.Flatten(), _mean_pixel_linear()],
        "quantise": [Quantise(), torch.nn.Flatten(), _mean_pixel_linear()],
        "saturate": [torch.nn.Flatten(), _mean_pixel_linear(), Saturate()],
        "random_transform": [RandomTransform(), torch.nn.Flatten(), _mean_pixel_linear()],
        "detach": [Detach(), torch.nn.Flatten(), _mean_pixel_linear()],
    }[name]
    return _classifier(torch.nn.Sequential(*layers))


class FirstPixel(torch.nn.Module):
    """Logits ``(-10 m(t), 10 m(t))`` of the first pixel ``t`` through a piecewise-linear margin ``m``.

    ``"bump"``: ``m = 0.35 + (t - 0.3) - 4 relu(t - 0.4)``. From ``t = 0.3`` the gradient points away from the
    boundary (``t = 0.5125``): PGD started at ``x`` walks to ``t = 0`` and stays correct; a random start above
    0.4 (one in three at eps 0.3) reaches the boundary. More restarts break more samples.
    ``"trap"``: ``m = 0.3 - 2 (t - 0.3) + 4 relu(t - 0.35) - 10 relu(t - 0.5)``: a local minimum of the margin
    at 0.35 traps PGD's small steps, while FGSM's single step of eps 0.3 jumps past the boundary (0.55).
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.reshape(len(x), -1)[:, :1]
        if self.kind == "bump":
            m = 0.35 + (t - 0.3) - 4 * torch.relu(t - 0.4)
        else:
            m = 0.3 - 2 * (t - 0.3) + 4 * torch.relu(t - 0.35) - 10 * torch.relu(t - 0.5)
        return torch.cat([-m, m], dim=1) * 10


def _first_pixel_data(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).random((n, *SHAPE), dtype=np.float32)
    x[:, 0, 0, 0] = 0.3
    return x, np.ones(n, dtype=np.int64)


def _report(classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray, **kwargs):
    return robustness_report(classifier, x, y, **{"eps": (0.45,), "attacks": ("pgd",), "verbose": False, **kwargs})


# --- closed-form robust accuracy of linear models (no clipping) --------------------------------------------


def _random_linear(classes: int, seed: int) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(D, classes)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(classes, D, generator=gen))
        linear.bias.copy_(torch.randn(classes, generator=gen))
    return (
        torch.nn.Sequential(torch.nn.Flatten(), linear),
        linear.weight.detach().numpy().astype(np.float64),
        (linear.bias.detach().numpy().astype(np.float64)),
    )


def _closed_form_distance(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray, dual: float) -> np.ndarray:
    """Minimal adversarial distance of a linear classifier without box constraints: ``min_j (f_y - f_j) /
    ||w_y - w_j||_dual`` (the dual norm: L1 for L-inf, L2 for L2); 0 for a misclassified sample."""
    logits = x.reshape(len(x), -1).astype(np.float64) @ w.T + b
    rows = np.arange(len(x))
    gaps = logits[rows, y][:, None] - logits
    norms = np.linalg.norm(w[y][:, None, :] - w[None, :, :], ord=dual, axis=2)
    ratio = np.where(np.arange(w.shape[0])[None, :] == y[:, None], np.inf, gaps / np.where(norms > 0, norms, 1))
    return np.clip(ratio.min(axis=1), 0, None)


def _inputs(n: int, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs labelled by the model, one in ten relabelled (misclassified: distance 0)."""
    x = np.random.default_rng(1).normal(size=(n, *SHAPE)).astype(np.float32) * 0.1
    y = (x.reshape(n, -1).astype(np.float64) @ w.T + b).argmax(axis=1)
    y[::10] = (y[::10] + 1) % w.shape[0]
    return x, y


@pytest.mark.parametrize(("norm", "dual", "eps"), [("inf", 1, (0.005, 0.01, 0.02)), (2, 2, (0.03, 0.06, 0.1))])
def test_binary_linear_worst_case_equals_the_closed_form_robust_accuracy(norm, dual, eps) -> None:
    model, w, b = _random_linear(2, seed=0)
    x, y = _inputs(60, w, b)
    distance = _closed_form_distance(x, y, w, b, dual)
    assert np.abs(distance[:, None] - np.asarray(eps)[None, :]).min() > 1e-5  # none on a knife edge
    # PGD without a random start walks straight to the optimal point; restarts would shrink its step under L2.
    budget = AttackBudget.preset("quick").replace(pgd_restarts=0, attacks=("pgd", "apgd-ce"))
    report = robustness_report(
        _classifier(model, clip=False), x, y, eps=eps, norm=norm, budget=budget, checklist=False, verbose=False
    )
    expected = [float((distance > e).mean()) for e in eps]
    assert report.worst_case == expected
    assert 0 < expected[-1] < expected[0] < 1  # the eps cut through the distribution


def test_multiclass_linear_worst_case_is_within_one_percent_of_the_closed_form() -> None:
    model, w, b = _random_linear(4, seed=3)
    x, y = _inputs(100, w, b)
    distance = _closed_form_distance(x, y, w, b, 1)
    eps = (0.004, 0.007, 0.01)
    budget = AttackBudget.preset("quick").replace(attacks=("pgd", "apgd-ce", "apgd-dlr"))
    classifier = _classifier(model, classes=4, clip=False)
    # mode="independent": each attack on every sample
    report = robustness_report(
        classifier, x, y, eps=eps, budget=budget, checklist=False, verbose=False, mode="independent"
    )
    expected = np.array([(distance > e).mean() for e in eps])
    assert np.round(np.abs(np.asarray(report.worst_case) - expected) * len(x)).max() <= 1  # 1% of n
    assert np.all(np.asarray(report.worst_case) >= expected - 1e-12)  # no attack beats the exact optimum
    assert 0 < expected[-1] < expected[0] < 1


# --- the zoo of masked models --------------------------------------------------------------------------------

#: Which checks catch which masked model at the default budget (listed in docs/robustness.rst).
CAUGHT_BY = {
    "quantise": {"black_box", "large_eps", "transfer"},
    "saturate": {"black_box", "large_eps", "transfer"},
    "random_transform": {"black_box", "large_eps", "transfer"},
    "detach": {"black_box", "large_eps", "transfer"},
}


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_masked_model_is_flagged_at_the_default_budget(name) -> None:
    x, y = _bayes_data(24)
    report = _report(_zoo(name), x, y, transfer_from=_zoo("sound"))
    assert report.params["budget"] == "standard"
    assert report.gradient_masking
    assert CAUGHT_BY[name] <= set(report.flags), report.table()
    # The worst case includes the checklist's attacks: Square and transfer break what PGD could not.
    assert report.accuracy["pgd"][0] > 0.9 and report.worst_case[0] < 0.2
    if name == "detach":
        assert any("no input gradient" in note for note in report.notes)


def test_sound_model_raises_no_flag_and_every_check_runs() -> None:
    x, y = _bayes_data(24)
    report = _report(_zoo("sound"), x, y, transfer_from=_zoo("sound"))
    assert {check.name: check.flagged for check in report.checklist} == dict.fromkeys(CHECKS, False)
    assert report.flags == [] and report.notes == []
    assert all(check.n == 24 and check.p_value is not None for check in report.checklist)


#: For each check, a model and report arguments on which it must fire.
FIRING = {
    "more_iterations": ("bump", {"budget": AttackBudget.preset("standard").replace(pgd_restarts=0)}),
    "single_step": ("trap", {}),
    "black_box": ("quantise", {}),
    "large_eps": ("quantise", {}),
    "transfer": ("quantise", {}),
}


@pytest.mark.parametrize("check", list(CHECKS))
def test_every_check_fires_on_its_known_answer(check) -> None:
    model, kwargs = FIRING[check]
    if model in ("bump", "trap"):
        x, y = _first_pixel_data()
        report = _report(_classifier(FirstPixel(model)), x, y, eps=(0.3,), **kwargs)
    else:
        x, y = _bayes_data(24)
        report = _report(_zoo(model), x, y, transfer_from=_zoo("sound"), **kwargs)
    verdict = {c.name: c for c in report.checklist}[check]
    assert verdict.flagged is True, report.table()
    assert verdict.p_value < 0.05 and verdict.n == len(x)


def test_more_iterations_fires_when_the_stronger_attack_lowers_the_accuracy() -> None:
    x, y = _first_pixel_data()
    budget = AttackBudget.preset("standard").replace(pgd_restarts=0)
    report = _report(_classifier(FirstPixel("bump")), x, y, eps=(0.3,), budget=budget)
    check = {c.name: c for c in report.checklist}["more_iterations"]
    assert check.evidence["pgd_strong"] < check.evidence["pgd"] == 1.0  # lower, not higher, is the warning sign
    assert check.budget_adequate is False  # one restart is below ADEQUATE["strong_restarts"]


# --- the exact tests and the budgets ------------------------------------------------------------------------


def test_paired_test_is_the_exact_one_sided_mcnemar_test() -> None:
    reference = np.ones(40, dtype=bool)
    challenger = reference.copy()
    challenger[:5] = False  # broken by the challenger only: b = 5
    reference[5:7] = False  # broken by the reference only: c = 2
    flagged, p_value, counts = paired_test(reference, challenger, alpha=0.05, tolerance=0.0)
    assert (counts["b"], counts["c"]) == (5, 2)
    assert p_value == pytest.approx(binomtest(5, 7, 0.5, alternative="greater").pvalue)
    assert p_value == pytest.approx(29 / 128) and not flagged  # 5 of 7 discordant pairs is not significant
    challenger[7:12] = False
    flagged, p_value, _ = paired_test(reference, challenger, alpha=0.05, tolerance=0.0)
    assert flagged and p_value < 0.05
    assert not paired_test(reference, challenger, alpha=0.05, tolerance=0.5)[0]  # drop 0.2 below tolerance


def test_one_or_two_images_do_not_fire_a_check_at_small_n() -> None:
    """The old fixed tolerance 0.03 fired on 2 of 50 images; the exact test needs significance."""
    reference = np.ones(50, dtype=bool)
    challenger = reference.copy()
    challenger[:2] = False
    flagged, p_value, _ = paired_test(reference, challenger, alpha=0.05, tolerance=0.0)
    assert not flagged and p_value == pytest.approx(0.25)


def test_large_eps_allows_a_stray_sample_but_not_a_significant_rate() -> None:
    assert binomtest(1, 50, LARGE_EPS_RATE, alternative="greater").pvalue > 0.05
    assert binomtest(4, 50, LARGE_EPS_RATE, alternative="greater").pvalue < 0.05


def test_budget_presets_are_recorded_and_explicit_values_override_them() -> None:
    standard = AttackBudget.preset("standard")
    assert 50 <= standard.pgd_max_iter <= 100 and standard.pgd_restarts >= 2
    assert standard.apgd_max_iter >= 100 and standard.square_max_iter >= 5000
    x, y = _bayes_data(12)
    report = _report(_zoo("sound"), x, y, budget=AttackBudget.preset("quick").replace(pgd_max_iter=7))
    assert report.params["budget"] == "quick" and report.params["pgd_max_iter"] == 7
    assert report.params["square_max_iter"] == AttackBudget.preset("quick").square_max_iter
    assert report.params["cost"]["pgd"] == 7 * 12
    adequate = {c.name: c.budget_adequate for c in report.checklist}
    assert adequate["more_iterations"] is (4 * 7 >= ADEQUATE["strong_iter"])  # 28 steps: not a real test
    assert adequate["black_box"] is True and adequate["transfer"] is None
    table = report.table()
    assert "worst case" in table and "more_iterations" in table and "budget too small" in table
    with pytest.raises(ValueError, match="budget"):
        _report(_zoo("sound"), x, y, budget="huge")


# --- known answers of the saliency metrics ------------------------------------------------------------------


def _linear_module(classes: int = 3, features: int = 12, seed: int = 0) -> torch.nn.Module:
    """A linear model with weights of both signes: its input gradient is exact and its |gradient| is not."""
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(features, classes))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(classes, features, generator=gen))
    return model


def _positive_inputs(n: int = 16, features: int = 12) -> torch.Tensor:
    return 0.1 + 0.9 * torch.rand(n, 1, 3, features // 3, generator=torch.Generator().manual_seed(1))


def test_infidelity_is_zero_for_signed_gradients_of_a_linear_model_and_not_for_absolute_ones() -> None:
    from art_sgt.evaluation import attribute, infidelity

    model, x = _linear_module(), _positive_inputs()
    y = torch.arange(len(x)) % 3
    signed = infidelity(model, x, y, attribute(model, x, y, "gradient"))
    absolute = infidelity(model, x, y, attribute(model, x, y, "saliency"))
    assert float(signed.abs().max()) < 1e-6
    assert float(absolute.min()) > 1e-3


def test_infidelity_uses_the_multiply_by_inputs_convention_for_integrated_gradients() -> None:
    from art_sgt.evaluation import attribute, infidelity

    model, x = _linear_module(), _positive_inputs()
    y = torch.arange(len(x)) % 3
    ig = attribute(model, x, y, "integrated_gradients")  # x * w exactly for a linear model, zero baseline
    assert float(infidelity(model, x, y, ig, multiply_by_inputs=True).abs().max()) < 1e-6
    assert float(infidelity(model, x, y, ig).min()) > 1e-3


def test_evaluator_feeds_infidelity_signed_maps_with_the_method_convention() -> None:
    from art_sgt.evaluation import SaliencyEvaluator

    model, x = _linear_module(), _positive_inputs()
    y = torch.arange(len(x)) % 3
    methods = ["saliency", "integrated_gradients", "input_x_gradient"]
    report = SaliencyEvaluator(model, methods, ["infidelity"]).evaluate(x, y)
    for method in methods:
        assert report.results[method]["infidelity"]["mean"] < 1e-6, method


def test_shared_zero_background_does_not_inflate_the_rank_correlation() -> None:
    from art_sgt.evaluation import rank_correlation, similarities

    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(8, 1, 20, 50, generator=gen), torch.rand(8, 1, 20, 50, generator=gen)
    background = torch.rand(8, 1, 20, 50, generator=gen) < 0.8
    a[background], b[background] = 0.0, 0.0  # independent maps sharing 80% zeros
    assert float(rank_correlation(a, b).mean()) > 0.9  # the artefact: ties at zero dominate the ranks
    spearman = similarities(a, b)["spearman"]
    assert float(spearman.abs().max()) < 0.2  # independent once the shared zeros are left out
    # The ranks among kept positions, derived from the full ranks, equal ranking the kept positions afresh.
    for signed, key in ((False, "spearman"), (True, "spearman_signed")):
        c, d = (a - 0.5 * (a > 0.7)) if signed else a, (b - 0.5 * (b > 0.7)) if signed else b
        fresh = rank_correlation(c, d, absolute=not signed, drop_shared_zeros=True)
        assert torch.allclose(similarities(c, d)[key], fresh, atol=1e-12)


def test_ssim_known_answers() -> None:
    from art_sgt.evaluation import structural_similarity

    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 2, 9, 9, generator=gen)
    assert torch.equal(structural_similarity(a, a), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(structural_similarity(a, -3 * a), torch.ones(3, dtype=torch.float64))  # |.|, max-scaled
    zero = torch.zeros(1, 1, 9, 9)
    assert float(structural_similarity(zero, zero)) == 1.0
    assert float(structural_similarity(a, torch.rand(3, 2, 9, 9, generator=gen)).max()) < 0.5


def test_ssim_equals_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    from art_sgt.evaluation import structural_similarity

    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 1, 12, 12, generator=gen), torch.rand(2, 1, 12, 12, generator=gen)
    ours = structural_similarity(a, b).numpy()
    for i in range(2):
        na, nb = (v[i, 0].double().numpy() / float(v[i, 0].max()) for v in (a, b))
        reference = metrics.structural_similarity(na, nb, data_range=1.0, win_size=7)
        assert ours[i] == pytest.approx(reference, abs=1e-5)  # float32 moments


def test_random_logit_explains_the_predicted_class_not_the_label() -> None:
    from art_sgt.evaluation import random_logit

    model, x = _linear_module(classes=4), _positive_inputs()
    predicted = model(x).argmax(1)
    wrong = (predicted + 1) % 4
    by_prediction = random_logit(model, x, predicted, "gradient")
    by_wrong_label = random_logit(model, x, wrong, "gradient")
    assert by_wrong_label.target == "predicted"
    assert by_wrong_label.spearman == by_prediction.spearman and by_wrong_label.ssim == by_prediction.ssim


def test_stability_compares_only_samples_whose_prediction_did_not_flip(trained) -> None:
    from art_sgt.evaluation import adversarial_stability, attribute, similarities

    clf, (x, y) = trained
    result = adversarial_stability(clf, x, y, "gradient", eps=(0.0, 0.3), max_iter=5)
    assert result.flipped[0] == 0.0 and result.n_compared[0] == len(x)
    assert 0.0 < result.flipped[1] < 1.0  # some flip at eps 0.3, some do not
    assert result.n_compared[1] == round((1 - result.flipped[1]) * len(x))
    # By hand: the same PGD, then the similarity over the unflipped samples only.
    from art.attacks.evasion import ProjectedGradientDescent

    pgd = ProjectedGradientDescent(clf, eps=0.3, eps_step=2.5 * 0.3 / 5, max_iter=5, verbose=False)
    x_adv = pgd.generate(x, y=np.eye(4, dtype=np.float32)[y])
    kept = clf.predict(x_adv).argmax(1) == clf.predict(x).argmax(1)
    assert int(kept.sum()) == result.n_compared[1]
    clean = attribute(clf, x[kept], y[kept], "gradient")
    adv = attribute(clf, x_adv[kept], y[kept], "gradient")
    expected = similarities(torch.from_numpy(clean), torch.from_numpy(adv))
    assert result.spearman[1] == pytest.approx(float(expected["spearman"].mean()), abs=1e-4)
    assert result.top_k[1] == pytest.approx(float(expected["top_k"].mean()), abs=1e-4)


def test_masking_gains_are_areas_relative_to_random_in_units_of_clean_accuracy() -> None:
    from art_sgt.evaluation import MaskingCurve

    curve = MaskingCurve(
        fractions=[0.0, 0.5],
        accuracy={"morf": [0.8, 0.0], "lerf": [0.8, 0.8], "random": [0.8, 0.4]},
        probability={"morf": [0.5, 0.0], "lerf": [0.5, 0.5], "random": [0.5, 0.25]},
        fill="road",
        n_samples=10,
    )
    summary = curve.summary()
    # AUC: MoRF 0.4, random 0.6, LeRF 0.8; gains (0.6 - 0.4) / 0.8 and (0.8 - 0.6) / 0.8.
    assert summary["morf_gain_accuracy"] == pytest.approx(0.25)
    assert summary["lerf_gain_accuracy"] == pytest.approx(0.25)
    assert summary["morf_gain_probability"] == pytest.approx(0.25)


def test_evaluator_compares_masking_with_road_by_default(trained) -> None:
    from art_sgt.evaluation import SaliencyEvaluator

    clf, (x, y) = trained
    report = SaliencyEvaluator(clf, ["saliency"], ["masking"]).evaluate(x[:8], y[:8])
    assert report.results["saliency"]["masking"].fill == "road"
    assert "morf_gain_accuracy" in report.summary()["saliency"]


def test_sparseness_and_complexity_sum_channels_first() -> None:
    from art_sgt.evaluation import complexity, sparseness

    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(4, 3, 5, 5, generator=gen)
    summed = maps.sum(dim=1, keepdim=True)
    assert torch.allclose(sparseness(maps), sparseness(summed))
    assert torch.allclose(complexity(maps), complexity(summed))
    assert not torch.allclose(sparseness(maps), sparseness(maps, channel_reduction="none"))
    with pytest.raises(ValueError, match="channel_reduction"):
        sparseness(maps, channel_reduction="max")


def test_sparseness_and_complexity_equal_quantus() -> None:
    quantus = pytest.importorskip("quantus")
    from art_sgt.evaluation import complexity, sparseness

    rng = np.random.default_rng(0)
    x = rng.random((6, 3, 8, 8)).astype(np.float32)
    y = np.arange(6) % 2
    a = rng.normal(size=(6, 3, 8, 8)).astype(np.float32)  # maps of three-channel images
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64, 2))
    # Quantus's explain sums the channels before any metric: give it the maps in that form.
    summed = a.sum(axis=1, keepdims=True)
    kwargs = {"model": model, "x_batch": x, "y_batch": y, "a_batch": summed, "device": "cpu"}
    ref_sparse = quantus.Sparseness(disable_warnings=True)(**kwargs)
    ref_complex = quantus.Complexity(disable_warnings=True)(**kwargs)
    np.testing.assert_allclose(sparseness(a), ref_sparse, atol=1e-5)
    np.testing.assert_allclose(complexity(a), ref_complex, atol=1e-5)


def test_undefined_values_are_warned_counted_and_kept_out_of_summary_means() -> None:
    from art_sgt.evaluation import SaliencyEvaluator

    model = _linear_module()
    x = _positive_inputs()
    x[::2] = 0.0  # all-black inputs: integrated gradients from a zero baseline are exactly 0 there
    y = torch.arange(len(x)) % 3
    evaluator = SaliencyEvaluator(model, ["integrated_gradients"], ["complexity", "randomization", "random_logit"])
    with pytest.warns(RuntimeWarning, match="all-zero|undefined"):
        report = evaluator.evaluate(x, y)
    results = report.results["integrated_gradients"]
    assert results["complexity"]["nan"] == len(x) // 2
    summary = report.summary()["integrated_gradients"]
    assert all(np.isfinite(v) for v in summary.values()), summary
    assert results["random_logit"].undefined  # the zero maps are counted, not averaged
