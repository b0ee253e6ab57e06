"""Adversarial Saliency-guided Training (ASGT) of the SGT paper's MNIST CNN on real MNIST.

Trains with ``SaliencyGuidedAdversarialTrainer`` against ART's ``ProjectedGradientDescent`` (crafted by the
on-device fast path), then measures clean accuracy and robust accuracy under *separate* ART
``ProjectedGradientDescent`` objects (ART's own ``generate``, never the fast path, so the evaluation does not
share code with training) and writes ``results/mnist_asgt.json``.

Usage::

    python examples/mnist_asgt.py [--data-dir DIR] [--eps 0.3] [--eps-step STEP] [--epochs 2] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import torch
from art.attacks.evasion import ProjectedGradientDescent

from art_sgt import MnistCNN, SaliencyGuidedAdversarialTrainer, load_mnist, make_classifier
from art_sgt.datasets import random_subset
from art_sgt.models import to_channels_first
from art_sgt.provenance import run_info, write_json


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz")
    parser.add_argument("--eps", type=float, default=0.3, help="training PGD radius (0.2 is the paper's setting)")
    parser.add_argument(
        "--eps-step", type=float, default=None, help="training PGD step (default 2.5 * eps / pgd-steps, Madry et al.)"
    )
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--test-size", type=int, default=1000, help="test images for the attacks")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="10k training images, 1 epoch, 500 test images")
    parser.add_argument("--out", default="results/mnist_asgt.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.quick:
        args.train_size, args.epochs, args.test_size = 10000, 1, 500
    if args.eps_step is None:
        args.eps_step = 2.5 * args.eps / args.pgd_steps
    (x_train, y_train), (x_test, y_test), _, _ = load_mnist(args.data_dir)
    x_train, y_train = to_channels_first(x_train[: args.train_size]), y_train[: args.train_size]
    test = random_subset(len(x_test), args.test_size, seed=0)  # the first test images are the easier ones
    x_test, y_test = to_channels_first(x_test[test]), y_test[test]

    torch.manual_seed(args.seed)
    classifier = make_classifier(MnistCNN(), (1, 28, 28), lr=args.lr, device_type="cpu")
    attack = ProjectedGradientDescent(
        classifier, eps=args.eps, eps_step=args.eps_step, max_iter=args.pgd_steps, num_random_init=1, verbose=False
    )
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack)
    print(
        f"ASGT on {len(x_train)} MNIST images, PGD eps {args.eps}, {args.epochs} epoch(s); "
        f"fast path: {trainer.uses_fast_path}"
    )
    start = time.perf_counter()
    trainer.fit(x_train, y_train, batch_size=args.batch_size, nb_epochs=args.epochs, seed=args.seed)
    seconds = time.perf_counter() - start

    labels = y_test.argmax(1)
    results = {"clean": float((classifier.predict(x_test).argmax(1) == labels).mean())}
    for eps in (0.1, 0.2, 0.3):
        evaluation = ProjectedGradientDescent(
            classifier, eps=eps, eps_step=eps / 8, max_iter=40, num_random_init=1, batch_size=250, verbose=False
        )
        x_adv = evaluation.generate(x_test, y=y_test)
        results[f"pgd40_eps{eps}"] = float((classifier.predict(x_adv).argmax(1) == labels).mean())
        print(f"  robust accuracy, ART PGD-40 eps {eps}: {results[f'pgd40_eps{eps}']:.4f}")
    print(f"  clean accuracy {results['clean']:.4f} ({seconds:.0f}s training)")
    payload = {
        **run_info(seed=args.seed, device=str(classifier.device)),
        "dataset": {"name": "mnist", "train": len(x_train), "test": len(x_test), "test_subset_seed": 0},
        "training": {
            "attack": {
                "name": "ProjectedGradientDescent",
                "eps": args.eps,
                "eps_step": args.eps_step,
                "max_iter": args.pgd_steps,
                "num_random_init": 1,
            },
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "optimizer": "adam",
            "train_seconds": seconds,
            "history": trainer.history,
        },
        "evaluation": {
            "attack": "ART ProjectedGradientDescent, 40 steps, eps_step eps/8, 1 random start",
            "accuracy": results,
        },
    }
    print(f"Wrote {write_json(args.out, payload)}")


if __name__ == "__main__":
    main()
