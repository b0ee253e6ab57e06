"""Time to robustness on real MNIST: ART's adversarial trainers against ASGT and fast ASGT, epoch by epoch.

Trains, from the same initial weights (the SGT paper's MNIST CNN), with the same data, batch size, optimizer
(Adam) and number of epochs, at L-inf eps 0.3:

- ``art_madry``: ART's ``AdversarialTrainerMadryPGD`` (PGD-10, step 2.5 eps / 10, one random start), called
  with ``nb_epochs=1`` once per epoch (it has no schedule, so this is one continued run);
- ``art_fbf``: ART's ``AdversarialTrainerFBFPyTorch`` ("Fast is better than free": FGSM with a random start,
  step 1.25 eps, gradient clipping), one ``fit`` over all epochs so that its cyclic learning rate spans the run as
  designed. ART sets the learning rate itself, rising linearly from 0 to 0.21 at 2/5 of the run and back to 0:
  a peak meant for SGD on CIFAR-10, with which Adam diverges. Here the peak is ``--fbf-peak-lr`` (default 5e-3,
  the authors' own MNIST setting in locuslab/fast_adversarial, Adam with this cyclic schedule); everything else
  is ART's code;
- ``asgt_pgd10``: :class:`~art_sgt.SaliencyGuidedAdversarialTrainer` with the same PGD-10 as ``art_madry``;
- ``fast_asgt``: :meth:`SaliencyGuidedAdversarialTrainer.fast <art_sgt.SaliencyGuidedAdversarialTrainer.fast>`
  (the recipe's defaults) with ``robust_validation`` on a held-out slice of the *training* set (the
  ``--val-size`` images after the training images) and ``keep_best="robust"``.

After every epoch the weights are copied aside (the copy's CPU time is not counted); the training CPU seconds
are ``time.process_time()`` of the training process (torch on one thread), so they do not depend on how busy the
machine is. Each trainer trains in its own process. Afterwards every epoch's weights are evaluated on a fixed
seeded random subset of the test set (``--test-size`` images, :func:`art_sgt.datasets.random_subset`, indices
recorded) with :func:`art_sgt.evaluation.robustness_report` at
``budget="quick"`` and eps 0.3: the worst case over PGD-20, APGD-CE, APGD-DLR, APGD-T and Square-1000 (the
gradient-masking checklist is not run, so its attacks are not in the worst case), and the clean accuracy. The
fast-ASGT model ``fit`` returned (its best epoch by robust validation) is evaluated too.

Output: ``results/time_to_robustness.json`` (per trainer per epoch: cumulative training CPU seconds, worst-case
and clean accuracy; the issue's target, "fast ASGT reaches ART Madry PGD-10's final worst-case accuracy within
2 points in at most 1/3 of Madry's training CPU time", as a ratio and a verdict; whether the returned fast-ASGT
model overfitted catastrophically) and ``results/time_to_robustness.png`` (worst-case accuracy against training
CPU minutes, one line per trainer).

Usage::

    python benchmarks/bench_time_to_robustness.py [--data-dir DIR] [--train-size 8000] [--epochs 2]
        [--test-size 200] [--workers 3] [--quick]

The defaults are sized for a shared 2-core machine (the whole run within about 40 minutes of wall time); the
evaluation dominates the cost (the quick budget's Square attack spends up to 1000 queries per robust image).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
import torch

EPS = 0.3
PGD_STEPS = 10
CONTENDERS = ("art_madry", "art_fbf", "asgt_pgd10", "fast_asgt")
COST_ORDER = ("art_madry", "asgt_pgd10", "fast_asgt", "art_fbf")  # the order trainings start in: longest first
LABELS = {
    "art_madry": "ART Madry PGD-10",
    "art_fbf": "ART FBF (FGSM-RS)",
    "asgt_pgd10": "ASGT PGD-10",
    "fast_asgt": "fast ASGT",
}
TARGET_POINTS = 0.02
TARGET_FRACTION = 1 / 3
ART_FBF_PEAK = 0.21  # the peak learning rate ART's AdversarialTrainerFBFPyTorch hard-codes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz")
    parser.add_argument("--train-size", type=int, default=8000, help="first N training images")
    parser.add_argument("--val-size", type=int, default=256, help="fast ASGT's robust validation: the next images")
    parser.add_argument("--test-size", type=int, default=200, help="first N test images, for the evaluation")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (all but FBF)")
    parser.add_argument("--fbf-peak-lr", type=float, default=5e-3, help="peak of FBF's cyclic learning rate (Adam)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=3, help="processes (each trains or evaluates on one thread)")
    parser.add_argument("--only", nargs="*", choices=CONTENDERS, help="trainers to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 512 training images, 2 epochs, 32 test")
    parser.add_argument("--out", default="results/time_to_robustness.json")
    parser.add_argument("--figure", default="results/time_to_robustness.png")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_size, args.val_size, args.test_size, args.epochs = 512, 64, 32, 2
    return args


# ---------------------------------------------------------------------------------------------- data and models
def load_data(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Training images, the held-out slice after them (fast ASGT's robust validation) and the test subset."""
    from art_sgt import load_mnist
    from art_sgt.datasets import random_subset
    from art_sgt.models import to_channels_first

    (x_train, y_train), (x_test, y_test), _, _ = load_mnist(args.data_dir)
    n, v = args.train_size, args.val_size
    if n + v > len(x_train):
        raise ValueError(f"--train-size + --val-size must be at most {len(x_train)}, got {n + v}.")
    test_idx = random_subset(len(x_test), args.test_size, seed=0)  # a seeded random subset, not the first rows
    return {
        "x_train": to_channels_first(x_train[:n]),
        "y_train": y_train[:n],
        "x_val": to_channels_first(x_train[n : n + v]),
        "y_val": y_train[n : n + v].argmax(1),
        "x_test": to_channels_first(x_test[test_idx]),
        "y_test": y_test[test_idx].argmax(1),
        "test_indices": test_idx,
        "test_n_total": np.asarray(len(x_test)),
    }


