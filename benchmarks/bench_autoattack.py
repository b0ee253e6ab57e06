"""The robustness report's ``autoattack`` preset against torchattacks' AutoAttack: CPU time and per-image worst case.

A small CNN is adversarially trained here, seeded and cheaply (mixed adversarial training:
:class:`~art_sgt.SaliencyGuidedAdversarialTrainer` with ``kl_weight=0`` and PGD-10 at the benchmark's eps, on
``--n-train`` random training images): on MNIST (default) a narrowed Madry network at eps 0.3, on CIFAR-10
(``--dataset cifar10``) :class:`~art_sgt.models.CifarCNN` at eps 8/255. On ``--n`` random test images
(:func:`art_sgt.datasets.random_subset`, the indices recorded) the two evaluators then run on the same model and
images, at the same L-inf eps:

- ``report``: :func:`art_sgt.evaluation.robustness_report` with ``budget="autoattack"`` and ``checklist=False``:
  the cascade APGD-CE -> APGD-T (9 targets) -> FAB-T (9 targets) -> Square (5000 queries), each attack on the
  images every attack before it left correct, APGD and FAB at AutoAttack's published 100 iterations;
- ``torchattacks``: ``torchattacks.AutoAttack(version="standard")``, the same four attacks in the same order, each
  on the images still correct. torchattacks builds them with its own default of 10 iterations for APGD, APGD-T and
  FAB-T (Square: 5000 queries), a tenth of the published budget;
- ``torchattacks_published``: torchattacks' four attacks at the published budget (100 iterations), in the same
  cascade (torchattacks' ``MultiAttack``): the like-for-like baseline of ``report``;
- ``report_10``: the report's preset at torchattacks' budget (``apgd_max_iter=10``, ``fab_max_iter=10``): the
  like-for-like counterpart of ``torchattacks``.

``--no-published`` and ``--no-equal-budget`` leave out the last two.

The runs are interleaved (report, torchattacks, ..., then again) ``--repeats`` times; each run's CPU time is the
process's ``time.process_time()`` (torch on ``--threads`` threads), and the ratio report / torchattacks is the ratio
of the medians. Per image, the JSON lists the test indices each evaluator breaks and the other does not.

Output: ``results/bench_autoattack.json`` (CIFAR-10: ``results/bench_autoattack_cifar10.json``; configuration,
subset, training, per-evaluator CPU and wall seconds, robust accuracy, per-attack seconds of the report, the ratios
(``ratio_cpu_of_medians``, and ``ratios`` with the issue's target of 1.0), the per-image agreement, and the run's
provenance: command, commit, whether the tree was clean, versions, hardware).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_autoattack.py [--dataset mnist] [--n 200] [--eps 0.3] [--repeats 2]
        [--n-train 20000] [--epochs 3] [--published] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from art_sgt.datasets import load_cifar10, load_mnist, random_subset  # noqa: E402
from art_sgt.evaluation import AttackBudget, robustness_report  # noqa: E402
from art_sgt.models import CifarCNN, make_classifier, to_channels_first  # noqa: E402
from art_sgt.provenance import run_info, write_json  # noqa: E402


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), default="mnist")
    parser.add_argument("--n", type=int, default=200, help="random test images evaluated (default 200)")
    parser.add_argument(
        "--eps", type=float, default=None, help="L-inf eps of the training and the evaluation (0.3; CIFAR-10: 8/255)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats of every evaluator")
    parser.add_argument("--n-train", type=int, default=20000, help="random training images (default 20000)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--published",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run torchattacks at the published budget too (default: yes)",
    )
    parser.add_argument(
        "--equal-budget",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the report at torchattacks' 10-iteration budget too (default: yes)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--data-dir", default=None, help="folder holding the data (default: ART_SGT_DATA)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training, the subsets and the attacks")
    parser.add_argument("--out", type=Path, default=None, help="default results/bench_autoattack[_cifar10].json")
    args = parser.parse_args()
    if args.eps is None:
        args.eps = 0.3 if args.dataset == "mnist" else 8 / 255
    if args.out is None:
        suffix = "" if args.dataset == "mnist" else f"_{args.dataset}"
        args.out = REPO / "results" / f"bench_autoattack{suffix}.json"
    if min(args.n, args.repeats, args.n_train, args.epochs, args.threads) < 1:
        parser.error("--n, --repeats, --n-train, --epochs and --threads must be >= 1")
    if not 0 < args.eps <= 1:
        parser.error("--eps must lie in (0, 1]")
    return args


def small_cnn() -> torch.nn.Module:
    """Two strided convolutions and two linear layers (Madry et al.'s MNIST network, narrowed)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 4, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 4, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 7 * 7, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 10),
    )


