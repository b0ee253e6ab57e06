"""Robust validation: accuracy under a fixed attack on a held-out set, measured after every epoch.

``fit(..., robust_validation=(x_val, y_val), robust_eval=attack)`` measures, with the weights of each epoch:
the clean accuracy on the set, the accuracy under ``robust_eval`` and the accuracy under a single step (FGSM) at
the same eps and norm, which the catastrophic-overfitting guard compares (:mod:`art_sgt.trainers._selection`).

Every measurement is batched, in eval mode, on the classifier's device and through its predict preprocessing.
PGD, BIM and FGSM on the classifier run on the on-device fast path (:func:`art_sgt.attacks.pgd`, equal to ART's
``generate`` without random start); any other ART evasion attack runs its own ``generate``. Random starts are
drawn from a generator seeded with :data:`EVAL_SEED` at every measurement, and ``generate`` runs with seeded
global generators that are restored afterwards: every epoch is measured with the same random draws, and the
training's random streams are never touched (a resumed run stays bitwise equal to an uninterrupted one).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from art_sgt._art import attack_config, attack_is_live, pgd_params_from_art, silence
from art_sgt.attacks import pgd
from art_sgt.saliency import eval_mode
from art_sgt.trainers._ranks import Ranks
from art_sgt.trainers._rng import seeded_global_rng

__all__ = [
    "EVAL_SEED",
    "DEFAULT_MAX_ITER",
    "batched_accuracy",
    "default_robust_eval",
    "RobustValidation",
    "check_robust_validation",
]

EVAL_SEED = 0
"""Seed of the random draws of every robust-validation measurement (the same at every epoch)."""

DEFAULT_MAX_ITER = 10
"""Iterations of the default robust-validation PGD (step eps / 4, no random start)."""

_BATCH = 512

Craft = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def batched_accuracy(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, craft: Craft | None = None, batch_size: int = _BATCH
) -> float:
    """Accuracy of ``net`` on ``(x, y)`` (or on ``craft(x, y)``), batch by batch, in eval mode.

    :param net: The model, preprocessing included.
    :param x: Inputs on the model's device.
    :param y: Class indices on the same device.
    :param craft: Optional ``(x_batch, y_batch) -> x_adv_batch`` applied to each batch before predicting.
    :param batch_size: Samples per forward.
    :return: The fraction of samples whose prediction is their label.
    """
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    with eval_mode(net):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            if craft is not None:
                xb = craft(xb, yb)
            with torch.no_grad():
                correct += (net(xb).argmax(1) == yb).sum()
    return int(correct) / len(x)


def default_robust_eval(classifier: Any, eps: float, norm: Any = "inf") -> Any:
    """The default robust-validation attack: ART's ``ProjectedGradientDescent`` with ``DEFAULT_MAX_ITER`` (10)
    steps of ``eps / 4`` and no random start (so it runs on the fast path, deterministically).

    :param classifier: The classifier being trained.
    :param eps: The attack radius, > 0.
    :param norm: ``"inf"`` (or ``numpy.inf``) or ``2`` (or ``"2"``).
    :return: The attack.
    :raises ValueError: If ``eps`` is not > 0.
    """
    from art.attacks.evasion import ProjectedGradientDescent

    if not eps > 0:
        raise ValueError(f"the robust-validation attack needs an eps > 0, got {eps!r}; pass robust_eval.")
    return ProjectedGradientDescent(
        classifier,
        norm=np.inf if norm in ("inf", np.inf) else 2,
        eps=eps,
        eps_step=eps / 4,
        max_iter=DEFAULT_MAX_ITER,
        num_random_init=0,
        verbose=False,
    )


def _eps_and_norm(attack: Any) -> tuple[float, Any] | None:
    """An attack's scalar eps and its L-inf or L2 norm, or ``None`` when it has no such pair."""
    params = pgd_params_from_art(attack)
    if params is not None:
        return params.eps, params.norm
    eps, norm = getattr(attack, "eps", None), getattr(attack, "norm", None)
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not eps > 0:
        return None
    if norm in ("inf", np.inf):
        return float(eps), "inf"
    if norm in ("2", 2):
        return float(eps), "2"
    return None


