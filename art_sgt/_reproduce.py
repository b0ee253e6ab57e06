"""The driver of the paper reproduction, shared by ``art-sgt reproduce`` and ``examples/reproduce_paper.py``.

Trains the four models of :data:`art_sgt.reproduction.MODELS` (or the MNIST ablations) with one profile's recipe
on real data, evaluates each one with ART's attacks and the saliency evaluators, and writes
``<out-dir>/<dataset>_<profile>.json`` / ``.md`` and figures under ``<out-dir>/<dataset>_<profile>/``, rewritten
after every model so that an interrupted run leaves partial results.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from art_sgt import reproduction as rp
from art_sgt._argtypes import non_negative_int, positive_int
from art_sgt._provenance import run_info, write_json
from art_sgt.datasets import load_cifar10, load_mnist
from art_sgt.models import to_channels_first

__all__ = ["add_arguments", "run"]


def _models(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in rp.MODELS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"must be a comma-separated subset of {','.join(rp.MODELS)}, got {text!r}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the reproduction's arguments to ``parser``.

    :param parser: An argument parser (or subparser).
    :return: The same parser.
    """
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), required=True)
    parser.add_argument("--profile", choices=("quick", "full"), default="quick", help="recipe size (default quick)")
    parser.add_argument(
        "--models", type=_models, default=list(rp.MODELS), help=f"comma-separated subset of {','.join(rp.MODELS)}"
    )
    parser.add_argument(
        "--ablations", action="store_true", help="MNIST ablations instead of the four models (ignores --models)"
    )
    parser.add_argument(
        "--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz / cifar10.npz ($ART_SGT_DATA)"
    )
    parser.add_argument("--out-dir", default="results", help="where the JSON, markdown and figures go")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--n-train", type=positive_int, help="override the profile's number of training images")
    parser.add_argument("--epochs", type=positive_int, help="override the profile's epochs")
    parser.add_argument("--n-eval", type=positive_int, help="override the profile's clean/PGD test images")
    parser.add_argument("--n-report", type=positive_int, help="override the profile's report/saliency test images")
    parser.add_argument("--rewrite-md", action="store_true", help="only re-render the markdown from the JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the reproduction described by parsed ``args`` (see :func:`add_arguments`).

    :param args: The parsed arguments.
    :return: The exit status (0).
    """
    if args.ablations and args.dataset != "mnist":
        raise ValueError(f"--ablations runs on MNIST only (it writes mnist_ablations.json), not on {args.dataset}.")
    stem, out = f"{args.dataset}_{args.profile}", Path(args.out_dir)
    if args.rewrite_md:
        print(rp.write_markdown(json.loads((out / f"{stem}.json").read_text()), out / f"{stem}.md"))
        return 0
    profile = rp.get_profile(
        args.dataset, args.profile, n_train=args.n_train, epochs=args.epochs, n_eval=args.n_eval,
        n_report=args.n_report,
    )  # fmt: skip
    loader = load_mnist if args.dataset == "mnist" else load_cifar10
    (x_train, y_train), (x_test, y_test), _, _ = loader(args.data_dir)
    x_train, y_train = to_channels_first(x_train[: profile.n_train]), y_train[: profile.n_train]
    n_test = max(profile.n_eval, profile.n_report)
    x_test, y_test = to_channels_first(x_test[:n_test]), y_test[:n_test]
    if args.ablations:
        rp.run_ablations(x_train, y_train, x_test, y_test, profile, out, args.seed)
        return 0

    payload = {
        "dataset": args.dataset,
        "profile": args.profile,
        "run": run_info(args.seed, "cuda" if torch.cuda.is_available() else "cpu"),
        "setup": rp.describe(profile, len(x_train)),
        "recipe": asdict(profile),
        "results": {},
        "figures": {},
    }
    objects: dict = {}
    started = time.perf_counter()
    for name in args.models:
        print(f"== {name}: training", flush=True)
        classifier, seconds = rp.train_model(name, x_train, y_train, profile, seed=args.seed)
        print(f"== {name}: trained in {seconds:.0f} s; evaluating", flush=True)
        transfer = objects.get("standard", {}).get("classifier")
        numbers, objs = rp.evaluate_model(classifier, x_test, y_test, args.dataset, profile, transfer, args.seed)
        numbers["train_seconds"] = round(seconds, 1)
        payload["results"][name] = numbers
        objects[name] = {**objs, "classifier": classifier}
        payload["figures"] = rp.write_figures(objects, x_test[: profile.n_report], out / stem)
        payload["total_seconds"] = round(time.perf_counter() - started, 1)
        write_json(out / f"{stem}.json", payload)
        rp.write_markdown(payload, out / f"{stem}.md")
        print(
            f"== {name}: clean {numbers['clean']:.3f}, PGD {numbers['pgd_paper_eps']:.3f} / "
            f"{numbers['pgd_standard_eps']:.3f}, flags {numbers['robustness']['flags']}",
            flush=True,
        )
    print((out / f"{stem}.md").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run (the entry point of ``examples/reproduce_paper.py``).

    :param argv: Arguments (default: ``sys.argv[1:]``).
    :return: The exit status.
    """
    parser = add_arguments(argparse.ArgumentParser(description="Reproduce SGT / ASGT on real MNIST or CIFAR-10."))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args)
