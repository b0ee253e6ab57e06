"""Time the robustness report's APGD-T against ART's APGD-T run over every target on every sample.

AutoAttack's targeted APGD-DLR (APGD-T) runs once per target class, the classes nearest each sample first. Run
by hand with ART, every run attacks every sample. :func:`art_sgt.evaluation.robustness_report` runs it as
AutoAttack does: only on the samples still classified correctly, so a sample broken by one target (or wrong on
clean inputs) is not attacked again. Both count a sample robust only if it is correct on clean inputs and after
every target. The saving depends on how many samples survive: this script measures it at three eps on a
standard MNIST CNN (trained here for ``--epochs`` on ``--n-train`` real MNIST images), where few, some and most
samples survive. The two robust accuracies are printed side by side: they use different random starts (the
report draws them for the samples it attacks), so they agree up to the attack's own randomness.

Runs are interleaved (ART, report, ART, report, ...) and each timing is the process CPU time and the wall time;
the ratio report / ART is printed per eps and written to ``results/bench_robustness.json``.

Usage: ``python benchmarks/bench_robustness.py [--n 200] [--threads 1] [--data-dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from art_sgt.datasets import load_mnist, random_subset  # noqa: E402
from art_sgt.evaluation import AttackBudget, robustness_report  # noqa: E402
from art_sgt.models import MnistCNN, make_classifier, to_channels_first  # noqa: E402
from art_sgt.provenance import run_info  # noqa: E402


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="MNIST test images attacked (default 200)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1, 0.2], help="L-inf eps values")
    parser.add_argument("--max-iter", type=int, default=10, help="APGD iterations per target (default 10)")
    parser.add_argument("--targets", type=int, default=9, help="target classes per sample (AutoAttack: 9)")
    parser.add_argument("--n-train", type=int, default=10000, help="training images of the standard CNN")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--data-dir", default=None, help="folder holding mnist.npz (default: ART's data folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_robustness.json")
    args = parser.parse_args()
    if min(args.n, args.max_iter, args.targets, args.n_train, args.epochs, args.batch_size) < 1:
        parser.error("--n, --max-iter, --targets, --n-train, --epochs and --batch-size must be >= 1")
    if not all(0 < e <= 1 for e in args.eps):
        parser.error("--eps values must lie in (0, 1]")
    return args


def _timed(fn: Any) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, out


def _art_by_hand(classifier: Any, x: np.ndarray, y: np.ndarray, eps: float, args: argparse.Namespace) -> float:
    """APGD-T as a user would run it with ART alone: every target, every sample; robust = correct after all."""
    from art.attacks.evasion import AutoProjectedGradientDescent

    attack = AutoProjectedGradientDescent(
        classifier,
        eps=eps,
        eps_step=2 * eps,
        max_iter=args.max_iter,
        nb_random_init=1,
        batch_size=args.batch_size,
        loss_type="difference_logits_ratio",
        targeted=True,
        verbose=False,
    )
    logits = classifier.predict(x, batch_size=args.batch_size).astype(np.float64)
    robust = logits.argmax(1) == y
    logits[np.arange(len(y)), y] = -np.inf
    order = np.argsort(-logits, axis=1, kind="stable")[:, : args.targets]
    for classes in order.T:
        np.random.seed(args.seed)  # noqa: NPY002 - ART's random starts draw from numpy's global generator
        torch.manual_seed(args.seed)
        x_adv = attack.generate(x, y=np.eye(10, dtype=np.float32)[classes])
        robust &= classifier.predict(x_adv, batch_size=args.batch_size).argmax(1) == y
    return float(robust.mean())


def _report(classifier: Any, x: np.ndarray, y: np.ndarray, eps: float, args: argparse.Namespace) -> float:
    budget = AttackBudget.preset("standard").replace(
        apgd_max_iter=args.max_iter, apgd_restarts=1, apgd_targets=args.targets, attacks=("apgd-t",)
    )
    report = robustness_report(
        classifier,
        x,
        y,
        eps=(eps,),
        budget=budget,
        checklist=False,
        batch_size=args.batch_size,
        seed=args.seed,
        verbose=False,
    )
    return report.worst_case[0]


def main() -> dict[str, Any]:
    args = _args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data_dir, download=False)[:2]
    torch.manual_seed(args.seed)
    classifier = make_classifier(MnistCNN(), input_shape=(1, 28, 28), nb_classes=10, device_type="cpu")
    classifier.fit(
        to_channels_first(x_train[: args.n_train]),
        y_train[: args.n_train],
        batch_size=64,
        nb_epochs=args.epochs,
        verbose=False,
    )
    test_idx = random_subset(len(x_test), args.n, seed=args.seed)  # a seeded random subset, not the first rows
    x, y = to_channels_first(x_test[test_idx]), y_test[test_idx].argmax(1)
    clean = float((classifier.predict(x, batch_size=args.batch_size).argmax(1) == y).mean())

    by_eps: dict[str, dict[str, float]] = {}
    print(f"APGD-T, {args.targets} targets x {args.max_iter} iterations, {args.n} MNIST test images, clean {clean:.3f}")
    print(f"{'eps':>5} {'robust ART':>11} {'robust report':>14} {'ART CPU s':>10} {'report CPU s':>13} {'ratio':>6}")
    for eps in args.eps:
        art_cpu, art_wall, art_acc = _timed(lambda eps=eps: _art_by_hand(classifier, x, y, eps, args))
        ours_cpu, ours_wall, ours_acc = _timed(lambda eps=eps: _report(classifier, x, y, eps, args))
        by_eps[f"eps {eps:g}"] = row = {
            "robust_art_by_hand": art_acc,
            "robust_report": ours_acc,
            "cpu_seconds_art_by_hand": round(art_cpu, 2),
            "cpu_seconds_report": round(ours_cpu, 2),
            "ratio_cpu": round(ours_cpu / art_cpu, 3),
            "ratio_wall": round(ours_wall / art_wall, 3),
        }
        cells = f"{art_acc:>11.3f} {ours_acc:>14.3f} {art_cpu:>10.1f} {ours_cpu:>13.1f} {row['ratio_cpu']:>6.3f}"
        print(f"{eps:>5g} {cells}")
    payload = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model": f"MnistCNN, ART fit for {args.epochs} epoch(s) on {args.n_train} MNIST training images",
        "test_subset": {"n_total": len(x_test), "n": args.n, "seed": args.seed, "indices": test_idx.tolist()},
        "clean_accuracy": clean,
        "by_eps": by_eps,
        "command": " ".join(["python", *sys.argv]),
        **run_info(seed=args.seed, device="cpu"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")
    return payload


if __name__ == "__main__":
    main()
