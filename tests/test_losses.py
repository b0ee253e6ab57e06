import math

import pytest
import torch

from art_sgt.losses import (
    asgt_loss,
    kl_divergence,
    log_probabilities,
    madry_sgt_loss,
    output_kind,
    sgt_loss,
    trades_sgt_loss,
)

# p = softmax(0, 0) = (1/2, 1/2); q = softmax(0, 1) = (1/(1+e), e/(1+e))
P_LOGITS = torch.tensor([[0.0, 0.0]])
Q_LOGITS = torch.tensor([[0.0, 1.0]])
KL_PQ = 0.5 * math.log(0.5 * (1 + math.e)) + 0.5 * math.log(0.5 * (1 + math.e) / math.e)
CE_P = math.log(2.0)
CE_Q_LABEL0 = math.log(1 + math.e)
# r = softmax(2, 0) = (e^2, 1) / (1 + e^2); KL(p || r) and KL(r || p) by hand
R_LOGITS = torch.tensor([[2.0, 0.0]])
R = (math.e**2 / (1 + math.e**2), 1 / (1 + math.e**2))
KL_PR = 0.5 * math.log(0.5 / R[0]) + 0.5 * math.log(0.5 / R[1])
KL_RP = R[0] * math.log(R[0] / 0.5) + R[1] * math.log(R[1] / 0.5)
CE_R_LABEL0 = math.log(1 + math.exp(-2.0))


def test_kl_direction_and_value():
    assert float(kl_divergence(P_LOGITS, Q_LOGITS)) == pytest.approx(KL_PQ, abs=1e-6)
    # KL(q || p) differs: the direction is p(x) first
    kl_qp = (1 / (1 + math.e)) * math.log(2 / (1 + math.e)) + (math.e / (1 + math.e)) * math.log(
        2 * math.e / (1 + math.e)
    )
    assert float(kl_divergence(Q_LOGITS, P_LOGITS)) == pytest.approx(kl_qp, abs=1e-6)


def test_kl_is_batch_mean():
    p = torch.cat([P_LOGITS, P_LOGITS])
    q = torch.cat([Q_LOGITS, P_LOGITS])
    assert float(kl_divergence(p, q)) == pytest.approx(KL_PQ / 2, abs=1e-6)


def test_sgt_loss_by_hand():
    y = torch.tensor([0])
    assert float(sgt_loss(P_LOGITS, Q_LOGITS, y, kl_weight=2.0)) == pytest.approx(CE_P + 2 * KL_PQ, abs=1e-6)
    assert float(sgt_loss(P_LOGITS, Q_LOGITS, y, kl_weight=0.0)) == pytest.approx(CE_P, abs=1e-6)


def test_asgt_loss_by_hand():
    y = torch.tensor([0])
    # clean logits Q, adversarial P, masked adversarial Q
    value = asgt_loss(Q_LOGITS, P_LOGITS, Q_LOGITS, y, kl_weight=0.5)
    assert float(value) == pytest.approx(CE_Q_LABEL0 + CE_P + 0.5 * KL_PQ, abs=1e-6)


def test_gradients_flow_into_both_logits():
    a = P_LOGITS.clone().requires_grad_(True)
    b = Q_LOGITS.clone().requires_grad_(True)
    sgt_loss(a, b, torch.tensor([1]), 1.0).backward()
    assert a.grad is not None and b.grad is not None
    assert float(b.grad.abs().sum()) > 0


def test_custom_task_loss():
    y = torch.tensor([0])
    value = sgt_loss(P_LOGITS, P_LOGITS, y, 1.0, task_loss=lambda logits, labels: logits.sum() * 0 + 3.0)
    assert float(value) == pytest.approx(3.0)


def test_kl_sum_reduction_is_n_times_the_batch_mean():
    p, q = torch.cat([P_LOGITS, Q_LOGITS]), torch.cat([Q_LOGITS, Q_LOGITS])
    assert float(kl_divergence(p, q, reduction="sum")) == pytest.approx(2 * float(kl_divergence(p, q)), abs=1e-6)


def test_probability_outputs_give_the_kl_of_their_distributions():
    p, q = torch.softmax(P_LOGITS, 1), torch.softmax(Q_LOGITS, 1)
    assert float(kl_divergence(p, q, outputs="probabilities")) == pytest.approx(KL_PQ, abs=1e-6)
    assert float(kl_divergence(p, q)) != pytest.approx(KL_PQ, abs=1e-3)  # read as logits they would be wrong