@dataclass
class RobustValidation:
    """A checked robust-validation set and its attacks.

    :param x: Inputs on the classifier's device.
    :param y: Class indices on the classifier's device.
    :param attack: The robust-validation attack (``robust_eval``, or :func:`default_robust_eval`).
    :param single_step: FGSM at the attack's eps and norm (ART's ``FastGradientMethod``), or ``None`` when the
        attack has no scalar eps with an L-inf or L2 norm (then no single-step accuracy, and no guard).
    """

    x: torch.Tensor
    y: torch.Tensor
    attack: Any
    single_step: Any | None

    def config(self) -> dict[str, Any]:
        """The attack's description, recorded in the run's configuration (compared on resume).

        :return: Plain values.
        """
        return attack_config(self.attack)

    def measure(self, net: nn.Module, ranks: Ranks) -> dict[str, float]:
        """The epoch's ``robust_val_clean_accuracy``, ``robust_val_accuracy`` and ``single_step_val_accuracy``.

        Under ``torch.distributed`` every rank measures the whole set and rank 0's values are broadcast, so
        every rank takes the same decisions.

        :param net: The classifier's model with its predict preprocessing.
        :param ranks: This process's ranks.
        :return: The accuracies, by record field.
        """
        classifier = self.attack.estimator
        devices = [self.x.device.index or 0] if self.x.device.type == "cuda" else []
        generator = torch.Generator(device=self.x.device)
        values: dict[str, float] = {"robust_val_clean_accuracy": batched_accuracy(net, self.x, self.y)}
        with seeded_global_rng(EVAL_SEED, devices):
            generator.manual_seed(EVAL_SEED)
            values["robust_val_accuracy"] = batched_accuracy(
                net, self.x, self.y, _crafter(self.attack, classifier, net, generator)
            )
            if self.single_step is not None:
                generator.manual_seed(EVAL_SEED)
                values["single_step_val_accuracy"] = batched_accuracy(
                    net, self.x, self.y, _crafter(self.single_step, classifier, net, generator)
                )
        if ranks.world > 1:
            shared = torch.tensor(list(values.values()), dtype=torch.float64)
            shared = shared.to(ranks.collective_device(self.x.device))
            torch.distributed.broadcast(shared, src=0)
            values = dict(zip(values, shared.tolist()))
        return values


def _crafter(attack: Any, classifier: Any, net: nn.Module, generator: torch.Generator) -> Craft:
    """How one batch is attacked: the fast path for PGD/BIM/FGSM on the classifier, else ``attack.generate``."""
    params = pgd_params_from_art(attack) if attack.estimator is classifier else None
    if params is not None:
        kwargs = params.pgd_kwargs()
        return lambda xb, yb: pgd(net, xb, yb, **kwargs, generator=generator)
    eye = np.eye(classifier.nb_classes, dtype=np.float32)

    def generate(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        x_adv = attack.generate(xb.detach().cpu().numpy(), y=eye[yb.cpu().numpy()])
        return torch.as_tensor(x_adv, dtype=xb.dtype, device=xb.device)

    return generate


def check_robust_validation(
    trainer: Any, data: tuple[torch.Tensor, torch.Tensor] | None, robust_eval: Any
) -> RobustValidation | None:
    """Check ``robust_eval`` of ``fit`` against the robust-validation set (see ``fit``'s docstring).

    Without ``robust_eval``, a trainer with training attacks (``trainer.attacks``, ASGT) is validated with
    :func:`default_robust_eval` at the first attack's eps and norm; a trainer without (SGT) needs ``robust_eval``.

    :param trainer: The trainer.
    :param data: ``robust_validation`` already checked and on the device, or ``None``.
    :param robust_eval: An ART ``EvasionAttack`` on the trainer's classifier, or ``None``.
    :return: The set and its attacks, or ``None`` without ``robust_validation``.
    :raises TypeError: If ``robust_eval`` is not an ART ``EvasionAttack``.
    :raises ValueError: For ``robust_eval`` without ``robust_validation``, an attack on another model or a
        targeted one, or no training attack to default to.
    """
    from art.attacks.attack import EvasionAttack
    from art.attacks.evasion import FastGradientMethod

    classifier = trainer.get_classifier()
    if data is None:
        if robust_eval is not None:
            raise ValueError("robust_eval is used only with robust_validation=(x_val, y_val); pass both or neither.")
        return None
    if robust_eval is None:
        attacks = getattr(trainer, "attacks", None)
        found = _eps_and_norm(attacks[0]) if attacks else None
        if found is None:
            raise ValueError(
                "robust_validation needs robust_eval (an ART evasion attack on this classifier, e.g. "
                "ProjectedGradientDescent): this trainer has no training attack with an eps to default to."
            )
        robust_eval = default_robust_eval(classifier, *found)
    elif not isinstance(robust_eval, EvasionAttack):
        raise TypeError(f"robust_eval must be an ART EvasionAttack or None, got {type(robust_eval).__name__}.")
    elif not attack_is_live(robust_eval, classifier):
        raise ValueError(
            f"robust_eval {type(robust_eval).__name__} takes its gradients from another model; build it on the "
            "classifier being trained."
        )
    elif getattr(robust_eval, "targeted", False):
        raise ValueError(f"robust_eval must be an untargeted attack, got a targeted {type(robust_eval).__name__}.")
    silence(robust_eval)
    found = _eps_and_norm(robust_eval)
    single_step = None
    if found is not None:
        eps, norm = found
        single_step = FastGradientMethod(classifier, norm=math.inf if norm == "inf" else 2, eps=eps, eps_step=eps)
    return RobustValidation(*data, robust_eval, single_step)
