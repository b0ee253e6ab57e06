"""Saliency-guided Training (Ismail, Corrada Bravo and Feizi, NeurIPS 2021, arXiv 2111.14338)."""

from __future__ import annotations

import torch

from art_sgt.losses import sgt_loss
from art_sgt.trainers.base import BatchLoss, SaliencyTrainerBase

__all__ = ["SaliencyGuidedTrainer"]


class SaliencyGuidedTrainer(SaliencyTrainerBase):
    """Saliency-guided Training as a drop-in ART trainer.

    For every batch: the saliency of each input for its true label is computed with the model in eval mode;
    the ``mask_fraction`` least salient positions are replaced by ``fill``; and the model is trained on

    ``L = CE(f(x), y) + kl_weight * KL(softmax f(x) || softmax f(x_masked))``

    (:func:`art_sgt.losses.sgt_loss`, with the classifier's own loss in place of CE). The defaults follow the
    reference implementation: signed vanilla gradient of the label's log-probability (``saliency_of="log_prob"``;
    the reference network ends in ``log_softmax``), averaged over channels, ``max(1, floor(0.5 * positions))``
    positions masked, uniform noise in each sample's own value range (``fill="uniform_channel"`` draws in each
    channel's range, as the reference does for colour images), KL weight 1. ``absolute=True`` ranks by
    ``|channel mean of the gradient|`` instead, so that features with strongly negative evidence are kept.

    Works with any channels-first ``PyTorchClassifier`` that has an optimizer: its model, optimizer, loss, device,
    preprocessing (applied differentiably: the fit chain for training, the predict chain for saliency, as ART's
    gradients use it) and ``clip_values`` (scalars or per-feature arrays; fill values are clipped into them) are
    used as they are. Labels may be one-hot or class indices. A model returning probabilities (ending in softmax)
    is detected on the first batch, with a warning, and the KL term uses their logarithm; with a loss of
    ``reduction="sum"`` the KL term is summed too, so its weight does not change with the batch size.

    Each epoch's history record holds the mean over its batches of the loss's terms (:attr:`loss_terms`):
    ``ce_clean`` (the classifier's loss of ``f(x)``) and ``kl_saliency`` (the KL term, unweighted; 0 with
    ``kl_weight=0``), so that ``loss = ce_clean + kl_weight * kl_saliency``.

    | Paper link: https://arxiv.org/abs/2111.14338

    :param classifier: The ``PyTorchClassifier`` to train (in place).
    :param mask_fraction: Fraction of input positions masked per sample, in (0, 1).
    :param kl_weight: Weight of the KL term, >= 0. With 0 (plain training, ``CE(x)``) no saliency map and no masked
        input are computed.
    :param saliency: ``"gradient"`` (default), a Captum attribution class or instance, or a callable
        ``(model, x, target) -> map``.
    :param absolute: Rank positions by absolute instead of signed saliency.
    :param fill: ``"uniform"`` (default), ``"uniform_channel"``, ``"mean"``, ``"zero"``, a float or a callable
        ``(x, mask) -> values``.
    :param saliency_of: ``"log_prob"`` (default) or ``"logit"``: what the saliency differentiates.
    :param amp: ``None`` (default, float32) or ``"bf16"`` autocast (see
        :class:`~art_sgt.trainers.base.SaliencyTrainerBase` and :doc:`/performance`).
    :param channels_last: Channels-last inputs and weights (converted in place).
    :param compile: ``torch.compile`` the model's forwards.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or an argument has the wrong type.
    :raises ValueError: If the classifier has no optimizer, is channels-last or mixes labels, or an argument is
        out of range.

    >>> import numpy as np, torch
    >>> from art.estimators.classification import PyTorchClassifier
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> classifier = PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 2, 2),
    ...     nb_classes=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), clip_values=(0.0, 1.0))
    >>> x = np.random.default_rng(0).random((32, 1, 2, 2), dtype=np.float32)
    >>> y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    >>> trainer = SaliencyGuidedTrainer(classifier, mask_fraction=0.25)
    >>> trainer.fit(x, y, nb_epochs=2, batch_size=8, seed=0, verbose=False)
    >>> trainer.predict(x).shape
    (32, 2)
    """

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """``("ce_clean", "kl_saliency")``: the terms of the batch loss recorded in each epoch's history."""
        return ("ce_clean", "kl_saliency")

    def _batch_loss(self, x: torch.Tensor, y: torch.Tensor) -> BatchLoss:
        if self.kl_weight == 0:
            # Plain training: the KL term is zero whatever the mask, so neither saliency nor the masked forward is
            # computed (KL(p || p) = 0 exactly keeps sgt_loss the one place the loss is written).
            (logits,) = self._train_logits(x)
            masked_logits = logits
        else:
            fused_logits, x_masked = self._saliency_mask(x, y)
            logits, masked_logits = self._train_logits(x, x_masked, known={0: fused_logits})
        loss = sgt_loss(logits, masked_logits, y, self.kl_weight, **self._loss_options())
        terms = self._terms(y, ce={"ce_clean": logits}, kl={"kl_saliency": (logits, masked_logits)})
        return BatchLoss(loss, logits, terms)
