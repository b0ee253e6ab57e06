import pytest
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

from art_sgt.saliency import eval_mode, input_gradient, is_mode_independent, make_saliency_fn


def _linear():
    model = torch.nn.Linear(3, 2, bias=True)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]]))
    return model


def test_input_gradient_of_linear_model_is_weight_row():
    grad = input_gradient(_linear(), torch.randn(4, 3), torch.tensor([0, 1, 1, 0]))
    assert grad.tolist() == [[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [1.0, 2.0, 3.0]]


def test_input_gradient_restores_modes_and_leaves_no_param_grad():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5), torch.nn.Linear(3, 2))
    model.train()
    model[1].eval()  # a mixed state must come back exactly
    x = torch.randn(2, 3)
    before = x.clone()
    input_gradient(model, x, torch.tensor([0, 1]))
    assert [m.training for m in model.modules()] == [True, True, False, True]
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(x, before)


def test_eval_mode_restores_on_error():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError), eval_mode(model):
        assert not model.training
        raise RuntimeError("boom")
    assert model.training


def test_captum_class_matches_gradient_and_instances_work():
    model = _linear()
    x, t = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    via_captum = make_saliency_fn(Saliency, abs=False)(model, x, t)
    assert torch.allclose(via_captum, input_gradient(model, x, t))
    ig = make_saliency_fn(IntegratedGradients, n_steps=8)(model, x, t)
    # for a linear model IG = (x - 0) * w_t
    assert torch.allclose(ig, x * model.weight[t].detach(), atol=1e-5)
    nt = make_saliency_fn(NoiseTunnel(Saliency(model)), nt_type="smoothgrad", nt_samples=2, stdevs=0.0)(model, x, t)
    assert torch.allclose(nt, input_gradient(model, x, t).abs())
    custom = make_saliency_fn(lambda m, xx, tt: xx * 2)(model, x, t)
    assert torch.equal(custom, x * 2)


def test_bad_saliency_specs():
    with pytest.raises(ValueError, match="saliency"):
        make_saliency_fn("smoothgrad_v9")
    with pytest.raises(TypeError, match="saliency"):
        make_saliency_fn(42)
    with pytest.raises(TypeError, match="NoiseTunnel"):
        make_saliency_fn(NoiseTunnel)


class _FunctionalDropout(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.lin(F.dropout(x, 0.5, training=self.training))


def test_mode_independence_probe():
    probe = torch.randn(8, 4)
    assert is_mode_independent(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.0)), probe)
    assert not is_mode_independent(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Dropout(0.1)), probe)
    assert not is_mode_independent(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)), probe)
    model = _FunctionalDropout()
    model.eval()
    state = torch.get_rng_state()
    assert not is_mode_independent(model, probe)
    assert not model.training
    assert torch.equal(state, torch.get_rng_state())


def test_input_gradient_of_the_log_probability():
    # d log softmax(Wx)_y / dx = W_y - sum_c p_c W_c; at x = 0 the bias alone sets p
    model = _linear()
    with torch.no_grad():
        model.bias.zero_()
    grad = input_gradient(model, torch.zeros(1, 3), torch.tensor([0]), of="log_prob")
    w = model.weight.detach()
    assert torch.allclose(grad, (w[0] - 0.5 * (w[0] + w[1]))[None])  # p = (1/2, 1/2)


def test_captum_class_differentiates_the_log_probability_on_request():
    model, x, t = _linear(), torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    captum = make_saliency_fn(Saliency, saliency_of="log_prob", abs=False)(model, x, t)
    assert torch.allclose(captum, make_saliency_fn("gradient", saliency_of="log_prob")(model, x, t), atol=1e-6)
    assert not torch.allclose(captum, input_gradient(model, x, t))


def test_a_model_returning_probabilities_gets_the_gradient_of_log_p_not_of_log_softmax_p():
    # same weights, one model returning logits and one its softmax: log p_y, hence its gradient, is the same
    logits = _linear()
    probabilities = torch.nn.Sequential(logits, torch.nn.Softmax(dim=1))
    x, t = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0])
    expected = input_gradient(logits, x, t, of="log_prob")
    assert torch.allclose(input_gradient(probabilities, x, t, of="log_prob"), expected, atol=1e-6)
    captum = make_saliency_fn(Saliency, saliency_of="log_prob", abs=False)(probabilities, x, t)
    assert torch.allclose(captum, expected, atol=1e-6)
    x_in = x.clone().requires_grad_(True)
    (of_log_softmax,) = torch.autograd.grad(F.log_softmax(probabilities(x_in), 1).gather(1, t[:, None]).sum(), x_in)
    assert not torch.allclose(of_log_softmax, expected, atol=1e-3)  # what the saliency used to differentiate


def test_unknown_saliency_of_is_refused():
    with pytest.raises(ValueError, match="saliency_of"):
        make_saliency_fn("gradient", saliency_of="probability")


def test_saliency_callable_of_wrong_type_or_shape_is_refused_naming_saliency():
    model, x, t = _linear(), torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    with pytest.raises(TypeError, match=r"saliency must return a torch.Tensor of the input's shape \(4, 3\).*numpy"):
        make_saliency_fn(lambda m, xx, tt: xx.numpy())(model, x, t)
    with pytest.raises(ValueError, match=r"saliency must return .*got shape \(4,\)"):
        make_saliency_fn(lambda m, xx, tt: xx.sum(1))(model, x, t)

    def my_saliency(m, xx, tt):
        return xx * 2

    checked = make_saliency_fn(my_saliency)
    assert checked.__name__ == "my_saliency" and torch.equal(checked(model, x, t), x * 2)