def make_mnist_classifier(seed: int, lr: float):
    """The SGT paper's MNIST CNN with Adam; the same initial weights for every trainer with the same seed."""
    from art_sgt import MnistCNN, make_classifier

    torch.manual_seed(seed)
    return make_classifier(MnistCNN(), (1, 28, 28), lr=lr, device_type="cpu")


def pgd10(classifier: Any, args: argparse.Namespace) -> Any:
    from art.attacks.evasion import ProjectedGradientDescent

    return ProjectedGradientDescent(
        classifier,
        eps=EPS,
        eps_step=2.5 * EPS / PGD_STEPS,
        max_iter=PGD_STEPS,
        num_random_init=1,
        batch_size=args.batch_size,
        verbose=False,
    )


# ---------------------------------------------------------------------------------------------- training
class EpochClock:
    """Training CPU seconds (``time.process_time``) with the per-epoch weight copies taken out."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.excluded = 0.0
        self.snapshots: list[dict[str, Any]] = []
        self.start = time.process_time()

    def snapshot(self) -> None:
        now = time.process_time()
        weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.snapshots.append({"cpu_seconds": now - self.start - self.excluded, "weights": weights})
        self.excluded += time.process_time() - now

    def total(self) -> float:
        return time.process_time() - self.start - self.excluded


class _EpochLogHook(logging.Handler):
    """Calls ``on_epoch`` when the art-sgt loop logs an epoch's line: after its validation, before the next epoch."""

    def __init__(self, on_epoch: Callable[[], None]) -> None:
        super().__init__(level=logging.INFO)
        self.on_epoch = on_epoch

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("epoch "):
            self.on_epoch()


def train_art_madry(data: dict, args: argparse.Namespace) -> tuple[EpochClock, dict]:
    from art.defences.trainer import AdversarialTrainerMadryPGD

    classifier = make_mnist_classifier(args.seed, args.lr)
    np.random.seed(args.seed)  # noqa: NPY002 - ART shuffles and draws random starts from numpy's global generator
    trainer = AdversarialTrainerMadryPGD(
        classifier,
        nb_epochs=1,
        batch_size=args.batch_size,
        eps=EPS,
        eps_step=2.5 * EPS / PGD_STEPS,
        max_iter=PGD_STEPS,
        num_random_init=1,
    )
    clock = EpochClock(classifier.model)
    for _ in range(args.epochs):
        trainer.fit(data["x_train"], data["y_train"], nb_epochs=1)
        clock.snapshot()
    return clock, {}


