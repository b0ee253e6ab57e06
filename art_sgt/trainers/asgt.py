"""Adversarial Saliency-guided Training (Guesmi, Aswani and Shafique 2024, arXiv 2405.06278)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from art_sgt._validation import check_choice
from art_sgt.attacks import pgd, pgd_params_from_art
from art_sgt.losses import asgt_loss
from art_sgt.trainers.base import SaliencyTrainerBase

__all__ = ["SaliencyGuidedAdversarialTrainer"]


class SaliencyGuidedAdversarialTrainer(SaliencyTrainerBase):
    """SGT combined with adversarial training, as a drop-in ART trainer taking any ART ``EvasionAttack``.

    For every batch, ``x_adv`` is crafted against the *current* model; the saliency of ``x_adv`` (for the
    true label, or the model's prediction with ``saliency_target="prediction"``) selects the
    ``mask_fraction`` least salient positions, which are replaced by ``fill``; the model is trained on

    ``L = CE(f(x), y) + CE(f(x_adv), y) + kl_weight * KL(softmax f(x_adv) || softmax f(masked x_adv))``

    (:func:`art_sgt.losses.asgt_loss`, with the classifier's own loss in place of CE).

    Two ways to craft ``x_adv``:

    - **fast path**: for ART's ``ProjectedGradientDescent`` (and its PyTorch/numpy variants),
      ``BasicIterativeMethod`` and ``FastGradientMethod`` on this classifier, the attack's own parameters
      (norm, eps, eps_step, max_iter, num_random_init, random_eps, clip_values, the classifier's preprocessing)
      drive :func:`art_sgt.attacks.pgd` on the classifier's device, with input-only gradients and no host
      round trip; it equals ART's ``generate`` when ``num_random_init=0``.
    - **general path**: any other ``EvasionAttack`` (DeepFool, Carlini-Wagner, Square, ...) runs its own
      ``generate`` on each batch, through numpy; slower, but anything ART can attack with works.

    Targeted attacks are not supported: adversarial training needs the attack to move away from the true
    label. An attack must be bound to this trainer's classifier: an attack on another estimator (ART's
    ``AutoProjectedGradientDescent`` with a ``loss_type`` silently builds its own copy of the model, for
    example) would craft against stale weights, so it is rejected unless ``allow_transfer=True`` asks for
    transfer-style training on purpose.

    | Paper link: https://arxiv.org/abs/2405.06278

    :param classifier: The ``PyTorchClassifier`` to train (in place).
    :param attack: An ART ``EvasionAttack`` on ``classifier``.
    :param mask_fraction: Fraction of input positions masked per sample, in (0, 1).
    :param kl_weight: Weight of the KL term, >= 0.
    :param saliency: ``"gradient"`` (default), a Captum attribution class or instance, or a callable.
    :param absolute: Rank positions by absolute instead of signed saliency.
    :param fill: ``"uniform"`` (default), ``"mean"``, ``"zero"``, a float or a callable.
    :param saliency_target: ``"label"`` (default) or ``"prediction"``: whose saliency on ``x_adv`` is used.
    :param allow_transfer: Accept an attack bound to another estimator (transfer-style training).
    :raises TypeError: If ``attack`` is not an ART ``EvasionAttack`` or an argument has the wrong type.
    :raises ValueError: If the attack is bound to another estimator, targeted, or has an eps beyond the
        classifier's clip range, or another argument is out of range.

    >>> import numpy as np, torch
    >>> from art.attacks.evasion import ProjectedGradientDescent
    >>> from art.estimators.classification import PyTorchClassifier
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> classifier = PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 2, 2),
    ...     nb_classes=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), clip_values=(0.0, 1.0))
    >>> attack = ProjectedGradientDescent(classifier, eps=0.1, eps_step=0.05, max_iter=3, verbose=False)
    >>> x = np.random.default_rng(0).random((32, 1, 2, 2), dtype=np.float32)
    >>> y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    >>> trainer = SaliencyGuidedAdversarialTrainer(classifier, attack, mask_fraction=0.25)
    >>> trainer.fit(x, y, nb_epochs=1, batch_size=8, seed=0, verbose=False)
    >>> trainer.uses_fast_path
    True
    """

    def __init__(
        self,
        classifier: Any,
        attack: Any,
        mask_fraction: float = 0.5,
        kl_weight: float = 1.0,
        saliency: Any = "gradient",
        absolute: bool = False,
        fill: Any = "uniform",
        saliency_target: str = "label",
        allow_transfer: bool = False,
    ) -> None:
        super().__init__(classifier, mask_fraction, kl_weight, saliency, absolute, fill)
        _check_attack(attack, classifier, allow_transfer)
        self.attack = attack
        self.saliency_target = check_choice("saliency_target", saliency_target, ("label", "prediction"))
        self._pgd = pgd_params_from_art(attack) if attack.estimator is classifier else None

    @property
    def uses_fast_path(self) -> bool:
        """Whether ``x_adv`` is crafted by the on-device PGD fast path (else by ``attack.generate``)."""
        return self._pgd is not None

    def _batch_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = self._craft(x, y)
        target = y if self.saliency_target == "label" else None
        adv_logits, x_masked = self._logits_and_masked(x_adv, target)
        if adv_logits is None:
            logits, adv_logits, masked_logits = self._train_logits(x, x_adv, x_masked)
        else:
            logits, masked_logits = self._train_logits(x, x_masked)
        loss = asgt_loss(logits, adv_logits, masked_logits, y, self.kl_weight, task_loss=self._task_loss)
        return loss, logits

    def _craft(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self._pgd is not None:
            return pgd(self._net, x, y, **self._pgd.pgd_kwargs(), generator=self._noise)
        labels = np.eye(self._classifier.nb_classes, dtype=np.float32)[y.cpu().numpy()]
        x_adv = self.attack.generate(x.detach().cpu().numpy(), y=labels)
        self._classifier.model.train()  # ART's attacks leave the model in eval mode
        return torch.as_tensor(x_adv, dtype=x.dtype, device=x.device)


def _check_attack(attack: Any, classifier: Any, allow_transfer: bool) -> None:
    from art.attacks.attack import EvasionAttack

    if not isinstance(attack, EvasionAttack):
        raise TypeError(
            f"attack must be an ART EvasionAttack (e.g. ProjectedGradientDescent), got {type(attack).__name__}."
        )
    if not isinstance(allow_transfer, (bool, np.bool_)):
        raise TypeError(f"allow_transfer must be a bool, got {type(allow_transfer).__name__}.")
    if attack.estimator is not classifier and not allow_transfer:
        raise ValueError(
            f"attack must be bound to the classifier being trained, but {type(attack).__name__} holds another "
            "estimator, so it would craft against weights that do not change (ART's AutoProjectedGradientDescent "
            "with a loss_type builds its own copy, for example). Build the attack on this classifier, or pass "
            "allow_transfer=True for transfer-style training."
        )
    if getattr(attack, "targeted", False):
        raise ValueError(
            "attack must be untargeted: adversarial training moves away from the true label, and targeted attacks "
            "need target labels this trainer does not have."
        )
    eps = getattr(attack, "eps", None)
    clip = classifier.clip_values
    if (
        clip is not None
        and eps is not None
        and np.ndim(eps) == 0
        and attack.__dict__.get("norm", np.inf) in (np.inf, "inf")
    ):
        span = float(clip[1]) - float(clip[0])
        if float(eps) > span:
            raise ValueError(
                f"attack eps {float(eps):g} exceeds the classifier's clip range {span:g} (clip_values {tuple(clip)})."
            )
