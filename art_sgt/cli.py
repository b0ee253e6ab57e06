"""The ``art-sgt`` command line: ``train``, ``evaluate`` and ``reproduce``.

Examples::

    art-sgt train --trainer sgt --dataset mnist --epochs 3 --save-model results/mnist_sgt.pt
    art-sgt train --trainer asgt --dataset mnist --eps 0.3 --checkpoint-dir ckpt/ --resume
    art-sgt evaluate --model results/mnist_sgt.pt --n 1000
    art-sgt reproduce --dataset mnist --profile quick

``train`` runs under ``torchrun`` as it is (``torchrun --nproc_per_node=4 -m art_sgt.cli train ...``): it joins
the process group torchrun describes (NCCL on GPUs, gloo on CPUs), and only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from art_sgt._argtypes import fraction, non_negative, non_negative_int, positive_int

__all__ = ["main", "build_parser", "load_model"]

_ARCHS = {"mnist": ("MnistCNN", (1, 28, 28)), "cifar10": ("CifarCNN", (3, 32, 32))}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=sorted(_ARCHS), default="mnist", help="dataset (default mnist)")
    parser.add_argument(
        "--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz / cifar10.npz ($ART_SGT_DATA)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="training device")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``art-sgt``.

    :return: The parser.
    """
    parser = argparse.ArgumentParser(prog="art-sgt", description="Saliency-guided training for ART.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a reference model with SGT or ASGT on MNIST or CIFAR-10")
    _common(train)
    train.add_argument("--trainer", choices=("sgt", "asgt"), default="sgt", help="SGT or adversarial SGT")
    train.add_argument("--epochs", type=positive_int, default=3)
    train.add_argument("--batch-size", type=positive_int, default=128)
    train.add_argument("--lr", type=non_negative, default=1e-3, help="Adam learning rate")
    train.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
    train.add_argument("--mask-fraction", type=fraction, default=0.5)
    train.add_argument("--kl-weight", type=non_negative, default=1.0)
    train.add_argument("--absolute", action="store_true", help="rank by |saliency|")
    train.add_argument("--eps", type=non_negative, default=0.3, help="ASGT: PGD L-inf radius (default 0.3)")
    train.add_argument(
        "--eps-step", type=non_negative, default=None, help="ASGT: PGD step (default 2.5 * eps / pgd-steps)"
    )
    train.add_argument("--pgd-steps", type=positive_int, default=10, help="ASGT: PGD iterations (default 10)")
    train.add_argument("--checkpoint-dir", default=None, help="write checkpoint.pt here every epoch")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")
    train.add_argument("--save-model", default=None, help="save the trained model here (.pt)")
    train.add_argument("--out", default=None, help="results JSON (default results/<dataset>_<trainer>_cli.json)")

    evaluate = sub.add_parser("evaluate", help="saliency evaluators and robustness report of a saved model")
    _common(evaluate)
    evaluate.add_argument("--model", required=True, help="a .pt file written by 'art-sgt train --save-model'")
    evaluate.add_argument("--n", type=positive_int, default=1000, help="test images to evaluate (default 1000)")
    evaluate.add_argument("--robust-n", type=positive_int, default=200, help="test images for the attacks")
    evaluate.add_argument("--pgd-iter", type=positive_int, default=40, help="PGD iterations (default 40)")
    evaluate.add_argument("--apgd-iter", type=positive_int, default=100, help="APGD iterations (default 100)")
    evaluate.add_argument(
        "--square-queries", type=positive_int, default=1000, help="Square attack queries (default 1000)"
    )
    evaluate.add_argument("--out", default=None, help="results JSON (default next to the model)")

    from art_sgt._reproduce import add_arguments

    add_arguments(
        sub.add_parser(
            "reproduce",
            help="rerun the paper's comparison: standard, SGT, PGD-AT and ASGT on real data",
            description="Train standard, SGT, PGD-AT and ASGT models with one recipe, evaluate them with ART's "
            "attacks and the saliency evaluators, and write <out-dir>/<dataset>_<profile>.json/.md and figures.",
        )
    )
    return parser


def _load_data(args: argparse.Namespace, limit: int | None = None):
    from art_sgt.datasets import load_cifar10, load_mnist
    from art_sgt.models import to_channels_first

    loader = load_mnist if args.dataset == "mnist" else load_cifar10
    (x_train, y_train), (x_test, y_test), _, _ = loader(args.data_dir)
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    return (to_channels_first(x_train), y_train), (to_channels_first(x_test), y_test)


def _new_model(dataset: str) -> torch.nn.Module:
    from art_sgt import models

    return getattr(models, _ARCHS[dataset][0])()


