"""The ``art-sgt`` command line: ``train``, ``evaluate`` and ``reproduce``.

Examples::

    art-sgt train --trainer sgt --dataset mnist --epochs 3 --save-model models/mnist_sgt.pt
    art-sgt train --trainer asgt --dataset cifar10 --checkpoint-dir ckpt/ --resume
    art-sgt train --trainer asgt --dataset mnist --robust-val 1000 --keep-best robust
    art-sgt evaluate --model models/mnist_sgt.pt --n 1000
    art-sgt reproduce --dataset mnist --profile quick

``train`` runs under ``torchrun`` as it is (``torchrun --nproc_per_node=4 -m art_sgt.cli train ...``): it joins
the process group torchrun describes (NCCL on GPUs, gloo on CPUs), and only rank 0 writes files.

``evaluate`` also takes a model that art-sgt did not train: a TorchScript file (``--torchscript``; a TorchScript
file is a program, load only files you trust), or ``--factory module:callable`` building the network plus a
``state_dict`` file read with ``torch.load(weights_only=True)`` (no code of the file runs).

Every output location (``--save-model``, ``--out``, ``--checkpoint-dir``, ``--out-dir``) is checked writable
before any work starts. A user error (a bad path, no data offline, a model that does not match ``--dataset``,
an option the library refuses) is one line on stderr and exit status 2, never a traceback; an unexpected
exception (a bug) keeps its traceback and exits with status 1. An output that cannot be written *after*
training is kept in a fresh temporary folder, and the error line says where.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import math
import os
import re
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from art_sgt import __version__
from art_sgt._argtypes import fraction, non_negative, non_negative_int, positive_int

__all__ = ["main", "build_parser", "load_model", "UserError", "DATA_RANGE", "DATASETS", "DatasetDefaults"]


@dataclass(frozen=True)
class DatasetDefaults:
    """What the command uses for one dataset when an option is left out.

    :param architecture: Name of the reference network in :mod:`art_sgt.models`.
    :param input_shape: Shape of one input, channels first.
    :param train_eps: ``train --trainer asgt``: the PGD radius (L-inf) trained against.
    :param eval_eps: ``evaluate``: the attack radii of the robustness report.
    """

    architecture: str
    input_shape: tuple[int, int, int]
    train_eps: float
    eval_eps: tuple[float, ...]


#: Per-dataset defaults of ``train`` and ``evaluate`` (the usual L-inf radii of each dataset's literature).
DATASETS: dict[str, DatasetDefaults] = {
    "mnist": DatasetDefaults("MnistCNN", (1, 28, 28), 0.3, (0.1, 0.2, 0.3)),
    "cifar10": DatasetDefaults("CifarCNN", (3, 32, 32), 8 / 255, (2 / 255, 0.02, 8 / 255)),
}


class UserError(ValueError):
    """A mistake in the command's input: reported as one line, exit status 2.

    The command raises it for what it checks itself, and turns into it the library's errors about the user's
    input where it calls the library (a data file, a model file, a checkpoint folder). Any other exception is a
    bug: :func:`main` prints its traceback and exits with status 1.
    """


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default (except ``None`` and off-by-default flags); indented lines stay as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            indent + line
            if not line or line[0] == " "
            else textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
            for line in text.splitlines()
        )

    def _get_help_string(self, action: argparse.Action) -> str | None:
        quiet = action.default is None or action.default is False or isinstance(action.default, list)
        if quiet or "default" in (action.help or ""):  # said already, in the help text itself
            return action.help
        return super()._get_help_string(action)


def _epilog(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _data_options(parser: argparse.ArgumentParser, device_help: str, dataset_help: str) -> None:
    parser.add_argument("--dataset", choices=sorted(DATASETS), help=dataset_help)
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder with mnist.npz / cifar10.npz (default: $ART_SGT_DATA, then ART's data folder, then ART's "
        "download)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help=device_help)
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="N", help="random seed")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_train(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        formatter_class=_HelpFormatter,
        help="train a reference model with SGT or ASGT on MNIST or CIFAR-10",
        description="Train the reference CNN of MNIST or CIFAR-10 with saliency-guided training (sgt) or "
        "adversarial saliency-guided training (asgt, against ART's PGD), print the test accuracy, and write a "
        "results JSON (command, seed, versions, hardware, per-epoch history). --save-model keeps the weights for "
        "'art-sgt evaluate'.",
        epilog=_epilog(
            "art-sgt train --trainer sgt --dataset mnist --epochs 3 --save-model models/mnist_sgt.pt",
            "art-sgt train --trainer asgt --dataset cifar10 --checkpoint-dir ckpt/ --resume",
            "art-sgt train --trainer asgt --dataset mnist --robust-val 1000 --keep-best robust",
            "torchrun --standalone --nproc_per_node=4 -m art_sgt.cli train --dataset cifar10",
        ),
    )
    _data_options(
        train,
        device_help="where to train: auto = the GPU when CUDA is available, else the CPU",
        dataset_help="dataset and its reference network (default: mnist)",
    )
    train.add_argument("--trainer", choices=("sgt", "asgt"), default="sgt", help="SGT or adversarial SGT")
    train.add_argument("--epochs", type=positive_int, default=3, help="training epochs")
    train.add_argument("--batch-size", type=positive_int, default=128, help="training batch size")
    train.add_argument("--lr", type=non_negative, default=1e-3, help="Adam learning rate")
    train.add_argument(
        "--limit", type=positive_int, default=None, metavar="N", help="use only the first N training images"
    )
    train.add_argument("--mask-fraction", type=fraction, default=0.5, help="fraction of features masked")
    train.add_argument("--kl-weight", type=non_negative, default=1.0, help="weight of the KL term")
    train.add_argument("--absolute", action="store_true", help="rank features by absolute saliency (default: signed)")
    eps_defaults = ", ".join(f"{d.train_eps:.4g} on {name}" for name, d in DATASETS.items())
    train.add_argument(
        "--eps", type=non_negative, default=None, help=f"asgt: PGD L-inf radius (default: {eps_defaults})"
    )
    train.add_argument(
        "--eps-step", type=non_negative, default=None, help="asgt: PGD step (default: 2.5 * eps / pgd-steps, Madry)"
    )
    train.add_argument("--pgd-steps", type=positive_int, default=10, help="asgt: PGD iterations")
    train.add_argument(
        "--robust-val",
        type=positive_int,
        default=None,
        metavar="N",
        help="hold out the LAST N training images (after --limit; never the test set) as a robust-validation set "
        "and train on the rest: after every epoch, accuracy on it clean, under a 10-step PGD at --eps (step eps/4, "
        "no random start) and under FGSM at --eps, with the catastrophic-overfitting guard; the per-epoch "
        "val_accuracy on test images is then left out, so that no choice sees the test set",
    )
    train.add_argument(
        "--keep-best",
        choices=("robust", "clean", "none"),
        default="none",
        help="end with the weights of the epoch with the best robust (or clean) accuracy on the --robust-val set "
        "(needs --robust-val; with --checkpoint-dir also written to best.pt)",
    )
    train.add_argument(
        "--checkpoint-dir", metavar="DIR", default=None, help="write checkpoint.pt into this folder every epoch"
    )
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    train.add_argument(
        "--save-model", metavar="FILE", default=None, help="save the trained model here (.pt), for 'evaluate'"
    )
    train.add_argument(
        "--out", metavar="FILE", default=None, help="results JSON (default: results/<dataset>_<trainer>_cli.json)"
    )


def _comma_list(text: str, convert: Callable[[str], Any], what: str, ok: Callable[[Any], bool]) -> tuple[Any, ...]:
    """``text`` split at commas, each part converted and checked; else ``argparse.ArgumentTypeError``."""
    try:
        values = tuple(convert(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(map(ok, values)):
        raise argparse.ArgumentTypeError(f"must be {what} separated by commas, got {text!r}")
    return values


def _numbers(text: str) -> tuple[float, ...]:
    """``"0.5"`` or ``"0.49,0.48,0.45"``: one or more finite numbers."""
    return _comma_list(text, float, "finite numbers", math.isfinite)


def _shape(text: str) -> tuple[int, ...]:
    """``"1,28,28"``: positive integers (C,H,W)."""
    return _comma_list(text, int, "positive integers (C,H,W)", lambda d: d >= 1)


def _budget_names() -> list[str]:
    from art_sgt.evaluation.budget import PRESETS

    return list(PRESETS)


def _add_evaluate(sub: Any) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        formatter_class=_HelpFormatter,
        help="saliency evaluators and robustness report of a saved model (art-sgt's, TorchScript or a state_dict)",
        description="Load a model written by 'art-sgt train --save-model' (or your own: a TorchScript file with "
        "--torchscript, or a state_dict with --factory), measure its saliency maps (faithfulness, sparseness, ...) "
        "and its accuracy under ART's PGD, APGD-CE, APGD-DLR and Square attacks with the gradient-masking checks, "
        "on a seeded random subset of the test images, print a summary and write a results JSON (with the indices "
        "of the images). The attack radii are the dataset's usual ones: "
        + "; ".join(f"{name}: {', '.join(f'{e:.4g}' for e in d.eval_eps)}" for name, d in DATASETS.items())
        + ". A TorchScript file is a program: load only files you trust. The state_dict route runs no code from "
        "the file (torch.load with weights_only=True); the network comes from your own module.",
        epilog=_epilog(
            "art-sgt evaluate --model models/mnist_sgt.pt",
            "art-sgt evaluate --model models/mnist_sgt.pt --n 200 --robust-n 100 --budget quick --quiet",
            "art-sgt evaluate --model models/mnist_sgt.pt --budget autoattack",
            "art-sgt evaluate --model my_cnn.ts --torchscript --dataset cifar10 --preprocessing 0.49,0.48,0.45 "
            "0.25,0.24,0.26",
            "art-sgt evaluate --model weights.pt --factory mypackage.nets:make_cnn --dataset mnist",
        ),
    )
    _data_options(
        evaluate,
        device_help="where the attributions and attacks run: auto = the GPU when CUDA is available, else the CPU",
        dataset_help="the model's dataset: read from an art-sgt --model (a different value is an error); needed "
        "with --torchscript and --factory",
    )
    evaluate.add_argument(
        "--model",
        metavar="FILE",
        required=True,
        help="a .pt file written by 'art-sgt train --save-model'; with --torchscript a TorchScript file; with "
        "--factory a state_dict file",
    )
    yours = evaluate.add_mutually_exclusive_group()
    yours.add_argument(
        "--torchscript",
        action="store_true",
        help="--model is a TorchScript file (torch.jit.save). A TorchScript file is a program that runs when it is "
        "loaded and called: load only files you trust",
    )
    yours.add_argument(
        "--factory",
        metavar="MODULE:CALLABLE",
        help="build the network by calling MODULE:CALLABLE() (importable, e.g. mypackage.nets:make_cnn) and load "
        "--model into it as a state_dict with torch.load(weights_only=True), which runs no code from the file",
    )
    evaluate.add_argument(
        "--input-shape",
        type=_shape,
        metavar="C,H,W",
        help="your model's input shape, channels first (default: the dataset's; it must match the dataset's)",
    )
    evaluate.add_argument(
        "--nb-classes", type=positive_int, metavar="N", help="your model's number of outputs, classes (default: 10)"
    )
    evaluate.add_argument(
        "--clip-values",
        type=_numbers,
        metavar="MIN,MAX",
        help="your model's input range, as PyTorchClassifier's clip_values (default: 0,1, the range of the data)",
    )
    evaluate.add_argument(
        "--preprocessing",
        type=_numbers,
        nargs=2,
        metavar=("MEAN", "STD"),
        help="standardisation your model expects, applied by PyTorchClassifier (preprocessing=(mean, std)): "
        "scalars or per-channel lists, e.g. 0.1307 0.3081 or 0.49,0.48,0.45 0.25,0.24,0.26",
    )
    evaluate.add_argument("--n", type=positive_int, default=1000, help="test images for the saliency evaluators")
    evaluate.add_argument("--robust-n", type=positive_int, default=200, help="test images for the attacks")
    evaluate.add_argument(
        "--budget",
        choices=_budget_names(),
        default="standard",
        help="attack budget preset of the robustness report (quick: smoke runs only)",
    )
    evaluate.add_argument("--pgd-iter", type=positive_int, help="PGD iterations (default: the budget's)")
    evaluate.add_argument("--apgd-iter", type=positive_int, help="APGD iterations (default: the budget's)")
    evaluate.add_argument("--square-queries", type=positive_int, help="Square attack queries (default: the budget's)")
    evaluate.add_argument("--out", metavar="FILE", default=None, help="results JSON (default: <model>_evaluation.json)")


def _add_reproduce(sub: Any) -> None:
    from art_sgt.reproduction.cli import add_arguments

    reproduce = add_arguments(
        sub.add_parser(
            "reproduce",
            formatter_class=_HelpFormatter,
            help="rerun the paper's comparison of standard training, SGT, adversarial training and ASGT",
            description="Train the comparison's models (see --models) with one recipe on real data, evaluate them "
            "with ART's attacks and the saliency evaluators, and write <out-dir>/<dataset>_<profile>.json/.md and "
            "figures.",
            epilog=_epilog(
                "art-sgt reproduce --dataset mnist --profile quick",
                "art-sgt reproduce --dataset mnist --models standard,asgt --n-train 2000 --epochs 1",
            ),
        )
    )
    # The loaders read $ART_SGT_DATA themselves when --data-dir is left out; a default copied from this
    # process's environment would put one machine's folder into the help and the generated reference.
    reproduce.set_defaults(data_dir=None)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``art-sgt``.

    :return: The parser.
    """
    parser = argparse.ArgumentParser(
        prog="art-sgt",
        formatter_class=_HelpFormatter,
        description="Saliency-guided training (SGT) and adversarial SGT for IBM's Adversarial Robustness "
        "Toolbox: train a reference model, evaluate a saved one, or rerun the paper's comparison.",
        epilog=_epilog(
            "art-sgt train --dataset mnist --save-model models/mnist_sgt.pt",
            "art-sgt evaluate --model models/mnist_sgt.pt",
            "art-sgt reproduce --dataset mnist --profile quick",
            "art-sgt COMMAND --help    (the options of one command)",
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    _add_reproduce(sub)
    return parser


# ------------------------------------------------------------------------------------------------- outputs
def _check_writable(path: str | os.PathLike | None, option: str, folder: bool = False) -> None:
    """Create ``path``'s folder (or ``path`` itself when ``folder``) and write a scratch file there.

    :raises UserError: If the location cannot be written (a parent is a file, the file is a folder, ...).
    """
    if path is None:
        return
    target = Path(path).expanduser()
    if not folder and target.is_dir():
        raise UserError(f"{option} {str(path)!r} is a folder; give a file name.")
    directory = target if folder else target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".art-sgt-write-check-"):
            pass
    except OSError as err:
        raise UserError(f"{option} {str(path)!r} cannot be written: {err.strerror or err}.") from err


def _write_or_keep(write: Callable[[Path], Any], path: str | os.PathLike, option: str) -> tuple[Path, str | None]:
    """Write an output with ``write(path)``; if that fails, write it into a new temporary folder instead.

    :return: ``(where it was written, None)``, or ``(where it was kept, the error line)``.
    """
    try:
        write(Path(path))
        return Path(path), None
    except OSError as err:
        kept = Path(tempfile.mkdtemp(prefix="art-sgt-")) / Path(path).name
        write(kept)
        return kept, f"could not write {option} {str(path)!r} ({err.strerror or err}); it was kept in {kept}"


# ------------------------------------------------------------------------------------------------ commands
#: The range of every image the loaders return, and the ``clip_values`` of the classifiers ``train`` builds.
DATA_RANGE = (0.0, 1.0)

#: How many test images ``train`` measures its per-epoch ``val_accuracy`` on (without ``--robust-val``).
_VALIDATION_IMAGES = 2000

#: The library's parameter names, as this command's options (for the library's messages about them).
_OPTION_OF = {
    "checkpoint_dir": "--checkpoint-dir",
    "resume=True": "--resume",
    "data_dir": "--data-dir",
    "input_shape": "--input-shape",
    "nb_classes": "--nb-classes",
    "clip_values": "--clip-values",
    "preprocessing": "--preprocessing",
}


def _in_option_names(message: str) -> str:
    """A library message about a parameter, with the parameter called by this command's option name."""
    message = re.sub(r"\s*Pass allow_config_change=True[^.]*\.", "", message)  # no such option here
    pattern = "|".join(re.escape(name) for name in _OPTION_OF)
    return re.sub(rf"(?<![\w-])({pattern})(?![\w-])", lambda m: _OPTION_OF[m.group(1)], message)


def _data_error(err: Exception) -> UserError:
    """The loaders' error about the user's data (none found, a --data-dir without it, a file that is not data)."""
    from art_sgt.datasets import ENV_VAR, DataNotFoundError

    if isinstance(err, DataNotFoundError):
        download = f"; ART's download failed ({err.download_error})" if err.download_error else ""
        return UserError(
            f"no {err.file_name} found: looked in {'; '.join(err.tried)}{download}. Point at a folder holding "
            f"{err.file_name} with --data-dir DIR or by setting {ENV_VAR}=DIR."
        )
    return UserError(_in_option_names(str(err)))


def _load_data(dataset: str, data_dir: str | None, limit: int | None = None):
    """Load a dataset channels first; a missing or malformed data file is a :class:`UserError`."""
    from art_sgt.datasets import DataFileError, load_cifar10, load_mnist
    from art_sgt.models import to_channels_first

    loader = load_mnist if dataset == "mnist" else load_cifar10
    try:
        (x_train, y_train), (x_test, y_test), _, _ = loader(data_dir)
    except (FileNotFoundError, DataFileError) as err:
        raise _data_error(err) from err
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    return (to_channels_first(x_train), y_train), (to_channels_first(x_test), y_test)


def _new_model(dataset: str) -> torch.nn.Module:
    from art_sgt import models

    return getattr(models, DATASETS[dataset].architecture)()


def load_model(path: str, device: str = "auto", lr: float = 1e-3) -> tuple[Any, str]:
    """Load a model written by ``art-sgt train --save-model`` into a ``PyTorchClassifier``.

    :param path: The ``.pt`` file.
    :param device: ``"auto"``, ``"cpu"`` or ``"gpu"``.
    :param lr: Learning rate of the classifier's (fresh) optimizer.
    :return: ``(classifier, dataset name)``.
    :raises FileNotFoundError: If ``path`` does not exist.
    :raises UserError: (a ``ValueError``) If the file is not a model saved by ``art-sgt``.
    """
    from art_sgt.models import is_torchscript_file, make_classifier

    if not os.path.isfile(path):
        raise FileNotFoundError(f"--model {path!r} does not exist.")
    if is_torchscript_file(path):  # torch.load would hand it to torch.jit.load, weights_only or not
        raise UserError(
            f"--model {path!r} is not a model saved by 'art-sgt train': it is a TorchScript file. A TorchScript file "
            "is a program: if you trust it, pass --torchscript and --dataset."
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        dataset = saved["dataset"]
        model = _new_model(dataset)
        model.load_state_dict(saved["state_dict"])
    except Exception as err:
        raise UserError(f"--model {path!r} is not a model saved by 'art-sgt train' ({_first_line(err)}).") from err
    return make_classifier(model, DATASETS[dataset].input_shape, lr=lr, device_type=device), dataset


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _import_factory(spec: str) -> Callable[[], Any]:
    """``module:callable`` imported (the working folder first on the path, as for ``python -m``)."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise UserError(f"--factory must be MODULE:CALLABLE (e.g. mypackage.nets:make_cnn), got {spec!r}.")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"--factory {spec}: cannot import {module_name} ({err}).") from err
    factory = getattr(module, name, None)
    if not callable(factory):
        raise UserError(f"--factory {spec}: {module_name} has no callable {name!r}.")
    return factory


def _user_network(args: argparse.Namespace) -> torch.nn.Module:
    """The network of ``--torchscript`` or ``--factory``, with the weights of ``--model``."""
    from art_sgt.models import is_torchscript_file, load_state_dict_file, load_torchscript

    network = None
    if args.factory:
        network = _import_factory(args.factory)()  # the user's own code: an error in it keeps its traceback
        if not isinstance(network, torch.nn.Module):
            raise UserError(f"--factory {args.factory} must return a torch.nn.Module, got {type(network).__name__}.")
    try:
        if network is None:
            return load_torchscript(args.model, "--model")
        return load_state_dict_file(network, args.model, "--model")
    except ValueError as err:  # the loaders' errors are about the file (their documented contract)
        hint = "; to load it, pass --torchscript" if network is not None and is_torchscript_file(args.model) else ""
        raise UserError(f"{str(err).rstrip('.')}{hint}.") from err


def _user_classifier(args: argparse.Namespace) -> Any:
    """A ``PyTorchClassifier`` of the user's own model (``--torchscript`` or ``--factory``)."""
    from art_sgt.models import make_classifier

    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"--model {args.model!r} does not exist.")
    if args.dataset is None:
        raise UserError("--dataset is needed with --torchscript and --factory: it names the test images and radii.")
    shape = DATASETS[args.dataset].input_shape
    if args.input_shape is not None and tuple(args.input_shape) != shape:
        given = ",".join(map(str, args.input_shape))
        raise UserError(f"--input-shape {given} does not match the {args.dataset} images, of shape {shape}.")
    clip = DATA_RANGE if args.clip_values is None else args.clip_values
    if len(clip) != 2 or not clip[0] < clip[1]:
        raise UserError(f"--clip-values must be MIN,MAX with MIN < MAX, got {','.join(map(str, clip))}.")
    if clip[0] > DATA_RANGE[0] or clip[1] < DATA_RANGE[1]:
        raise UserError(f"--clip-values {clip[0]:g},{clip[1]:g} must contain the data's range {list(DATA_RANGE)}.")
    preprocessing = None
    if args.preprocessing is not None:
        preprocessing = tuple(v[0] if len(v) == 1 else list(v) for v in args.preprocessing)
    network = _user_network(args)
    try:
        return make_classifier(
            network,
            shape,
            nb_classes=args.nb_classes or 10,
            clip_values=tuple(clip),
            preprocessing=preprocessing,
            device_type=args.device,
        )
    except (ValueError, TypeError) as err:  # the library's checks of these options (shape, classes, ...)
        message = _first_line(err)
        cause = str(err.__cause__ or "").strip().splitlines()
        if len(cause) > 1:  # a model's own error (TorchScript's is a traceback of the scripted code): its last line
            message += f" ({cause[-1].strip()})"
        raise UserError(_in_option_names(message)) from err


def _join_torchrun(device: str) -> tuple[int, bool]:
    """Join the process group described by torchrun's environment, if any.

    :return: ``(rank, created)``: this process's rank, and whether this call created the group (and so must
        destroy it).
    """
    dist = torch.distributed
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return 0, False
    if dist.is_initialized():
        return dist.get_rank(), False
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), True


