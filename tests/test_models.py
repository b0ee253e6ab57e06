"""Tests of art_sgt.models: network shapes, the ART classifier factory and the layout conversion."""

from __future__ import annotations

import doctest
import os

import numpy as np
import pytest
import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from art_sgt import models
from art_sgt.models import CifarCNN, MnistCNN, make_classifier, resnet18_cifar, to_channels_first


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


class Tiny(nn.Module):
    """A fast stand-in network for the factory tests: (n, 1, 4, 4) -> (n, 3)."""

    def __init__(self, nb_classes: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, nb_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize(
    ("factory", "shape"),
    [
        (MnistCNN, (2, 1, 28, 28)),
        (lambda: MnistCNN(dropout=True), (2, 1, 28, 28)),
        (CifarCNN, (2, 3, 32, 32)),
        (lambda: CifarCNN(batchnorm=True), (2, 3, 32, 32)),
        (resnet18_cifar, (2, 3, 32, 32)),
    ],
)
def test_output_shapes_and_gradients(factory, shape):
    model = factory()
    x = torch.rand(shape, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    out[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_num_classes():
    assert CifarCNN(num_classes=4)(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    assert resnet18_cifar(num_classes=100)(torch.zeros(2, 3, 32, 32)).shape == (2, 100)
    with pytest.raises(ValueError, match="num_classes"):
        resnet18_cifar(num_classes=0)


def test_mnist_matches_reference_architecture():
    model = MnistCNN(dropout=True)
    expected = {"conv1": (32, 1, 3, 3), "conv2": (64, 32, 3, 3), "fc1": (128, 9216), "fc2": (10, 128)}
    state = model.state_dict()
    assert set(state) == {f"{k}.{p}" for k in expected for p in ("weight", "bias")}
    assert {k: tuple(state[f"{k}.weight"].shape) for k in expected} == expected
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.5]
    assert not any(isinstance(m, nn.Dropout) for m in MnistCNN().modules())
    with pytest.raises(TypeError, match="dropout"):
        MnistCNN(dropout=0.5)


def test_dropout_only_active_in_training_mode():
    model, x = MnistCNN(dropout=True), torch.rand(2, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_resnet18_structure():
    model = resnet18_cifar()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 17  # stem + 8 blocks x 2; with the final linear layer: 18 weight layers
    assert convs[0].stride == (1, 1) and not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert 11_000_000 < sum(p.numel() for p in model.parameters()) < 11_300_000


def test_relus_are_distinct_and_not_inplace():
    for model in (MnistCNN(), CifarCNN(), resnet18_cifar()):
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        assert relus and not any(m.inplace for m in relus)
    # every ReLU module is used once per forward pass (captum's DeepLift requires it)
    model, calls = CifarCNN(), []
    for relu in (m for m in model.modules() if isinstance(m, nn.ReLU)):
        relu.register_forward_hook(lambda m, i, o: calls.append(id(m)))
    model(torch.zeros(2, 3, 32, 32))
    assert len(calls) == len(set(calls)) == 5


@pytest.mark.parametrize(
    ("model", "shape"),
    [(MnistCNN(), (2, 28, 28, 1)), (CifarCNN(), (2, 32, 32, 3)), (resnet18_cifar(), (2, 32, 32, 3))],
)
def test_channels_last_input_is_rejected_with_a_hint(model, shape):
    with pytest.raises(ValueError, match="to_channels_first"):
        model(torch.zeros(shape))


def test_make_classifier_predicts():
    clf = make_classifier(MnistCNN(), input_shape=(1, 28, 28))
    assert isinstance(clf, PyTorchClassifier)
    assert clf.nb_classes == 10 and clf.input_shape == (1, 28, 28) and clf.channels_first
    assert tuple(clf.clip_values) == (0.0, 1.0)
    assert isinstance(clf.loss, nn.CrossEntropyLoss) and isinstance(clf.optimizer, torch.optim.Adam)
    assert clf.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    pred = clf.predict(np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32))
    assert pred.shape == (2, 10) and np.isfinite(pred).all()


def test_make_classifier_options_reach_art():
    model = Tiny()
    clf = make_classifier(
        model,
        (1, 4, 4),
        nb_classes=3,
        optimizer="sgd",
        lr=0.1,
        momentum=0.5,
        weight_decay=1e-4,
        clip_values=None,
        preprocessing=(0.5, [2.0]),
        device_type="cpu",
    )
    group = clf.optimizer.param_groups[0]
    assert isinstance(clf.optimizer, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.1, 0.5, 1e-4)
    assert clf.clip_values is None
    x = np.full((2, 1, 4, 4), 2.5, dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.ones(2, 1, 4, 4)).numpy()  # (2.5 - 0.5) / 2
    np.testing.assert_allclose(clf.predict(x), expected, rtol=1e-6)


def test_make_classifier_keeps_given_optimizer_and_trains():
    model = Tiny()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    clf = make_classifier(model, (1, 4, 4), nb_classes=3, optimizer=optimizer)
    assert clf.optimizer is optimizer
    before = model.net[1].weight.detach().clone()
    x = np.random.default_rng(1).random((8, 1, 4, 4), dtype=np.float32)
    clf.fit(x, np.eye(3, dtype=np.float32)[np.arange(8) % 3], batch_size=4, nb_epochs=1, verbose=False)
    assert not torch.equal(before, model.net[1].weight)


def test_make_classifier_restores_each_module_mode():
    model = CifarCNN(batchnorm=True)
    model.features[4].eval()  # a frozen BatchNorm must stay frozen
    assert isinstance(model.features[4], nn.BatchNorm2d)
    modes = [m.training for m in model.modules()]
    running_mean = model.features[1].running_mean.clone()
    make_classifier(model, (3, 32, 32))
    assert [m.training for m in model.modules()] == modes and modes.count(False) == 1
    assert torch.equal(model.features[1].running_mean, running_mean)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"model": "net"}, TypeError, "model"),
        ({"input_shape": 16}, TypeError, "input_shape"),
        ({"input_shape": ()}, TypeError, "input_shape"),
        ({"input_shape": (1, 4.0, 4)}, TypeError, "input_shape"),
        ({"input_shape": (1, 0, 4)}, ValueError, "input_shape"),
        ({"input_shape": (1, 4, 5)}, ValueError, "input_shape"),
        ({"nb_classes": 1}, ValueError, "nb_classes"),
        ({"nb_classes": 3.0}, TypeError, "nb_classes"),
        ({"nb_classes": 10}, ValueError, "nb_classes"),
        ({"clip_values": (1.0, 0.0)}, ValueError, "clip_values"),
        ({"clip_values": (0.0, float("inf"))}, ValueError, "clip_values"),
        ({"clip_values": 1.0}, TypeError, "clip_values"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"optimizer": "adamw"}, ValueError, "optimizer"),
        ({"optimizer": torch.optim.Adam}, TypeError, "optimizer"),
        ({"optimizer": torch.optim.SGD(Tiny().parameters(), lr=0.1)}, ValueError, "optimizer"),
        ({"preprocessing": (0.0, 0.0)}, ValueError, "preprocessing"),
        ({"preprocessing": 0.5}, TypeError, "preprocessing"),
        ({"preprocessing": ("a", 1.0)}, TypeError, "preprocessing"),
        ({"preprocessing": ([0.1, 0.2], 1.0)}, ValueError, "preprocessing"),
        ({"preprocessing": ([0.1, 0.2], [1.0, 1.0, 1.0])}, TypeError, "preprocessing"),
        ({"device_type": "cuda"}, ValueError, "device_type"),
        ({"momentum": 1.0}, ValueError, "momentum"),
        ({"momentum": -0.1}, ValueError, "momentum"),
        ({"weight_decay": -1e-4}, ValueError, "weight_decay"),
        ({"model": nn.ReLU()}, ValueError, "model"),
    ],
)
def test_make_classifier_rejects_bad_arguments(kwargs, error, name):
    arguments = {"model": Tiny(), "input_shape": (1, 4, 4), "nb_classes": 3, **kwargs}
    with pytest.raises(error, match=rf"^{name}\b"):
        make_classifier(**arguments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_gpu_without_cuda_is_rejected():
    with pytest.raises(ValueError, match="device_type"):
        make_classifier(Tiny(), (1, 4, 4), nb_classes=3, device_type="gpu")


def test_to_channels_first():
    x = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    out = to_channels_first(x)
    assert out.shape == (2, 3, 4, 5) and out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out[1, 2], x[1, :, :, 2])
    x32 = np.zeros((1, 1, 1, 1), dtype=np.float32)
    assert not np.shares_memory(to_channels_first(x32), x32)


