"""Tests of art_sgt.attacks: equality with ART's own attacks, randomness, side effects and argument checks."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from art.attacks.evasion import (
    BasicIterativeMethod,
    DeepFool,
    FastGradientMethod,
    ProjectedGradientDescent,
    ProjectedGradientDescentNumpy,
    ProjectedGradientDescentPyTorch,
)
from art.attacks.evasion.projected_gradient_descent import projected_gradient_descent_pytorch as art_pgd_pytorch
from art.estimators.classification import PyTorchClassifier
from torch import nn

import art_sgt.attacks
from art_sgt._art import pgd_params_from_art
from art_sgt.attacks import PGDParams, n_fgsm, pgd

N, SIZE, CLASSES = 16, 8, 3


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, CLASSES))


def art_classifier(model: nn.Module, preprocessing=None, loss: nn.Module | None = None) -> PyTorchClassifier:
    return PyTorchClassifier(
        model,
        loss=nn.CrossEntropyLoss() if loss is None else loss,
        input_shape=(1, SIZE, SIZE),
        nb_classes=CLASSES,
        clip_values=(0.0, 1.0),
        preprocessing=preprocessing,
        device_type="cpu",
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tensors here are tiny: more threads only add synchronisation, which stalls on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((N, 1, SIZE, SIZE), dtype=np.float32), rng.integers(0, CLASSES, N)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return tiny_cnn()


@pytest.fixture(scope="module")
def classifier(model: nn.Module) -> PyTorchClassifier:
    return art_classifier(model)


def run_fast_path(model: nn.Module, attack, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``pgd`` with the parameters read from ``attack``; also checks the reader accepted it."""
    params = pgd_params_from_art(attack)
    assert params is not None
    return pgd(model, torch.from_numpy(x), torch.from_numpy(y), **params.pgd_kwargs()).numpy()


def assert_matches(ours: np.ndarray, ref: np.ndarray, x: np.ndarray) -> None:
    assert np.abs(ref - x).max() > 1e-3, "the reference attack did not move: the comparison would be vacuous"
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("norm", ["inf", np.inf, 2])
@pytest.mark.parametrize(
    ("eps", "eps_step", "max_iter"), [(0.1, 0.01, 10), (0.3, 0.1, 5), (0.05, 0.2, 3), (1.5, 0.4, 8)]
)
def test_pgd_matches_art(model, classifier, data, norm, eps, eps_step, max_iter):
    x, y = data
    attack = ProjectedGradientDescent(
        classifier, norm=norm, eps=eps, eps_step=eps_step, max_iter=max_iter, batch_size=N, verbose=False
    )
    assert_matches(run_fast_path(model, attack, x, y), attack.generate(x, y), x)


@pytest.mark.parametrize("norm", ["inf", 2])
def test_targeted_matches_art_and_approaches_target(model, classifier, data, norm):
    x, y = data
    target = (y + 1) % CLASSES
    attack = ProjectedGradientDescent(
        classifier, norm=norm, eps=0.5, eps_step=0.1, max_iter=10, targeted=True, batch_size=N, verbose=False
    )
    ours = run_fast_path(model, attack, x, target)
    assert_matches(ours, attack.generate(x, target), x)
    with torch.no_grad():
        t = torch.from_numpy(target)
        before = nn.functional.cross_entropy(model(torch.from_numpy(x)), t, reduction="none")
        after = nn.functional.cross_entropy(model(torch.from_numpy(ours)), t, reduction="none")
    assert (after < before).all()


def test_bim_matches_art(model, classifier, data):
    x, y = data
    attack = BasicIterativeMethod(classifier, eps=0.2, eps_step=0.03, max_iter=10, batch_size=N, verbose=False)
    assert_matches(run_fast_path(model, attack, x, y), attack.generate(x, y), x)


@pytest.mark.parametrize("norm", ["inf", 2])
def test_fgm_matches_art(model, classifier, data, norm):
    x, y = data
    attack = FastGradientMethod(classifier, norm=norm, eps=0.25, batch_size=N)
    params = pgd_params_from_art(attack)
    assert (params.max_iter, params.eps_step) == (1, 0.25)
    assert_matches(run_fast_path(model, attack, x, y), attack.generate(x, y), x)


@pytest.mark.parametrize("cls", [ProjectedGradientDescentPyTorch, ProjectedGradientDescentNumpy])
def test_framework_implementations_match_art(model, classifier, data, cls):
    x, y = data
    attack = cls(classifier, norm=2, eps=0.8, eps_step=0.3, max_iter=6, batch_size=5, verbose=False)
    assert_matches(run_fast_path(model, attack, x, y), attack.generate(x, y), x)