def _train(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> tuple[Any, float]:
    """The mixed adversarially trained classifier and the training's CPU seconds."""
    from art.attacks.evasion import ProjectedGradientDescent

    from art_sgt import SaliencyGuidedAdversarialTrainer

    torch.manual_seed(args.seed)
    network, shape = (small_cnn(), (1, 28, 28)) if args.dataset == "mnist" else (CifarCNN(), (3, 32, 32))
    classifier = make_classifier(network, input_shape=shape, nb_classes=10, device_type="cpu")
    pgd10 = ProjectedGradientDescent(
        classifier, eps=args.eps, eps_step=2.5 * args.eps / 10, max_iter=10, num_random_init=1, verbose=False
    )
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attacks=pgd10, kl_weight=0.0)
    cpu = time.process_time()
    trainer.fit(x, y, nb_epochs=args.epochs, batch_size=128, seed=args.seed, verbose=False)
    classifier.model.eval()
    return classifier, time.process_time() - cpu


def _report(classifier: Any, x: np.ndarray, y: np.ndarray, args: argparse.Namespace, **fields: int) -> dict[str, Any]:
    budget = AttackBudget.preset("autoattack").replace(**fields)
    report = robustness_report(
        classifier, x, y, eps=(args.eps,), budget=budget, checklist=False, seed=args.seed, verbose=False
    )
    return {
        "correct": np.asarray(report.worst_case_correct[0]),
        "attacks": report.attacks,
        "cascade_accuracy": {k: v[0] for k, v in report.accuracy.items()},
        "attack_seconds": report.seconds,
        "notes": report.notes,
    }


def _torchattacks(
    classifier: Any, x: np.ndarray, y: np.ndarray, args: argparse.Namespace, published: bool
) -> dict[str, Any]:
    import torchattacks

    model = classifier.model.eval()
    if published:
        common = {"eps": args.eps, "norm": "Linf", "seed": args.seed, "n_restarts": 1}
        attack = torchattacks.MultiAttack(
            [
                torchattacks.APGD(model, steps=100, loss="ce", **common),
                torchattacks.APGDT(model, steps=100, n_classes=10, **common),
                torchattacks.FAB(model, steps=100, multi_targeted=True, n_classes=10, **common),
                torchattacks.Square(model, n_queries=5000, **common),
            ]
        )
    else:
        attack = torchattacks.AutoAttack(
            model, norm="Linf", eps=args.eps, version="standard", n_classes=10, seed=args.seed
        )
    x_t, y_t = torch.as_tensor(x), torch.as_tensor(y)
    x_adv = attack(x_t, y_t)
    with torch.no_grad():
        correct = (model(x_t).argmax(1) == y_t) & (model(x_adv).argmax(1) == y_t)
    return {"correct": correct.numpy(), "max_perturbation": float((x_adv.detach() - x_t).abs().max())}


def _timed(fn: Any) -> tuple[float, float, dict[str, Any]]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, out


