"""Batch sources feeding the one training loop: arrays already on the device, or an ART DataGenerator."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["ArrayBatches", "GeneratorBatches"]

Batch = tuple[torch.Tensor, torch.Tensor]


class ArrayBatches:
    """Shuffled mini-batches of tensors that already live on the training device.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a run resumed at any batch replays exactly.
    Under ``torch.distributed`` each global batch of ``batch_size`` samples is split evenly across ranks; a last
    batch with fewer samples than ranks is skipped.

    :param x: Inputs on the device.
    :param y: Class indices on the device.
    :param batch_size: Global batch size.
    :param seed: Base seed of the shuffling.
    :param rank: This process's rank.
    :param world_size: Number of processes.
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        self.x, self.y = x, y
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Yield the batches of ``epoch``, starting at batch index ``start``.

        :param epoch: The epoch number (selects the shuffle).
        :param start: How many batches of this epoch were already done.
        :return: An iterator of ``(x, y)`` batches.
        """
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.seed + epoch))
        order = order.to(self.x.device)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            if self.world_size > 1:
                if len(idx) < self.world_size:
                    # a last batch smaller than the number of ranks would leave a rank with nothing to average
                    # over (a NaN loss, and the other ranks waiting for it forever): every rank skips it alike
                    continue
                idx = idx.tensor_split(self.world_size)[self.rank]
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)


class GeneratorBatches:
    """Batches from an ART ``DataGenerator``, checked and moved to the device one at a time.

    :param generator: An ``art.data_generators.DataGenerator``.
    :param convert: Validates one ``(x, y)`` numpy batch and returns device tensors.
    """

    def __init__(self, generator: Any, convert: Callable[[np.ndarray, np.ndarray], Batch]) -> None:
        self.generator = generator
        self.convert = convert

    def __len__(self) -> int:
        return math.ceil(self.generator.size / self.generator.batch_size)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Yield the batches of one epoch; on resume, the first ``start`` batches are drawn and skipped.

        :param epoch: The epoch number (unused: the generator owns its order).
        :param start: How many batches of this epoch were already done.
        :return: An iterator of ``(x, y)`` batches.
        """
        for b in range(len(self)):
            x_batch, y_batch = self.generator.get_batch()
            if b >= start:
                yield self.convert(np.asarray(x_batch), np.asarray(y_batch))