class Standardise(nn.Module):
    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def test_preprocessing_composed_into_model_matches_art(data):
    x, y = data
    net = tiny_cnn(seed=1)
    classifier = art_classifier(net, preprocessing=(0.4, 0.25))
    attack = ProjectedGradientDescent(classifier, eps=0.2, eps_step=0.05, max_iter=8, batch_size=N, verbose=False)
    ours = run_fast_path(nn.Sequential(Standardise(0.4, 0.25), net), attack, x, y)
    assert_matches(ours, attack.generate(x, y), x)


@pytest.mark.parametrize("norm", ["inf", 2])
def test_random_start_stays_in_ball_and_is_reproducible(model, data, norm):
    x, y = (torch.from_numpy(a) for a in data)
    eps = 0.1 if norm == "inf" else 0.5

    def run(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return pgd(model, x, y, eps, 0.05, 5, norm=norm, num_random_init=2, clip_values=(0, 1), generator=gen)

    first, again, other = run(0), run(0), run(1)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    delta = (first - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "inf" else delta.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all()
    assert first.min() >= 0 and first.max() <= 1


def test_restarts_keep_first_run_unless_a_later_one_succeeds(model, data):
    x, y = (torch.from_numpy(a) for a in data)

    def run(restarts: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(3)
        return pgd(model, x, y, 0.3, 0.1, 3, num_random_init=restarts, clip_values=(0, 1), generator=gen)

    single, multi = run(1), run(4)
    with torch.no_grad():
        clean = model(x).argmax(1)
        fooled_single, fooled_multi = model(single).argmax(1) != clean, model(multi).argmax(1) != clean
    assert (fooled_multi | ~fooled_single).all()  # restarts never lose a success
    assert torch.equal(multi[~fooled_multi], single[~fooled_multi])
    assert fooled_multi.sum() > fooled_single.sum()


def test_restarts_pick_the_runs_art_picks(model, classifier, data, monkeypatch):
    x, y = data
    noise = np.random.default_rng(1).uniform(-0.3, 0.3, (4, N, SIZE * SIZE)).astype(np.float32)

    def both(restarts: int) -> tuple[np.ndarray, np.ndarray]:
        """ART and pgd with the same ``restarts`` random starts, taken from ``noise``."""
        art_noise, our_noise = iter(noise), iter(torch.from_numpy(noise))
        monkeypatch.setattr(art_pgd_pytorch, "random_sphere", lambda *args: next(art_noise))
        monkeypatch.setattr(art_sgt.attacks, "_random_start", lambda x, *args: next(our_noise).view_as(x))
        attack = ProjectedGradientDescent(
            classifier, eps=0.3, eps_step=0.1, max_iter=3, num_random_init=restarts, batch_size=N, verbose=False
        )
        return attack.generate(x, y), run_fast_path(model, attack, x, y)

    ref, ours = both(4)
    assert_matches(ours, ref, x)
    assert not np.allclose(ref, both(1)[0])  # later restarts replaced some samples


def test_random_eps_follows_arts_truncated_normal():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.full((1, 4), 0.5), torch.zeros(1, dtype=torch.long)
    # A step larger than any eps: every coordinate ends on the ball's boundary, so max |delta| is the drawn eps.
    drawn = [
        (pgd(net, x, y, 1.0, 3.0, 1, random_eps=True, generator=torch.Generator().manual_seed(s)) - x).abs().max()
        for s in range(300)
    ]
    drawn = torch.stack(drawn).numpy()
    assert drawn.min() >= 0 and drawn.max() <= 1.0
    reference = scipy.stats.truncnorm(0, 2, loc=0, scale=0.5)
    assert scipy.stats.kstest(drawn, reference.cdf).pvalue > 0.01


def test_model_state_restored_and_no_side_effects(data):
    net = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, CLASSES))
    net.train()
    net[4].eval()
    net[1].bias.requires_grad_(False)
    seen = []
    net.register_forward_hook(lambda m, i, o: seen.append((m.training, m[1].weight.requires_grad)))
    x, y = (torch.from_numpy(a) for a in data)
    x_before, y_before = x.clone(), y.clone()

    out = pgd(net, x, y, 0.1, 0.02, 3, clip_values=(0, 1))

    assert seen and all(s == (False, False) for s in seen)
    assert [m.training for m in net.modules()] == [True, True, True, True, True, False]
    assert [p.requires_grad for p in net.parameters()] == [True, False, True, True]
    assert all(p.grad is None for p in net.parameters())
    assert torch.equal(x, x_before) and torch.equal(y, y_before)
    assert not out.requires_grad and out.grad_fn is None
    with torch.no_grad():
        again = pgd(net, x, y, 0.1, 0.02, 3, clip_values=(0, 1))
    assert torch.equal(out, again)  # same result under no_grad, and dropout was off


def test_attacks_module_does_not_import_art():
    tree = ast.parse(Path(art_sgt.attacks.__file__).read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top_level if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in top_level if isinstance(n, ast.ImportFrom)]
    assert names and not any(name == "art" or name.startswith("art.") for name in names)


@pytest.mark.parametrize(
    ("override", "error", "name"),
    [
        ({"eps": -0.1}, ValueError, "eps"),
        ({"eps_step": 0.0}, ValueError, "eps_step"),
        ({"eps_step": float("nan")}, ValueError, "eps_step"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"max_iter": 2.0}, TypeError, "max_iter"),
        ({"norm": 1}, ValueError, "norm"),
        ({"norm": "l2"}, ValueError, "norm"),
        ({"num_random_init": -1}, ValueError, "num_random_init"),
        ({"clip_values": (1.0, 0.0)}, ValueError, "clip_values"),
        ({"clip_values": (0.0,)}, TypeError, "clip_values"),
        ({"targeted": "yes"}, TypeError, "targeted"),
        ({"generator": 0}, TypeError, "generator"),
        ({"y": torch.zeros(N - 1, dtype=torch.long)}, ValueError, "x and y"),
        ({"y": torch.zeros(N)}, TypeError, "y"),
        ({"x": torch.full((N, 1, SIZE, SIZE), float("nan"))}, ValueError, "x"),
        ({"x": np.zeros((N, 1, SIZE, SIZE), dtype=np.float32)}, TypeError, "x"),
        ({"model": lambda t: t}, TypeError, "model"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(model, data, override, error, name):
    kwargs = {
        "model": model,
        "x": torch.from_numpy(data[0]),
        "y": torch.from_numpy(data[1]),
        "eps": 0.1,
        "eps_step": 0.01,
        "max_iter": 2,
    }
    kwargs.update(override)
    with pytest.raises(error, match=rf"^{name} "):
        pgd(**kwargs)


def test_params_from_art_reads_every_field(classifier):
    attack = ProjectedGradientDescent(
        classifier, norm=2, eps=0.5, eps_step=0.1, max_iter=7, targeted=True, num_random_init=3, batch_size=9
    )
    assert pgd_params_from_art(attack) == PGDParams(
        eps=0.5,
        eps_step=0.1,
        max_iter=7,
        norm="2",
        num_random_init=3,
        clip_values=(0.0, 1.0),
        targeted=True,
        random_eps=False,
    )


def test_params_from_art_recovers_eps_overwritten_by_random_eps(classifier, data):
    attack = ProjectedGradientDescentPyTorch(
        classifier, eps=0.4, eps_step=0.1, max_iter=2, random_eps=True, verbose=False
    )
    attack.generate(*data)
    assert attack.eps != 0.4  # ART replaced it by its draw
    params = pgd_params_from_art(attack)
    assert params.random_eps and params.eps == pytest.approx(0.4) and params.eps_step == pytest.approx(0.1)
    wrapper = ProjectedGradientDescent(classifier, eps=0.4, eps_step=1.2, max_iter=1, random_eps=True, verbose=False)
    wrapper.set_params(eps=0.05, eps_step=0.15)  # ART's inner attack still draws eps from [0, 0.4]
    params = pgd_params_from_art(wrapper)
    assert params.eps == pytest.approx(0.4) and params.eps_step == pytest.approx(1.2)


def _postprocessed() -> PyTorchClassifier:
    """ART judges a restart's success on predictions after the postprocessors, which the fast path never sees."""
    from art.defences.postprocessor import HighConfidence

    return PyTorchClassifier(
        tiny_cnn(),
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, SIZE, SIZE),
        nb_classes=CLASSES,
        clip_values=(0.0, 1.0),
        postprocessing_defences=[HighConfidence(cutoff=1e-3)],
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda c: DeepFool(c, verbose=False),
        lambda c: FastGradientMethod(c, eps=0.3, eps_step=0.01, minimal=True),
        lambda c: FastGradientMethod(c, eps=0.3, num_random_init=2),
        lambda c: ProjectedGradientDescent(c, eps=0.3, eps_step=0.1, decay=0.9, verbose=False),
        lambda c: ProjectedGradientDescent(c, norm=1, eps=3.0, eps_step=0.5, verbose=False),
        lambda c: ProjectedGradientDescent(c, eps=0.3, eps_step=0.1, max_iter=0, verbose=False),
        lambda c: ProjectedGradientDescent(
            c, eps=np.full((N, 1, 1, 1), 0.3), eps_step=np.full((N, 1, 1, 1), 0.1), verbose=False
        ),
        lambda c: ProjectedGradientDescent(
            art_classifier(tiny_cnn(), loss=nn.CrossEntropyLoss(label_smoothing=0.1)), verbose=False
        ),
        lambda c: ProjectedGradientDescent(_postprocessed(), num_random_init=2, verbose=False),
    ],
    ids=[
        "deepfool",
        "fgsm-minimal",
        "fgsm-restarts",
        "pgd-decay",
        "pgd-l1",
        "pgd-no-iter",
        "pgd-eps-array",
        "loss",
        "postprocessing",
    ],
)
def test_params_from_art_refuses_what_pgd_cannot_reproduce(classifier, make):
    attack = make(classifier)
    assert pgd_params_from_art(attack) is None


def test_per_feature_clip_values_match_art(model, data):
    x, y = data
    low = np.zeros(x.shape[1:], dtype=np.float32)
    high = np.full(x.shape[1:], 0.8, dtype=np.float32)
    high[..., 0] = 0.5  # a column with a tighter bound
    classifier = PyTorchClassifier(
        model, loss=nn.CrossEntropyLoss(), input_shape=x.shape[1:], nb_classes=CLASSES, clip_values=(low, high)
    )
    attack = ProjectedGradientDescent(classifier, eps=0.3, eps_step=0.1, max_iter=4, verbose=False)
    x_in = np.minimum(x, high)
    ours = run_fast_path(model, attack, x_in, y)
    assert_matches(ours, attack.generate(x_in, y=y), x_in)
    assert (ours <= high + 1e-6).all()
    batched = PyTorchClassifier(
        model,
        loss=nn.CrossEntropyLoss(),
        input_shape=x.shape[1:],
        nb_classes=CLASSES,
        clip_values=(low[None], high[None]),
    )
    attack = ProjectedGradientDescent(batched, eps=0.3, eps_step=0.1, max_iter=4, verbose=False)
    assert_matches(run_fast_path(model, attack, x_in, y), attack.generate(x_in, y=y), x_in)  # (1, ...) as ART allows


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(model, data):
    x, y = (torch.from_numpy(a) for a in data)
    cpu = pgd(model, x, y, 0.5, 0.1, 5, norm=2, clip_values=(0, 1))
    gpu = pgd(model.cuda(), x.cuda(), y.cuda(), 0.5, 0.1, 5, norm=2, clip_values=(0, 1))
    model.cpu()
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-4)


