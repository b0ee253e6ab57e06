"""Copy the measured numbers from ``results/`` into the README, between its ``results`` markers.

Nothing is typed by hand: each line below is read from a file a script in this repository wrote. Files that
do not exist yet are listed as missing.

Usage::

    python examples/update_readme.py [--readme README.md] [--results results]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _missing(name: str) -> list[str]:
    return [f"- `results/{name}`: not produced yet.", ""]


def _main_job(results: Path) -> list[str]:
    data = _load(results / "mnist_sgt.json")
    if data is None:
        return _missing("mnist_sgt.json")
    std, sgt = data["standard"], data["sgt"]
    return [
        f"Main job (`{data['command']}`, seed {data['seed']}, {data['dataset']['train']} training / "
        f"{data['dataset']['test']} test images, {data['hardware']['cpu_count']} CPU cores):",
        "",
        "| model | epochs | test accuracy | training time |",
        "|---|---|---|---|",
        f"| standard (ART `fit`) | {std['epochs']} | {std['test_accuracy']:.4f} | {std['train_seconds']:.0f} s |",
        f"| SGT | {sgt['epochs']} | {sgt['test_accuracy']:.4f} | {sgt['train_seconds']:.0f} s |",
        "",
        f"![saliency maps]({data['figure']})",
        "",
    ]


def _asgt(results: Path) -> list[str]:
    data = _load(results / "mnist_asgt.json")
    if data is None:
        return _missing("mnist_asgt.json")
    acc, attack = data["evaluation"]["accuracy"], data["training"]["attack"]
    cells = " | ".join(f"{k}: {v:.4f}" for k, v in acc.items())
    return [
        f"ASGT example (`{data['command']}`, {data['dataset']['train']} training images, "
        f"{data['training']['epochs']} epoch(s) in {data['training']['train_seconds']:.0f} s, training PGD eps "
        f"{attack['eps']} ({attack['max_iter']} steps of {attack['eps_step']:.3g}, seed {data['seed']}); "
        f"{data['dataset']['test']} test images, {data['evaluation']['attack']}): {cells}",
        "",
    ]


def _cli(results: Path) -> list[str]:
    train, evaluation = (
        _load(results / "cli" / "mnist_sgt_train.json"),
        _load(results / "cli" / "mnist_sgt_evaluation.json"),
    )
    if train is None or evaluation is None:
        return _missing("cli/mnist_sgt_train.json and cli/mnist_sgt_evaluation.json")
    robust = evaluation["robustness"]
    worst = ", ".join(f"eps {e:g}: {a:.3f}" for e, a in zip(robust["eps"], robust["worst_case"]))
    summary = evaluation["saliency"]["summary"]
    return [
        f"Command line on real MNIST: `{train['command']}` gave test accuracy {train['test_accuracy']:.4f} "
        f"in {train['train_seconds']:.0f} s; `{evaluation['command']}` measured clean accuracy "
        f"{robust['clean_accuracy']:.3f} on {robust['n_samples']} test images, worst case over "
        f"{', '.join(robust['attacks'])}: {worst}; gradient-masking flags: {', '.join(robust['flags']) or 'none'}; "
        f"saliency sparseness {summary['saliency']['sparseness']:.3f} (gradient), "
        f"{summary['integrated_gradients']['sparseness']:.3f} (integrated gradients).",
        "",
    ]


def _bench(results: Path, name: str, title: str) -> list[str]:
    data = _load(results / name)
    if data is None:
        return _missing(name)
    lines = [f"{title} (`{data['command']}`, ratios of medians measured side by side in one run):", ""]
    lines += ["| contender | baseline | ratio | target |", "|---|---|---|---|"]
    for contender, r in data.get("ratios", {}).items():
        target = "" if r.get("target") is None else f"<= {r['target']}"
        lines.append(f"| {contender} | {r['baseline']} | {r['ratio']:.3f} | {target} |")
    for metric, r in data.get("metrics", {}).items():
        lines.append(f"| {metric} | floor: {r['floor']} | {r['ratio']:.3f} | <= 1.3 |")
    return [*lines, ""]


def _footprint(results: Path) -> list[str]:
    data = _load(results / "bench_trainers.json")
    if data is None or "fixed_mmap_threshold" not in data.get("footprint", {}).get("sgt", {}).get("memory", {}):
        return _missing("bench_trainers.json (footprint)")
    foot = data["footprint"]
    command = data.get("footprint_run", data)["command"]
    lines = [
        f"Memory and checkpointing (`{command}`; {data['setup']['n']} samples per epoch, batch "
        f"{data['setup']['batch_size']}, {data['setup']['memory_epochs']} epochs in one `fit`, each trainer in a "
        "fresh process; growth read from a least-squares line through the epochs):",
        "",
        "| trainer | live tensors, epoch 1 -> last | RSS growth, glibc defaults | RSS growth, fixed mmap threshold "
        "| peak RSS | checkpoint write | write / epoch | with / without checkpoint, side by side |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("sgt", "asgt"):
        mem, ckpt = foot[name]["memory"], foot[name]["checkpointing"]
        count, size = mem["live_tensors_after_epoch"], mem["live_tensor_mb_after_epoch"]
        rss, fixed = mem["rss_mb_after_epoch"], mem["fixed_mmap_threshold"]
        lines.append(
            f"| {name} | {count[0]} ({size[0]:.1f} MB) -> {count[-1]} ({size[-1]:.1f} MB) "
            f"| {mem['rss_growth']:+.1%} ({min(rss):.0f}-{max(rss):.0f} MB) "
            f"| {fixed['rss_growth']:+.1%} ({min(fixed['rss_mb_after_epoch']):.0f}-"
            f"{max(fixed['rss_mb_after_epoch']):.0f} MB) | {mem['peak_rss_mb_of_the_process']:.0f} MB "
            f"| {ckpt['write_seconds'] * 1000:.0f} ms ({ckpt['checkpoint_mb']:.1f} MB) "
            f"| {ckpt['write_fraction_of_epoch']:.2%} | {ckpt['overhead_measured_side_by_side']:+.1%} |"
        )
    lines += [
        "",
        "Targets: growth < 5% (no leak across epochs), checkpoint < 5% of an epoch. With glibc's default settings the "
        "RSS of a loop whose live tensors stay constant swings from epoch to epoch (ranges above; its mmap threshold "
        "moves and freed blocks stay in the heap); the fixed-threshold run (`MALLOC_MMAP_THRESHOLD_=131072`) shows "
        "the growth without that noise.",
    ]
    return [*lines, ""]


def _markdown(results: Path, name: str, title: str) -> list[str]:
    path = results / name
    if not path.is_file():
        return _missing(name)
    body = re.sub(r"^#", "###", path.read_text().strip(), flags=re.M)
    return [f"### {title}", "", f"(copied from `results/{name}`)", "", body, ""]


def render(results: Path) -> str:
    lines = ["### Training", ""]
    lines += _main_job(results) + _asgt(results) + _cli(results)
    lines += ["### Speed", ""]
    lines += _bench(results, "bench_trainers.json", "Trainers against ART")
    lines += _footprint(results)
    lines += _bench(results, "bench_evaluators.json", "Evaluators against their floors")
    lines += ["## Does the paper's claim hold?", ""]
    lines += _markdown(results, "mnist_quick.md", "MNIST, quick profile")
    lines += _markdown(results, "cifar10_quick.md", "CIFAR-10, quick profile")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--results", default="results")
    args = parser.parse_args()
    readme = Path(args.readme)
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} lacks the {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render(Path(args.results))}{END}{tail}")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
