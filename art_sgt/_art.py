"""Where art-sgt meets ART: checking a classifier and turning it into a differentiable torch module."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["check_pytorch_classifier", "PreprocessedModel", "require_pytorch_classifier"]


def require_pytorch_classifier(name: str, classifier: Any) -> None:
    """Raise a ``TypeError`` naming ``name`` unless ``classifier`` is an ART ``PyTorchClassifier``.

    :param name: The parameter's name, used in the error message.
    :param classifier: The object to check.
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier``.
    """
    from art.estimators.classification import PyTorchClassifier

    if not isinstance(classifier, PyTorchClassifier):
        raise TypeError(
            f"{name} must be an art.estimators.classification.PyTorchClassifier, got {type(classifier).__name__}."
        )


def check_pytorch_classifier(name: str, classifier: Any, need_optimizer: bool = False) -> None:
    """Check that ``classifier`` is a ``PyTorchClassifier`` usable by art-sgt.

    :param name: The parameter's name, used in the error message.
    :param classifier: The object to check.
    :param need_optimizer: Also require an optimizer (for training).
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or its preprocessing is not torch.
    :raises ValueError: If an optimizer is needed but missing, or ``nb_classes`` < 2.
    """
    require_pytorch_classifier(name, classifier)
    if need_optimizer and classifier.optimizer is None:
        raise ValueError(f"{name} must have an optimizer to be trained; pass optimizer=... to PyTorchClassifier.")
    if classifier.nb_classes < 2:
        raise ValueError(f"{name} must have nb_classes >= 2, got {classifier.nb_classes}.")
    PreprocessedModel.preprocessing_steps(classifier)


class _Standardise(nn.Module):
    def __init__(self, mean: Any, std: Any, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32), device=device))
        self.register_buffer("inv_std", 1.0 / torch.as_tensor(np.asarray(std, dtype=np.float32), device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


class PreprocessedModel(nn.Module):
    """The classifier's preprocessing followed by its model, as one differentiable module.

    Inputs are what the user hands the ART classifier (before preprocessing); outputs are logits. ART's
    mean/std standardisation is folded into a precomputed affine step (and dropped when it is the identity);
    any other PyTorch preprocessor runs through its differentiable ``forward``.

    :param classifier: An ART ``PyTorchClassifier``.
    :param apply: ``"fit"`` or ``"predict"``: which of ART's preprocessing flags to honour.
    """

    def __init__(self, classifier: Any, apply: str = "fit") -> None:
        super().__init__()
        self.model = classifier.model
        self._steps = self.preprocessing_steps(classifier, apply)
        self.standardise = nn.ModuleList([s for s in self._steps if isinstance(s, nn.Module)])

    @staticmethod
    def preprocessing_steps(classifier: Any, apply: str = "fit") -> list[Any]:
        """The preprocessing steps of ``classifier`` as torch callables, identities removed.

        :param classifier: An ART ``PyTorchClassifier``.
        :param apply: ``"fit"`` or ``"predict"``.
        :return: A list of callables ``x -> x``.
        :raises TypeError: If a preprocessor cannot run in torch.
        """
        from art.defences.preprocessor.preprocessor import PreprocessorPyTorch
        from art.preprocessing.standardisation_mean_std.pytorch import StandardisationMeanStdPyTorch

        steps: list[Any] = []
        for op in classifier.preprocessing_operations or []:
            if not (op.apply_fit if apply == "fit" else op.apply_predict):
                continue
            if isinstance(op, StandardisationMeanStdPyTorch):
                mean, std = np.asarray(op.mean, dtype=np.float32), np.asarray(op.std, dtype=np.float32)
                if np.all(mean == 0.0) and np.all(std == 1.0):
                    continue
                steps.append(_Standardise(mean, std, classifier.device))
            elif isinstance(op, PreprocessorPyTorch):
                steps.append(lambda x, _op=op: _op.forward(x, None)[0])
            else:
                raise TypeError(
                    f"classifier preprocessing {type(op).__name__} is not a PyTorch preprocessor, so it cannot "
                    "be applied differentiably on the device; use its PyTorch variant."
                )
        return steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self._steps:
            x = step(x)
        return self.model(x)
