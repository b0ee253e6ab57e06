"""The training objectives of SGT and ASGT, as pure functions of logits."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["kl_divergence", "sgt_loss", "asgt_loss"]

TaskLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Batch-mean ``KL(p || q)`` between the softmax distributions of two logit tensors.

    ``KL(p || q) = (1/n) * sum_i sum_c p_ic * (log p_ic - log q_ic)`` with ``p = softmax(p_logits)`` and
    ``q = softmax(q_logits)``. Gradients flow into both arguments.

    :param p_logits: Logits of the reference distribution ``p``, shape ``(n, classes)``.
    :param q_logits: Logits of the approximating distribution ``q``, shape ``(n, classes)``.
    :return: A scalar tensor.

    >>> import torch
    >>> round(float(kl_divergence(torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]))), 4)
    0.1201
    """
    return F.kl_div(
        F.log_softmax(q_logits, dim=1), F.log_softmax(p_logits, dim=1), reduction="batchmean", log_target=True
    )


def sgt_loss(
    logits: torch.Tensor,
    masked_logits: torch.Tensor,
    y: torch.Tensor,
    kl_weight: float = 1.0,
    task_loss: TaskLoss | None = None,
) -> torch.Tensor:
    """Saliency-guided training loss (Ismail et al. 2021, equation 3).

    ``L = task_loss(f(x), y) + kl_weight * KL(p(x) || p(x_masked))``, where ``p(.) = softmax(f(.))``, the KL
    term is averaged over the batch (:func:`kl_divergence`) and ``task_loss`` defaults to batch-mean
    cross-entropy.

    :param logits: Logits of the clean inputs, ``(n, classes)``.
    :param masked_logits: Logits of the masked inputs, ``(n, classes)``.
    :param y: Class indices, ``(n,)``.
    :param kl_weight: Weight of the KL term (``0`` gives plain training).
    :param task_loss: Loss of logits and labels; defaults to ``torch.nn.functional.cross_entropy``.
    :return: A scalar tensor.

    >>> import torch
    >>> logits, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> round(float(sgt_loss(logits, logits, y)), 4)  # masking changed nothing: the KL term is 0, CE = log(1 + e^-2)
    0.1269
    >>> round(float(sgt_loss(logits, torch.zeros(1, 2), y)), 4)  # masking changed the prediction: KL adds to CE
    0.4547
    """
    task_loss = F.cross_entropy if task_loss is None else task_loss
    return task_loss(logits, y) + kl_weight * kl_divergence(logits, masked_logits)


def asgt_loss(
    logits: torch.Tensor,
    adv_logits: torch.Tensor,
    masked_adv_logits: torch.Tensor,
    y: torch.Tensor,
    kl_weight: float = 1.0,
    task_loss: TaskLoss | None = None,
) -> torch.Tensor:
    """Adversarial saliency-guided training loss (Guesmi et al. 2024).

    ``L = task_loss(f(x), y) + task_loss(f(x_adv), y) + kl_weight * KL(p(x_adv) || p(masked x_adv))``, each
    term a batch mean, with ``task_loss`` defaulting to cross-entropy.

    :param logits: Logits of the clean inputs, ``(n, classes)``.
    :param adv_logits: Logits of the adversarial inputs, ``(n, classes)``.
    :param masked_adv_logits: Logits of the adversarial inputs with their least salient positions masked.
    :param y: Class indices, ``(n,)``.
    :param kl_weight: Weight of the KL term.
    :param task_loss: Loss of logits and labels; defaults to ``torch.nn.functional.cross_entropy``.
    :return: A scalar tensor.

    >>> import torch
    >>> logits, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> round(float(asgt_loss(logits, logits, logits, y)), 4)  # two cross-entropies, no KL
    0.2539
    """
    task_loss = F.cross_entropy if task_loss is None else task_loss
    return task_loss(logits, y) + task_loss(adv_logits, y) + kl_weight * kl_divergence(adv_logits, masked_adv_logits)
