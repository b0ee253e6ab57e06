"""Reference networks for the SGT experiments, a factory for ART ``PyTorchClassifier`` wrappers, and loaders of
networks saved elsewhere (a TorchScript file, or a ``state_dict`` for a network built by your own code).

All networks take channels-first input ``(n, c, h, w)`` and return logits. ART's loaders return
channels-last images: convert them with :func:`to_channels_first`. Every activation is its own ``nn.ReLU``
module (none is reused, none is in-place) so that module-hooking attribution methods (captum's DeepLift and
guided backpropagation) work on these networks.
"""

from __future__ import annotations

import numbers
import os
import zipfile
from typing import Any

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from art_sgt._validation import (
    check_array,
    check_bool,
    check_choice,
    check_clip_values,
    check_fraction,
    check_non_negative,
    check_positive,
    check_positive_int,
)

__all__ = [
    "MnistCNN",
    "CifarCNN",
    "CifarResNet",
    "resnet18_cifar",
    "make_classifier",
    "to_channels_first",
    "is_torchscript_file",
    "load_torchscript",
    "load_state_dict_file",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_input(module: str, x: torch.Tensor, channels: int, spatial: tuple[int, int] | None) -> None:
    """Raise a clear error instead of a shape mismatch deep inside the network."""
    shape = tuple(x.shape)
    if not (len(shape) == 4 and shape[1] == channels and (spatial is None or shape[2:] == spatial)):
        size = "h, w" if spatial is None else f"{spatial[0]}, {spatial[1]}"
        last = len(shape) == 4 and shape[-1] == channels
        hint = " It looks channels-last: convert numpy images with to_channels_first." if last else ""
        raise ValueError(f"{module} expects x of shape (n, {channels}, {size}), got {shape}.{hint}")


class MnistCNN(nn.Module):
    """The MNIST network of the SGT paper (Ismail et al., NeurIPS 2021, reference ``Scripts/cnn.py``).

    ``conv(1->32, 3x3) - ReLU - conv(32->64, 3x3) - ReLU - maxpool 2 - [dropout 0.25] - flatten -
    linear(9216->128) - ReLU - [dropout 0.5] - linear(128->10)``.

    Differences from the reference: it returns logits where the reference returns ``log_softmax`` of them
    (cross-entropy, the argmax and the KL term of SGT are unchanged, because ``log_softmax`` is idempotent; the
    reference's saliency, Captum's ``Saliency`` on that output, differentiates ``log p_y``, which the trainers'
    default ``saliency_of="log_prob"`` reproduces), and its two dropout layers are off unless ``dropout=True``.
    They are off by default because dropout makes the masked and unmasked forward passes of SGT see different random
    networks, which adds noise to the KL term; ``dropout=True`` gives the reference network exactly. The
    parameter names (``conv1``, ``conv2``, ``fc1``, ``fc2``) are those of the reference, so its checkpoints
    load with ``load_state_dict``. The reference also standardises inputs with mean 0.1307 and std 0.3081:
    pass ``preprocessing=(0.1307, 0.3081)`` to :func:`make_classifier` to match it.

    :param dropout: Whether to include the reference's dropout layers (p=0.25 after pooling, p=0.5 after
        the first linear layer).

    >>> MnistCNN()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, dropout: bool = False) -> None:
        super().__init__()
        self.dropout = check_bool("dropout", dropout)
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, stride=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.dropout1: nn.Module = nn.Dropout(0.25) if dropout else nn.Identity()
        self.fc1 = nn.Linear(9216, 128)
        self.relu3 = nn.ReLU()
        self.dropout2: nn.Module = nn.Dropout(0.5) if dropout else nn.Identity()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        :param x: Images of shape ``(n, 1, 28, 28)``.
        :return: Logits of shape ``(n, 10)``.
        """
        _check_input("MnistCNN", x, 1, (28, 28))
        x = self.dropout1(self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x))))))
        x = self.dropout2(self.relu3(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


class CifarCNN(nn.Module):
    """A small, fast CIFAR-10 network that trains in minutes on a few CPU cores.

    ``[conv 3x3 32 - conv 3x3 32 - maxpool 2] - [conv 3x3 64 - conv 3x3 64 - maxpool 2] - linear(4096->256)
    - linear(256->num_classes)``, each convolution and the hidden linear layer followed by a ReLU (and, with
    ``batchnorm=True``, each convolution by a ``BatchNorm2d`` before its ReLU). About 1.1 M parameters.

    BatchNorm is off by default: SGT feeds batches of masked inputs whose statistics differ from clean ones,
    and batch statistics would couple the samples of a batch.

    :param num_classes: Number of output classes.
    :param batchnorm: Whether to add ``BatchNorm2d`` after every convolution.

    >>> CifarCNN()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, batchnorm: bool = False) -> None:
        super().__init__()
        num_classes = check_positive_int("num_classes", num_classes)
        self.batchnorm = check_bool("batchnorm", batchnorm)

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=not batchnorm)]
            if batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU())
            return layers

        self.features = nn.Sequential(
            *block(3, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64), nn.MaxPool2d(2)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Linear(256, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        :param x: Images of shape ``(n, 3, 32, 32)``.
        :return: Logits of shape ``(n, num_classes)``.
        """
        _check_input("CifarCNN", x, 3, (32, 32))
        return self.classifier(self.features(x))


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """A ResNet of basic blocks in the CIFAR style: 3x3 stem with stride 1 and no max-pooling.

    :param blocks: Number of basic blocks in each of the four stages (64, 128, 256 and 512 channels).
    :param num_classes: Number of output classes.
    :param in_channels: Number of input channels.
    """

    def __init__(self, blocks: tuple[int, ...], num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        num_classes = check_positive_int("num_classes", num_classes)
        self.in_channels = check_positive_int("in_channels", in_channels)
        if not isinstance(blocks, (tuple, list)) or len(blocks) != 4 or not all(_is_int(b) and b >= 1 for b in blocks):
            raise ValueError(f"blocks must be a tuple of 4 integers >= 1, got {blocks!r}.")
        stem_conv = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.stem = nn.Sequential(stem_conv, nn.BatchNorm2d(64), nn.ReLU())
        stages, c_in = [], 64
        for stride, c_out, count in zip((1, 2, 2, 2), (64, 128, 256, 512), blocks):
            layers = [_BasicBlock(c_in, c_out, stride)] + [_BasicBlock(c_out, c_out, 1) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        :param x: Images of shape ``(n, in_channels, h, w)``; CIFAR-10 is ``(n, 3, 32, 32)``.
        :return: Logits of shape ``(n, num_classes)``.
        """
        _check_input("CifarResNet", x, self.in_channels, None)
        return self.head(self.stages(self.stem(x)))


def resnet18_cifar(num_classes: int = 10) -> CifarResNet:
    """ResNet-18 for 32x32 images (He et al. 2016, with the CIFAR stem used by most CIFAR-10 work).

    A 3x3 stride-1 stem without max-pooling, then 2 basic blocks in each of four stages of 64, 128, 256 and
    512 channels (1x1 projection shortcuts where the shape changes), global average pooling and a linear
    layer; about 11.2 M parameters. Written with ``torch.nn`` only.

    :param num_classes: Number of output classes.
    :return: The network, in training mode, with PyTorch's default initialisation.

    >>> resnet18_cifar()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    return CifarResNet((2, 2, 2, 2), num_classes=num_classes)


def _scalar_clip(clip_values: Any) -> tuple[float, float] | None:
    """One (min, max) range for every feature: the reference networks' classifiers take no per-feature range."""
    checked = check_clip_values("clip_values", clip_values, scalar=True)
    return None if checked is None else (float(checked[0]), float(checked[1]))


def _check_preprocessing(preprocessing: Any, input_shape: tuple[int, ...]) -> tuple[Any, Any] | None:
    if preprocessing is None:
        return None
    message = "preprocessing must be None or a (mean, std) pair of finite numbers or arrays with std > 0"
    if not isinstance(preprocessing, (tuple, list)) or len(preprocessing) != 2:
        raise TypeError(f"{message}, got {preprocessing!r}.")
    try:
        mean, std = np.broadcast_arrays(*(np.asarray(v, dtype=np.float32) for v in preprocessing))
    except (TypeError, ValueError) as error:
        raise TypeError(f"{message}, got {preprocessing!r} ({error}).") from error
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ValueError(f"{message}, got {preprocessing!r}.")
    if mean.ndim == 0:
        return float(mean), float(std)
    # ART puts a vector of length c on the channel axis; other arrays must broadcast against one input.
    fits = mean.ndim == 1 and mean.shape[0] in (1, input_shape[0])
    if not fits and mean.ndim <= len(input_shape):
        fits = all(m in (1, d) for m, d in zip(mean.shape[::-1], input_shape[::-1]))
    if not fits:
        expected = f"per-channel vectors of length {input_shape[0]} or broadcast against {input_shape}"
        raise ValueError(f"preprocessing mean and std of shape {mean.shape} must be {expected}.")
    return np.array(mean), np.array(std)


def _check_optimizer(optimizer: Any, model: nn.Module) -> None:
    if isinstance(optimizer, torch.optim.Optimizer):
        own = {id(p) for p in model.parameters()}
        optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if not optimised or not optimised <= own:
            raise ValueError("optimizer must optimise the parameters of model, but it holds other tensors.")
    elif isinstance(optimizer, str):
        check_choice("optimizer", optimizer, ("adam", "sgd"))
    else:
        got = type(optimizer).__name__
        raise TypeError(f"optimizer must be 'adam', 'sgd' or a torch.optim.Optimizer, got {got}.")


def _dry_run(model: nn.Module, input_shape: tuple[int, ...], nb_classes: int) -> None:
    """Run one zero input through ``model`` (eval mode, no grad, state restored) to check the shapes."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros((1, *input_shape), device=next(model.parameters()).device))
    except (RuntimeError, ValueError) as error:
        hint = "channels first, without the batch axis"
        raise ValueError(f"input_shape {input_shape} does not fit model ({hint}): {error}") from error
    finally:
        for module, training in modes.items():
            module.training = training
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, nb_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"nb_classes is {nb_classes} but model maps one input to an output of shape {got}.")


def make_classifier(
    model: nn.Module,
    input_shape: tuple[int, ...],
    nb_classes: int = 10,
    clip_values: tuple[float, float] | None = (0.0, 1.0),
    lr: float = 1e-3,
    optimizer: str | torch.optim.Optimizer = "adam",
    preprocessing: tuple[Any, Any] | None = None,
    device_type: str = "auto",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> PyTorchClassifier:
    """Wrap a network in an ART ``PyTorchClassifier`` with a cross-entropy loss and an optimiser.

    The arguments are checked before anything is built, and one zero input of ``input_shape`` is passed
    through the network (in eval mode, without gradients, training mode restored) to check that the shape
    fits and that the network has ``nb_classes`` outputs.

    :param model: The network; it must return logits of shape ``(n, nb_classes)``.
    :param input_shape: Shape of one input, channels first, e.g. ``(1, 28, 28)`` or ``(3, 32, 32)``.
    :param nb_classes: Number of classes, at least 2.
    :param clip_values: ``(min, max)`` of the input features, or ``None`` for unbounded inputs.
    :param lr: Learning rate of the optimiser built from ``optimizer="adam"`` or ``"sgd"``.
    :param optimizer: ``"adam"`` (``torch.optim.Adam``), ``"sgd"`` (``torch.optim.SGD`` with ``momentum``)
        or a ready ``torch.optim.Optimizer`` over the parameters of ``model``, in which case ``lr``,
        ``momentum`` and ``weight_decay`` are not used. The SGT reference trains MNIST with
        ``torch.optim.Adadelta(model.parameters(), lr=1.0)``.
    :param preprocessing: ``(mean, std)`` standardisation applied by ART inside the classifier (scalars or
        per-channel arrays), e.g. ``(0.1307, 0.3081)`` for MNIST; ``None`` for none.
    :param device_type: ``"cpu"``, ``"gpu"`` (CUDA must be available) or ``"auto"`` (GPU when available).
    :param momentum: Momentum of SGD, in [0, 1).
    :param weight_decay: L2 weight decay of the built optimiser, >= 0.
    :return: The ART classifier, ``channels_first=True``.
    :raises TypeError: If an argument has the wrong type; the message names the parameter.
    :raises ValueError: If an argument has a wrong value, if ``input_shape`` does not fit ``model`` or
        ``nb_classes`` does not match its output, or if ``device_type="gpu"`` without CUDA.

    >>> clf = make_classifier(MnistCNN(), input_shape=(1, 28, 28))
    >>> clf.predict(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape
    (2, 10)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    shape_message = f"input_shape must be a non-empty tuple of positive integers, got {input_shape!r}."
    if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(map(_is_int, input_shape)):
        raise TypeError(shape_message)
    if min(input_shape) < 1:
        raise ValueError(shape_message)
    input_shape = tuple(int(d) for d in input_shape)
    nb_classes = check_positive_int("nb_classes", nb_classes)  # type: ignore[assignment]
    if nb_classes < 2:
        raise ValueError(f"nb_classes must be an integer >= 2, got {nb_classes!r}.")
    if next(model.parameters(), None) is None:
        raise ValueError("model must have trainable parameters, got a model without any.")
    clip = _scalar_clip(clip_values)
    lr = check_positive("lr", lr)
    _check_optimizer(optimizer, model)
    standardise = _check_preprocessing(preprocessing, input_shape)
    check_choice("device_type", device_type, ("cpu", "gpu", "auto"))
    if device_type == "gpu" and not torch.cuda.is_available():
        raise ValueError("device_type is 'gpu' but CUDA is not available; use 'cpu' or 'auto'.")
    momentum = check_fraction("momentum", momentum, low_inclusive=True)
    weight_decay = check_non_negative("weight_decay", weight_decay)
    _dry_run(model, input_shape, nb_classes)

    if optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if device_type == "auto":
        device_type = "gpu" if torch.cuda.is_available() else "cpu"
    return PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=input_shape,
        nb_classes=nb_classes,
        optimizer=optimizer,
        channels_first=True,
        clip_values=clip,
        preprocessing=standardise,
        device_type=device_type,
    )


def to_channels_first(x: np.ndarray) -> np.ndarray:
    """Convert channels-last images ``(n, h, w, c)`` to a new C-contiguous float32 array ``(n, c, h, w)``.

    :param x: Images, channels last, as returned by :func:`art_sgt.datasets.load_mnist` and ART's loaders.
    :return: A new array; ``x`` is not modified and never shares memory with the result.
    :raises TypeError: If ``x`` is not a numeric numpy array.
    :raises ValueError: If ``x`` is not 4-D, is empty, or is already channels-first (``c`` of 1 or 3 in
        axis 1 while the last axis is not 1 or 3).

    >>> to_channels_first(np.zeros((2, 28, 28, 1), dtype=np.uint8)).shape
    (2, 1, 28, 28)
    """
    check_array("x", x)
    if x.ndim != 4:
        raise ValueError(f"x must be a 4-D array of images (n, h, w, c), got shape {x.shape}.")
    if x.shape[1] in (1, 3) and x.shape[3] not in (1, 3):
        raise ValueError(f"x must be channels-last (n, h, w, c), got shape {x.shape}, which is channels-first.")
    return np.array(x.transpose(0, 3, 1, 2), dtype=np.float32, order="C", copy=True)


def is_torchscript_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``: a zip holding ``code/``), without loading it.

    ``torch.load`` hands such an archive to ``torch.jit.load``, ``weights_only=True`` or not, so a file meant to
    hold only weights is checked with this first.

    :param path: A file.
    :return: ``True`` for a TorchScript archive; ``False`` for anything else, a missing file included.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _check_file(name: str, path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or an os.PathLike, got {type(path).__name__}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} {str(path)!r} does not exist.")
    return os.fspath(path)


def load_torchscript(path: str | os.PathLike, name: str = "path") -> nn.Module:
    """Load a TorchScript network (``torch.jit.save``) on the CPU.

    A TorchScript file is a program: loading and calling it runs the code it holds. Load only files you trust;
    :func:`load_state_dict_file` is the route that runs no code from the file.

    :param path: The file.
    :param name: What the file is called in error messages (e.g. ``"--model"``).
    :return: The network (a ``torch.jit.ScriptModule``, a ``torch.nn.Module``).
    :raises FileNotFoundError: If ``path`` does not exist.
    :raises ValueError: If the file is not a TorchScript archive.
    """
    path = _check_file(name, path)
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as error:  # torch.jit.load fails with RuntimeError, ValueError, ... on other files
        raise ValueError(f"{name} {path!r} is not a TorchScript file (torch.jit.save): {_first_line(error)}") from error


def load_state_dict_file(network: nn.Module, path: str | os.PathLike, name: str = "path") -> nn.Module:
    """Load the weights in ``path`` into ``network``, running no code from the file.

    The file is read with ``torch.load(weights_only=True)`` (tensors and plain containers only), after a check
    that it is not a TorchScript archive (which ``torch.load`` would hand to ``torch.jit.load``).

    :param network: The network, built by your own code.
    :param path: A file written by ``torch.save(network.state_dict(), path)``.
    :param name: What the file is called in error messages (e.g. ``"--model"``).
    :return: ``network``, with the weights loaded.
    :raises TypeError: If ``network`` is not a ``torch.nn.Module``.
    :raises FileNotFoundError: If ``path`` does not exist.
    :raises ValueError: If the file is a TorchScript archive, is not readable with ``weights_only=True``, holds no
        dict, or does not fit ``network`` (missing, unexpected or mis-shaped keys).
    """
    if not isinstance(network, nn.Module):
        raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
    path = _check_file(name, path)
    if is_torchscript_file(path):
        raise ValueError(f"{name} {path!r} is a TorchScript file, not a state_dict (a TorchScript file is a program).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{name} {path!r} is not a state_dict that torch.load(weights_only=True) reads ({_first_line(error)})."
        ) from error
    if not isinstance(state, dict):
        raise ValueError(f"{name} {path!r} must hold a state_dict (a dict of tensors), got {type(state).__name__}.")
    try:
        network.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError) as error:
        problem = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ValueError(f"{name} {path!r} does not fit the network: {problem}") from error
    return network
