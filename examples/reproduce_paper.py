"""Reproduce SGT / ASGT on real MNIST or CIFAR-10: four models, ART's attacks, saliency quality, a markdown verdict.

Usage::

    python examples/reproduce_paper.py --dataset mnist --profile quick
    python examples/reproduce_paper.py --dataset cifar10 --profile quick
    python examples/reproduce_paper.py --dataset mnist --profile quick --ablations
    python examples/reproduce_paper.py --dataset mnist --profile quick --rewrite-md  # markdown from the JSON

Writes ``results/<dataset>_<profile>.json`` / ``.md`` and ``results/<dataset>_<profile>/*.png`` (rewritten
after every model, so a partial run leaves partial results). The recipe lives in :mod:`art_sgt.reproduction`.
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
from art_sgt._provenance import run_info, write_json
from art_sgt.datasets import load_cifar10, load_mnist
from art_sgt.models import to_channels_first


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), required=True)
    parser.add_argument("--profile", choices=("quick", "full"), default="quick")
    parser.add_argument("--models", default=",".join(rp.MODELS), help="comma-separated subset of the four models")
    parser.add_argument("--ablations", action="store_true", help="MNIST ablations instead of the four models")
    parser.add_argument("--data-dir", default=os.environ.get("ART_SGT_DATA", "/work/shared/data"))
    parser.add_argument("--out-dir", default="results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, help="override the profile's number of training images")
    parser.add_argument("--epochs", type=int, help="override the profile's epochs")
    parser.add_argument("--n-eval", type=int, help="override the profile's clean/PGD test images")
    parser.add_argument("--n-report", type=int, help="override the profile's report/saliency test images")
    parser.add_argument("--rewrite-md", action="store_true", help="only re-render the markdown from the JSON")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stem, out = f"{args.dataset}_{args.profile}", Path(args.out_dir)
    if args.rewrite_md:
        print(rp.write_markdown(json.loads((out / f"{stem}.json").read_text()), out / f"{stem}.md"))
        return
    profile = rp.get_profile(args.dataset, args.profile, n_train=args.n_train, epochs=args.epochs,
                             n_eval=args.n_eval, n_report=args.n_report)
    loader = load_mnist if args.dataset == "mnist" else load_cifar10
    (x_train, y_train), (x_test, y_test), _, _ = loader(args.data_dir)
    x_train, y_train = to_channels_first(x_train[: profile.n_train]), y_train[: profile.n_train]
    n_test = max(profile.n_eval, profile.n_report)
    x_test, y_test = to_channels_first(x_test[:n_test]), y_test[:n_test]
    if args.ablations:
        rp.run_ablations(x_train, y_train, x_test, y_test, profile, out, args.seed)
        return

    figures = out / stem
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
    for name in args.models.split(","):
        print(f"== {name}: training", flush=True)
        classifier, seconds = rp.train_model(name, x_train, y_train, profile, seed=args.seed)
        print(f"== {name}: trained in {seconds:.0f} s; evaluating", flush=True)
        transfer = objects.get("standard", {}).get("classifier")
        numbers, objs = rp.evaluate_model(classifier, x_test, y_test, args.dataset, profile, transfer, args.seed)
        numbers["train_seconds"] = round(seconds, 1)
        payload["results"][name] = numbers
        objects[name] = {**objs, "classifier": classifier}
        payload["figures"] = rp.write_figures(objects, x_test[: profile.n_report], figures)
        payload["total_seconds"] = round(time.perf_counter() - started, 1)
        write_json(out / f"{stem}.json", payload)
        rp.write_markdown(payload, out / f"{stem}.md")
        print(f"== {name}: clean {numbers['clean']:.3f}, PGD {numbers['pgd_paper_eps']:.3f} / "
              f"{numbers['pgd_standard_eps']:.3f}, flags {numbers['robustness']['flags']}", flush=True)
    print((out / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
