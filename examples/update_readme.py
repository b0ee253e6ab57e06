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
#: Where a script recorded an absolute data folder, the README shows the variable a reader sets instead.
_DATA_DIR = re.compile(r"(--data-dir[ =])/\S+")


def _command(command: str) -> str:
    """A recorded command without this machine's data folder."""
    return _DATA_DIR.sub(r"\1$ART_SGT_DATA", command)


def _attack_label(key: str) -> str:
    """``pgd40_eps0.1`` -> ``PGD-40, eps 0.1``; other keys unchanged."""
    match = re.fullmatch(r"pgd(\d+)_eps([\d.]+)", key)
    return f"PGD-{match.group(1)}, eps {match.group(2)}" if match else key


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
        f"Main job (`{_command(data['command'])}`, seed {data['seed']}, {data['dataset']['train']} training / "
        f"{data['dataset']['test']} test images, {data['hardware']['cpu_count']} CPU cores):",
        "",
        "| model | epochs | test accuracy | training time |",
        "|---|---|---|---|",
        f"| standard (ART `fit`) | {std['epochs']} | {std['test_accuracy']:.4f} | {std['train_seconds']:.0f} s |",
        f"| SGT | {sgt['epochs']} | {sgt['test_accuracy']:.4f} | {sgt['train_seconds']:.0f} s |",
        "",
        f"The saliency maps of both models on test images are drawn in `{data['figure']}` (shown in the "
        "documentation's results page).",
        "",
    ]


def _asgt(results: Path) -> list[str]:
    data = _load(results / "mnist_asgt.json")
    if data is None:
        return _missing("mnist_asgt.json")
    acc, attack = data["evaluation"]["accuracy"], data["training"]["attack"]
    return [
        f"ASGT example (`{_command(data['command'])}`, {data['dataset']['train']} training images, "
        f"{data['training']['epochs']} epoch(s) in {data['training']['train_seconds']:.0f} s, training PGD eps "
        f"{attack['eps']} ({attack['max_iter']} steps of {attack['eps_step']:.3g}, seed {data['seed']}); "
        f"{data['dataset']['test']} test images, {data['evaluation']['attack']}):",
        "",
        "| evaluation | accuracy |",
        "|---|---|",
        *[f"| {_attack_label(k)} | {v:.4f} |" for k, v in acc.items()],
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
        f"Command line on real MNIST: `{_command(train['command'])}` gave test accuracy "
        f"{train['test_accuracy']:.4f} in {train['train_seconds']:.0f} s; `{_command(evaluation['command'])}` measured "
        f"clean accuracy "
        f"{robust['clean_accuracy']:.3f} on {robust['n_samples']} test images, worst case over "
        f"{', '.join(robust['attacks'])} (attack budget '{robust['params'].get('budget', '?')}'): {worst}; "
        f"gradient-masking flags: {', '.join(robust['flags']) or 'none'}; "
        f"saliency sparseness {summary['saliency']['sparseness']:.3f} (gradient), "
        f"{summary['integrated_gradients']['sparseness']:.3f} (integrated gradients).",
        "",
    ]


def _bench(results: Path, name: str, title: str) -> list[str]:
    data = _load(results / name)
    if data is None:
        return _missing(name)
    lines = [f"{title} (`{_command(data['command'])}`, ratios of medians measured side by side in one run):", ""]
    lines += ["| contender | baseline | ratio | target | met |", "|---|---|---|---|---|"]
    rows = [(c, r["baseline"], r["ratio"], r.get("target")) for c, r in data.get("ratios", {}).items()]
    rows += [(m, f"floor: {r['floor']}", r["ratio"], 1.3) for m, r in data.get("metrics", {}).items()]
    for contender, baseline, ratio, target in rows:
        met = "" if target is None else ("yes" if ratio <= target else "no")
        lines.append(f"| {contender} | {baseline} | {ratio:.3f} | {'' if target is None else f'<= {target}'} | {met} |")
    missed = [row[0] for row in rows if row[3] is not None and row[2] > row[3]]
    if missed:
        lines += [
            "",
            f"Targets are the ratios the project set itself before measuring; {', '.join(missed)} "
            f"{'is' if len(missed) == 1 else 'are'} above {'its' if len(missed) == 1 else 'their'} target, so the "
            "table says 'no'. The ratio measured is the floor this code reaches today on this machine; "
            "a ratio, not a time, so it carries over to other machines only roughly.",
        ]
    return [*lines, ""]


