"""Batch sources feeding the one training loop: arrays already on the device, or an ART DataGenerator."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["ArrayBatches", "GeneratorBatches", "batch_bounds"]

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]
IndexedBatch = tuple[int, torch.Tensor, torch.Tensor]


def batch_bounds(n: int, batch_size: int, drop_last: bool, min_size: int, world_size: int) -> list[tuple[int, int]]:
    """Where each batch of an epoch of ``n`` samples starts and ends.

    A last batch smaller than ``batch_size`` is dropped with ``drop_last``. Otherwise, when it is smaller than
    ``min_size`` (2 samples per rank for a model with BatchNorm, which cannot normalise one sample; 1 per rank
    else), it is merged into the batch before it in one process, and skipped under ``torch.distributed`` (where
    every rank must stay in step).

    :param n: Number of samples.
    :param batch_size: Global batch size.
    :param drop_last: Drop an incomplete last batch (ART's ``drop_last``).
    :param min_size: Smallest usable global batch.
    :param world_size: Number of processes.
    :return: ``(start, end)`` pairs.
    :raises ValueError: If no batch is left to train on.
    """
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    last = bounds[-1][1] - bounds[-1][0]
    if last < batch_size and drop_last:
        bounds.pop()
    elif last < min_size and world_size == 1 and len(bounds) > 1:
        bounds[-2:] = [(bounds[-2][0], n)]
        logger.info("The last batch holds %d sample(s): merged into the batch before it.", last)
    elif last < min_size:
        bounds.pop()
    if not bounds:
        raise ValueError(
            f"x must give at least one batch to train on: {n} sample(s) with batch_size {batch_size}, "
            f"drop_last={drop_last} and at least {min_size} sample(s) per batch leave none."
        )
    return bounds


class ArrayBatches:
    """Shuffled mini-batches of tensors that already live on the training device.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a run resumed at any batch replays exactly.
    Under ``torch.distributed`` each global batch of ``batch_size`` samples is split evenly across ranks. The
    batches' bounds are fixed before training (:func:`batch_bounds`).

    :param x: Inputs on the device.
    :param y: Class indices on the device.
    :param bounds: The batches' ``(start, end)`` in the shuffled order.
    :param seed: Base seed of the shuffling.
    :param rank: This process's rank.
    :param world_size: Number of processes.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        bounds: list[tuple[int, int]],
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.x, self.y, self.bounds, self.seed = x, y, bounds, seed
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return len(self.bounds)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[IndexedBatch]:
        """Yield the batches of ``epoch``, starting at batch index ``start``.

        :param epoch: The epoch number (selects the shuffle).
        :param start: How many batches of this epoch were already done.
        :return: An iterator of ``(batch index, x, y)``.
        """
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.seed + epoch))
        order = order.to(self.x.device)
        for b, (first, end) in enumerate(self.bounds[start:], start=start):
            idx = order[first:end]
            if self.world_size > 1:
                idx = idx.tensor_split(self.world_size)[self.rank]
            yield b, self.x.index_select(0, idx), self.y.index_select(0, idx)


class GeneratorBatches:
    """Batches from an ART ``DataGenerator``, checked and moved to the device one at a time.

    A batch smaller than ``min_size`` (one sample, for a model with BatchNorm) is skipped with a warning; with
    ``drop_last``, so is any batch smaller than the generator's ``batch_size`` (silently, as ``fit`` drops it).

    :param generator: An ``art.data_generators.DataGenerator`` with a known ``size``.
    :param convert: Validates one ``(x, y)`` numpy batch and returns device tensors.
    :param min_size: Smallest usable batch.
    :param drop_last: Skip the batches smaller than ``generator.batch_size``.
    :raises ValueError: If the generator's ``size`` is ``None`` (the number of batches per epoch is unknown).
    """

    def __init__(
        self,
        generator: Any,
        convert: Callable[[np.ndarray, np.ndarray], Batch],
        min_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if generator.size is None:
            raise ValueError(
                "generator must have a known size (DataGenerator(size=...)): an epoch is size / batch_size batches."
            )
        self.generator = generator
        self.convert = convert
        self.min_size = min_size
        self.drop_last = drop_last

    def __len__(self) -> int:
        return math.ceil(self.generator.size / self.generator.batch_size)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[IndexedBatch]:
        """Yield the batches of one epoch; on resume, the first ``start`` batches are drawn and skipped.

        :param epoch: The epoch number (unused: the generator owns its order).
        :param start: How many batches of this epoch were already done.
        :return: An iterator of ``(batch index, x, y)``.
        """
        for b in range(len(self)):
            x_batch, y_batch = self.generator.get_batch()
            if b < start or (self.drop_last and len(x_batch) < self.generator.batch_size):
                continue
            if len(x_batch) < self.min_size:
                logger.warning("Skipped a generator batch of %d sample(s) (BatchNorm needs 2 or more).", len(x_batch))
                continue
            yield (b, *self.convert(np.asarray(x_batch), np.asarray(y_batch)))
