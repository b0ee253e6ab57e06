"""Device tests: the trainers, the fast-path attack and the evaluators on the classifier's device.

Every test takes the ``device`` fixture (``tests/conftest.py``): ``cpu`` on a machine without CUDA, ``cpu`` and
``cuda`` on one with it, and exactly the devices named by ``ART_SGT_TEST_DEVICE`` (``cuda`` there without CUDA
fails instead of skipping). On ``cuda`` they check what a CPU run cannot: that no floating-point batch
tensor is computed on the CPU during ``fit`` or an evaluator (:class:`OffDevice`), that the on-device PGD
equals ART's PyTorch PGD run on the GPU to the tolerance of ``tests/test_attacks.py`` (``atol=1e-5``), and that a
checkpointed run resumed on the GPU ends with bitwise the same weights as an uninterrupted one when
deterministic algorithms are on (``torch.use_deterministic_algorithms(True)``; cuBLAS then needs
``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the environment before CUDA starts, which ``benchmarks/gpu_session.sh``
sets). On ``cpu`` the same assertions hold (the device checks trivially) and keep the tests honest.
"""

from __future__ import annotations

import os
import traceback
import warnings

import numpy as np
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from art_sgt import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer
from art_sgt._art import PreprocessedModel, pgd_params_from_art
from art_sgt.attacks import pgd
from art_sgt.evaluation import adversarial_stability, attribute, infidelity, masking_curve
from tests.conftest import make_task, small_model

# Read by cuBLAS when CUDA starts in this process; harmless on CPU, and the GPU script sets it earlier.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

#: Operators that move or alias data rather than compute on it: the copy of the user's arrays to the device,
#: and of states back to the CPU, are expected.
_MOVES = {
    torch.ops.aten._to_copy,
    torch.ops.aten.copy_,
    torch.ops.aten.lift_fresh,
    torch.ops.aten.lift_fresh_copy,
    torch.ops.aten.detach,
    torch.ops.aten.alias,
}


def _caller() -> tuple[str, str]:
    """The innermost Python frame outside torch, as ``(package, "file:line")``."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = frame.filename.replace(os.sep, "/")
        if "/torch/" not in path and not path.endswith("test_cuda.py"):
            package = "art" if "/art/" in path and "/art_sgt/" not in path else "other"
            return package, f"{path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}:{frame.lineno}"
    return "other", "?"


class OffDevice(TorchDispatchMode):
    """Records every operator, other than a move, that touches a floating tensor of 2 or more dimensions (a
    batch, a weight) on another device type than ``device``: a batch left on the CPU shows here, with the line
    that asked for it. Work inside ART's own code (its data loaders batch on the CPU by design) is kept apart
    in ``art``: it is ART's choice, not this project's."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.off: list[str] = []
        self.art: list[str] = []
        self.on = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.overloadpacket not in _MOVES:
            big = [
                t
                for t in tree_leaves((args, kwargs, out))
                if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() >= 2
            ]
            if any(t.device.type != self.device.type for t in big):
                package, where = _caller()
                line = f"{func} on {sorted({str(t.device) for t in big})} from {where}"
                (self.art if package == "art" else self.off).append(line)
            elif big:
                self.on += 1
        return out


def device_classifier(device: torch.device, seed: int = 2, lr: float = 0.01) -> PyTorchClassifier:
    """The conftest's small CNN in an ART classifier on ``device`` (ART's ``gpu`` means ``cuda:<current>``)."""
    model = small_model(seed=seed)
    return PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=4,
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        clip_values=(0.0, 1.0),
        device_type="cpu" if device.type == "cpu" else "gpu",
    )


def make_trainer(name: str, classifier: PyTorchClassifier, cls=None):
    """SGT (random uniform fill: draws from the device generator) or ASGT with ART's PGD (one random start)."""
    if name == "sgt":
        return (cls or SaliencyGuidedTrainer)(classifier, mask_fraction=0.25)
    attack = ProjectedGradientDescent(classifier, eps=0.1, eps_step=0.05, max_iter=3, num_random_init=1, verbose=False)
    return (cls or SaliencyGuidedAdversarialTrainer)(classifier, attack, mask_fraction=0.25)


def _deterministic(warn_only: bool):
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    torch.backends.cudnn.benchmark = False
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.benchmark = before[2]


@pytest.fixture
def deterministic():
    """Deterministic algorithms on, an operator without one an error (and cuDNN's autotuner off) for the test."""
    yield from _deterministic(warn_only=False)


@pytest.fixture
def deterministic_kernels():
    """Deterministic kernels where torch has them, a warning where not (ART's attack code is not ours to fix)."""
    yield from _deterministic(warn_only=True)


def test_off_device_recorder_sees_work_on_another_device():
    """The recorder behind the device checks can fail: CPU work seen from a 'meta' target is flagged."""
    a, b = torch.ones(3, 3), torch.ones(3, 3)
    with OffDevice(torch.device("meta")) as seen:
        (a @ b).sum()
        a.to("meta")  # a move, not flagged
    assert seen.off and all("cpu" in line for line in seen.off)
    with OffDevice(torch.device("cpu")) as seen:
        (a @ b).sum()
    assert seen.off == [] and seen.on >= 1