def _train(args: argparse.Namespace, report: Callable[[dict[str, Any]], None]) -> list[str]:
    from art_sgt.models import make_classifier
    from art_sgt.trainers import SaliencyGuidedTrainer

    args.dataset = args.dataset or "mnist"
    if args.eps is None:
        args.eps = DATASETS[args.dataset].train_eps
    if args.resume and args.checkpoint_dir is None:
        raise UserError("--resume needs --checkpoint-dir (the folder holding checkpoint.pt).")
    if args.keep_best != "none" and args.robust_val is None:
        raise UserError(f"--keep-best {args.keep_best} needs --robust-val N (the held-out images it is measured on).")
    if args.trainer == "asgt" or args.robust_val is not None:
        _check_radius(args)
    _check_writable(args.save_model, "--save-model")
    _check_writable(_results_path(args), "--out")
    _check_writable(args.checkpoint_dir, "--checkpoint-dir", folder=True)
    (x_train, y_train), (x_test, y_test) = _load_data(args.dataset, args.data_dir, args.limit)
    from art_sgt.datasets import random_subset

    # The per-epoch val_accuracy: a seeded random sample of the test set (its first rows are not one).
    validation_images = random_subset(len(x_test), min(_VALIDATION_IMAGES, len(x_test)), seed=args.seed)
    validation = {"validation_data": (x_test[validation_images], y_test[validation_images])}
    if args.robust_val is not None:
        if args.robust_val >= len(x_train):
            raise UserError(
                f"--robust-val {args.robust_val} must leave training images: there are {len(x_train)} in all."
            )
        validation = {"robust_validation": (x_train[-args.robust_val :], y_train[-args.robust_val :])}
        x_train, y_train = x_train[: -args.robust_val], y_train[: -args.robust_val]
    args.rank, args.created_group = _join_torchrun(args.device)
    torch.manual_seed(args.seed)
    shape = DATASETS[args.dataset].input_shape
    classifier = make_classifier(_new_model(args.dataset), shape, lr=args.lr, device_type=args.device)
    options = dict(mask_fraction=args.mask_fraction, kl_weight=args.kl_weight, absolute=args.absolute)
    if args.trainer == "asgt":
        from art.attacks.evasion import ProjectedGradientDescent

        from art_sgt.trainers import SaliencyGuidedAdversarialTrainer

        if args.eps_step is None:
            args.eps_step = 2.5 * args.eps / args.pgd_steps  # Madry et al.'s rule
        attack = ProjectedGradientDescent(
            classifier, eps=args.eps, eps_step=args.eps_step, max_iter=args.pgd_steps, num_random_init=1, verbose=False
        )
        trainer = SaliencyGuidedAdversarialTrainer(classifier, attack, **options)
    else:
        trainer = SaliencyGuidedTrainer(classifier, **options)
    if args.robust_val is not None:
        from art_sgt.trainers import default_robust_eval

        validation["robust_eval"] = default_robust_eval(classifier, args.eps)
    start = time.perf_counter()
    try:
        trainer.fit(
            x_train,
            y_train,
            batch_size=args.batch_size,
            nb_epochs=args.epochs,
            seed=args.seed,
            verbose=not args.quiet,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
            keep_best=None if args.keep_best == "none" else args.keep_best,
            **validation,
        )
    except (ValueError, FileNotFoundError) as err:
        # The data and options are checked above; what fit still refuses is the checkpoint folder (no checkpoint,
        # one of another run, a damaged file), and its messages name checkpoint_dir first. Anything else is a bug.
        if str(err).startswith("checkpoint_dir"):
            raise UserError(_in_option_names(_one_line(err))) from err
        raise
    seconds = time.perf_counter() - start
    errors: list[str] = []
    if args.rank != 0:
        return errors
    if args.save_model:
        state = {k: v.cpu() for k, v in classifier.model.state_dict().items()}
        saved = {"dataset": args.dataset, "trainer": args.trainer, "state_dict": state}

        def write_model(path: Path) -> None:
            with open(path, "wb") as handle:  # an OSError here, not torch's RuntimeError, when the folder is gone
                torch.save(saved, handle)

        path, error = _write_or_keep(write_model, args.save_model, "--save-model")
        print(f"saved model to {path}")
        errors += [error] if error else []
    if trainer.best_epoch is not None:
        print(f"kept epoch {trainer.best_epoch} of {args.epochs}: {trainer.best_measure} {trainer.best_score:.4f}")
    accuracy = float((classifier.predict(x_test, batch_size=1000).argmax(1) == y_test.argmax(1)).mean())
    print(f"test accuracy {accuracy:.4f} on {len(x_test)} images ({seconds:.0f}s)")
    config = {k: v for k, v in vars(args).items() if k not in ("quiet", "rank", "created_group")}
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    report(
        {
            "config": config,
            "world_size": world,
            "test_accuracy": accuracy,
            "train_seconds": seconds,
            "history": trainer.history,
            "best_epoch": trainer.best_epoch,
            "best_measure": trainer.best_measure,
            "best_score": trainer.best_score,
            "validation_images": None if args.robust_val is not None else validation_images.tolist(),
        }
    )
    return errors


