"""Time every saliency evaluator on MNIST against its floor, and against Quantus where it is installed.

Each metric is timed beside its *floor*, measured in the same run with plain batched torch: the model
evaluations the metric needs by definition (masking curve: one forward per fraction and order; infidelity:
one forward per perturbation; sensitivity: one attribution per perturbation; stability: ART's PGD crafting
plus two attributions per eps; randomisation: one attribution per layer; random logit: one forward, the
predicted class's attribution where the given maps are for another class, and one attribution of a random class;
for the three map comparisons, also the ranking their Spearman correlations need (``scipy.stats.rankdata`` of the
absolute and of the signed maps);
sparseness and complexity: the formula as one numpy expression). The ratio metric / floor is printed and
written to ``results/bench_evaluators.json``; the target is <= 1.3 for every metric.

Where Quantus is importable (an optional, LGPL tool never installed by art-sgt; e.g. run this from a separate
virtual environment that has it), the same metrics run side by side: values are compared where both define
the metric identically (sparseness, complexity, pixel flipping = MoRF with a zero fill, max-sensitivity fed
the same noise) and times are compared for all.

Usage: ``python benchmarks/bench_evaluators.py [--n 1000] [--threads 1] [--quick] [--only NAMES --repeats 4]``
(``--only`` times the named metrics again, e.g. after a noisy run, and merges them into the results file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from art_sgt.evaluation import (  # noqa: E402
    adversarial_stability,
    attribute,
    cascading_randomization,
    complexity,
    infidelity,
    masking_curve,
    random_logit,
    sensitivity,
    sparseness,
)
from art_sgt.models import MnistCNN, make_classifier, to_channels_first  # noqa: E402
from art_sgt.provenance import run_info  # noqa: E402


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="MNIST test images (default 1000)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-perturb", type=int, default=10, help="perturbations of infidelity / sensitivity")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs per timing")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz")
    parser.add_argument("--quantus-n", type=int, default=256, help="images for the Quantus comparison")
    parser.add_argument("--no-quantus", action="store_true", help="skip the Quantus comparison")
    parser.add_argument("--quick", action="store_true", help="n=200, quantus-n=64: a smoke test")
    parser.add_argument("--out", default=str(REPO / "results" / "bench_evaluators.json"))
    parser.add_argument(
        "--only",
        type=lambda text: [t for t in text.split(",") if t],
        default=None,
        help="comma-separated metrics to time again; their rows replace those of the existing --out file, "
        "everything else (Quantus included) is kept",
    )
    return parser.parse_args()


def _data(n: int, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, str, list[int] | None]:
    """``n`` MNIST test images (a seeded random subset; its indices returned), or random images of that shape."""
    try:
        from art_sgt.datasets import load_mnist, random_subset

        _, (x, y), _, _ = load_mnist(data_dir, download=False)
        idx = random_subset(len(x), n, seed=0)  # a seeded random subset, not the first rows
        source = f"MNIST test set, random_subset({len(x)}, {n}, seed=0)"
        return to_channels_first(x[idx]), y[idx].argmax(1), source, idx.tolist()
    except (FileNotFoundError, ValueError) as err:
        print(f"MNIST not found ({err}); timing on random images of MNIST's shape instead.")
        rng = np.random.default_rng(0)
        return rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n), "random (MNIST shape)", None


def _best_pair(first: Callable[[], Any], second: Callable[[], Any], repeats: int) -> tuple[float, float, Any, Any]:
    """Best times of two functions run alternately (so that a busy spell slows both), at least ``repeats``
    times each and, for fast ones, until one second has passed (at most 100 runs)."""
    best, out, spent, runs = [float("inf"), float("inf")], [None, None], 0.0, 0
    while runs < repeats or (spent < 1.0 and runs < 100):
        for i, fn in enumerate((first, second)):
            start = time.perf_counter()
            out[i] = fn()
            took = time.perf_counter() - start
            best[i], spent = min(best[i], took), spent + took
        runs += 1
    return best[0], best[1], out[0], out[1]


class Floors:
    """The model evaluations each metric needs, as plain batched torch loops."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        self.model, self.x, self.y, self.bs = model.eval(), x, y, batch_size

    def forwards(self, times: int) -> None:
        with torch.no_grad():
            for start in range(0, len(self.x), self.bs):
                xb = self.x[start : start + self.bs]
                for _ in range(times):
                    torch.softmax(self.model(xb), dim=1)

    def attributions(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        maps = []
        for start in range(0, len(x), self.bs):
            xb = x[start : start + self.bs].clone().requires_grad_(True)
            out = self.model(xb).gather(1, y[start : start + self.bs, None]).sum()
            maps.append(torch.autograd.grad(out, xb)[0])
        return torch.cat(maps) if maps else x

    def repeated_forwards(self, copies: int) -> None:
        """One forward per perturbed copy, ``copies`` per input, in batches of ``bs``."""
        with torch.no_grad():
            for start in range(0, len(self.x) * copies, self.bs):
                rows = torch.arange(start, min(start + self.bs, len(self.x) * copies)) // copies
                self.model(self.x[rows])

    def repeated_attributions(self, copies: int) -> None:
        rows = torch.arange(len(self.x) * copies) // copies
        self.attributions(self.x[rows], self.y[rows])


def _ranks(maps: torch.Tensor) -> None:
    """The ranking Spearman needs by definition: average ranks of the absolute and of the signed maps."""
    from scipy.stats import rankdata

    flat = maps.reshape(len(maps), -1).numpy()
    rankdata(np.abs(flat), axis=1)
    rankdata(flat, axis=1)


def _gini(a: np.ndarray) -> np.ndarray:
    a = np.abs(a.reshape(len(a), -1)).astype(np.float64)
    a = np.sort(a / a.max(axis=1, keepdims=True) + 1e-7, axis=1)
    d = a.shape[1]
    return ((2 * np.arange(1, d + 1) - d - 1) * a).sum(axis=1) / (d * a.sum(axis=1))


def _entropy(a: np.ndarray) -> np.ndarray:
    p = np.abs(a.reshape(len(a), -1)).astype(np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)


def run_metrics(args: argparse.Namespace, clf: Any, x: np.ndarray, y: np.ndarray, maps: np.ndarray) -> dict:
    from art.attacks.evasion import ProjectedGradientDescent

    bs, k = args.batch_size, args.n_perturb
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    floors = Floors(clf.model, xt, yt, bs)
    eps = (0.0, 0.05, 0.1, 0.2)

    def pgd_floor() -> None:
        clean = floors.attributions(xt, yt)
        _ranks(clean)
        onehot = np.eye(10, dtype=np.float32)[y]
        for e in eps[1:]:
            attack = ProjectedGradientDescent(
                clf, eps=e, eps_step=2.5 * e / 10, max_iter=10, batch_size=bs, verbose=False
            )
            x_adv = torch.from_numpy(attack.generate(x, onehot))
            _ranks(floors.attributions(x_adv, yt))

    def randomization_floor() -> None:
        _ranks(torch.from_numpy(maps))
        for _ in range(layers):
            _ranks(floors.attributions(xt, yt))

    def random_logit_floor() -> None:
        with torch.no_grad():
            predicted = torch.cat([clf.model(xt[s : s + bs]).argmax(1) for s in range(0, len(xt), bs)])
        wrong = predicted != yt
        floors.attributions(xt[wrong], predicted[wrong])
        _ranks(torch.from_numpy(maps))
        _ranks(floors.attributions(xt, (predicted + 1) % 10))

    layers = 4  # conv1, conv2, fc1, fc2
    cases = {
        "masking_road": (
            lambda: masking_curve(clf, x, y, maps, batch_size=bs),
            lambda: floors.forwards(30),
            "30 forwards (10 fractions x 3 orders)",
        ),
        "masking_uniform": (
            lambda: masking_curve(clf, x, y, maps, fill="uniform", batch_size=bs),
            lambda: floors.forwards(30),
            "30 forwards (10 fractions x 3 orders)",
        ),
        "infidelity": (
            lambda: infidelity(clf, x, y, maps, n_perturb=k, batch_size=bs),
            lambda: floors.repeated_forwards(k),
            f"{k} forwards per input",
        ),
        "sensitivity": (
            lambda: sensitivity(clf, x, y, "saliency", maps=maps, n_perturb=k, batch_size=bs),
            lambda: floors.repeated_attributions(k),
            f"{k} attributions per input",
        ),
        "stability": (
            lambda: adversarial_stability(clf, x, y, "saliency", eps=eps, batch_size=bs),
            pgd_floor,
            "ART PGD (10 steps) at 3 eps + 2 attributions per eps, the maps ranked (absolute and signed)",
        ),
        "randomization": (
            lambda: cascading_randomization(clf, x, y, "saliency", maps=maps, batch_size=bs),
            randomization_floor,
            "1 attribution per layer, the maps ranked (absolute and signed)",
        ),
        "random_logit": (
            lambda: random_logit(clf, x, y, "saliency", maps=maps, batch_size=bs),
            random_logit_floor,
            "1 forward, the predicted class's attribution where it is not y, 1 attribution of another class, "
            "both maps ranked (absolute and signed)",
        ),
        "sparseness": (lambda: sparseness(maps), lambda: _gini(maps), "numpy formula"),
        "complexity": (lambda: complexity(maps), lambda: _entropy(maps), "numpy formula"),
    }
    unknown = set(args.only or ()) - set(cases)
    if unknown:
        raise SystemExit(f"--only must name metrics among {', '.join(cases)}, got {', '.join(sorted(unknown))}.")
    out = {}
    for name, (ours, floor, what) in cases.items():
        if args.only and name not in args.only:
            continue
        t_ours, t_floor, _, _ = _best_pair(ours, floor, args.repeats)
        out[name] = {
            "seconds": t_ours,
            "floor_seconds": t_floor,
            "ratio": t_ours / t_floor,
            "floor": what,
            "repeats": args.repeats,
        }
        print(
            f"{name:16s} {t_ours:8.3f} s   floor {t_floor:8.3f} s   ratio {t_ours / t_floor:5.2f}   ({what})",
            flush=True,
        )
    return out


def run_quantus(args: argparse.Namespace, clf: Any, x: np.ndarray, y: np.ndarray, maps: np.ndarray) -> dict:
    try:
        import quantus
    except ImportError:
        print("Quantus is not installed: side-by-side comparison skipped.")
        return {"available": False, "note": "quantus not importable; comparison skipped"}
    import warnings

    warnings.filterwarnings("ignore")
    model, bs, k, n = clf.model.eval(), args.batch_size, args.n_perturb, args.quantus_n
    xq, yq, mq = x[:n], y[:n], maps[:n]
    rows: dict[str, dict[str, Any]] = {}

    def record(
        name: str, ours: Callable, theirs: Callable, compare: Callable | None, note: str, repeats: int = 0
    ) -> None:
        t_ours, t_q, v_ours, v_q = _best_pair(ours, theirs, repeats or args.repeats)
        diff = compare(v_ours, v_q) if compare else None
        rows[name] = {
            "seconds": t_ours,
            "quantus_seconds": t_q,
            "speedup": t_q / t_ours,
            "max_abs_diff": diff,
            "note": note,
        }
        shown = "n/a" if diff is None else f"{diff:.1e}"
        print(
            f"{name:16s} ours {t_ours:8.3f} s   quantus {t_q:8.3f} s   speedup {t_q / t_ours:6.2f}x   "
            f"max |diff| {shown}   {note}",
            flush=True,
        )

    def explain(model: Any, inputs: np.ndarray, targets: np.ndarray, **kwargs: Any) -> np.ndarray:
        return attribute(model, np.asarray(inputs, np.float32), np.asarray(targets), "saliency", batch_size=bs)

    def diff(a: Any, b: Any) -> float:
        return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))

    call = {"model": model, "x_batch": xq, "y_batch": yq, "device": "cpu", "batch_size": bs}
    record(
        "sparseness",
        lambda: sparseness(mq),
        lambda: quantus.Sparseness(disable_warnings=True)(a_batch=mq.copy(), **call),
        diff,
        f"{n} maps",
    )
    record(
        "complexity",
        lambda: complexity(mq),
        lambda: quantus.Complexity(disable_warnings=True)(a_batch=mq.copy(), **call),
        diff,
        f"{n} maps",
    )

    # Pixel flipping = our MoRF curve with a zero fill, signed ranking, at Quantus's steps of 56 pixels.
    signed = mq + 1e-6 * np.random.default_rng(0).random(mq.shape, dtype=np.float32)  # no ties
    steps = 784 // 56
    fractions = [0.0] + [(56 * i + 0.5) / 784 for i in range(1, steps)]
    record(
        "pixel_flipping",
        lambda: masking_curve(clf, xq, yq, signed, fractions, ("morf",), 0.0, absolute=False, batch_size=bs),
        lambda: quantus.PixelFlipping(
            features_in_step=56, perturb_baseline=0.0, normalise=False, disable_warnings=True
        )(a_batch=signed, softmax=True, **call),
        lambda o, q: diff(o.probability["morf"][1:], np.mean(np.asarray(q), axis=0)[: steps - 1]),
        f"{n} images, {steps} steps of 56 pixels",
    )

    # Max-sensitivity, Quantus fed the noise our seeded generator draws (same order, same clipping).
    chunk = max(1, bs // k)
    gen, noise = torch.Generator().manual_seed(0), []
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        noise.append(torch.rand((m * k, 1, 28, 28), generator=gen).reshape(m, k, 1, 28, 28))
    noise_t = torch.cat(noise)
    state = {"offset": 0, "step": 0}

    def replay(arr: np.ndarray, indices: Any = None, indexed_axes: Any = None, **kwargs: Any) -> np.ndarray:
        rows = slice(state["offset"], state["offset"] + len(arr))
        xs = torch.from_numpy(np.asarray(arr, np.float32).reshape(-1, 1, 28, 28))
        out = (xs + (2 * noise_t[rows, state["step"]] - 1) * 0.02).clamp(0.0, 1.0)
        state["step"] += 1
        if state["step"] == k:
            state["offset"], state["step"] = state["offset"] + len(arr), 0
        return out.numpy().reshape(arr.shape)

    def quantus_sens() -> Any:
        state.update(offset=0, step=0)
        return quantus.MaxSensitivity(nr_samples=k, perturb_func=replay, disable_warnings=True)(
            a_batch=mq, explain_func=explain, **call
        )

    ni = max(1, n // 4)  # Quantus's infidelity is slow: a quarter of the images, timed once
    record(
        "sensitivity",
        lambda: sensitivity(clf, xq, yq, "saliency", maps=mq, n_perturb=k, batch_size=bs),
        quantus_sens,
        diff,
        f"{n} images, {k} perturbations, same noise",
    )
    record(
        "infidelity",
        lambda: infidelity(clf, xq[:ni], yq[:ni], mq[:ni], n_perturb=k, batch_size=bs),
        lambda: quantus.Infidelity(n_perturb_samples=k, disable_warnings=True)(
            a_batch=mq[:ni], **{**call, "x_batch": xq[:ni], "y_batch": yq[:ni]}
        ),
        None,
        f"{ni} images; values not compared: Quantus perturbs 4x4 patches cumulatively (49 forwards each)",
        repeats=1,
    )
    record(
        "random_logit",
        lambda: random_logit(clf, xq, yq, "saliency", maps=mq, batch_size=bs),
        lambda: quantus.RandomLogit(
            num_classes=10,
            similarity_func=quantus.similarity_func.correlation_spearman,
            disable_warnings=True,
        )(a_batch=mq, explain_func=explain, **call),
        None,
        "values not compared: random classes drawn by different generators",
    )
    record(
        "randomization",
        lambda: cascading_randomization(clf, xq, yq, "saliency", maps=mq, batch_size=bs),
        lambda: quantus.MPRT(similarity_func=quantus.similarity_func.correlation_spearman, disable_warnings=True)(
            a_batch=mq, explain_func=explain, **call
        ),
        None,
        "values not compared: re-initialisations seeded differently",
    )
    return {"available": True, "version": getattr(quantus, "__version__", "?"), "n": n, "metrics": rows}


def main() -> None:
    args = _args()
    if args.quick:
        args.n, args.quantus_n = min(args.n, 200), min(args.quantus_n, 64)
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y, source, test_indices = _data(args.n, args.data_dir)
    torch.manual_seed(0)
    clf = make_classifier(MnistCNN(), input_shape=(1, 28, 28), device_type="cpu")
    maps = attribute(clf, x, y, "saliency", batch_size=args.batch_size)
    print(f"{args.n} images ({source}), batch {args.batch_size}, {torch.get_num_threads()} torch thread(s)")
    config = dict(n=args.n, batch_size=args.batch_size, n_perturb=args.n_perturb, data=source, device="cpu")
    config.update(repeats=args.repeats, threads=torch.get_num_threads(), method="saliency")
    result = {
        "config": {**config, "model": "MnistCNN (untrained, seed 0)"},
        "test_indices": test_indices,
        **run_info(seed=0, device="cpu"),
        "metrics": run_metrics(args, clf, x, y, maps),
    }
    previous = json.loads(Path(args.out).read_text()) if args.only and Path(args.out).is_file() else None
    if previous is not None:
        before = previous.get("config", {}).get("repeats")
        kept = {k: {**v, "repeats": v.get("repeats", before)} for k, v in previous.get("metrics", {}).items()}
        result["metrics"] = {**kept, **result["metrics"]}
        result["quantus"] = previous.get("quantus", {"available": False, "note": "not run"})
        result["config"].update(repeats="per metric (each row's 'repeats')", last_only=args.only)
    else:
        skipped = {"available": False, "note": "skipped (--no-quantus)"}
        result["quantus"] = skipped if args.no_quantus else run_quantus(args, clf, x, y, maps)
    worst = max(result["metrics"].items(), key=lambda kv: kv[1]["ratio"])
    print(f"worst ratio to floor: {worst[0]} {worst[1]['ratio']:.2f} (target <= 1.3)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
