"""Trainer speed against ART's own training, measured side by side in one run.

Times, on the same model architecture, data (2048 MNIST-shaped samples, batch 128) and machine, interleaved so
that machine noise hits every contender alike:

- ``art_fit``: one epoch of ART's ``PyTorchClassifier.fit`` (the baseline);
- ``sgt``: one epoch of :class:`art_sgt.SaliencyGuidedTrainer` (defaults);
- ``art_madry``: one epoch of ART's ``AdversarialTrainerMadryPGD`` (PGD eps 0.3, eps_step 0.01, 10 steps, no
  random init), the baseline of
- ``asgt``: one epoch of :class:`art_sgt.SaliencyGuidedAdversarialTrainer` with the same ART PGD object;
- ``art_pgd``: ART's ``ProjectedGradientDescent.generate`` on the first 1024 images (same PGD), the baseline of
- ``fast_pgd``: :func:`art_sgt.attacks.pgd` on the same images and model, batch 128 like ART's;

and writes the medians and ratios to ``results/bench_trainers.json``. Other contenders register themselves in
``CONTENDERS`` (name -> (baseline name, setup function)).

Usage::

    python benchmarks/bench_trainers.py [--repeats 5] [--n 2048] [--out results/bench_trainers.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.defences.trainer import AdversarialTrainerMadryPGD

from art_sgt import MnistCNN, SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer, make_classifier
from art_sgt._art import PreprocessedModel
from art_sgt._provenance import run_info, write_json
from art_sgt.attacks import pgd

Epoch = Callable[[], None]


def _classifier(seed: int):
    torch.manual_seed(seed)
    return make_classifier(MnistCNN(), (1, 28, 28), lr=1e-3, device_type="cpu")


def setup_art_fit(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    classifier = _classifier(args.seed)
    return lambda: classifier.fit(x, y, batch_size=args.batch_size, nb_epochs=1)


def setup_sgt(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    trainer = SaliencyGuidedTrainer(_classifier(args.seed))
    return lambda: trainer.fit(x, y, batch_size=args.batch_size, nb_epochs=1, verbose=False, seed=args.seed)


PGD = dict(eps=0.3, eps_step=0.01, max_iter=10, num_random_init=0)


def setup_art_madry(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    trainer = AdversarialTrainerMadryPGD(_classifier(args.seed), nb_epochs=1, batch_size=args.batch_size, **PGD)
    return lambda: trainer.fit(x, y)


def setup_asgt(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    classifier = _classifier(args.seed)
    attack = ProjectedGradientDescent(classifier, batch_size=args.batch_size, verbose=False, **PGD)
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack)
    return lambda: trainer.fit(x, y, batch_size=args.batch_size, nb_epochs=1, verbose=False, seed=args.seed)


def setup_art_pgd(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    classifier = _classifier(args.seed)
    attack = ProjectedGradientDescent(classifier, batch_size=args.batch_size, verbose=False, **PGD)
    return lambda: attack.generate(x[: args.pgd_n], y=y[: args.pgd_n])


def setup_fast_pgd(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    net = PreprocessedModel(_classifier(args.seed))
    xt, yt = torch.from_numpy(x[: args.pgd_n]), torch.from_numpy(y[: args.pgd_n].argmax(1))
    b = args.batch_size

    def run() -> None:
        for i in range(0, len(xt), b):
            pgd(net, xt[i : i + b], yt[i : i + b], clip_values=(0.0, 1.0), **PGD)

    return run


# name -> (baseline name or None, setup); baselines are listed before the contenders that use them
CONTENDERS: dict[str, tuple[str | None, Callable[..., Epoch]]] = {
    "art_fit": (None, setup_art_fit),
    "sgt": ("art_fit", setup_sgt),
    "art_madry": (None, setup_art_madry),
    "asgt": ("art_madry", setup_asgt),
    "art_pgd": (None, setup_art_pgd),
    "fast_pgd": ("art_pgd", setup_fast_pgd),
}

TARGETS = {"sgt": 2.4, "asgt": 0.6, "fast_pgd": 0.4}


def time_interleaved(epochs: dict[str, Epoch], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every contender once per round, ``warmup`` untimed rounds first; return seconds per contender."""
    times: dict[str, list[float]] = {name: [] for name in epochs}
    for round_ in range(warmup + repeats):
        for name, epoch in epochs.items():
            start = time.perf_counter()
            epoch()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pgd-n", type=int, default=1024, help="images for the PGD comparison")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="contenders to run (their baselines are added)")
    parser.add_argument("--out", default="results/bench_trainers.json")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x = rng.random((args.n, 1, 28, 28), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, args.n)]
    names = list(CONTENDERS) if not args.only else args.only
    wanted = [n for n in CONTENDERS if n in names or any(CONTENDERS[m][0] == n for m in names)]
    epochs = {name: CONTENDERS[name][1](x, y, args) for name in wanted}
    times = time_interleaved(epochs, args.repeats)

    medians = {name: statistics.median(t) for name, t in times.items()}
    ratios = {}
    print(f"{'contender':<14}{'median s':>10}{'baseline':>12}{'ratio':>8}{'target':>8}")
    for name in wanted:
        baseline = CONTENDERS[name][0]
        ratio = medians[name] / medians[baseline] if baseline else None
        if ratio is not None:
            ratios[name] = {"baseline": baseline, "ratio": ratio, "target": TARGETS.get(name)}
        target = TARGETS.get(name)
        print(
            f"{name:<14}{medians[name]:>10.3f}{baseline or '-':>12}"
            f"{'' if ratio is None else f'{ratio:.3f}':>8}{'' if target is None else f'<={target}':>8}"
        )
    payload = {
        **run_info(seed=args.seed, device="cpu"),
        "setup": {
            "n": args.n,
            "pgd_n": args.pgd_n,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "model": "MnistCNN",
            "pgd": PGD,
            "data": "uniform random MNIST-shaped inputs and labels (speed does not depend on content)",
        },
        "seconds": times,
        "median_seconds": medians,
        "ratios": ratios,
    }
    print(f"Wrote {write_json(args.out, payload)}")


if __name__ == "__main__":
    main()
