"""The trainers' hardware options: ``amp`` (bfloat16 autocast), ``channels_last`` and ``compile``."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent

from art_sgt import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer
from art_sgt.precision import Accelerated, Autocast, check_amp
from art_sgt.trainers._checkpoint import load_checkpoint
from tests.conftest import make_classifier, make_task

FIT = dict(batch_size=32, verbose=False, seed=0)


def _trainer(kind, classifier, **options):
    if kind == "sgt":
        return SaliencyGuidedTrainer(classifier, mask_fraction=0.25, **options)
    attack = ProjectedGradientDescent(classifier, eps=0.1, eps_step=0.05, max_iter=2, verbose=False)
    return SaliencyGuidedAdversarialTrainer(classifier, attack, mask_fraction=0.25, **options)


def _accuracy(classifier, x, y):
    return float((classifier.predict(x).argmax(1) == y).mean())


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"amp": "fp16"}, ValueError, ["amp", "GradScaler"]),
        ({"amp": "float32"}, ValueError, ["amp", "'bf16'"]),
        ({"amp": True}, TypeError, ["amp"]),
        ({"channels_last": "yes"}, TypeError, ["channels_last"]),
        ({"compile": 1}, TypeError, ["compile"]),
    ],
)
def test_bad_option_values_are_refused_by_name(classifier, options, error, names):
    with pytest.raises(error) as info:
        SaliencyGuidedTrainer(classifier, **options)
    assert all(name in str(info.value) for name in names)


def test_amp_check_accepts_none_and_bf16():
    assert check_amp("amp", None) is None and check_amp("amp", "bf16") == "bf16"


def test_defaults_leave_the_forwards_unwrapped_and_the_recorded_configuration_as_before(classifier):
    trainer = SaliencyGuidedTrainer(classifier)
    assert trainer._net.model is classifier.model and trainer._attack_net.model is classifier.model
    # checkpoints written before the options existed hold none of their keys, and still resume
    assert not {"amp", "channels_last", "compile"} & set(trainer._config())
    options = {"amp": "bf16", "channels_last": True, "compile": True}
    assert options.items() <= SaliencyGuidedTrainer(make_classifier(), **options)._config().items()


# ---------------------------------------------------------------- amp


def test_autocast_runs_bf16_inside_and_returns_float32():
    seen = []

    class Probe(torch.nn.Linear):
        def forward(self, x):
            out = super().forward(x)
            seen.append(out.dtype)
            return out

    out = Autocast(Probe(3, 2))(torch.ones(4, 3))
    assert seen == [torch.bfloat16] and out.dtype == torch.float32


@pytest.mark.parametrize("kind", ["sgt", "asgt"])
def test_amp_bf16_accuracy_within_tolerance_of_float32(kind):
    """Same seed, same data: bf16 autocast ends within 5 points of float32 accuracy (held-out, 128 images)."""
    x, y = make_task(384, seed=0)
    x_test, y_test = make_task(128, seed=1)
    accuracy, logits = {}, {}
    for amp in (None, "bf16"):
        classifier = make_classifier()
        trainer = _trainer(kind, classifier, amp=amp)
        trainer.fit(x, y, nb_epochs=3, **FIT)
        accuracy[amp] = _accuracy(classifier, x_test, y_test)
        logits[amp] = trainer._net(torch.from_numpy(x_test[:4]))
    assert accuracy[None] > 0.8  # the task is learnt, so the comparison means something
    assert abs(accuracy["bf16"] - accuracy[None]) <= 0.05
    assert logits["bf16"].dtype == torch.float32
    assert not torch.equal(logits["bf16"], logits[None])  # bf16 really ran (its rounding shows)


# ---------------------------------------------------------------- the user's model and checkpoints


@pytest.mark.parametrize("kind", ["sgt", "asgt"])
def test_options_keep_the_model_object_and_its_saved_keys(tmp_path, kind):
    classifier = make_classifier()
    model = classifier.model
    keys = list(model.state_dict())
    trainer = _trainer(kind, classifier, amp="bf16", channels_last=True)
    trainer.fit(*make_task(64), nb_epochs=1, checkpoint_dir=str(tmp_path), **FIT)
    assert classifier.model is model and type(model) is torch.nn.Sequential
    assert list(model.state_dict()) == keys
    assert list(load_checkpoint(str(tmp_path))["model"]) == keys
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_channels_last_converts_weights_in_place_and_predictions_are_unchanged():
    classifier = make_classifier(channels=3)  # with one channel, both layouts have the same strides
    x, y = make_task(64, channels=3)
    SaliencyGuidedTrainer(classifier, channels_last=True).fit(x, y, nb_epochs=1, **FIT)
    conv = classifier.model[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    plain = make_classifier(channels=3)
    plain.model.load_state_dict(classifier.model.state_dict())
    assert plain.model[0].weight.is_contiguous()
    np.testing.assert_allclose(classifier.predict(x), plain.predict(x), rtol=1e-5, atol=1e-5)


def test_resume_with_another_amp_is_refused(tmp_path):
    x, y = make_task(64)
    SaliencyGuidedTrainer(make_classifier()).fit(x, y, nb_epochs=1, checkpoint_dir=str(tmp_path), **FIT)
    with pytest.raises(ValueError, match="amp"):
        SaliencyGuidedTrainer(make_classifier(), amp="bf16").fit(
            x, y, nb_epochs=2, checkpoint_dir=str(tmp_path), resume=True, **FIT
        )


# ---------------------------------------------------------------- compile


@pytest.mark.parametrize("kind", ["sgt", "asgt"])
def test_compile_trains_without_recompiling_per_batch_and_keeps_keys(tmp_path, monkeypatch, kind):
    from torch._dynamo.utils import counters

    # dynamo and AOTAutograd as in the trainers, with eager kernels instead of inductor's generated C++
    # (seconds instead of half a minute of compiling); the benchmark runs inductor on the MNIST CNN
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    torch._dynamo.reset()
    classifier = make_classifier()
    keys = list(classifier.model.state_dict())
    x, y = make_task(96)
    trainer = _trainer(kind, classifier, compile=True)
    assert trainer._fused is False  # decided in fit
    trainer.fit(x, y, nb_epochs=1, **FIT)
    assert trainer._fused  # the saliency and the loss share one compiled forward (its backward runs twice)
    graphs = counters["stats"]["unique_graphs"]
    trainer.fit(x, y, nb_epochs=2, checkpoint_dir=str(tmp_path), **FIT)
    assert graphs > 0 and counters["stats"]["unique_graphs"] == graphs  # 6 more batches, nothing recompiled
    assert list(load_checkpoint(str(tmp_path))["model"]) == keys == list(classifier.model.state_dict())
    assert _accuracy(classifier, x, y) > 0.5


def test_accelerated_keeps_the_network_as_its_only_child():
    network = torch.nn.Linear(3, 2)
    wrapped = Accelerated(network, amp="bf16", compile=True)
    assert list(wrapped.children()) == [network]
    assert [k.removeprefix("network.") for k in wrapped.state_dict()] == list(network.state_dict())
    with pytest.raises(TypeError, match="network"):
        Accelerated(lambda x: x)


def test_compiled_forwards_allow_a_second_backward():
    """Inductor donates the saved buffers of a compiled backward to it unless told not to, and a second backward
    of the graph (the fused saliency's ``retain_graph=True``) then fails (seen on the MNIST CNN); the compiled
    forward is traced with donation off, and only it."""
    import torch._functorch.config as functorch_config

    from art_sgt.precision import _backward_twice

    with _backward_twice(True):
        assert functorch_config.donated_buffer is False
    with _backward_twice(False):
        assert functorch_config.donated_buffer is True
    assert functorch_config.donated_buffer is True