@pytest.mark.parametrize(
    ("x", "error"),
    [
        (np.zeros((2, 28, 28)), ValueError),
        (np.zeros((2, 1, 28, 28)), ValueError),
        (np.zeros((0, 28, 28, 1)), ValueError),
        ([[[[0.0]]]], TypeError),
    ],
)
def test_to_channels_first_rejects(x, error):
    with pytest.raises(error, match=r"^x "):
        to_channels_first(x)


def test_docstring_examples():
    result = doctest.testmod(models, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))


def test_load_torchscript_and_state_dict_files_give_the_saved_network(tmp_path):
    from art_sgt.models import is_torchscript_file, load_state_dict_file, load_torchscript

    net, x = _net(), torch.rand(2, 1, 2, 2)
    torch.jit.script(net).save(str(tmp_path / "net.ts"))
    torch.save(net.state_dict(), tmp_path / "net.pt")
    assert is_torchscript_file(tmp_path / "net.ts") and not is_torchscript_file(tmp_path / "net.pt")
    assert not is_torchscript_file(tmp_path / "missing")
    assert torch.equal(load_torchscript(tmp_path / "net.ts")(x), net(x))
    fresh = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    assert load_state_dict_file(fresh, tmp_path / "net.pt") is fresh and torch.equal(fresh(x), net(x))


def test_a_state_dict_file_runs_no_code_and_must_fit(tmp_path):
    from art_sgt.models import load_state_dict_file, load_torchscript

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"weight": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"model .*evil.pt.* is not a state_dict that torch.load\(weights_only=True\)"):
        load_state_dict_file(_net(), tmp_path / "evil.pt", name="model")
    assert not marker.exists()
    torch.jit.script(_net()).save(str(tmp_path / "net.ts"))
    with pytest.raises(ValueError, match="is a TorchScript file, not a state_dict"):
        load_state_dict_file(_net(), tmp_path / "net.ts")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(
        ValueError, match="does not fit the network: .*size mismatch|does not fit the network: .*Missing"
    ):
        load_state_dict_file(_net(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a TorchScript file"):
        load_torchscript(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="path .* does not exist"):
        load_torchscript(tmp_path / "none.ts")
    with pytest.raises(TypeError, match="network must be a torch.nn.Module"):
        load_state_dict_file({}, tmp_path / "other.pt")