def _check_radius(args: argparse.Namespace) -> None:
    """Refuse a PGD radius or step beyond the data's range (the library only warns, as ART does)."""
    width = DATA_RANGE[1] - DATA_RANGE[0]
    for option, value in (("--eps", args.eps), ("--eps-step", args.eps_step)):
        if value is not None and value > width:
            raise UserError(
                f"{option} {value:g} exceeds the data's range {list(DATA_RANGE)} (an L-inf radius of {width:g} "
                f"already reaches every image); the usual radius on {args.dataset} is "
                f"{DATASETS[args.dataset].train_eps:.4g}."
            )


def _evaluate(args: argparse.Namespace, report: Callable[[dict[str, Any]], None]) -> list[str]:
    from art_sgt.datasets import random_subset
    from art_sgt.evaluation import AttackBudget, SaliencyEvaluator, robustness_report

    if args.torchscript or args.factory:
        classifier, dataset = _user_classifier(args), args.dataset
    else:
        own = {
            "--input-shape": args.input_shape,
            "--nb-classes": args.nb_classes,
            "--clip-values": args.clip_values,
            "--preprocessing": args.preprocessing,
        }
        given = [option for option, value in own.items() if value is not None]
        if given:
            raise UserError(f"{given[0]} applies to --torchscript and --factory models; an art-sgt model has its own.")
        classifier, dataset = load_model(args.model, args.device)  # cheap; an unknown --model is the first error
    _check_writable(_results_path(args), "--out")
    if args.dataset is not None and args.dataset != dataset:
        raise UserError(
            f"--dataset {args.dataset} disagrees with --model {args.model!r}, which was trained on {dataset}; "
            f"leave --dataset out or pass --dataset {dataset}."
        )
    args.dataset = dataset
    _, (x_test, y_test) = _load_data(dataset, args.data_dir)
    for option, n in (("--n", args.n), ("--robust-n", args.robust_n)):
        if n > len(x_test):
            raise UserError(f"{option} {n} asks for more images than the {len(x_test)} of the {dataset} test set.")
    # Seeded random subsets, not the first images (the first rows of a test set are not a sample of it).
    chosen = {"saliency": random_subset(len(x_test), args.n, seed=args.seed)}
    chosen["robustness"] = random_subset(len(x_test), args.robust_n, seed=args.seed)
    test_images = {"seed": args.seed, **{k: v.tolist() for k, v in chosen.items()}}
    x, y = x_test[chosen["saliency"]], y_test[chosen["saliency"]].argmax(1)
    config = {k: v for k, v in vars(args).items() if k != "quiet"}
    saliency = SaliencyEvaluator(classifier, seed=args.seed, progress=not args.quiet).evaluate(x, y)
    support = saliency.support()
    for method, metrics in saliency.summary().items():
        print(
            f"{method}: " + ", ".join(_entry(n, v, support[method][n], saliency.n_samples) for n, v in metrics.items())
        )
    report({"config": config, "test_images": test_images, "saliency": saliency.to_dict()})  # kept if attacks fail
    x_r, y_r = x_test[chosen["robustness"]], y_test[chosen["robustness"]].argmax(1)
    flags = {"pgd_max_iter": args.pgd_iter, "apgd_max_iter": args.apgd_iter, "square_max_iter": args.square_queries}
    budget = AttackBudget.preset(args.budget).replace(**{k: v for k, v in flags.items() if v is not None})
    robust = robustness_report(
        classifier, x_r, y_r, eps=DATASETS[dataset].eval_eps, budget=budget, seed=args.seed, verbose=not args.quiet
    )
    print(f"clean accuracy {robust.clean_accuracy:.4f} on {robust.n_samples} images")
    for attack, values in {**robust.accuracy, "worst case": robust.worst_case}.items():
        print(f"{attack:>10}: " + ", ".join(f"eps {e:.4g} {a:.4f}" for e, a in zip(robust.eps, values)))
    print(f"gradient-masking flags: {', '.join(robust.flags) or 'none'}")
    report(
        {"config": config, "test_images": test_images, "saliency": saliency.to_dict(), "robustness": robust.to_dict()}
    )
    return []


