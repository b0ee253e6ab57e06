"""This process's place under ``torch.distributed``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Ranks"]


@dataclass(frozen=True)
class Ranks:
    """This process's place under ``torch.distributed`` (``rank 0 of 1`` without it)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> Ranks:
        """The ranks of the current process group, if one is initialised.

        :return: The ranks.
        """
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def collective_device(self, device: torch.device) -> torch.device:
        """Where tensors of a collective live (CUDA for NCCL, else CPU).

        :param device: The training device.
        :return: The device.
        """
        return device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")
