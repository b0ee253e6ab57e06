"""Check the reproduction's saliency columns with other attribution methods.

The report's saliency columns rest on one method, the plain input gradient (Captum's ``Saliency``). Whether a
difference between models belongs to the models or only to that method is checked here: for every run of the
main comparison that is done in the run cache, the masking gains (against the random control) and the sparseness
of the maps of integrated gradients and SmoothGrad, on the report's test images with its fill and each run's
seed, beside the plain gradient's, which is recomputed and checked against the cached report
(:func:`art_sgt.reproduction.saliency_methods.compare_methods`). Writes
``results/<dataset>_<profile>_saliency_methods.json`` and ``.md``. Each run's numbers are kept in its cache
folder, so a second call measures only the runs (or methods) that are new; ``--recompute`` measures all again.

Usage::

    python examples/saliency_methods.py --dataset mnist --profile standard --cache-dir DIR
        [--methods saliency integrated_gradients smoothgrad] [--data-dir DIR] [--out-dir results] [--recompute]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from art_sgt.datasets import load_cifar10, load_mnist, random_subset
from art_sgt.models import to_channels_first
from art_sgt.provenance import run_info, write_json
from art_sgt.reproduction import RunCache, get_profile, profile_runs
from art_sgt.reproduction.cli import default_cache_dir
from art_sgt.reproduction.saliency_methods import compare_methods, methods_markdown


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), default="mnist")
    parser.add_argument("--profile", choices=("quick", "standard", "gpu"), default="standard")
    parser.add_argument("--cache-dir", default=None, help="the run cache (default: art-sgt reproduce's)")
    parser.add_argument("--data-dir", default=None, help="folder of mnist.npz / cifar10.npz (default: $ART_SGT_DATA)")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["saliency", "integrated_gradients", "smoothgrad"],
        help="attribution methods, 'saliency' (the report's) first",
    )
    parser.add_argument("--out-dir", default="results")
    parser.add_argument("--recompute", action="store_true", help="measure every run again, not only the new ones")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    profile = get_profile(args.dataset, args.profile)
    cache = RunCache(args.cache_dir or default_cache_dir())
    runs = [r for r in profile_runs(profile) if not r.variant]  # the main comparison
    _, (x_test, y_test), _, _ = (load_mnist if args.dataset == "mnist" else load_cifar10)(args.data_dir)
    # the report's images: the reproduction's seeded random subset of the test set (evaluate.evaluate_run)
    idx = random_subset(len(x_test), profile.evaluation.n_report, seed=profile.evaluation.subset_seed)
    payload = compare_methods(
        cache,
        runs,
        to_channels_first(x_test[idx]),
        y_test[idx],
        args.methods,
        profile.evaluation.masking_fill,
        log=lambda line: print(line, flush=True),
        reuse=not args.recompute,
    )
    if not payload["runs"]:
        raise SystemExit(f"No run of {args.dataset} / {args.profile} is done in {cache.root}.")
    payload.update(
        dataset=args.dataset,
        profile=args.profile,
        run=run_info(),
        test_subset={
            "n_total": len(x_test),
            "n": len(idx),
            "seed": profile.evaluation.subset_seed,
            "indices": idx.tolist(),
        },
    )
    stem = Path(args.out_dir) / f"{args.dataset}_{args.profile}_saliency_methods"
    write_json(stem.with_suffix(".json"), payload)
    git = payload["run"]["git"]
    provenance = (
        f"Produced by `{payload['run']['command']}` at commit {str(git['commit'])[:10]} (clean tree: {git['clean']})."
    )
    title = f"{args.dataset} / {args.profile}: saliency quality by attribution method"
    stem.with_suffix(".md").write_text(methods_markdown(payload, title, provenance))
    print(f"wrote {stem}.json and {stem}.md; plain gradient matches the report: {payload['matches_report']}")


if __name__ == "__main__":
    main()
