"""Adversarial Saliency-guided Training (Guesmi, Aswani and Shafique 2024, arXiv 2405.06278)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from art_sgt._art import attack_config, check_attacks, pgd_params_from_art, silence
from art_sgt._validation import check_bool, check_choice, check_fraction, check_non_negative, check_positive
from art_sgt.attacks import n_fgsm, pgd, trades_pgd
from art_sgt.losses import (
    OBJECTIVES,
    SGT_INPUTS,
    TRADES_BETA,
    asgt_loss,
    madry_sgt_loss,
    trades_sgt_loss,
)
from art_sgt.masking import Fill
from art_sgt.saliency import eval_mode
from art_sgt.trainers.base import BatchLoss, SaliencyTrainerBase

if TYPE_CHECKING:
    from art.attacks.attack import EvasionAttack
    from art.estimators.classification import PyTorchClassifier
    from captum.attr import Attribution

__all__ = ["SaliencyGuidedAdversarialTrainer", "FAST_STEP", "FAST_NOISE", "TRADES_CRAFTS"]

TRADES_CRAFTS = ("kl", "attack")
"""How ``objective="trades"`` crafts ``x_adv``: ``"kl"`` maximises ``KL(p(x) || p(x_adv))`` (Zhang et al.'s
code); ``"attack"`` runs the attack on its own loss (ART's ``AdversarialTrainerTRADESPyTorch``)."""

FAST_STEP = 0.75
"""Default step of :meth:`SaliencyGuidedAdversarialTrainer.fast`, as a multiple of ``eps`` (:doc:`/fast_training`
shows the measurement it rests on)."""

FAST_NOISE: float | None = None
"""Default noise of :meth:`SaliencyGuidedAdversarialTrainer.fast`: ``None``, FGSM with a random start in the eps
ball (a number would be N-FGSM's noise, as a multiple of ``eps``)."""


class SaliencyGuidedAdversarialTrainer(SaliencyTrainerBase):
    """SGT combined with adversarial training, as a drop-in ART trainer taking any ART ``EvasionAttack``.

    For every batch, ``x_adv`` is crafted against the *current* model; the saliency of ``x_adv`` (for the
    true label, or the model's prediction with ``saliency_target="prediction"``) selects the
    ``mask_fraction`` least salient positions, which are replaced by ``fill``; the model is trained on

    ``L = CE(f(x), y) + CE(f(x_adv), y) + kl_weight * KL(softmax f(x_adv) || softmax f(masked x_adv))``

    (:func:`art_sgt.losses.asgt_loss`, with the classifier's own loss in place of CE), the ASGT paper's objective
    (``objective="asgt"``, the default). The SGT term can instead be added to another adversarial objective:

    - ``objective="madry"``: ``CE(f(x_adv), y) + kl_weight * KL`` (Madry et al., ICLR 2018; no clean term,
      :func:`art_sgt.losses.madry_sgt_loss`);
    - ``objective="trades"``: ``CE(f(x), y) + beta * KL(p(x) || p(x_adv)) + kl_weight * KL`` (Zhang et al., ICML
      2019, :func:`art_sgt.losses.trades_sgt_loss`), with ``x_adv`` crafted as TRADES does (``craft="kl"``):
      L-inf PGD with the attack's ``eps``, ``eps_step`` and ``max_iter`` ascending
      ``sum KL(p(x) || p(x_adv))`` from ``x + 0.001 * N(0, 1)``, the model in eval mode, each step clipped and
      projected (the attack's ``num_random_init`` is not used: TRADES' start replaces it). ``craft="attack"``
      crafts with the attack as for the other objectives, which is what ART's ``AdversarialTrainerTRADESPyTorch``
      does; with it and ``kl_weight=0`` one training step equals ART's (the clean loss, the KL term averaged over
      the batch, the same update).

    Where the SGT term applies: ``sgt_input="adversarial"`` (default) masks ``x_adv``, as the ASGT paper does;
    ``sgt_input="clean"`` masks ``x`` and takes ``KL(p(x) || p(masked x))``, SGT's own term (Ismail et al. 2021)
    next to the adversarial objective.

    Two ways to craft ``x_adv``:

    - **fast path**: for ART's ``ProjectedGradientDescent`` (and its PyTorch/numpy variants),
      ``BasicIterativeMethod`` and ``FastGradientMethod`` on this classifier, the attack's parameters (norm, eps,
      eps_step, max_iter, num_random_init, random_eps, clip_values), read afresh for every batch so that
      ``attack.set_params`` (an eps ramp) takes effect, drive :func:`art_sgt.attacks.pgd` on the classifier's
      device through the classifier's *predict* preprocessing (what ART's ``loss_gradient`` attacks through),
      with input-only gradients and no host round trip; it equals ART's ``generate`` when ``num_random_init=0``.
    - **general path**: any other ``EvasionAttack`` (DeepFool, Carlini-Wagner, Square, AutoPGD, ...) runs its own
      ``generate`` on each batch, through numpy, with its progress bar turned off (as ART's trainers do).

    As ART's ``AdversarialTrainer``, it takes ``attacks`` (one attack or a list, used in turn, one per batch) and a
    ``ratio``; ``attack=`` is the single-attack spelling of ``attacks=``. A targeted attack raises
    ``NotImplementedError`` in ``fit``, as in ART. An attack must craft against the weights being trained: one
    whose estimator wraps the classifier's ``nn.Module`` is live (ART's ``AutoProjectedGradientDescent`` with a
    ``loss_type`` builds such a wrapper); one on another model is refused unless ``allow_transfer=True`` asks for
    transfer-style training on purpose. An L-inf eps beyond the clip range is accepted with a warning.

    Saliency target: the default takes the saliency of the *true label* on the SGT term's input (the ASGT paper's
    text: the mask keeps what supports the correct class; SGT's reference code, ``Saliency(model).attribute(data,
    target)`` in ayaabdelsalam91/saliency_guided_training, does the same on clean inputs);
    ``saliency_target="prediction"`` takes the saliency of the model's prediction, as the ASGT co-authors'
    training code (niniack/continualTrain) does.

    Each epoch's history record holds the mean over its batches of the loss's unweighted terms
    (:attr:`loss_terms`): ``ce_clean`` (the classifier's loss of ``f(x)``), ``ce_adv`` (of ``f(x_adv)``),
    ``kl_trades`` (TRADES' ``KL(p(x) || p(x_adv))``) and ``kl_saliency`` (the SGT term, 0 with ``kl_weight=0``),
    those of the objective: ``"asgt"`` records ``ce_clean``, ``ce_adv``, ``kl_saliency``, with
    ``loss = 2 * ((1 - ratio) * ce_clean + ratio * ce_adv) + kl_weight * kl_saliency``; ``"madry"`` records
    ``ce_adv``, ``kl_saliency``; ``"trades"`` records ``ce_clean``, ``kl_trades``, ``kl_saliency``, with
    ``loss = ce_clean + beta * kl_trades + kl_weight * kl_saliency``.

    | Paper link: https://arxiv.org/abs/2405.06278

    :param classifier: The ``PyTorchClassifier`` to train (in place).
    :param attacks: An ART ``EvasionAttack`` on ``classifier``, or a list of them used in turn.
    :param mask_fraction: Fraction of input positions masked per sample, in (0, 1).
    :param kl_weight: Weight of the KL term, >= 0. With 0 (mixed adversarial training, ``CE(x) + CE(x_adv)``) no
        saliency map and no masked input are computed.
    :param saliency: ``"gradient"`` (default), a Captum attribution class or instance, or a callable.
    :param absolute: Rank positions by absolute instead of signed saliency.
    :param fill: ``"uniform"`` (default), ``"uniform_channel"``, ``"mean"``, ``"zero"``, a float or a callable.
    :param saliency_target: ``"label"`` (default) or ``"prediction"``: whose saliency on ``x_adv`` is used.
    :param allow_transfer: Accept attacks whose gradients come from another model (transfer-style training).
    :param ratio: Weight of the adversarial task term against the clean one, in (0, 1]:
        ``L = 2 * ((1 - ratio) * CE(x) + ratio * CE(x_adv)) + kl_weight * KL``; 0.5 (default) is the paper's loss,
        1 trains on adversarial inputs only (see :func:`art_sgt.losses.asgt_loss`).
    :param saliency_of: ``"log_prob"`` (default) or ``"logit"``: what the saliency differentiates.
    :param attack: One attack, the single-attack spelling of ``attacks``.
    :param amp: ``None`` (default, float32) or ``"bf16"`` autocast (see
        :class:`~art_sgt.trainers.base.SaliencyTrainerBase` and :doc:`/performance`).
    :param channels_last: Channels-last inputs and weights (converted in place).
    :param compile: ``torch.compile`` the model's forwards.
    :param objective: ``"asgt"`` (default, the paper's), ``"madry"`` or ``"trades"`` (see above and
        :data:`art_sgt.losses.OBJECTIVES`).
    :param sgt_input: ``"adversarial"`` (default) or ``"clean"``: the input whose masked copy the SGT term compares
        it with (:data:`art_sgt.losses.SGT_INPUTS`).
    :param beta: TRADES' weight of ``KL(p(x) || p(x_adv))``, >= 0, only with ``objective="trades"`` (``None``:
        :data:`art_sgt.losses.TRADES_BETA`).
    :param craft: ``"kl"`` or ``"attack"`` (:data:`TRADES_CRAFTS`), only with ``objective="trades"`` (``None``:
        ``"kl"``, which needs every attack to be an L-inf PGD, BIM or FGSM on the fast path, without
        ``random_eps``).
    :raises TypeError: If no attack, or both ``attacks`` and ``attack``, are given, or an argument has the wrong
        type.
    :raises ValueError: If an attack is not an ART ``EvasionAttack`` or crafts against another model, ``ratio``
        is outside (0, 1] (or not 0.5 with another objective than ``"asgt"``), ``beta`` or ``craft`` is given
        without ``objective="trades"``, ``craft="kl"`` meets an attack it cannot read, or another argument is out
        of range.

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
    >>> trades = SaliencyGuidedAdversarialTrainer(classifier, attack, objective="trades", beta=6.0, kl_weight=0.5)
    >>> trades.fit(x, y, nb_epochs=1, batch_size=8, seed=0, verbose=False)
    >>> trades.objective, trades.beta, trades.craft, trades.sgt_input
    ('trades', 6.0, 'kl', 'adversarial')
    """

    def __init__(
        self,
        classifier: PyTorchClassifier,
        attacks: EvasionAttack | Sequence[EvasionAttack] | None = None,
        mask_fraction: float = 0.5,
        kl_weight: float = 1.0,
        saliency: str | type | Attribution | Callable[..., torch.Tensor] = "gradient",
        absolute: bool = False,
        fill: Fill = "uniform",
        saliency_target: str = "label",
        allow_transfer: bool = False,
        ratio: float = 0.5,
        saliency_of: str = "log_prob",
        attack: EvasionAttack | None = None,
        amp: str | None = None,
        channels_last: bool = False,
        compile: bool = False,  # noqa: A002 - the option's name is torch.compile's
        objective: str = "asgt",
        sgt_input: str = "adversarial",
        beta: float | None = None,
        craft: str | None = None,
    ) -> None:
        super().__init__(
            classifier, mask_fraction, kl_weight, saliency, absolute, fill, saliency_of, amp, channels_last, compile
        )
        self.objective = check_choice("objective", objective, OBJECTIVES)
        self.sgt_input = check_choice("sgt_input", sgt_input, SGT_INPUTS)
        trades = self.objective == "trades"
        for name, value in (("beta", beta), ("craft", craft)):
            if value is not None and not trades:
                raise ValueError(f"{name} is an option of objective='trades', got objective={self.objective!r}.")
        #: TRADES' weight of ``KL(p(x) || p(x_adv))`` (``None`` for the other objectives).
        self.beta = (TRADES_BETA if beta is None else check_non_negative("beta", beta)) if trades else None
        #: How TRADES crafts ``x_adv`` (``None`` for the other objectives).
        self.craft = (check_choice("craft", "kl" if craft is None else craft, TRADES_CRAFTS)) if trades else None
        if (attacks is None) == (attack is None):
            raise TypeError(
                "pass the attack(s) once, as attacks=... (or attack=... for one), got "
                f"{'neither' if attacks is None else 'both'}."
            )
        allow_transfer = check_bool("allow_transfer", allow_transfer)
        self.attacks = check_attacks(attacks if attack is None else attack, classifier, allow_transfer)
        self.saliency_target = check_choice("saliency_target", saliency_target, ("label", "prediction"))
        self.ratio = check_fraction("ratio", ratio, high_inclusive=True)
        if self.ratio != 0.5 and self.objective != "asgt":
            raise ValueError(
                f"ratio weighs ASGT's clean and adversarial terms; objective={self.objective!r} has its own "
                f"weighting, so ratio must stay 0.5, got {self.ratio}."
            )
        if self.craft == "kl":
            for attack in self.attacks:
                self._kl_params(attack)
        #: How ``x_adv`` is crafted when not by the attack itself: ``None``, or N-FGSM's parameters
        #: ``{"method": "n-fgsm", "eps_step": ..., "noise": ...}`` (absolute values) set by :meth:`fast`.
        self.single_step: dict[str, Any] | None = None

    @classmethod
    def fast(
        cls,
        classifier: PyTorchClassifier,
        eps: float,
        *,
        step: float = FAST_STEP,
        noise: float | None = FAST_NOISE,
        **trainer_kwargs: Any,
    ) -> SaliencyGuidedAdversarialTrainer:
        """Fast ASGT: the trainer with single-step adversarial examples (one input gradient per batch).

        The recipe of "Fast is better than free" (Wong, Rice and Kolter, ICLR 2020) in ASGT: ``x_adv`` is one
        signed-gradient step from a random point near ``x``, so crafting costs one forward and backward instead of
        PGD's ten or more. Two single steps, chosen by ``noise``:

        - ``noise=None`` (default): FGSM with a random start (FGSM-RS): ``u`` uniform in the L-inf eps ball, one
          step of ``step * eps``, projected back onto the ball. The trainer's attack is ART's
          ``ProjectedGradientDescent(norm=inf, eps=eps, eps_step=step * eps, max_iter=1, num_random_init=1)``,
          crafted on the on-device fast path.
        - ``noise=k``: N-FGSM (de Jorge et al., NeurIPS 2022): ``u`` uniform in ``[-k eps, k eps]``, one step of
          ``step * eps``, **not** projected (the perturbation may reach ``(k + step) eps``), crafted by
          :func:`art_sgt.attacks.n_fgsm` (ART has no such attack), with its parameters in :attr:`single_step`
          (the paper uses ``k=2``, ``step=1``). The trainer's attack is still the ART attack above: it names the
          training ``eps`` (which ``fit``'s default ``robust_eval`` reads) and the step.

        Single-step training risks *catastrophic overfitting*: the model learns to resist the one step it trains
        against while its accuracy under multi-step PGD collapses. Train with
        ``fit(..., robust_validation=(x_val, y_val), keep_best="robust")`` on a held-out part of the training set:
        the guard warns (``CatastrophicOverfittingWarning``) when robust accuracy collapses, and the model ends with
        the best epoch's weights.

        The default step, and why the guard stays on whatever the step, are measured in :doc:`/fast_training`.

        | Paper links: https://arxiv.org/abs/2001.03994 (Wong et al.), https://arxiv.org/abs/2202.01181 (N-FGSM)

        :param classifier: The ``PyTorchClassifier`` to train (in place).
        :param eps: The L-inf training radius, > 0, in the classifier's input units.
        :param step: The step, as a multiple of ``eps``, > 0 (default :data:`FAST_STEP`; Wong et al. use 1.25 with
            ``noise=None``, N-FGSM uses 1).
        :param noise: ``None`` (default, FGSM-RS), or N-FGSM's noise half-width as a multiple of ``eps``, >= 0.
        :param trainer_kwargs: The other parameters of the trainer (``mask_fraction``, ``kl_weight``, ``ratio``,
            ...), but not ``attacks`` or ``attack``: the recipe builds its own.
        :return: The trainer.
        :raises TypeError: If ``attacks`` or ``attack`` is given, or an argument has the wrong type.
        :raises ValueError: If ``eps`` or ``step`` is not > 0, ``noise`` is negative, or (with ``noise``) the
            classifier cannot be attacked on the fast path (a loss other than plain cross-entropy, or preprocessing
            outside torch).

        >>> import numpy as np, torch
        >>> from art.estimators.classification import PyTorchClassifier
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> classifier = PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 2, 2),
        ...     nb_classes=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), clip_values=(0.0, 1.0))
        >>> trainer = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.2)
        >>> attack = trainer.attack
        >>> type(attack).__name__, attack.eps, round(attack.eps_step, 6), attack.max_iter, attack.num_random_init
        ('ProjectedGradientDescent', 0.2, 0.15, 1, 1)
        >>> trainer.uses_fast_path, trainer.single_step
        (True, None)
        >>> SaliencyGuidedAdversarialTrainer.fast(classifier, eps=0.2, step=1.0, noise=2.0).single_step
        {'method': 'n-fgsm', 'eps_step': 0.2, 'noise': 0.4}
        """
        from art.attacks.evasion import ProjectedGradientDescent

        given = [name for name in ("attacks", "attack") if name in trainer_kwargs]
        if given:
            raise TypeError(f"fast builds its own single-step attack from eps and step; do not pass {given[0]}.")
        eps = check_positive("eps", eps)
        step = check_positive("step", step)
        noise = None if noise is None else check_non_negative("noise", noise)
        attack = ProjectedGradientDescent(
            classifier, norm=np.inf, eps=eps, eps_step=step * eps, max_iter=1, num_random_init=1, verbose=False
        )
        trainer = cls(classifier, attack, **trainer_kwargs)
        if noise is not None:
            if not trainer.uses_fast_path:
                raise ValueError(
                    "noise (N-FGSM) needs a classifier attacked on the fast path (a plain CrossEntropyLoss and "
                    "preprocessing in torch); pass noise=None for FGSM with a random start through ART."
                )
            if trainer.craft == "kl":
                raise ValueError(
                    "noise (N-FGSM) crafts on the cross-entropy, TRADES' craft='kl' on its KL term; pass "
                    "craft='attack' or noise=None."
                )
            trainer.single_step = {"method": "n-fgsm", "eps_step": step * eps, "noise": noise * eps}
        return trainer

    @property
    def attack(self) -> Any:
        """The first (or only) attack, for code written for the single-attack spelling."""
        return self.attacks[0]

    @property
    def uses_fast_path(self) -> bool:
        """Whether ``x_adv`` of the first attack is crafted by the on-device PGD fast path (else by ``generate``)."""
        return self._pgd_params(self.attacks[0]) is not None

    def _config(self) -> dict[str, Any]:
        return {
            **super()._config(),
            "attacks": [attack_config(a) for a in self.attacks],
            "ratio": self.ratio,
            "saliency_target": self.saliency_target,
            "single_step": self.single_step,
            # recorded only when not the paper's: a run of the paper's objective records what one that never names
            # these options does
            **({"objective": self.objective, "beta": self.beta, "craft": self.craft} if self.beta is not None else {}),
            **({"objective": self.objective} if self.objective == "madry" else {}),
            **({"sgt_input": self.sgt_input} if self.sgt_input != "adversarial" else {}),
        }

    def _check_ready(self) -> None:
        targeted = [type(a).__name__ for a in self.attacks if getattr(a, "targeted", False)]
        if targeted:
            raise NotImplementedError(
                f"Adversarial training with targeted attacks is not implemented (as in ART), got {targeted[0]}."
            )
        for attack in self.attacks:
            silence(attack)

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """The terms of the objective's batch loss recorded in each epoch's history (see the class docstring)."""
        if self.objective == "madry":
            return ("ce_adv", "kl_saliency")
        if self.objective == "trades":
            return ("ce_clean", "kl_trades", "kl_saliency")
        return ("ce_clean", "ce_adv", "kl_saliency")

    def _batch_loss(self, x: torch.Tensor, y: torch.Tensor) -> BatchLoss:
        if self.objective != "asgt" or self.sgt_input != "adversarial":
            return self._objective_loss(x, y)
        x_adv = self._craft(x, y)
        if self.kl_weight == 0:
            # Mixed adversarial training: the KL term is zero whatever the mask, so neither saliency nor the masked
            # forward is computed (KL(p || p) = 0 exactly keeps asgt_loss the one place the loss is written).
            logits, adv_logits = self._train_logits(x, x_adv)
            masked_logits = adv_logits
        else:
            fused_adv_logits, x_masked = self._saliency_mask(x_adv, y if self.saliency_target == "label" else None)
            logits, adv_logits, masked_logits = self._train_logits(x, x_adv, x_masked, known={1: fused_adv_logits})
        loss = asgt_loss(logits, adv_logits, masked_logits, y, self.kl_weight, ratio=self.ratio, **self._loss_options())
        terms = self._terms(
            y, ce={"ce_clean": logits, "ce_adv": adv_logits}, kl={"kl_saliency": (adv_logits, masked_logits)}
        )
        return BatchLoss(loss, logits, terms)

    def _objective_loss(self, x: torch.Tensor, y: torch.Tensor) -> BatchLoss:
        """A batch's loss for the objectives and SGT inputs other than the paper's (one train-mode forward of
        each input the loss needs; the saliency forward is reused when it can be)."""
        x_adv = self._craft_trades(x) if self.craft == "kl" else self._craft(x, y)
        inputs = {"clean": x, "adversarial": x_adv}
        names = ["adversarial"] if self.objective == "madry" else ["clean", "adversarial"]
        known: dict[int, torch.Tensor | None] = {}
        if self.kl_weight != 0:
            if self.sgt_input not in names:
                names.append(self.sgt_input)
            known[names.index(self.sgt_input)], inputs["masked"] = self._saliency_mask(
                inputs[self.sgt_input], y if self.saliency_target == "label" else None
            )
            names.append("masked")
        logits = dict(zip(names, self._train_logits(*(inputs[name] for name in names), known=known)))
        adv, options = logits["adversarial"], self._loss_options()
        # with kl_weight 0 the SGT term is KL(p || p) = 0 exactly: the losses stay the one place they are written
        sgt, masked = (logits[self.sgt_input], logits["masked"]) if self.kl_weight != 0 else (adv, adv)
        ce = {"ce_adv": adv}
        kl = {"kl_saliency": (sgt, masked)}
        if self.objective == "asgt":
            loss = asgt_loss(
                logits["clean"], adv, masked, y, self.kl_weight, ratio=self.ratio, sgt_logits=sgt, **options
            )
            ce["ce_clean"] = logits["clean"]
        elif self.objective == "madry":
            loss = madry_sgt_loss(adv, masked, y, self.kl_weight, sgt_logits=sgt, **options)
        else:
            loss = trades_sgt_loss(
                logits["clean"], adv, masked, y, self.beta, self.kl_weight, sgt_logits=sgt, **options
            )
            ce["ce_clean"] = logits["clean"]
            kl["kl_trades"] = (logits["clean"], adv)
        terms = self._terms(y, ce=ce, kl=kl)
        if "clean" not in logits:  # Madry's loss has no clean forward: accuracy from an eval-mode one, off the graph
            with torch.no_grad(), eval_mode(self._net):
                logits["clean"] = self._net(x)
        return BatchLoss(loss, logits["clean"], terms)

    def _kl_params(self, attack: Any) -> Any:
        """The attack's parameters for TRADES' KL crafting, or a ValueError saying why it cannot drive it."""
        params = self._pgd_params(attack)
        if params is None or params.norm != "inf" or params.random_eps:
            raise ValueError(
                "craft='kl' (TRADES' crafting on its KL term) reads eps, eps_step and max_iter from an L-inf "
                "ProjectedGradientDescent, BasicIterativeMethod or FastGradientMethod on this classifier without "
                f"random_eps (see art_sgt.attacks.pgd_params_from_art), got {type(attack).__name__}; pass "
                "craft='attack' to craft with the attack's own loss, as ART's TRADES trainer does."
            )
        return params

    def _craft_trades(self, x: torch.Tensor) -> torch.Tensor:
        params = self._kl_params(self.attacks[self._position[2] % len(self.attacks)])
        return trades_pgd(
            self._attack_net, x, params.eps, params.eps_step, params.max_iter, self._clip, self._outputs, self._noise
        )

    def _pgd_params(self, attack: Any) -> Any:
        return pgd_params_from_art(attack) if attack.estimator is self._classifier else None

    def _craft(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        attack = self.attacks[self._position[2] % len(self.attacks)]
        params = self._pgd_params(attack)
        if self.single_step is not None and params is not None:
            step = self.single_step
            return n_fgsm(
                self._attack_net, x, y, step["eps_step"], step["noise"], params.clip_values, generator=self._noise
            )
        if params is not None:
            return pgd(self._attack_net, x, y, **params.pgd_kwargs(), generator=self._noise)
        training = self._classifier.model.training
        labels = np.eye(self._classifier.nb_classes, dtype=np.float32)[y.cpu().numpy()]
        x_adv = attack.generate(x.detach().cpu().numpy(), y=labels)
        self._classifier.model.train(training)  # ART's attacks leave the model in eval mode
        return torch.as_tensor(x_adv, dtype=x.dtype, device=x.device)