def main() -> dict[str, Any]:
    args = _args()
    torch.set_num_threads(args.threads)
    load = load_mnist if args.dataset == "mnist" else load_cifar10
    (x_train, y_train), (x_test, y_test) = load(args.data_dir, download=False)[:2]
    train_idx = random_subset(len(x_train), args.n_train, seed=args.seed)
    classifier, train_cpu = _train(to_channels_first(x_train[train_idx]), y_train[train_idx].argmax(1), args)
    test_idx = random_subset(len(x_test), args.n, seed=args.seed)
    x, y = to_channels_first(x_test[test_idx]), y_test[test_idx].argmax(1)
    clean = float((classifier.predict(x).argmax(1) == y).mean())
    print(f"trained in {train_cpu:.0f} CPU s; {args.n} random test images, clean accuracy {clean:.3f}")

    contenders = {
        "report": lambda: _report(classifier, x, y, args),
        "torchattacks": lambda: _torchattacks(classifier, x, y, args, published=False),
    }
    if args.published:
        contenders["torchattacks_published"] = lambda: _torchattacks(classifier, x, y, args, published=True)
    if args.equal_budget:
        contenders["report_10"] = lambda: _report(classifier, x, y, args, apgd_max_iter=10, fab_max_iter=10)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for repeat in range(args.repeats):
        for name, fn in contenders.items():
            cpu, wall, out = _timed(fn)
            runs[name].append({"cpu": cpu, "wall": wall, **out})
            print(
                f"repeat {repeat}: {name:<24} robust {out['correct'].mean():.3f}  CPU {cpu:7.1f} s  wall {wall:7.1f} s"
            )

    def broken(name: str) -> set[int]:
        return {int(test_idx[i]) for i in np.flatnonzero(~runs[name][0]["correct"])}

    results: dict[str, Any] = {}
    for name, rows in runs.items():
        results[name] = {
            "robust_accuracy": [float(r["correct"].mean()) for r in rows],
            "cpu_seconds": [round(r["cpu"], 2) for r in rows],
            "wall_seconds": [round(r["wall"], 2) for r in rows],
            "median_cpu_seconds": round(statistics.median(r["cpu"] for r in rows), 2),
            "same_outcome_every_repeat": all(bool((r["correct"] == rows[0]["correct"]).all()) for r in rows),
            **{k: v for k, v in rows[0].items() if k not in ("cpu", "wall", "correct")},
        }
    pairs = [
        ("report", "torchattacks", "report"),
        ("report", "torchattacks_published", "report_vs_published_budget"),
        ("report_10", "torchattacks", "report_10"),
    ]
    ratios, agreement, readme_ratios = {}, {}, {}
    for ours, other, name in [pair for pair in pairs if pair[0] in runs and pair[1] in runs]:
        key = f"{ours}_over_{other}"
        ratios[key] = round(results[ours]["median_cpu_seconds"] / results[other]["median_cpu_seconds"], 3)
        # the form examples/update_readme.py reads: {contender: {"baseline", "ratio", "target"}}
        readme_ratios[name] = {"baseline": other, "ratio": ratios[key], "target": 1.0}
        agreement[key] = {
            "broken_by_both": len(broken(ours) & broken(other)),
            "broken_only_by_report": sorted(broken(ours) - broken(other)),
            "broken_only_by_torchattacks": sorted(broken(other) - broken(ours)),
            "accuracy_difference_points": round(
                100 * (results[ours]["robust_accuracy"][0] - results[other]["robust_accuracy"][0]), 2
            ),
        }
        print(
            f"{ours} / {other}: CPU ratio of medians {ratios[key]:.3f}; torchattacks breaks "
            f"{len(agreement[key]['broken_only_by_torchattacks'])} image(s) the report leaves, the report "
            f"{len(agreement[key]['broken_only_by_report'])} it leaves"
        )
    import torchattacks

    payload = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "model": f"{'small CNN (benchmarks/bench_autoattack.py:small_cnn)' if args.dataset == 'mnist' else 'CifarCNN'}"
        f", mixed adversarial training (SaliencyGuidedAdversarialTrainer, kl_weight=0, PGD-10 at eps {args.eps:g}) "
        f"for {args.epochs} epoch(s) on {args.n_train} random {args.dataset} training images",
        "train_subset": {"n_total": len(x_train), "n": args.n_train, "seed": args.seed},
        "train_cpu_seconds": round(train_cpu, 1),
        "test_subset": {"n_total": len(x_test), "n": args.n, "seed": args.seed, "indices": test_idx.tolist()},
        "clean_accuracy": clean,
        "results": results,
        "ratio_cpu_of_medians": ratios,
        "ratios": readme_ratios,
        "agreement": agreement,
        "torchattacks_version": torchattacks.__version__,
        **run_info(seed=args.seed, device="cpu"),
    }
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return payload


if __name__ == "__main__":
    main()
