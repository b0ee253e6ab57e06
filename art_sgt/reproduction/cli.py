"""The driver shared by ``art-sgt reproduce`` and ``examples/reproduce_paper.py``.

It runs the pieces of a profile through the run cache (skipping what is done, resuming what was interrupted;
``--only MODEL[,SEED]`` runs one piece), then assembles ``<out-dir>/<stem>.json`` / ``.md`` and the figures
under ``<out-dir>/<stem>/`` from the cache, where ``<stem>`` is ``<dataset>_<profile>`` (``mnist_ablations``
with ``--ablations``). ``--manifest`` only lists what is done and missing; ``--report-only`` only assembles.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from art_sgt._argtypes import non_negative_int, positive_int
from art_sgt.provenance import run_info, write_json
from art_sgt.reproduction import decisive, figures, recipe, report, screening
from art_sgt.reproduction.cache import RunCache, run_pieces

__all__ = ["add_arguments", "run", "main", "default_cache_dir"]


def default_cache_dir() -> str:
    """``$ART_SGT_CACHE``, else ``~/.cache/art-sgt/reproduction`` (outside any checkout, so it outlives worktrees).

    :return: The folder.
    """
    return os.environ.get("ART_SGT_CACHE") or str(Path.home() / ".cache" / "art-sgt" / "reproduction")


def _models(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in recipe.MODELS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"must be a comma-separated subset of {','.join(recipe.MODELS)}, got {text!r}")
    return names


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(non_negative_int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers >= 0, got {text!r}") from None
    if len(set(seeds)) != len(seeds):  # a repeated seed would count one run as two independent ones
        raise argparse.ArgumentTypeError(f"must not repeat a seed, got {text!r}")
    return seeds


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the reproduction's arguments to ``parser``.

    :param parser: An argument parser (or subparser).
    :return: The same parser.
    """
    parser.add_argument("--dataset", choices=("mnist", "cifar10"), required=True)
    parser.add_argument(
        "--profile",
        choices=("quick", "standard", "screening", "decisive", "gpu"),
        default="quick",
        help="quick: smoke test, no claims; standard: the CPU budget; screening: the MNIST screening of the "
        "saliency-guided objectives (writes mnist_screening.json/.md); decisive: the MNIST decisive study, with the "
        "variants <out-dir>/mnist_screening.json chose; gpu: CIFAR-10 ResNet-18 on a GPU (default quick)",
    )
    parser.add_argument(
        "--models",
        type=_models,
        default=list(recipe.MODELS),
        help=f"comma-separated subset of {','.join(recipe.MODELS)} (the screening and the decisive study run their "
        "own models: use --only to run one piece)",
    )
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="the MNIST ablations (one seed) instead of the controls (ignores --models)",
    )
    parser.add_argument("--only", default=None, metavar="MODEL[,SEED]", help="run one piece of the recipe")
    parser.add_argument("--seeds", type=_seeds, default=None, help="override the profile's seeds, e.g. 0,1,2")
    parser.add_argument(
        "--data-dir", default=os.environ.get("ART_SGT_DATA"), help="folder with mnist.npz / cifar10.npz ($ART_SGT_DATA)"
    )
    parser.add_argument("--out-dir", default="results", help="where the report JSON, markdown and figures go")
    parser.add_argument(
        "--cache-dir", default=None, help="the run cache ($ART_SGT_CACHE, else ~/.cache/art-sgt/reproduction)"
    )
    parser.add_argument("--n-train", type=positive_int, help="override the profile's number of training images")
    parser.add_argument("--epochs", type=positive_int, help="override the profile's epochs")
    parser.add_argument("--n-eval", type=positive_int, help="override the profile's clean/PGD test images")
    parser.add_argument(
        "--n-report",
        type=positive_int,
        help="override the profile's worst-case images (and its saliency images unless it sets them apart)",
    )
    parser.add_argument("--manifest", action="store_true", help="only list what is done and what is missing")
    parser.add_argument("--report-only", action="store_true", help="only assemble the report from the cache")
    parser.add_argument("--verbose", action="store_true", help="show the trainers' progress bars")
    return parser


def _profile(args: argparse.Namespace) -> recipe.Profile:
    profile = recipe.get_profile(args.dataset, args.profile)
    train = {k: v for k, v in (("n_train", args.n_train), ("epochs", args.epochs)) if v is not None}
    ev = {k: v for k, v in (("n_eval", args.n_eval), ("n_report", args.n_report)) if v is not None}
    seeds = {"seeds": args.seeds} if args.seeds else {}
    changed = {**train, **ev, **seeds}
    label = profile.label
    if changed:  # the profile's own label no longer describes what runs
        label += "; overridden on the command line: " + ", ".join(f"{k} {v}" for k, v in changed.items())
    return replace(
        profile,
        training=replace(profile.training, **train),
        evaluation=replace(profile.evaluation, **ev),
        seeds=args.seeds or profile.seeds,
        label=label,
    )


def _loader(args: argparse.Namespace, profile: recipe.Profile) -> Any:
    def load() -> tuple[Any, ...]:
        from art_sgt.datasets import load_cifar10, load_mnist
        from art_sgt.models import to_channels_first

        (x_train, y_train), (x_test, y_test), _, _ = (load_mnist if args.dataset == "mnist" else load_cifar10)(
            args.data_dir
        )
        ev = profile.evaluation
        n, n_test = profile.training.n_train, max(ev.n_eval, ev.n_report, ev.n_saliency or 0)
        for flag, asked, held in (("--n-train", n, len(x_train)), ("--n-eval/--n-report", n_test, len(x_test))):
            if asked > held:  # a slice would quietly take fewer than the report then states
                raise ValueError(f"{flag} asks for {asked} images, but the data holds {held}.")
        # the whole test set: the evaluation draws its seeded random subsets from it (evaluate.evaluate_run)
        return to_channels_first(x_train[:n]), y_train[:n], to_channels_first(x_test), y_test

    return load


