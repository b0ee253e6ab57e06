"""The train-mode forward of several batches at once, and what a model's outputs are."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from art_sgt.losses import output_kind

__all__ = ["JointForward", "outputs_kind"]


class JointForward(nn.Module):
    """Train-mode outputs of several batches: one forward of their concatenation, or one forward each when a
    layer couples the samples of a batch (BatchNorm), so that one process and ``torch.distributed`` compute the
    same thing. ``DistributedDataParallel`` wraps this module, so every case is a single DDP forward.

    :param net: The model with its fit preprocessing.
    :param separate: Run one forward per batch.
    """

    def __init__(self, net: nn.Module, separate: bool) -> None:
        super().__init__()
        self.net, self.separate = net, separate

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(inputs) == 1 or self.separate:
            return tuple(self.net(t) for t in inputs)
        return tuple(self.net(torch.cat(inputs)).split([len(t) for t in inputs]))


def outputs_kind(outputs: torch.Tensor) -> str:
    """``"probabilities"`` for outputs that are rows of probabilities (a model ending in softmax), with a warning;
    else ``"logits"``.

    :param outputs: A batch of the model's train-mode outputs.
    :return: The kind.
    """
    if output_kind(outputs) == "probabilities":
        warnings.warn(
            "the model's outputs are probabilities (rows of non-negative values summing to 1), not logits: the KL "
            "term uses their logarithm. Train a model returning logits if the classifier's loss expects them.",
            stacklevel=4,
        )
        return "probabilities"
    return "logits"
