"""Main job: Saliency-guided Training of the SGT paper's MNIST CNN on real MNIST, next to standard training.

Trains two copies of the same network from the same initial weights: one with ART's own
``PyTorchClassifier.fit`` (standard training) and one with ``SaliencyGuidedTrainer``; reports test accuracy
and timings in ``results/mnist_sgt.json`` and draws test images with both models' saliency maps in
``results/mnist_sgt_saliency.png``.

Usage::

    python examples/mnist_sgt.py [--data-dir DIR] [--quick] [--epochs 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import time

import numpy as np
import torch

from art_sgt import MnistCNN, SaliencyGuidedTrainer, input_gradient, load_mnist, make_classifier
from art_sgt.datasets import random_subset
from art_sgt.models import to_channels_first
from art_sgt.provenance import run_info, write_json


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz")
    parser.add_argument("--quick", action="store_true", help="10k training images, 1 epoch each, 2k test images")
    parser.add_argument("--epochs", type=int, default=4, help="SGT epochs (default 4)")
    parser.add_argument("--baseline-epochs", type=int, default=2, help="standard-training epochs (default 2)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--mask-fraction", type=float, default=0.5)
    parser.add_argument("--kl-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/mnist_sgt.json")
    parser.add_argument("--figure", default="results/mnist_sgt_saliency.png")
    return parser.parse_args()


def accuracy(classifier, x: np.ndarray, y: np.ndarray) -> float:
    return float((classifier.predict(x, batch_size=1000).argmax(1) == y.argmax(1)).mean())


def saliency_figure(path: str, x: np.ndarray, y: np.ndarray, models: dict[str, torch.nn.Module]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xt, yt = torch.from_numpy(x), torch.from_numpy(y.argmax(1))
    maps = {name: input_gradient(model, xt, yt).abs().numpy()[:, 0] for name, model in models.items()}
    rows = 1 + len(maps)
    fig, axes = plt.subplots(rows, len(x), figsize=(1.3 * len(x), 1.45 * rows), squeeze=False)
    for j in range(len(x)):
        axes[0, j].imshow(x[j, 0], cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"label {int(yt[j])}", fontsize=8)
        for i, m in enumerate(maps.values(), start=1):
            axes[i, j].imshow(m[j], cmap="hot", vmin=0, vmax=np.percentile(m[j], 99.5) + 1e-12)
    for i, name in enumerate(["image", *maps], start=0):
        axes[i, 0].set_ylabel(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("|input gradient| of the true class (brighter = more salient)", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    (x_train, y_train), (x_test, y_test), _, _ = load_mnist(args.data_dir)
    x_train, x_test = to_channels_first(x_train), to_channels_first(x_test)
    baseline_epochs, sgt_epochs = args.baseline_epochs, args.epochs
    if args.quick:
        train, test = random_subset(len(x_train), 10000, seed=0), random_subset(len(x_test), 2000, seed=0)
        x_train, y_train, x_test, y_test = x_train[train], y_train[train], x_test[test], y_test[test]
        baseline_epochs = sgt_epochs = 1
    print(f"MNIST: {len(x_train)} training and {len(x_test)} test images; seed {args.seed}")

    torch.manual_seed(args.seed)
    initial = MnistCNN()
    standard = make_classifier(copy.deepcopy(initial), (1, 28, 28), lr=args.lr, device_type="cpu")
    sgt = make_classifier(copy.deepcopy(initial), (1, 28, 28), lr=args.lr, device_type="cpu")

    print(f"Standard training (ART PyTorchClassifier.fit), {baseline_epochs} epoch(s)...")
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    standard.fit(x_train, y_train, batch_size=args.batch_size, nb_epochs=baseline_epochs, verbose=True)
    standard_seconds = time.perf_counter() - start
    standard_acc = accuracy(standard, x_test, y_test)
    print(f"  test accuracy {standard_acc:.4f} ({standard_seconds:.0f}s)")

    print(f"Saliency-guided training, {sgt_epochs} epoch(s)...")
    trainer = SaliencyGuidedTrainer(sgt, mask_fraction=args.mask_fraction, kl_weight=args.kl_weight)
    start = time.perf_counter()
    trainer.fit(x_train, y_train, batch_size=args.batch_size, nb_epochs=sgt_epochs, seed=args.seed)
    sgt_seconds = time.perf_counter() - start
    sgt_acc = accuracy(trainer.get_classifier(), x_test, y_test)
    print(f"  test accuracy {sgt_acc:.4f} ({sgt_seconds:.0f}s)")

    saliency_figure(args.figure, x_test[:10], y_test[:10], {"standard": standard.model, "SGT": sgt.model})
    payload = {
        **run_info(seed=args.seed, device=str(sgt.device)),
        "dataset": {
            "name": "mnist",
            "train": len(x_train),
            "test": len(x_test),
            "subsets": "seeded random (art_sgt.datasets.random_subset, seed 0)" if args.quick else "all",
        },
        "config": {
            "batch_size": args.batch_size,
            "lr": args.lr,
            "optimizer": "adam",
            "mask_fraction": args.mask_fraction,
            "kl_weight": args.kl_weight,
            "saliency": "gradient",
            "fill": "uniform",
            "quick": args.quick,
        },
        "standard": {"epochs": baseline_epochs, "test_accuracy": standard_acc, "train_seconds": standard_seconds},
        "sgt": {
            "epochs": sgt_epochs,
            "test_accuracy": sgt_acc,
            "train_seconds": sgt_seconds,
            "history": trainer.history,
        },
        "figure": args.figure,
    }
    print(f"Wrote {write_json(args.out, payload)} and {args.figure}")


if __name__ == "__main__":
    main()