def _estimates(args: argparse.Namespace, cache: RunCache, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The estimated CPU cost of the larger profiles of this dataset, from this run's measured timings."""
    out: dict[str, Any] = {}
    targets = {"standard": recipe.profile_runs(recipe.get_profile(args.dataset, "standard"))}
    if args.dataset == "mnist":
        shared = {r.training_hash() for r in targets["standard"]}  # reused from the standard profile's runs
        targets["ablations (standard, beyond its runs)"] = [
            r for r in recipe.ablations(recipe.get_profile("mnist", "standard")) if r.training_hash() not in shared
        ]
    for name, runs in targets.items():
        try:
            out[name] = report.estimate_cost(records, runs)
        except ValueError as err:
            out[name] = {"note": f"no estimate: {err}"}
    return out


def _screening_choice(path: Path) -> tuple[str, ...]:
    """The variants the screening's rule chose, from its JSON; none (and a line saying so) before it is complete."""
    selection = json.loads(path.read_text()).get("selection") if path.is_file() else None
    if selection is None:
        print(f"{path} holds no complete screening yet: the decisive study runs the controls and the paper's ASGT")
        return ()
    return tuple(selection["chosen"])


def run(args: argparse.Namespace) -> int:
    """Run the reproduction described by parsed ``args`` (see :func:`add_arguments`).

    :param args: The parsed arguments.
    :return: The exit status (0).
    :raises ValueError: For ``--ablations`` on CIFAR-10 or with several ``--seeds``, a profile the dataset lacks,
        an ``--only`` that selects nothing, or (once data is needed) more training or test images than the data
        holds.
    """
    if args.ablations and args.dataset != "mnist":
        raise ValueError(f"--ablations runs on MNIST only (it writes mnist_ablations.json), not on {args.dataset}.")
    if args.ablations and args.seeds and len(args.seeds) > 1:
        raise ValueError(f"--ablations runs one seed per variant: give --seeds one seed, got {args.seeds}.")
    if args.ablations and args.profile not in ("quick", "standard"):
        raise ValueError(f"--ablations modifies the quick or the standard profile, not {args.profile!r}.")
    profile = _profile(args)
    if args.profile == "screening":
        runs = recipe.screening_runs(profile)
    elif args.profile == "decisive":
        runs = recipe.decisive_runs(profile, _screening_choice(Path(args.out_dir) / "mnist_screening.json"))
    elif args.ablations:
        runs = recipe.ablations(profile)
    else:
        runs = recipe.profile_runs(profile, tuple(args.models))
    chosen = recipe.select(runs, args.only)
    cache = RunCache(args.cache_dir or default_cache_dir())
    stem = "mnist_ablations" if args.ablations else f"{args.dataset}_{args.profile}"
    out = Path(args.out_dir)
    if args.manifest:
        manifest = cache.manifest(runs)
        for row in manifest["runs"]:
            stages = f"  (evaluation kept: {', '.join(row['evaluation_stages'])})" if row["evaluation_stages"] else ""
            print(f"{row['status']:>11}  {row['name']},{row['seed']}  {row['folder']}{stages}")
        print(", ".join(f"{k}: {v}" for k, v in manifest["counts"].items()))
        return 0
    if not args.report_only:
        run_pieces(cache, chosen, _loader(args, profile), verbose=args.verbose)
    records = cache.records(runs)
    manifest = cache.write_manifest(runs, cache.root / runs[0].profile / args.dataset / "manifest.json")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.profile == "screening":
        payload = {
            **screening.screening_payload(records, profile.label, sorted({r.name for r in runs}), profile.seeds),
            "manifest": manifest,
            "provenance": run_info(None, device),
        }
        write_json(out / f"{stem}.json", payload)
        print(screening.write_markdown(payload, out / f"{stem}.md"))
        return 0
    payload = report.assemble(profile, records, manifest, run_info(None, device))
    if args.ablations:
        payload["label"] = f"Ablations, one seed each, each variant changing one setting of the recipe: {profile.label}"
    payload["setup"] = payload["label"]
    if args.profile == "decisive":
        payload["goal"] = decisive.assess(records, seeds=profile.seeds)
    pending = [r for r in runs if cache.status(r) != "done"]
    trained = [t for t in map(cache.train_record, pending) if t is not None]
    payload["cost"] = report.cost_summary(records, pending, trained=trained)
    if args.profile == "quick" and records and not args.ablations:
        payload["cost_estimates"] = _estimates(args, cache, records)
    if records:
        payload["figures"] = figures.write_figures(payload, out / stem)
    write_json(out / f"{stem}.json", payload)
    print(report.write_markdown(payload, out / f"{stem}.md"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run (the entry point of ``examples/reproduce_paper.py``).

    :param argv: Arguments (default: ``sys.argv[1:]``).
    :return: The exit status.
    """
    parser = add_arguments(argparse.ArgumentParser(description="Reproduce SGT / ASGT on real MNIST or CIFAR-10."))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args)
