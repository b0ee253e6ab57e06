"""Hardware options of a network's forward: bfloat16 autocast, channels-last memory format, ``torch.compile``.

Pure torch (no ART): :class:`Autocast` runs a network under ``torch.autocast`` and hands back float32 outputs
(the reproduction's gpu profile wraps its networks in it), and :class:`Accelerated` adds the channels-last input
layout and a compiled forward on top, for the trainers' forwards (``amp``, ``channels_last`` and ``compile`` of
:class:`~art_sgt.trainers.sgt.SaliencyGuidedTrainer` and
:class:`~art_sgt.trainers.asgt.SaliencyGuidedAdversarialTrainer`). What each costs or saves on the machine
that measured it is in ``results/bench_hardware_options.json`` (``benchmarks/bench_hardware_options.py``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from art_sgt._validation import check_bool

__all__ = ["AMP_DTYPES", "Autocast", "Accelerated", "check_amp", "to_channels_last"]

#: The ``amp`` values offered and their autocast dtype. float16 is not offered: its gradients underflow without
#: a ``GradScaler`` in the training loop, which bfloat16 (float32's exponent range) does not need.
AMP_DTYPES = {"bf16": torch.bfloat16}


def check_amp(name: str, value: Any) -> str | None:
    """Check an ``amp`` option: ``None`` (float32) or ``"bf16"``.

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :return: The value.
    :raises TypeError: If ``value`` is neither ``None`` nor a string.
    :raises ValueError: If ``value`` is a string other than ``"bf16"`` (``"fp16"`` is refused with the reason).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be None or 'bf16', got {type(value).__name__}.")
    if value in AMP_DTYPES:
        return value
    hint = (
        " (float16 autocast needs a GradScaler in the training loop, which the trainers do not run; bfloat16 "
        "keeps float32's exponent range and needs none)"
        if value.lower() in ("fp16", "float16", "half")
        else ""
    )
    raise ValueError(f"{name} must be None or 'bf16', got {value!r}{hint}.")


class Autocast(nn.Module):
    """Runs a network under ``torch.autocast`` (bfloat16 by default) and returns float32 outputs.

    Outputs leave in float32 because the losses, the KL term and ART's predictions (numpy has no bfloat16)
    expect it. The network's weights stay float32; autocast casts them per operation. Its ``state_dict`` keys
    are the network's prefixed with ``network.``: save ``wrapper.network.state_dict()`` for the network's own.

    :param network: The network.
    :param dtype: The autocast dtype.

    >>> import torch
    >>> net = Autocast(torch.nn.Linear(3, 2))
    >>> net(torch.ones(4, 3)).dtype
    torch.float32
    """

    def __init__(self, network: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.network = network
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: Inputs. :return: Float32 outputs."""
        with torch.autocast(device_type=x.device.type, dtype=self.dtype):
            return self.network(x).float()


def to_channels_last(module: nn.Module) -> nn.Module:
    """Convert the 4-d weights of ``module`` to the channels-last memory format, in place.

    The parameters stay the same objects (an optimizer holding them keeps working), with the same values, shapes
    and ``state_dict`` keys; only their strides change.

    :param module: The module.
    :return: ``module``.
    """
    return module.to(memory_format=torch.channels_last)


class Accelerated(nn.Module):
    """A network's forward with the trainers' hardware options; float32 outputs whatever the options.

    The network is held as the only child module (so ``train()``/``eval()``, ``parameters()`` and hooks reach
    it as before); the compiled forward is kept outside the module tree, so no ``_orig_mod.`` key appears
    anywhere. Nothing here changes the network except ``channels_last``, which converts its weights' memory
    layout in place (see :func:`to_channels_last`).

    :param network: The network.
    :param amp: ``None`` (float32) or ``"bf16"``: run the forward (and so its backward) under bfloat16 autocast.
    :param channels_last: Give 4-d inputs and weights the channels-last memory format.
    :param compile: Run the network through ``torch.compile(network, dynamic=False)`` (compiled on the first
        call of each input shape and mode; recompiled when one changes).
    :raises TypeError: If ``network`` is not a module or an option has the wrong type.
    :raises ValueError: If ``amp`` is not ``None`` or ``"bf16"``.
    """

    def __init__(
        self, network: nn.Module, amp: str | None = None, channels_last: bool = False, compile: bool = False
    ) -> None:
        if not isinstance(network, nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        super().__init__()
        self.amp = check_amp("amp", amp)
        self.channels_last = check_bool("channels_last", channels_last)
        self.compile = check_bool("compile", compile)
        self.network = to_channels_last(network) if self.channels_last else network
        forward = network if self.amp is None else Autocast(network, AMP_DTYPES[self.amp])
        # a plain attribute (a tuple), not a child module: the network stays the only child, and a compiled
        # module's keys would carry an "_orig_mod." prefix
        self._forward = (torch.compile(forward, dynamic=False) if self.compile else forward,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: Inputs. :return: The network's outputs (float32 under ``amp``)."""
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with _backward_twice(self.compile):
            return self._forward[0](x)


def _backward_twice(compiled: bool) -> contextlib.AbstractContextManager:
    """Compile backwards that may run twice on one graph (``retain_graph=True``): the trainers take the saliency
    and the loss from one forward. AOTAutograd's default donates buffers to the backward, which allows one run."""
    if not compiled:
        return contextlib.nullcontext()
    import torch._functorch.config as functorch_config  # noqa: PLC2701 - torch has no public switch for it

    return functorch_config.patch(donated_buffer=False)
