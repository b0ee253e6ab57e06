"""Evaluate the saliency maps of a standard and a saliency-guided (SGT) MNIST model with every evaluator.

Trains two copies of the SGT paper's MNIST CNN from the same initial weights (ART's ``PyTorchClassifier.fit``
and ``SaliencyGuidedTrainer``), or loads them from ``results/`` when a checkpoint of the same configuration is
there, then evaluates both on the first test images: masking curves (MoRF / LeRF / random; ROAD imputation,
the fill every comparison between the models uses), infidelity (on signed maps), max-sensitivity, sparseness,
complexity, stability under ART's PGD (on the samples whose prediction did not flip), cascading randomisation and
the random-logit test (predicted class), for the gradient saliency (all evaluators) and integrated gradients (the
cheaper ones). The uniform-noise fill is also run, only to show why it must not be used to compare the models: SGT
is trained to ignore exactly that masking. Writes ``results/saliency_mnist.json`` and four figures
``results/saliency_mnist_*.png``.

Usage::

    python examples/evaluate_saliency.py [--data-dir DIR] [--quick] [--n-train 60000] [--n-eval 1000]
        [--epochs 2] [--retrain]
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import numpy as np
import torch

from art_sgt import MnistCNN, SaliencyGuidedTrainer, load_mnist, make_classifier
from art_sgt.datasets import random_subset
from art_sgt.evaluation import METRICS, SaliencyEvaluator, get_method, masking_curve
from art_sgt.models import to_channels_first
from art_sgt.provenance import run_info, write_json

CHEAP = ("masking", "infidelity", "sparseness", "complexity", "random_logit")
NAMES = {"standard": "standard", "sgt": "SGT"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz")
    parser.add_argument("--results", default="results", help="output folder (and checkpoint cache)")
    parser.add_argument("--quick", action="store_true", help="10k training images, 1 epoch, 200 test images")
    parser.add_argument("--n-train", type=int, default=60000, help="training images (default all 60000)")
    parser.add_argument("--n-eval", type=int, default=1000, help="test images evaluated (default 1000)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of both models (default 2)")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size")
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--ig-steps", type=int, default=16, help="integrated-gradients steps")
    parser.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def train_or_load(name: str, initial: torch.nn.Module, x: np.ndarray, y: np.ndarray, args, meta: dict) -> tuple:
    """A classifier of ``initial``'s architecture, trained by ``name`` or loaded from its checkpoint."""
    path = Path(args.results) / f"saliency_mnist_{name}.pt"
    classifier = make_classifier(copy.deepcopy(initial), (1, 28, 28), device_type="cpu")
    if path.is_file() and not args.retrain:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("meta") == meta:
            classifier.model.load_state_dict(saved["state_dict"])
            print(f"{name}: loaded {path}")
            return classifier, {"checkpoint": str(path), "train_seconds": saved.get("train_seconds")}
        print(f"{name}: {path} was trained with {saved.get('meta')}; retraining for {meta}")
    print(f"{name}: training {args.epochs} epoch(s) on {len(x)} images...")
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    if name == "standard":
        classifier.fit(x, y, batch_size=args.batch_size, nb_epochs=args.epochs, verbose=True)
    else:
        SaliencyGuidedTrainer(classifier, mask_fraction=0.5, kl_weight=1.0).fit(
            x, y, batch_size=args.batch_size, nb_epochs=args.epochs, seed=args.seed, verbose=True
        )
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": meta, "state_dict": classifier.model.state_dict(), "train_seconds": seconds}, path)
    return classifier, {"checkpoint": str(path), "train_seconds": seconds}