def _entry(name: str, value: float, n: int, total: int) -> str:
    """One summary entry: ``name value``, with the samples it rests on when not all, ``undefined`` when none."""
    if n == 0 or not math.isfinite(value):
        return f"{name} undefined (0 of {total} samples)"
    return f"{name} {value:.4g}" + (f" ({n} of {total} samples)" if n < total else "")


def _results_path(args: argparse.Namespace) -> str:
    """``--out``, or its default: ``results/<dataset>_<trainer>_cli.json`` / ``<model>_evaluation.json``."""
    if args.out:
        return args.out
    if args.command == "train":
        return f"results/{args.dataset}_{args.trainer}_cli.json"
    return os.path.splitext(args.model)[0] + "_evaluation.json"


def _one_line(err: BaseException) -> str:
    """An exception's message on one line (the data loaders' messages list folders on several lines)."""
    lines = [re.sub(r"^\s*- ", "", line).strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__


def _run(args: argparse.Namespace) -> list[str]:
    """Run ``train`` or ``evaluate``; the results JSON is (re)written by ``report`` as soon as results exist.

    :return: The error lines of outputs that had to be kept elsewhere.
    """
    from art_sgt.provenance import run_info, write_json

    errors: list[str] = []

    def report(result: dict[str, Any]) -> None:
        payload = {**run_info(seed=args.seed, device=args.device), **result}
        path, error = _write_or_keep(lambda p: write_json(p, payload), _results_path(args), "--out")
        args.out = str(path)
        if error and error not in errors:
            errors.append(error)
        print(f"wrote {path}")

    command = _train if args.command == "train" else _evaluate
    return errors + command(args, report)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``art-sgt`` command.

    :param argv: Arguments (default: ``sys.argv[1:]``).
    :return: The exit status: 0; 2 after a user error or an output kept elsewhere (one line on stderr each);
        1 after an unexpected exception (a bug: its traceback is printed); 130 after Ctrl-C.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "reproduce":
            from art_sgt.reproduction.cli import run

            _check_writable(args.out_dir, "--out-dir", folder=True)
            from art_sgt.datasets import DataFileError

            try:
                return run(args)
            except (FileNotFoundError, DataFileError) as err:
                raise _data_error(err) from err
            except ValueError as err:  # the reproduction's checks of its options name the option first
                if str(err).startswith("--"):
                    raise UserError(str(err)) from err
                raise
        errors = _run(args)
    except (UserError, OSError, ImportError) as err:  # the input, the files or a missing optional package
        print(f"art-sgt {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = getattr(args, "checkpoint_dir", None)
        kept = f"; the last checkpoint is in {where} (rerun with --resume)" if where else ""
        print(f"art-sgt {args.command}: interrupted{kept}", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            f"art-sgt {args.command}: internal error (a bug, not a mistake in the command): please report it with "
            "the traceback above.",
            file=sys.stderr,
        )
        return 1
    finally:
        if getattr(args, "created_group", False):
            gc.collect()  # free what still holds the group (a DDP wrapper in a reference cycle) before destroying it
            torch.distributed.destroy_process_group()
    for error in errors:
        print(f"art-sgt {args.command}: error: {error}", file=sys.stderr)
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
