"""Tests of art_sgt.evaluation.attribution: registry, batching, modes, gradients, seeding, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

from art_sgt.evaluation import METHODS, attribute, get_method, register_method
from tests.evaluation.conftest import W0, linear_classifier, linear_model, quadrant_task, tiny_cnn


def test_gradient_of_linear_model_is_its_weights(ones_images):
    maps = attribute(linear_model(), ones_images, np.zeros(3, dtype=np.int64), method="gradient")
    assert isinstance(maps, np.ndarray) and maps.shape == ones_images.shape
    np.testing.assert_array_equal(maps.reshape(3, -1), np.tile(W0, (3, 1)))


def test_classifier_preprocessing_is_composed(ones_images):
    # ART standardises (x - 0.5) / 2 before the model: d logit / d x = W0 / 2.
    maps = attribute(linear_classifier(preprocessing=(0.5, 2.0)), ones_images, np.zeros(3), method="gradient")
    np.testing.assert_allclose(maps.reshape(3, -1), np.tile(W0 / 2, (3, 1)), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_named_method_runs_batched_and_leaves_model_alone(name):
    model = tiny_cnn()
    model.train()
    model[1].eval()  # a submodule in its own mode: restored individually
    grads_before = [torch.full_like(p, 7.0) for p in model.parameters()]
    for p, g in zip(model.parameters(), grads_before):
        p.grad = g.clone()
    x, y = quadrant_task(6)
    x_copy = x.copy()
    maps = (
        attribute(model, x, y, method=name, batch_size=4, n_steps=4)
        if name == "integrated_gradients"
        else (attribute(model, x, y, method=name, batch_size=4))
    )
    assert maps.shape == x.shape and np.isfinite(maps).all() and np.abs(maps).sum() > 0
    np.testing.assert_array_equal(x, x_copy)
    assert model.training and not model[1].training and model[0].training
    assert all(p.requires_grad for p in model.parameters())
    for p, g in zip(model.parameters(), grads_before):
        assert torch.equal(p.grad, g)  # nothing accumulated


def test_integrated_gradients_does_not_depend_on_batch_size():
    model, (x, y) = tiny_cnn(), quadrant_task(7)
    a = attribute(model, torch.from_numpy(x), torch.from_numpy(y), "integrated_gradients", batch_size=3, n_steps=8)
    b = attribute(model, torch.from_numpy(x), torch.from_numpy(y), "integrated_gradients", batch_size=64, n_steps=8)
    assert isinstance(a, torch.Tensor)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_smoothgrad_is_seeded_and_leaves_global_rng_alone():
    model, (x, y) = tiny_cnn(), quadrant_task(4)
    state = torch.random.get_rng_state()
    a = attribute(model, x, y, "smoothgrad", seed=3, nt_samples=4)
    assert torch.equal(state, torch.random.get_rng_state())
    b = attribute(model, x, y, "smoothgrad", seed=3, nt_samples=4)
    c = attribute(model, x, y, "smoothgrad", seed=4, nt_samples=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_captum_class_instance_callable_and_alias(ones_images):
    model, y = linear_model(), np.zeros(3, dtype=np.int64)
    by_class = attribute(model, ones_images, y, Saliency, abs=False)
    by_instance = attribute(model, ones_images, y, NoiseTunnel(Saliency(model)), nt_samples=2, stdevs=0.0, abs=False)
    by_callable = attribute(model, ones_images, y, lambda m, x, t: torch.ones_like(x))
    np.testing.assert_allclose(by_class, by_instance)
    np.testing.assert_array_equal(by_callable, np.ones_like(ones_images))
    assert get_method("ig").name == "integrated_gradients"
    assert get_method(IntegratedGradients).name == "IntegratedGradients"


def test_register_method(ones_images):
    register_method("negative_gradient", lambda m: Saliency(lambda x: -m(x)), abs=False)
    try:
        maps = attribute(linear_model(), ones_images, np.zeros(3), "negative_gradient")
        np.testing.assert_array_equal(maps.reshape(3, -1), -np.tile(W0, (3, 1)))
    finally:
        del METHODS["negative_gradient"]


def test_bad_inputs(ones_images):
    model = linear_model()
    with pytest.raises(ValueError, match="method must be one of"):
        attribute(model, ones_images, np.zeros(3), "no_such_method")
    with pytest.raises(ValueError, match="x and y must have the same length"):
        attribute(model, ones_images, np.zeros(2), "gradient")
    with pytest.raises(ValueError, match="x must hold only finite values"):
        attribute(model, np.full_like(ones_images, np.nan), np.zeros(3), "gradient")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        attribute(model, ones_images, np.zeros(3), "gradient", batch_size=0)
    with pytest.raises(TypeError, match="model must be"):
        attribute("not a model", ones_images, np.zeros(3))
    with pytest.raises(TypeError, match="method could not be used"):
        attribute(model, ones_images, np.zeros(3), 42)


def test_numpy_preprocessing_is_refused(ones_images):
    from art.defences.preprocessor import SpatialSmoothing
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(
        linear_model(),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 2, 5),
        nb_classes=2,
        clip_values=(0.0, 1.0),
        preprocessing_defences=SpatialSmoothing(channels_first=True),
    )
    with pytest.raises(TypeError, match="not a PyTorch preprocessor"):
        attribute(clf, ones_images, np.zeros(3))