def evaluate(name: str, classifier, x: np.ndarray, y: np.ndarray, args, quick: bool):
    """Gradient saliency with every evaluator, IG with the cheap ones, and uniform-fill masking curves."""
    stability = {"eps": (0.0, 0.05, 0.1, 0.2), "max_iter": 5 if quick else 10}
    options = {"stability": stability, "sensitivity": {"n_perturb": 5 if quick else 10}}
    # All maps are kept (n_examples=len(x)): the uniform-fill curve below reuses them.
    common = {"batch_size": args.eval_batch_size, "seed": args.seed, "progress": True, "n_examples": len(x)}
    print(f"{name}: evaluating on {len(x)} test images")
    report = SaliencyEvaluator(classifier, ["saliency"], METRICS, options=options, **common).evaluate(x, y)
    ig = get_method("integrated_gradients", n_steps=args.ig_steps)
    report = report.merge(SaliencyEvaluator(classifier, [ig], CHEAP, **common).evaluate(x, y))
    uniform = masking_curve(
        classifier,
        x,
        y,
        report.maps["saliency"],
        fill="uniform",
        batch_size=args.eval_batch_size,
        seed=args.seed,
    )
    return report, uniform


def figures(results: Path, x: np.ndarray, y: np.ndarray, reports: dict, uniform: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from art_sgt import plotting

    paths = {k: results / f"saliency_mnist_{k}.png" for k in ("maps", "masking", "stability", "sanity")}
    short = {"saliency": "|grad|", "integrated_gradients": "IG"}
    grid = {f"{model} {short[method]}": rep.maps[method] for method in short for model, rep in reports.items()}
    figs = [
        plotting.plot_map_grid(
            x[:6],
            grid,
            n=6,
            titles=[f"y={int(v)}" for v in y[:6]],
            path=paths["maps"],
            title="Maps of the true class (brighter = more salient)",
        )
    ]
    masking = {
        "|gradient|, ROAD fill": {m: r.results["saliency"]["masking"] for m, r in reports.items()},
        "|gradient|, uniform-noise fill (NOT for comparing: SGT trains on it)": uniform,
        "integrated gradients, ROAD fill": {
            m: r.results["integrated_gradients"]["masking"] for m, r in reports.items()
        },
    }
    faithful = (
        "Faithfulness: accuracy as the most (MoRF, solid) / least (LeRF, dashed) salient pixels go\n"
        "faithful maps fall fast under MoRF and stay high under LeRF; ROAD's imputation removes the "
        "out-of-distribution effect of noise fills"
    )
    figs.append(plotting.plot_masking_curves(masking, title=faithful, path=paths["masking"]))
    figs.append(
        plotting.plot_stability(
            {m: r.results["saliency"]["stability"] for m, r in reports.items()},
            quantities=("accuracy", "flipped", "spearman", "top_k"),
            title="Under ART's PGD: accuracy, predictions flipped, and similarity of |gradient| maps of x and x'\n"
            "on the samples whose prediction did not flip (1 = unchanged)",
            path=paths["stability"],
        )
    )
    cascade = {m: r.results["saliency"]["randomization"] for m, r in reports.items()}
    logit = {m: r.results["saliency"]["random_logit"] for m, r in reports.items()}
    panels = {
        "Spearman of |gradient| (shared zeros dropped)": "spearman",
        "top-10% intersection of |gradient|": "top_k",
        "SSIM of |gradient|": "ssim",
    }
    sanity = "Sanity checks: maps should move away from the original (low similarity is good)"
    figs.append(
        plotting.plot_randomization(
            {panel: cascade for panel in panels},
            quantity=list(panels.values()),
            random_logit=logit,
            title=sanity,
            path=paths["sanity"],
        )
    )
    for fig in figs:
        plt.close(fig)
    return [str(p) for p in paths.values()]


def headline(reports: dict, uniform: dict) -> dict:
    out = {}
    for model, rep in reports.items():
        s = rep.summary()
        g, ig = s["saliency"], s["integrated_gradients"]
        stability = rep.results["saliency"]["stability"]
        out[model] = {
            "accuracy": rep.accuracy,
            "gradient_auc_morf_road": g["auc_morf_accuracy"],
            "gradient_auc_lerf_road": g["auc_lerf_accuracy"],
            "gradient_morf_gain_road": g["morf_gain_accuracy"],
            "gradient_lerf_gain_road": g["lerf_gain_accuracy"],
            "gradient_auc_morf_uniform": uniform[model].auc("morf"),
            "gradient_auc_lerf_uniform": uniform[model].auc("lerf"),
            "ig_auc_morf_road": ig["auc_morf_accuracy"],
            "ig_auc_lerf_road": ig["auc_lerf_accuracy"],
            "ig_morf_gain_road": ig["morf_gain_accuracy"],
            "ig_lerf_gain_road": ig["lerf_gain_accuracy"],
            "gradient_sparseness": g["sparseness"],
            "gradient_complexity": g["complexity"],
            "gradient_infidelity_signed": g["infidelity"],
            "ig_infidelity": ig["infidelity"],
            "gradient_sensitivity": g["sensitivity"],
            "accuracy_pgd_eps0.1": stability.accuracy[2],
            "flipped_pgd_eps0.1": stability.flipped[2],
            "gradient_stability_spearman_unflipped_eps0.1": stability.spearman[2],
            "gradient_stability_top_k_unflipped_eps0.1": stability.top_k[2],
            "gradient_randomization_spearman_all_layers": g["randomization_spearman"],
            "gradient_randomization_ssim_all_layers": g["randomization_ssim"],
            "gradient_random_logit_spearman": g["random_logit_spearman"],
            "gradient_random_logit_ssim": g["random_logit_ssim"],
        }
    return out


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    (x_train, y_train), (x_test, y_test), _, _ = load_mnist(args.data_dir)
    x_train, x_test = to_channels_first(x_train), to_channels_first(x_test)
    x_train, y_train = x_train[: args.n_train], y_train[: args.n_train]
    epochs, n_eval = args.epochs, args.n_eval
    if args.quick:
        x_train, y_train, epochs, n_eval = x_train[:10000], y_train[:10000], 1, min(n_eval, 200)
        args.epochs = epochs
    eval_idx = random_subset(len(x_test), n_eval, seed=args.seed)  # a seeded random subset, not the first rows
    x_eval, y_eval = x_test[eval_idx], y_test[eval_idx].argmax(1)
    meta = {"epochs": epochs, "n_train": len(x_train), "batch_size": args.batch_size, "seed": args.seed}
    torch.manual_seed(args.seed)
    initial = MnistCNN()
    results = Path(args.results)
    classifiers, training, reports, uniform = {}, {}, {}, {}
    for name in ("standard", "sgt"):
        classifiers[name], training[name] = train_or_load(name, initial, x_train, y_train, args, meta)
    for name, classifier in classifiers.items():
        reports[NAMES[name]], uniform[NAMES[name]] = evaluate(name, classifier, x_eval, y_eval, args, args.quick)
    paths = figures(results, x_eval, y_eval, reports, uniform)
    summary = headline(reports, uniform)
    payload = {
        **run_info(seed=args.seed, device="cpu"),
        "dataset": {
            "name": "mnist",
            "train": len(x_train),
            "evaluated": n_eval,
            "test_subset": {"n_total": len(x_test), "n": n_eval, "seed": args.seed, "indices": eval_idx.tolist()},
        },
        "training": {name: {**meta, **info} for name, info in training.items()},
        "headline": summary,
        "reports": {name: rep.to_dict() for name, rep in reports.items()},
        "masking_uniform_fill": {name: curve.to_dict() for name, curve in uniform.items()},
        "figures": paths,
    }
    out = write_json(results / "saliency_mnist.json", payload)
    for model, row in summary.items():
        print(f"{model:9s} " + "  ".join(f"{k}={v:.3f}" if v is not None else f"{k}=nan" for k, v in row.items()))
    print(f"Wrote {out} and {', '.join(paths)}")


if __name__ == "__main__":
    main()