def train_art_fbf(data: dict, args: argparse.Namespace) -> tuple[EpochClock, dict]:
    from art.defences.trainer import AdversarialTrainerFBFPyTorch

    classifier = make_mnist_classifier(args.seed, args.lr)
    batches = int(np.ceil(len(data["x_train"]) / args.batch_size))
    scale = args.fbf_peak_lr / ART_FBF_PEAK
    clock = EpochClock(classifier.model)
    done = [0]

    class FBF(AdversarialTrainerFBFPyTorch):
        """ART's trainer with its learning rate scaled to the chosen peak, and a weight copy after every epoch."""

        def _batch_process(self, x_batch: np.ndarray, y_batch: np.ndarray, l_r: float) -> tuple[float, float, float]:
            out = super()._batch_process(x_batch, y_batch, l_r * scale)
            done[0] += 1
            if done[0] % batches == 0:
                clock.snapshot()
            return out

    np.random.seed(args.seed)  # noqa: NPY002 - ART shuffles and draws random starts from numpy's global generator
    clock.start = time.process_time()
    FBF(classifier, eps=EPS).fit(data["x_train"], data["y_train"], batch_size=args.batch_size, nb_epochs=args.epochs)
    return clock, {"learning_rate": f"ART's cyclic schedule scaled to a peak of {args.fbf_peak_lr} (Adam)"}


def _train_ours(trainer: Any, data: dict, args: argparse.Namespace, **fit_kwargs: Any) -> EpochClock:
    clock = EpochClock(trainer.get_classifier().model)
    hook = _EpochLogHook(clock.snapshot)
    loop_logger = logging.getLogger("art_sgt.trainers.base")
    loop_logger.addHandler(hook)
    loop_logger.setLevel(logging.INFO)
    loop_logger.propagate = False  # the epoch lines are read, not printed
    clock.start = time.process_time()
    try:
        trainer.fit(
            data["x_train"],
            data["y_train"],
            batch_size=args.batch_size,
            nb_epochs=args.epochs,
            seed=args.seed,
            verbose=False,
            **fit_kwargs,
        )
    finally:
        loop_logger.removeHandler(hook)
    if len(clock.snapshots) != args.epochs:
        raise RuntimeError(f"expected {args.epochs} epoch lines from the training loop, saw {len(clock.snapshots)}")
    return clock


def train_asgt_pgd10(data: dict, args: argparse.Namespace) -> tuple[EpochClock, dict]:
    from art_sgt import SaliencyGuidedAdversarialTrainer

    classifier = make_mnist_classifier(args.seed, args.lr)
    trainer = SaliencyGuidedAdversarialTrainer(classifier, pgd10(classifier, args))
    return _train_ours(trainer, data, args), {"fast_path": trainer.uses_fast_path, "history": trainer.history}


def train_fast_asgt(data: dict, args: argparse.Namespace) -> tuple[EpochClock, dict]:
    from art_sgt import SaliencyGuidedAdversarialTrainer

    classifier = make_mnist_classifier(args.seed, args.lr)
    trainer = SaliencyGuidedAdversarialTrainer.fast(classifier, eps=EPS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clock = _train_ours(trainer, data, args, robust_validation=(data["x_val"], data["y_val"]), keep_best="robust")
    returned = {k: v.detach().clone() for k, v in classifier.model.state_dict().items()}
    attack = trainer.attack
    extra = {
        "fast_path": trainer.uses_fast_path,
        "attack": {
            "type": type(attack).__name__,
            "eps": attack.eps,
            "eps_step": attack.eps_step,
            "max_iter": attack.max_iter,
            "num_random_init": attack.num_random_init,
        },
        "single_step": trainer.single_step,
        "best_epoch": trainer.best_epoch,
        "warnings": [f"{type(w.message).__name__}: {w.message}" for w in caught],
        "history": trainer.history,
        "returned_weights": returned,
    }
    return clock, extra


TRAIN = {
    "art_madry": train_art_madry,
    "art_fbf": train_art_fbf,
    "asgt_pgd10": train_asgt_pgd10,
    "fast_asgt": train_fast_asgt,
}


def _one_thread() -> None:
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)