def load_model(path: str, device: str = "auto", lr: float = 1e-3) -> tuple[Any, str]:
    """Load a model written by ``art-sgt train --save-model`` into a ``PyTorchClassifier``.

    :param path: The ``.pt`` file.
    :param device: ``"auto"``, ``"cpu"`` or ``"gpu"``.
    :param lr: Learning rate of the classifier's (fresh) optimizer.
    :return: ``(classifier, dataset name)``.
    :raises FileNotFoundError: If ``path`` does not exist.
    :raises ValueError: If the file is not a model saved by ``art-sgt``.
    """
    from art_sgt.models import make_classifier

    if not os.path.isfile(path):
        raise FileNotFoundError(f"--model {path!r} does not exist.")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        dataset = saved["dataset"]
        model = _new_model(dataset)
        model.load_state_dict(saved["state_dict"])
    except Exception as err:
        raise ValueError(f"--model {path!r} is not a model saved by 'art-sgt train' ({err}).") from err
    return make_classifier(model, _ARCHS[dataset][1], lr=lr, device_type=device), dataset


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


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from art_sgt.models import make_classifier
    from art_sgt.trainers import SaliencyGuidedTrainer

    (x_train, y_train), (x_test, y_test) = _load_data(args, args.limit)
    args.rank, args.created_group = _join_torchrun(args.device)
    torch.manual_seed(args.seed)
    classifier = make_classifier(_new_model(args.dataset), _ARCHS[args.dataset][1], lr=args.lr, device_type=args.device)
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
    start = time.perf_counter()
    trainer.fit(
        x_train, y_train, validation_data=(x_test[:2000], y_test[:2000]), batch_size=args.batch_size,
        nb_epochs=args.epochs, seed=args.seed, verbose=not args.quiet, checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    accuracy = float((classifier.predict(x_test, batch_size=1000).argmax(1) == y_test.argmax(1)).mean())
    if args.rank == 0:
        print(f"test accuracy {accuracy:.4f} on {len(x_test)} images ({seconds:.0f}s)")
    if args.save_model and args.rank == 0:
        os.makedirs(os.path.dirname(args.save_model) or ".", exist_ok=True)
        state = {k: v.cpu() for k, v in classifier.model.state_dict().items()}
        torch.save({"dataset": args.dataset, "trainer": args.trainer, "state_dict": state}, args.save_model)
        print(f"saved model to {args.save_model}")
    config = {k: v for k, v in vars(args).items() if k not in ("quiet", "func", "rank", "created_group")}
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    return {
        "config": config,
        "world_size": world,
        "test_accuracy": accuracy,
        "train_seconds": seconds,
        "history": trainer.history,
    }


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from art_sgt.evaluation import SaliencyEvaluator, robustness_report

    classifier, dataset = load_model(args.model, args.device)
    args.dataset = dataset
    _, (x_test, y_test) = _load_data(args)
    x, y = x_test[: args.n], y_test[: args.n].argmax(1)
    saliency = SaliencyEvaluator(classifier, seed=args.seed, progress=not args.quiet).evaluate(x, y)
    for method, metrics in saliency.summary().items():
        print(f"{method}: " + ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()))
    eps = (0.1, 0.2, 0.3) if dataset == "mnist" else (2 / 255, 0.02, 8 / 255)
    robust = robustness_report(
        classifier, x[: args.robust_n], y[: args.robust_n], eps=eps, pgd_max_iter=args.pgd_iter,
        apgd_max_iter=args.apgd_iter, square_max_iter=args.square_queries, seed=args.seed, verbose=not args.quiet,
    )  # fmt: skip
    print(f"clean accuracy {robust.clean_accuracy:.4f} on {robust.n_samples} images")
    for attack, values in {**robust.accuracy, "worst case": robust.worst_case}.items():
        print(f"{attack:>10}: " + ", ".join(f"eps {e:.4g} {a:.4f}" for e, a in zip(robust.eps, values)))
    print(f"gradient-masking flags: {', '.join(robust.flags) or 'none'}")
    config = {k: v for k, v in vars(args).items() if k not in ("quiet", "func")}
    return {"config": config, "saliency": saliency.to_dict(), "robustness": robust.to_dict()}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``art-sgt`` command.

    :param argv: Arguments (default: ``sys.argv[1:]``).
    :return: The exit status.
    """
    from art_sgt._provenance import run_info, write_json

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "reproduce":
        from art_sgt._reproduce import run

        try:
            return run(args)
        except (FileNotFoundError, ValueError, TypeError) as err:
            print(f"art-sgt reproduce: error: {err}", file=sys.stderr)
            return 2
    try:
        result = _train(args) if args.command == "train" else _evaluate(args)
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f"art-sgt {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        if getattr(args, "created_group", False):
            torch.distributed.destroy_process_group()
    if getattr(args, "rank", 0) != 0:
        return 0
    default = (
        f"results/{args.dataset}_{args.trainer}_cli.json"
        if args.command == "train"
        else os.path.splitext(args.model)[0] + "_evaluation.json"
    )
    path = write_json(args.out or default, {**run_info(seed=args.seed, device=args.device), **result})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