def _linear_two_class(x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """A linear model on flattened inputs with known weights, and the sign of its cross-entropy input gradient
    for class 0: ``d CE / d x = p_1 * (w_1 - w_0)``, so ``sign(w_1 - w_0)`` wherever the input is."""
    torch.manual_seed(0)
    linear = nn.Linear(x[0].numel(), 2)
    direction = torch.sign(linear.weight[1] - linear.weight[0]).detach().view(x.shape[1:])
    return nn.Sequential(nn.Flatten(), linear), direction


def test_n_fgsm_without_noise_is_one_signed_step_clipped(data):
    x = torch.from_numpy(data[0])
    model, direction = _linear_two_class(x)
    y = torch.zeros(len(x), dtype=torch.long)
    x_adv = n_fgsm(model, x, y, eps_step=0.2, noise=0.0, clip_values=(0.0, 1.0))
    torch.testing.assert_close(x_adv, (x + 0.2 * direction).clamp(0.0, 1.0), rtol=0, atol=0)


def test_n_fgsm_adds_the_noise_and_does_not_project(data):
    x = torch.from_numpy(data[0]) * 0.5 + 0.25
    model, direction = _linear_two_class(x)
    y = torch.zeros(len(x), dtype=torch.long)
    x_adv = n_fgsm(model, x, y, eps_step=0.05, noise=0.2, generator=torch.Generator().manual_seed(3))
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(3)).view(len(x), -1) * 0.4 - 0.2
    expected = x + noise.view_as(x) + 0.05 * direction
    torch.testing.assert_close(x_adv, expected)
    assert float((x_adv - x).abs().max()) > 0.2  # beyond noise and beyond eps_step alone: no eps ball
    assert float((x_adv - x).abs().max()) <= 0.25 + 1e-6


def test_n_fgsm_leaves_the_model_as_it_was(data):
    model = tiny_cnn().train()
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    n_fgsm(model, x, y, eps_step=0.1, noise=0.2, clip_values=(0.0, 1.0), generator=torch.Generator().manual_seed(0))
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    ("override", "error", "name"),
    [
        ({"eps_step": 0.0}, ValueError, "eps_step"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"noise": "big"}, TypeError, "noise"),
        ({"clip_values": (1.0, 0.0)}, ValueError, "clip_values"),
        ({"generator": 0}, TypeError, "generator"),
        ({"y": torch.zeros(N)}, TypeError, "y"),
    ],
)
def test_n_fgsm_bad_arguments_raise_naming_the_parameter(model, data, override, error, name):
    kwargs = {
        "model": model,
        "x": torch.from_numpy(data[0]),
        "y": torch.from_numpy(data[1]),
        "eps_step": 0.1,
        "noise": 0.2,
    }
    kwargs.update(override)
    with pytest.raises(error, match=rf"^{name} "):
        n_fgsm(**kwargs)