def run_training(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """In a worker process: train one contender, return its per-epoch CPU seconds and weights."""
    _one_thread()
    data = load_data(args)
    clock, extra = TRAIN[name](data, args)
    return {"total_cpu_seconds": clock.total(), "snapshots": clock.snapshots, **extra}


def run_evaluation(weights: dict[str, torch.Tensor], args: argparse.Namespace) -> dict[str, Any]:
    """In a worker process: the quick robustness report of one set of weights on the test subset."""
    from art_sgt.evaluation import robustness_report

    _one_thread()
    data = load_data(args)
    classifier = make_mnist_classifier(args.seed, args.lr)
    classifier.model.load_state_dict(weights)
    start = time.process_time()
    report = robustness_report(
        classifier,
        data["x_test"],
        data["y_test"],
        eps=(EPS,),
        budget="quick",
        checklist=False,
        batch_size=250,
        seed=args.seed,
        verbose=False,
    )
    return {
        "worst_case_accuracy": report.worst_case[0],
        "clean_accuracy": report.clean_accuracy,
        "accuracy": {name: values[0] for name, values in report.accuracy.items()},
        "evaluation_cpu_seconds": time.process_time() - start,
    }


# ---------------------------------------------------------------------------------------------- summary
def time_to_reach(epochs: list[dict[str, Any]], level: float) -> float | None:
    """Cumulative CPU seconds of the first epoch whose worst-case accuracy is at least ``level`` (``None``: never).

    >>> time_to_reach([{"cpu_seconds": 10.0, "worst_case_accuracy": 0.3},
    ...                {"cpu_seconds": 20.0, "worst_case_accuracy": 0.6}], 0.5)
    20.0
    """
    return next((e["cpu_seconds"] for e in epochs if e["worst_case_accuracy"] >= level - 1e-12), None)


def summarize(trainers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's target and the fast-ASGT verdicts from the per-epoch records."""
    from art_sgt.trainers import COLLAPSE_DROP

    target: dict[str, Any] = {}
    madry, fast = trainers.get("art_madry"), trainers.get("fast_asgt")
    if madry and fast:
        final = madry["epochs"][-1]["worst_case_accuracy"]
        level = final - TARGET_POINTS
        reached = time_to_reach(fast["epochs"], level)
        ratio = None if reached is None else reached / madry["total_cpu_seconds"]
        target = {
            "madry_final_worst_case": final,
            "level": level,
            "madry_total_cpu_seconds": madry["total_cpu_seconds"],
            "fast_asgt_cpu_seconds_to_level": reached,
            "ratio": ratio,
            "required_ratio": TARGET_FRACTION,
            "met": ratio is not None and ratio <= TARGET_FRACTION,
        }
    if fast:
        best = max(e["worst_case_accuracy"] for e in fast["epochs"])
        returned = fast["returned"]["worst_case_accuracy"]
        fired = [r["epoch"] for r in fast["history"] if r.get("catastrophic_overfitting")]
        target.update(
            fast_asgt_returned_epoch=fast["best_epoch"],
            fast_asgt_returned_worst_case=returned,
            fast_asgt_best_epoch_worst_case=best,
            fast_asgt_guard_fired_at_epochs=fired,
            # the guard's own rule, on the test subset: a fall of COLLAPSE_DROP below the best epoch's accuracy
            fast_asgt_returned_overfit=bool(best - returned >= COLLAPSE_DROP),
        )
    return target


def plot(trainers: dict[str, dict[str, Any]], target: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    for name, record in trainers.items():
        minutes = [e["cpu_seconds"] / 60 for e in record["epochs"]]
        accuracy = [e["worst_case_accuracy"] for e in record["epochs"]]
        ax.plot(minutes, accuracy, marker="o", label=LABELS[name])
        if name == "fast_asgt":
            ax.plot(
                minutes[-1],
                record["returned"]["worst_case_accuracy"],
                marker="*",
                markersize=14,
                linestyle="none",
                color="black",
                label="fast ASGT, model returned (keep_best)",
            )
    if target.get("level") is not None:
        ax.axhline(
            target["level"], color="grey", linestyle="--", linewidth=1, label="Madry's final worst case - 2 points"
        )
        ax.axvline(
            target["madry_total_cpu_seconds"] * TARGET_FRACTION / 60,
            color="grey",
            linestyle=":",
            linewidth=1,
            label="1/3 of Madry's training time",
        )
    ax.set_xlabel("training CPU minutes (one thread)")
    ax.set_ylabel(f"worst-case accuracy, eps {EPS} (quick budget)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    from art_sgt.provenance import run_info, write_json

    args = parse_args(argv)
    names = args.only or list(CONTENDERS)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    results: dict[str, dict[str, Any]] = {}
    evaluations: dict[str, list[Future]] = {}
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
        # the longest trainings first; each one's evaluations are queued as soon as it ends
        trained = {pool.submit(run_training, name, args): name for name in sorted(names, key=COST_ORDER.index)}
        for future in as_completed(trained):
            name = trained[future]
            results[name] = result = future.result()
            weights = [s["weights"] for s in result["snapshots"]]
            returned = result.pop("returned_weights", None)
            if returned is not None and result["best_epoch"] != args.epochs:
                weights.append(returned)  # the returned model is an earlier epoch's: evaluate it as it is
            evaluations[name] = [pool.submit(run_evaluation, w, args) for w in weights]
            print(f"{LABELS[name]} trained ({result['total_cpu_seconds']:.0f} CPU s)", flush=True)
        scores = {name: [f.result() for f in futures] for name, futures in evaluations.items()}

    trainers: dict[str, dict[str, Any]] = {}
    for name in names:
        result = results[name]
        epochs = [
            {"epoch": i + 1, "cpu_seconds": s["cpu_seconds"], **scores[name][i]}
            for i, s in enumerate(result.pop("snapshots"))
        ]
        trainers[name] = {"label": LABELS[name], "epochs": epochs, **result}
        if name == "fast_asgt":
            trainers[name]["returned"] = {"epoch": result["best_epoch"], **scores[name][-1]}
        print(
            f"{LABELS[name]}: "
            + ", ".join(
                f"epoch {e['epoch']} {e['cpu_seconds']:.0f}s worst case {e['worst_case_accuracy']:.3f}" for e in epochs
            )
        )
    target = summarize(trainers)
    plot(trainers, target, args.figure)
    test_data = load_data(args)  # the test subset the evaluations drew, recorded
    test = {"n_total": int(test_data["test_n_total"]), "indices": test_data["test_indices"].tolist()}
    summary = {
        name: {
            "epochs": len(t["epochs"]),
            "training_cpu_seconds": round(t["total_cpu_seconds"], 1),
            "final_worst_case_accuracy": t["epochs"][-1]["worst_case_accuracy"],
            "final_clean_accuracy": t["epochs"][-1]["clean_accuracy"],
            "best_worst_case_accuracy": max(e["worst_case_accuracy"] for e in t["epochs"]),
        }
        for name, t in trainers.items()
    }
    payload = {
        **run_info(seed=args.seed, device="cpu"),
        "setup": {
            "dataset": "mnist",
            "train": f"first {args.train_size} training images",
            "robust_validation": f"training images {args.train_size}..{args.train_size + args.val_size - 1} "
            "(fast ASGT only)",
            "test": f"random_subset({test['n_total']}, {args.test_size}, seed=0) of the test set",
            "test_indices": test["indices"],
            "eps": EPS,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": f"Adam, learning rate {args.lr} (FBF: ART's cyclic schedule, peak {args.fbf_peak_lr})",
            "model": "MnistCNN (the SGT paper's MNIST CNN), same initial weights for every trainer",
            "cpu_seconds": "time.process_time() of the training process, torch on one thread, weight copies "
            "excluded; includes fast ASGT's robust validation",
            "evaluation": "robustness_report(budget='quick', eps=0.3, checklist=False): worst case over PGD-20, "
            "APGD-CE, APGD-DLR, APGD-T, Square-1000, run as a cascade (accuracy: after each attack and those before)",
            "wall_seconds": round(time.perf_counter() - started, 1),
        },
        "summary": summary,
        "target": target,
        "figure": args.figure,
        "trainers": trainers,
    }
    print(f"target: {target}")
    print(f"Wrote {write_json(args.out, payload)} and {args.figure}")


if __name__ == "__main__":
    main()
