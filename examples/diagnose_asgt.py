"""Why do ASGT's maps degenerate on some seeds? Trace ASGT and its variants epoch by epoch on real MNIST.

Each run trains the SGT paper's MNIST CNN with ``SaliencyGuidedAdversarialTrainer`` (PGD-7 at eps 0.3, Adam 1e-3,
batch 128) on random MNIST training images, and after every epoch records the loss and its components, robust
validation accuracy on held-out training images, and the probe set's map entropy, sparseness and MoRF / LeRF
gains (:func:`art_sgt.reproduction.diagnosis.trace_run`); at the end, PGD against Square on the probe set. The
variants change one suspect at a time: the saliency target (label or prediction), the KL weight, the fill of the
masked half (uniform noise or ROAD's imputation) and the masked fraction.

Each finished run is written to ``<out>/<variant>/seed<k>.json`` and skipped when run again, so the study goes on
in pieces (``--variants``, ``--seeds``); ``<out>.json`` and ``<out>.png`` summarise what is there.

Usage::

    python examples/diagnose_asgt.py [--variants paper,target-prediction] [--seeds 0,1,2] [--n-train 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from art_sgt.datasets import load_mnist, random_subset
from art_sgt.evaluation import NoisyLinearImputer
from art_sgt.models import to_channels_first
from art_sgt.provenance import run_info, write_json
from art_sgt.reproduction.diagnosis import trace_run
from art_sgt.reproduction.recipe import TrainingRecipe
from art_sgt.reproduction.training import build_classifier

#: One suspect changed per variant, against the paper's ASGT (label target, KL weight 1, uniform fill, mask 0.5).
VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {},
    "target-prediction": {"saliency_target": "prediction"},
    "kl-0.3": {"kl_weight": 0.3},
    "fill-road": {"fill": "road"},
    "mask-0.2": {"mask_fraction": 0.2},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--n-train", type=int, default=20000, help="random training images")
    parser.add_argument("--n-val", type=int, default=1000, help="held-out training images for robust validation")
    parser.add_argument("--n-probe", type=int, default=200, help="random test images the maps are measured on")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="results/asgt_diagnosis")
    args = parser.parse_args()
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants must be a comma-separated subset of {', '.join(VARIANTS)}, got {unknown}")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def _trainer(classifier: Any, options: dict[str, Any]) -> Any:
    from art.attacks.evasion import ProjectedGradientDescent

    from art_sgt.trainers import SaliencyGuidedAdversarialTrainer

    options = {"mask_fraction": 0.5, "kl_weight": 1.0, **options}
    if options.get("fill") == "road":
        options["fill"] = NoisyLinearImputer(0.01)
    attack = ProjectedGradientDescent(
        classifier, eps=0.3, eps_step=2.5 * 0.3 / 7, max_iter=7, num_random_init=1, verbose=False
    )
    return SaliencyGuidedAdversarialTrainer(classifier, attack, **options)


def run(args: argparse.Namespace, variant: str, seed: int, data: tuple[np.ndarray, ...]) -> None:
    path = Path(args.out) / variant / f"seed{seed}.json"
    if path.is_file():
        done = json.loads(path.read_text())
        trained = (done["n_train"], len(done["epochs"]))  # "epochs" holds the trace: one record per epoch
        if trained != (args.n_train, args.epochs):
            raise SystemExit(
                f"{path} was trained with --n-train {trained[0]} --epochs {trained[1]}: give those, or another --out"
            )
        print(f"== {variant}, seed {seed}: done, skipped")
        return
    x, y, x_val, y_val, x_probe, y_probe = data
    recipe = TrainingRecipe("mnist_cnn", args.n_train, args.epochs, 128, 1e-3, 0.3, 7)
    classifier = build_classifier(recipe, seed=seed)
    checkpoints = Path(tempfile.gettempdir()) / "art-sgt-diagnosis" / variant / f"seed{seed}"
    print(f"== {variant}, seed {seed}: training ({checkpoints} keeps its checkpoints)")
    trace = trace_run(
        lambda: _trainer(classifier, VARIANTS[variant]),
        x,
        y,
        (x_val, y_val),
        (x_probe, y_probe),
        checkpoints,
        args.epochs,
        seed,
    )
    write_json(
        path,
        {
            "variant": variant,
            "options": {k: str(v) for k, v in VARIANTS[variant].items()},
            "seed": seed,
            "n_train": len(x),
            "epochs": args.epochs,
            **trace,
            "provenance": run_info(seed, "cpu"),
        },
    )
    shutil.rmtree(checkpoints, ignore_errors=True)


def summarise(out: Path) -> dict[str, Any]:
    """Every finished run under ``out``, and a figure of the per-epoch traces."""
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*/seed*.json"))]
    if not runs:
        return {"runs": []}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [
        ("entropy", "map entropy (normalised)"),
        ("morf_gain", "MoRF gain over random"),
        ("robust_val_accuracy", "robust validation accuracy (PGD-10)"),
        ("kl_saliency", "saliency KL term (training mean)"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    colours = {v: f"C{i}" for i, v in enumerate(VARIANTS)}  # a colour per variant, a marker and dash per seed
    markers, dashes = "os^vD", ["-", "--", ":", "-.", (0, (5, 1))]
    for r in runs:
        epochs = [e["epoch"] for e in r["epochs"]]
        for ax, (key, _) in zip(axes, panels):
            ax.plot(
                epochs,
                [e.get(key, np.nan) for e in r["epochs"]],
                marker=markers[r["seed"] % len(markers)],
                linestyle=dashes[r["seed"] % len(dashes)],
                color=colours[r["variant"]],
                label=f"{r['variant']}, seed {r['seed']}",
            )
    for ax, (_, title) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120, bbox_inches="tight")
    plt.close(fig)
    rows = [
        {
            "variant": r["variant"],
            "seed": r["seed"],
            **{k: r["epochs"][-1].get(k) for k, _ in panels},
            "lerf_gain": r["epochs"][-1]["lerf_gain"],
            **{f"final_{k}": v for k, v in r["obfuscation"].items()},
        }
        for r in runs
    ]
    by_run = {
        f"{r['variant']}, seed {r['seed']}": {k: v for k, v in r.items() if k not in ("variant", "seed")} for r in rows
    }
    return {"runs": rows, "by_run": by_run, "figure": str(out.with_suffix(".png"))}


def main() -> None:
    args = parse_args()
    (x_train, y_train), (x_test, y_test), _, _ = load_mnist(args.data_dir)
    order = np.random.default_rng(0).permutation(len(x_train))  # a seeded split of the training set
    train, val = np.sort(order[: args.n_train]), np.sort(order[args.n_train : args.n_train + args.n_val])
    probe = random_subset(len(x_test), args.n_probe, seed=0)
    data = (
        to_channels_first(x_train[train]),
        y_train[train],
        to_channels_first(x_train[val]),
        y_train[val],
        to_channels_first(x_test[probe]),
        y_test[probe],
    )
    for variant in args.variants:
        for seed in args.seeds:
            run(args, variant, seed, data)
    out = Path(args.out)
    write_json(out.with_suffix(".json"), {**summarise(out), "provenance": run_info(None, "cpu")})
    print(f"wrote {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