_OUT_DIR = re.compile(r" --out \S+")


def _apgd_t(results: Path) -> list[str]:
    data = _load(results / "bench_robustness.json")
    if data is None:
        return _missing("bench_robustness.json")
    c = data["config"]
    command = _OUT_DIR.sub("", _command(data["command"]))
    lines = [
        f"The robustness report's APGD-T against ART's APGD-T run over every target on every sample (`{command}`; "
        f"{data['model']}, clean accuracy {data['clean_accuracy']:.3f}; {c['targets']} targets x {c['max_iter']} "
        f"iterations on {c['n']} test images; side by side in one run):",
        "",
        "| eps | robust, ART by hand | robust, report | CPU s, ART by hand | CPU s, report | ratio (report / ART) |",
        "|---|---|---|---|---|---|",
    ]
    for eps, r in data["by_eps"].items():
        lines.append(
            f"| {eps.removeprefix('eps ')} | {r['robust_art_by_hand']:.3f} | {r['robust_report']:.3f} | "
            f"{r['cpu_seconds_art_by_hand']:.1f} | {r['cpu_seconds_report']:.1f} | {r['ratio_cpu']:.3f} |"
        )
    lines += [
        "",
        "The report attacks only the samples still classified correctly, as AutoAttack does; the two robust "
        "accuracies differ only by the random starts drawn.",
    ]
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


def _hardware(results: Path) -> list[str]:
    data = _load(results / "bench_hardware_options.json")
    if data is None:
        return _missing("bench_hardware_options.json")
    rows, setup = data["results"], data["setup"]
    workloads = ("sgt", "asgt", "fast_pgd")
    lines = [
        f"Hardware options (`{_command(data['command'])}`; {setup['model']}, batch {setup['batch_size']}, CPU flags "
        f"{', '.join(setup['cpu_flags'])}; {setup['gpu']}): time with the option / float32 time, medians of "
        "interleaved rounds in one run, one thread (the steadiest rows; the JSON also holds 2 threads):",
        "",
        "| option | SGT epoch | ASGT epoch | fast-path PGD |",
        "|---|---|---|---|",
    ]
    faster = []
    for option in (o for o in setup["options"] if o != "fp32"):
        ratios = [rows[f"{w}, {option}, 1 thread"]["ratio_to_fp32"] for w in workloads]
        lines.append(f"| `{option}` | {' | '.join(f'{r:.2f}' for r in ratios)} |")
        if max(ratios) < 0.9:
            faster.append(f"`{option}`")
    verdict = "none is faster by over 10% everywhere"
    if faster:
        verdict = f"faster by over 10% everywhere: {', '.join(faster)}"
    lines += [
        "",
        f"On this CPU {verdict}. The options are off by default; their effect on GPUs has not been measured by this "
        "project (see the documentation's performance page).",
    ]
    return [*lines, ""]


_TRAINER_LABELS = {
    "art_madry": "ART Madry PGD-10",
    "art_fbf": "ART FBF (FGSM-RS)",
    "asgt_pgd10": "ASGT PGD-10",
    "fast_asgt": "fast ASGT (`SaliencyGuidedAdversarialTrainer.fast`)",
}


def _time_to_robustness(results: Path) -> list[str]:
    data = _load(results / "time_to_robustness.json")
    if data is None:
        return _missing("time_to_robustness.json")
    setup, target = data["setup"], data["target"]
    lines = [
        f"Time to robustness (`{_command(data['command'])}`; MNIST, {setup['train']}, {setup['epochs']} epochs, eps "
        f"{setup['eps']}, {setup['test']}; worst case: {setup['evaluation']}; CPU: {setup['cpu_seconds']}):",
        "",
        "| trainer | training CPU s | final worst case | final clean |",
        "|---|---|---|---|",
    ]
    for name, row in data["summary"].items():
        lines.append(
            f"| {_TRAINER_LABELS.get(name, name)} | {row['training_cpu_seconds']:.0f} "
            f"| {row['final_worst_case_accuracy']:.3f} | {row['final_clean_accuracy']:.3f} |"
        )
    reached = (
        f"reached it in {target['ratio']:.2f} of Madry's time"
        if target["ratio"] is not None
        else "never reached it in this run"
    )
    lines += [
        "",
        f"Target: fast ASGT reaches ART Madry PGD-10's final worst case minus 2 points ({target['level']:.3f}) in at "
        f"most {target['required_ratio']:.2f} of Madry's training time. Fast ASGT {reached}: "
        f"{'met' if target['met'] else 'not met'}. The model it returned (epoch {target['fast_asgt_returned_epoch']}, "
        f"by robust validation) overfit catastrophically: {'yes' if target['fast_asgt_returned_overfit'] else 'no'}. "
        "A small budget on a shared machine: it speaks for this setting only.",
        "",
        f"The figure of worst-case accuracy after each epoch against training CPU minutes is `{data['figure']}` "
        "(shown in the documentation's fast-training page; this README is also the package's PyPI description, where "
        "repository images do not resolve).",
    ]
    return [*lines, ""]