def test_asgt_ratio_weighs_the_adversarial_term():
    y = torch.tensor([0])
    assert float(asgt_loss(P_LOGITS, Q_LOGITS, Q_LOGITS, y, ratio=1.0)) == pytest.approx(2 * CE_Q_LABEL0, abs=1e-6)
    assert float(asgt_loss(P_LOGITS, Q_LOGITS, Q_LOGITS, y, ratio=0.25)) == pytest.approx(
        1.5 * CE_P + 0.5 * CE_Q_LABEL0, abs=1e-6
    )


def test_output_kind_and_log_probabilities_by_hand():
    p = torch.tensor([[0.2, 0.8], [1.0, 0.0]])
    assert output_kind(p) == "probabilities"
    assert output_kind(torch.tensor([[0.2, 0.7]])) == output_kind(torch.tensor([[-0.5, 1.5]])) == "logits"
    assert torch.allclose(log_probabilities(p)[0], torch.log(torch.tensor([0.2, 0.8])))
    assert torch.isfinite(log_probabilities(p)).all()  # log 0 is clamped, not -inf
    z = torch.tensor([[-1.0, 2.0]])
    assert torch.allclose(log_probabilities(z), torch.log_softmax(z, dim=1))
    assert torch.allclose(log_probabilities(p, "logits"), torch.log_softmax(p, dim=1))  # a given kind stands


def test_asgt_loss_with_the_sgt_term_on_the_clean_input_by_hand():
    y = torch.tensor([0])
    # clean R, adversarial Q, masked clean P: CE(R) + CE(Q) + 0.5 * KL(r || p)
    value = asgt_loss(R_LOGITS, Q_LOGITS, P_LOGITS, y, kl_weight=0.5, sgt_logits=R_LOGITS)
    assert float(value) == pytest.approx(CE_R_LABEL0 + CE_Q_LABEL0 + 0.5 * KL_RP, abs=1e-6)


def test_madry_sgt_loss_by_hand():
    y = torch.tensor([0])
    # adversarial Q, masked adversarial P: CE(Q) + 2 * KL(q || p), no clean term
    kl_qp = (1 / (1 + math.e)) * math.log(2 / (1 + math.e)) + (math.e / (1 + math.e)) * math.log(
        2 * math.e / (1 + math.e)
    )
    assert float(madry_sgt_loss(Q_LOGITS, P_LOGITS, y, kl_weight=2.0)) == pytest.approx(
        CE_Q_LABEL0 + 2 * kl_qp, abs=1e-6
    )
    assert float(madry_sgt_loss(Q_LOGITS, P_LOGITS, y, kl_weight=0.0)) == pytest.approx(CE_Q_LABEL0, abs=1e-6)
    # the term on the clean input: KL(r || p) with r the clean logits
    value = madry_sgt_loss(Q_LOGITS, P_LOGITS, y, kl_weight=1.0, sgt_logits=R_LOGITS)
    assert float(value) == pytest.approx(CE_Q_LABEL0 + KL_RP, abs=1e-6)


def test_trades_sgt_loss_by_hand():
    y = torch.tensor([0])
    # clean P, adversarial Q, masked adversarial R: CE(P) + beta * KL(p || q) + kl_weight * KL(q || r)
    q = (1 / (1 + math.e), math.e / (1 + math.e))
    kl_qr = q[0] * math.log(q[0] / R[0]) + q[1] * math.log(q[1] / R[1])
    value = trades_sgt_loss(P_LOGITS, Q_LOGITS, R_LOGITS, y, beta=6.0, kl_weight=0.5)
    assert float(value) == pytest.approx(CE_P + 6.0 * KL_PQ + 0.5 * kl_qr, abs=1e-6)
    assert float(trades_sgt_loss(P_LOGITS, Q_LOGITS, R_LOGITS, y, beta=6.0, kl_weight=0.0)) == pytest.approx(
        CE_P + 6.0 * KL_PQ, abs=1e-6
    )
    # the SGT term on the clean input: KL(p || r)
    value = trades_sgt_loss(P_LOGITS, Q_LOGITS, R_LOGITS, y, beta=1.0, kl_weight=1.0, sgt_logits=P_LOGITS)
    assert float(value) == pytest.approx(CE_P + KL_PQ + KL_PR, abs=1e-6)


def test_trades_term_sends_gradients_into_clean_and_adversarial_logits():
    clean = P_LOGITS.clone().requires_grad_(True)
    adv = Q_LOGITS.clone().requires_grad_(True)
    # y = 0 with p uniform: CE pulls the clean logits one way; the KL term's share of clean.grad is what remains
    trades_sgt_loss(clean, adv, adv.detach(), torch.tensor([0]), beta=1.0, kl_weight=0.0).backward()
    ce_grad = torch.tensor([[-0.5, 0.5]])  # softmax(p) - onehot(0)
    assert float((clean.grad - ce_grad).abs().sum()) > 1e-3
    assert float(adv.grad.abs().sum()) > 1e-3