@pytest.mark.parametrize("name", ["sgt", "asgt"])
def test_fit_computes_on_the_classifiers_device(device, name):
    x, y = make_task(n=64, seed=1)
    classifier = device_classifier(device)
    trainer = make_trainer(name, classifier)
    with OffDevice(device) as seen:
        trainer.fit(x, y, nb_epochs=1, batch_size=16, seed=3, verbose=False)
    assert seen.off == [], f"operators computed off {device}: {seen.off[:10]}"
    if seen.art:  # shown in the warnings summary of a GPU session
        warnings.warn(f"ART's own code computed off {device}: {sorted(set(seen.art))[:10]}", stacklevel=1)
    assert seen.on > 0, "the recorder saw no work: the check would be vacuous"
    assert {p.device.type for p in classifier.model.parameters()} == {device.type}
    states = [t for s in classifier.optimizer.state.values() for t in s.values() if torch.is_tensor(t) and t.dim()]
    assert states and {t.device.type for t in states} == {device.type}
    assert len(trainer.history) == 1 and np.isfinite(trainer.history[0]["loss"])


@pytest.mark.usefixtures("deterministic_kernels")
@pytest.mark.parametrize(("norm", "eps", "eps_step"), [("inf", 0.1, 0.02), (2, 0.8, 0.2)])
def test_fast_pgd_matches_arts_pgd_on_the_device(device, norm, eps, eps_step):
    x, y = make_task(n=32, seed=4)
    classifier = device_classifier(device)
    attack = ProjectedGradientDescent(
        classifier, norm=norm, eps=eps, eps_step=eps_step, max_iter=6, batch_size=32, verbose=False
    )
    reference = attack.generate(x, y=np.eye(4, dtype=np.float32)[y])
    params = pgd_params_from_art(attack)
    assert params is not None
    net = PreprocessedModel(classifier, apply="predict")
    ours = pgd(net, torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), **params.pgd_kwargs())
    assert ours.device.type == device.type
    assert np.abs(reference - x).max() > 1e-3, "ART's attack did not move: the comparison would be vacuous"
    np.testing.assert_allclose(ours.cpu().numpy(), reference, rtol=0, atol=1e-5)


def _interrupting(base):
    class InterruptAt(base):
        """Raises KeyboardInterrupt when its ``at``-th batch starts (the last finished batch is checkpointed)."""

        def __init__(self, *args, at=-1, **kwargs):
            super().__init__(*args, **kwargs)
            self.at, self.calls = at, 0

        def _batch_loss(self, x, y):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            return super()._batch_loss(x, y)

    return InterruptAt


@pytest.mark.usefixtures("deterministic")
@pytest.mark.parametrize("name", ["sgt", "asgt"])
def test_resume_on_the_device_gives_the_same_weights(device, name, tmp_path):
    x, y = make_task(n=96, seed=6)
    base = SaliencyGuidedTrainer if name == "sgt" else SaliencyGuidedAdversarialTrainer
    fit = dict(nb_epochs=2, batch_size=16, seed=5, verbose=False)  # 6 batches an epoch

    reference = device_classifier(device)
    make_trainer(name, reference).fit(x, y, **fit)

    stopped = device_classifier(device)
    with pytest.raises(KeyboardInterrupt):
        trainer = make_trainer(name, stopped, cls=_interrupting(base))
        trainer.at = 9  # batch 3 of epoch 2: the checkpoint holds the weights and random states after batch 2
        trainer.fit(x, y, checkpoint_dir=str(tmp_path), **fit)
    assert (tmp_path / "checkpoint.pt").is_file()

    resumed = device_classifier(device, seed=11)  # other initial weights: the checkpoint must replace them
    # the same class resumes (a checkpoint records its trainer's class); at -1 it never interrupts
    make_trainer(name, resumed, cls=_interrupting(base)).fit(x, y, checkpoint_dir=str(tmp_path), resume=True, **fit)
    want, got = reference.model.state_dict(), resumed.model.state_dict()
    assert want.keys() == got.keys()
    assert {t.device.type for t in got.values()} == {device.type}
    different = [k for k in want if not torch.equal(want[k], got[k])]
    assert different == [], f"weights differ after resume on {device}: {different}"


def test_evaluators_compute_on_the_device_and_match_the_cpu_maps(device):
    x, y = make_task(n=32, seed=8)
    classifier = device_classifier(device)
    with OffDevice(device) as seen:
        maps = attribute(classifier, x, y, "saliency", batch_size=16)
        curve = masking_curve(classifier, x, y, maps, fractions=(0.0, 0.25, 0.5), batch_size=16)
        infid = infidelity(classifier, x, y, maps, n_perturb=4, batch_size=16)
        stability = adversarial_stability(classifier, x[:8], y[:8], eps=(0.05,), max_iter=3, batch_size=8)
    assert seen.off == [], f"operators computed off {device}: {seen.off[:10]}"
    if seen.art:  # shown in the warnings summary of a GPU session
        warnings.warn(f"ART's own code computed off {device}: {sorted(set(seen.art))[:10]}", stacklevel=1)
    assert seen.on > 0
    assert isinstance(maps, np.ndarray) and maps.shape == x.shape
    cpu_maps = attribute(device_classifier(torch.device("cpu")), x, y, "saliency", batch_size=16)
    np.testing.assert_allclose(maps, cpu_maps, rtol=1e-4, atol=1e-6)
    assert curve.n_samples == len(x) and all(np.isfinite(v).all() for v in curve.accuracy.values())
    assert np.isfinite(np.asarray(infid)).all()
    assert stability is not None