def _markdown(results: Path, name: str, title: str) -> list[str]:
    path = results / name
    if not path.is_file():
        return _missing(name)
    text = path.read_text().strip()
    heading = re.match(r"#+\s+(.*)\n", text)
    if heading:  # the file's own title becomes the section title (one heading, not two)
        title, text = heading.group(1), text[heading.end() :].strip()
    body = re.sub(r"^#+", lambda m: "#" * min(len(m.group(0)) + 2, 6), text, flags=re.M)
    return [f"### {title}", "", f"(copied from `results/{name}`)", "", body, ""]


def render(results: Path) -> str:
    lines = ["### Training", ""]
    lines += _main_job(results) + _asgt(results) + _cli(results)
    lines += ["### Speed", ""]
    lines += _bench(results, "bench_trainers.json", "Trainers against ART")
    lines += _footprint(results)
    lines += _bench(results, "bench_evaluators.json", "Evaluators against their floors")
    lines += _apgd_t(results)
    lines += _hardware(results)
    lines += _time_to_robustness(results)
    lines += _reproduction(results)
    return "\n".join(lines).rstrip() + "\n"


def _reproduction(results: Path) -> list[str]:
    """The verdict of the paper reproduction, MNIST then CIFAR-10, the standard profile (the one that may claim
    something) before the quick one: a report that carries the reproduction's run manifest is summarised by the
    package's own README section; an older report is copied as it is."""
    from art_sgt.reproduction.recipe import PROFILES
    from art_sgt.reproduction.report import readme_section

    lines = ["## Does the paper's claim hold?", ""]
    not_run = []
    for dataset in ("mnist", "cifar10"):
        for profile in ("standard", "gpu", "quick"):
            stem = f"{dataset}_{profile}"
            payload = _load(results / f"{stem}.json")
            if payload is not None and "manifest" in payload:
                section = readme_section([payload]).split("\n", 1)[1].strip()  # without its "##" heading
                lines += [section, "", f"(summarised from `results/{stem}.json`; the full report is "
                          f"`results/{stem}.md`)", ""]  # fmt: skip
                lines += _saliency_methods(results, stem)
            elif profile == "quick":
                lines += _markdown(results, f"{stem}.md", f"{dataset}, quick profile")
            elif (dataset, profile) in PROFILES:
                not_run.append(f"`art-sgt reproduce --dataset {dataset} --profile {profile}`")
    if not_run:
        lines += [f"Not run yet, so nothing above rests on them: {', '.join(not_run)} (the gpu profile needs a GPU).",
                  ""]  # fmt: skip
    return lines


def _saliency_methods(results: Path, stem: str) -> list[str]:
    """The saliency term's effect on the maps (ASGT - mixed AT) by attribution method, from
    ``examples/saliency_methods.py``'s results, when they exist."""
    payload = _load(results / f"{stem}_saliency_methods.json")
    if payload is None:
        return []
    rows = [f"- {c['verdict']}" for c in payload["comparisons"]
            if (c["a"], c["b"], c["quantity"]) == ("asgt", "mixed_at", "morf_gain")]  # fmt: skip
    if not rows:
        return []
    check = {True: "matches the report", False: "does NOT match the report", None: "not checked"}
    return [
        f"Is a difference in the maps the models' or the attribution method's? The MoRF gain of ASGT - mixed AT by "
        f"method ({len(payload['runs'])} runs, {payload['n']} test images; the plain gradient, recomputed, "
        f"{check[payload['matches_report']]}; all models in `results/{stem}_saliency_methods.md`):",
        "",
        *rows,
        "",
    ]


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
