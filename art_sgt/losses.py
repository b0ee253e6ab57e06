"""The training objectives of SGT and ASGT, as pure functions of logits."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "kl_divergence",
    "sgt_loss",
    "asgt_loss",
    "madry_sgt_loss",
    "trades_sgt_loss",
    "output_kind",
    "log_probabilities",
    "OUTPUTS",
    "KL_REDUCTIONS",
    "OBJECTIVES",
    "SGT_INPUTS",
    "TRADES_BETA",
]

TaskLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

OUTPUTS = ("logits", "probabilities")
"""What a model returns: logits (or log-probabilities, which ``softmax`` maps to the same distribution), or
probabilities (a model ending in ``softmax``), whose logarithm is taken before the KL term."""

KL_REDUCTIONS = ("batchmean", "sum")
"""How the KL term is reduced over the batch; match the task loss's ``reduction`` (``"mean"`` or ``"sum"``) so
that the weight of the KL term does not change with the batch size."""

OBJECTIVES = ("asgt", "madry", "trades")
"""The adversarial objectives the SGT term is added to: the ASGT paper's (:func:`asgt_loss`), Madry et al.'s
(:func:`madry_sgt_loss`) and TRADES (:func:`trades_sgt_loss`)."""

SGT_INPUTS = ("adversarial", "clean")
"""Which input the SGT term ``KL(p(z) || p(masked z))`` is taken on: ``z = x_adv`` (the ASGT paper, Guesmi et
al. 2024) or ``z = x`` (SGT's own term, Ismail et al. 2021, next to an adversarial objective)."""

TRADES_BETA = 6.0
"""Default TRADES weight ``beta``: Zhang et al.'s CIFAR-10 setting (their MNIST script uses 1.0)."""


def output_kind(outputs: torch.Tensor) -> str:
    """What a batch of model outputs holds (see :data:`OUTPUTS`): ``"probabilities"`` when every row is
    non-negative and sums to 1 (within ``1e-4``), else ``"logits"``.

    :param outputs: Outputs of shape ``(n, classes)``.
    :return: ``"probabilities"`` or ``"logits"``.

    >>> import torch
    >>> output_kind(torch.tensor([[0.25, 0.75]])), output_kind(torch.tensor([[0.25, 0.70]]))
    ('probabilities', 'logits')
    """
    with torch.no_grad():
        ones = torch.ones(len(outputs), device=outputs.device, dtype=outputs.dtype)
        probabilities = bool((outputs >= 0).all()) and torch.allclose(outputs.sum(1), ones, atol=1e-4)
    return "probabilities" if probabilities else "logits"


def log_probabilities(outputs: torch.Tensor, kind: str | None = None) -> torch.Tensor:
    """``log p`` from a model's outputs: ``log_softmax`` of logits, the logarithm of probabilities.

    :param outputs: Outputs of shape ``(n, classes)``.
    :param kind: ``"logits"`` or ``"probabilities"`` (:data:`OUTPUTS`); ``None`` decides with :func:`output_kind`.
    :return: Log-probabilities of ``outputs``' shape.

    >>> import torch
    >>> log_probabilities(torch.tensor([[0.5, 0.5]])).exp()  # probabilities: their own logarithm
    tensor([[0.5000, 0.5000]])
    """
    if (output_kind(outputs) if kind is None else kind) == "probabilities":
        return outputs.clamp_min(torch.finfo(outputs.dtype).tiny).log()
    return F.log_softmax(outputs, dim=1)


def kl_divergence(
    p_logits: torch.Tensor, q_logits: torch.Tensor, reduction: str = "batchmean", outputs: str = "logits"
) -> torch.Tensor:
    """Batch-mean ``KL(p || q)`` between the softmax distributions of two logit tensors.

    ``KL(p || q) = (1/n) * sum_i sum_c p_ic * (log p_ic - log q_ic)`` with ``p = softmax(p_logits)`` and
    ``q = softmax(q_logits)``. Gradients flow into both arguments.

    :param p_logits: Logits of the reference distribution ``p``, shape ``(n, classes)``.
    :param q_logits: Logits of the approximating distribution ``q``, shape ``(n, classes)``.
    :param reduction: ``"batchmean"`` (divide by ``n``) or ``"sum"`` (see :data:`KL_REDUCTIONS`).
    :param outputs: ``"logits"`` or ``"probabilities"``: what the two tensors hold (see :data:`OUTPUTS`).
    :return: A scalar tensor.

    >>> import torch
    >>> round(float(kl_divergence(torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]))), 4)
    0.1201
    """
    q_log, p_log = log_probabilities(q_logits, outputs), log_probabilities(p_logits, outputs)
    return F.kl_div(q_log, p_log, reduction=reduction, log_target=True)


def sgt_loss(
    logits: torch.Tensor,
    masked_logits: torch.Tensor,
    y: torch.Tensor,
    kl_weight: float = 1.0,
    task_loss: TaskLoss | None = None,
    kl_reduction: str = "batchmean",
    outputs: str = "logits",
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
    :param kl_reduction: Reduction of the KL term (see :func:`kl_divergence`).
    :param outputs: What the model returns (see :data:`OUTPUTS`); the task loss always sees them as they are.
    :return: A scalar tensor.

    >>> import torch
    >>> logits, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> round(float(sgt_loss(logits, logits, y)), 4)  # masking changed nothing: the KL term is 0, CE = log(1 + e^-2)
    0.1269
    >>> round(float(sgt_loss(logits, torch.zeros(1, 2), y)), 4)  # masking changed the prediction: KL adds to CE
    0.4547
    """
    task_loss = F.cross_entropy if task_loss is None else task_loss
    return task_loss(logits, y) + kl_weight * kl_divergence(logits, masked_logits, kl_reduction, outputs)


def asgt_loss(
    logits: torch.Tensor,
    adv_logits: torch.Tensor,
    masked_adv_logits: torch.Tensor,
    y: torch.Tensor,
    kl_weight: float = 1.0,
    task_loss: TaskLoss | None = None,
    ratio: float = 0.5,
    kl_reduction: str = "batchmean",
    outputs: str = "logits",
    sgt_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Adversarial saliency-guided training loss (Guesmi et al. 2024).

    ``L = 2 * ((1 - ratio) * task_loss(f(x), y) + ratio * task_loss(f(x_adv), y))
    + kl_weight * KL(p(x_adv) || p(masked x_adv))``, each term a batch mean, with ``task_loss`` defaulting to
    cross-entropy. ``ratio = 0.5`` (the default) is the paper's loss, ``CE(x) + CE(x_adv) + kl_weight * KL``;
    ``ratio = 1`` trains on adversarial inputs only, as ART's ``AdversarialTrainer(ratio=1.0)`` does.

    :param logits: Logits of the clean inputs, ``(n, classes)``.
    :param adv_logits: Logits of the adversarial inputs, ``(n, classes)``.
    :param masked_adv_logits: Logits of the SGT term's input (by default the adversarial one) with its least
        salient positions masked.
    :param y: Class indices, ``(n,)``.
    :param kl_weight: Weight of the KL term.
    :param task_loss: Loss of logits and labels; defaults to ``torch.nn.functional.cross_entropy``.
    :param ratio: Weight of the adversarial task term against the clean one, in [0, 1].
    :param kl_reduction: Reduction of the KL term (see :func:`kl_divergence`).
    :param outputs: What the model returns (see :data:`OUTPUTS`); the task loss always sees them as they are.
    :param sgt_logits: Logits of the unmasked input of the SGT term (see :data:`SGT_INPUTS`); ``None`` (the
        paper) is ``adv_logits``, pass ``logits`` for the term on the clean input.
    :return: A scalar tensor.

    >>> import torch
    >>> logits, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> round(float(asgt_loss(logits, logits, logits, y)), 4)  # two cross-entropies, no KL
    0.2539
    """
    task_loss = F.cross_entropy if task_loss is None else task_loss
    if ratio == 0.5:  # the paper's loss, written as it is (bitwise the same as the weighted form)
        task = task_loss(logits, y) + task_loss(adv_logits, y)
    else:
        task = 2.0 * ((1.0 - ratio) * task_loss(logits, y) + ratio * task_loss(adv_logits, y))
    sgt_logits = adv_logits if sgt_logits is None else sgt_logits
    return task + kl_weight * kl_divergence(sgt_logits, masked_adv_logits, kl_reduction, outputs)


def madry_sgt_loss(
    adv_logits: torch.Tensor,
    masked_logits: torch.Tensor,
    y: torch.Tensor,
    kl_weight: float = 1.0,
    task_loss: TaskLoss | None = None,
    kl_reduction: str = "batchmean",
    outputs: str = "logits",
    sgt_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Madry-style adversarial training loss with the SGT term.

    ``L = task_loss(f(x_adv), y) + kl_weight * KL(p(z) || p(masked z))``: the adversarial risk of Madry et al.
    (ICLR 2018, the loss of ART's ``AdversarialTrainerMadryPGD``) plus SGT's term (Ismail et al. 2021) on
    ``z = x_adv`` (``sgt_logits=None``, as the ASGT paper takes it) or on ``z = x`` (pass the clean logits).
    Unlike :func:`asgt_loss` there is no clean task term.

    :param adv_logits: Logits of the adversarial inputs, ``(n, classes)``.
    :param masked_logits: Logits of the SGT term's input with its least salient positions masked.
    :param y: Class indices, ``(n,)``.
    :param kl_weight: Weight of the SGT term (``0`` gives Madry et al.'s loss).
    :param task_loss: Loss of logits and labels; defaults to ``torch.nn.functional.cross_entropy``.
    :param kl_reduction: Reduction of the KL term (see :func:`kl_divergence`).
    :param outputs: What the model returns (see :data:`OUTPUTS`); the task loss always sees them as they are.
    :param sgt_logits: Logits of the unmasked input of the SGT term; ``None`` is ``adv_logits``.
    :return: A scalar tensor.

    >>> import torch
    >>> adv, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> round(float(madry_sgt_loss(adv, adv, y)), 4)  # masking changed nothing: CE(x_adv) = log(1 + e^-2)
    0.1269
    """
    task_loss = F.cross_entropy if task_loss is None else task_loss
    sgt_logits = adv_logits if sgt_logits is None else sgt_logits
    return task_loss(adv_logits, y) + kl_weight * kl_divergence(sgt_logits, masked_logits, kl_reduction, outputs)


def trades_sgt_loss(
    logits: torch.Tensor,
    adv_logits: torch.Tensor,
    masked_logits: torch.Tensor,
    y: torch.Tensor,
    beta: float = TRADES_BETA,
    kl_weight: float = 1.0,
    task_loss: TaskLoss | None = None,
    kl_reduction: str = "batchmean",
    outputs: str = "logits",
    sgt_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """TRADES loss (Zhang et al., ICML 2019) with the SGT term.

    ``L = task_loss(f(x), y) + beta * KL(p(x) || p(x_adv)) + kl_weight * KL(p(z) || p(masked z))``, with
    ``z = x_adv`` (``sgt_logits=None``) or ``z = x`` (pass ``logits``). Gradients flow through both arguments of
    the TRADES term, as in Zhang et al.'s code and ART's ``AdversarialTrainerTRADESPyTorch``; with
    ``kl_weight=0`` this is their loss (ART clamps ``p(x)`` at ``1e-8`` inside its KL term, which changes it only
    where a class has probability below ``1e-8``). TRADES crafts ``x_adv`` by maximising the same
    ``KL(p(x) || p(x_adv))``; that is the trainer's business (see
    :class:`~art_sgt.trainers.asgt.SaliencyGuidedAdversarialTrainer`), not this function's.

    :param logits: Logits of the clean inputs, ``(n, classes)``.
    :param adv_logits: Logits of the adversarial inputs, ``(n, classes)``.
    :param masked_logits: Logits of the SGT term's input with its least salient positions masked.
    :param y: Class indices, ``(n,)``.
    :param beta: Weight of the TRADES term ``KL(p(x) || p(x_adv))``.
    :param kl_weight: Weight of the SGT term (``0`` gives TRADES).
    :param task_loss: Loss of logits and labels; defaults to ``torch.nn.functional.cross_entropy``.
    :param kl_reduction: Reduction of both KL terms (see :func:`kl_divergence`).
    :param outputs: What the model returns (see :data:`OUTPUTS`); the task loss always sees them as they are.
    :param sgt_logits: Logits of the unmasked input of the SGT term; ``None`` is ``adv_logits``.
    :return: A scalar tensor.

    >>> import torch
    >>> clean, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> round(float(trades_sgt_loss(clean, clean, clean, y)), 4)  # x_adv predicted as x: only CE(x) is left
    0.1269
    >>> round(float(trades_sgt_loss(torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), y,
    ...     beta=1.0, kl_weight=0.0)), 4)  # log 2 + KL((1/2, 1/2) || softmax(0, 1))
    0.8133
    """
    task_loss = F.cross_entropy if task_loss is None else task_loss
    sgt_logits = adv_logits if sgt_logits is None else sgt_logits
    trades = beta * kl_divergence(logits, adv_logits, kl_reduction, outputs)
    return task_loss(logits, y) + trades + kl_weight * kl_divergence(sgt_logits, masked_logits, kl_reduction, outputs)
