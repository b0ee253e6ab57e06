"""Write the README's generated parts from the files under ``results/``.

The README is the project's front page (and its PyPI description), so it carries three short generated parts,
each between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``:

``make-run``
    how long ``make run`` trained on the recorded machine, and the quick run (``results/mnist_sgt.json``,
    ``results/mnist_sgt_quick.json``);
``verdict``
    one table of the paper reproduction's key comparison, ASGT against mixed AT, ART's Madry PGD-AT and no
    defence, with 95% intervals (``results/mnist_standard.json``, ``results/cifar10_standard.json``);
``objectives``
    where the objectives study stands: the screening's evaluated runs and the rule's choice
    (``results/mnist_screening.json``), then the decisive study's goal and, once it is assessed, the best trainer
    for robustness and for maps (``results/mnist_decisive.json``);
``speed``
    the benchmarks' ratios against ART (``results/bench_trainers.json``) and, once it exists, against
    torchattacks' AutoAttack (``results/bench_autoattack.json``).

Nothing is typed by hand: every number is read from a file a script of this repository wrote. A missing file
is said to be missing (an optional one is left out). The full results are on the documentation's results page
(``docs/results.rst``), which reads the same files when the documentation is built.

Usage::

    python examples/update_readme.py [--readme README.md] [--results results] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

_BLOCK = re.compile(r"(<!-- generated:([\w-]+) -->\n)(.*?)(<!-- /generated:\2 -->)", re.S)
_DATA_DIR = re.compile(r"(--data-dir[ =])/\S+")
_OUT = re.compile(r" --(out|cache-dir)[ =]\S+")

#: The controls ASGT is compared with, in the table's order.
_BASELINES = {
    "mixed_at": "mixed AT (`kl_weight=0`)",
    "pgd_at": "PGD-AT (ART Madry)",
    "standard": "no defence (ART `fit`)",
}
_DATASETS = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
_MODELS = {"standard": "standard", "sgt": "SGT", "pgd_at": "PGD-AT", "mixed_at": "mixed AT", "asgt": "ASGT"}
#: Generated prose is wrapped to this width; a table row stays one line (the tests hold it under 200).
WIDTH = 115
_CONTENDERS = {
    "sgt": "an SGT epoch",
    "asgt": "an ASGT epoch",
    "fast_pgd": "ASGT's on-device PGD",
}
_REFERENCES = {
    "art_fit": "ART `fit`",
    "art_madry": "ART `AdversarialTrainerMadryPGD`",
    "art_pgd": "ART's `ProjectedGradientDescent`",
}


def _command(command: str) -> str:
    """A recorded command without this machine's folders: the data folder as ``$ART_SGT_DATA``, no outputs."""
    return _OUT.sub("", _DATA_DIR.sub(r"\1$ART_SGT_DATA", command))


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _missing(name: str) -> list[str]:
    return [f"`results/{name}`: not produced yet."]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _eps(value: float) -> str:
    """``8/255`` where eps is a whole number of 255ths below 1, else the number."""
    k = value * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 and value < 0.1 else f"{value:g}"


def make_run(results: Path) -> list[str]:
    """The time ``make run`` (``examples/mnist_sgt.py``) spent training, and the quick run's."""
    data = _load(results / "mnist_sgt.json")
    if data is None:
        return _missing("mnist_sgt.json")
    std, sgt, cores = data["standard"], data["sgt"], data["hardware"]["cpu_count"]
    lines = [
        f"On {cores} CPU cores `make run` trained for {_minutes(std['train_seconds'] + sgt['train_seconds'])} "
        f"(ART `fit`, {std['epochs']} epochs: {_minutes(std['train_seconds'])}, test accuracy "
        f"{std['test_accuracy']:.4f}; SGT, {sgt['epochs']} epochs: {_minutes(sgt['train_seconds'])}, test accuracy "
        f"{sgt['test_accuracy']:.4f}; `results/mnist_sgt.json`); installing and evaluating come on top."
    ]
    quick = _load(results / "mnist_sgt_quick.json")
    if quick is not None:
        seconds = quick["standard"]["train_seconds"] + quick["sgt"]["train_seconds"]
        lines.append(
            f"For a taste, `python examples/mnist_sgt.py --quick` ({quick['dataset']['train']:,} training images, "
            f"one epoch each) trained both in {_minutes(seconds)} on {quick['hardware']['cpu_count']} cores "
            f"(SGT test accuracy {quick['sgt']['test_accuracy']:.4f}; `results/mnist_sgt_quick.json`)."
        )
    return lines


def _interval(comparison: dict[str, Any]) -> tuple[float, float | None, float | None]:
    """Estimate and 95% interval: over seeds with two or more, else the one seed's bootstrap over test images."""
    over_seeds = comparison["across_seeds"]
    if over_seeds["n"] >= 2 or not comparison["per_seed"]:
        return over_seeds["estimate"], over_seeds["low"], over_seeds["high"]
    boot = comparison["per_seed"][0]["bootstrap"]
    return boot["estimate"], boot["low"], boot["high"]


def _conclusion(comparison: dict[str, Any]) -> str:
    """The report's own conclusion, the last clause of its verdict: ``lower``, ``higher`` or ``inconclusive``."""
    last = comparison["verdict"].rstrip(".").rsplit(": ", 1)[-1]
    return "inconclusive" if last.startswith("inconclusive") else last.removeprefix("ASGT is ")


def _cell(comparison: dict[str, Any] | None, scale: float, digits: int) -> str:
    if comparison is None:
        return "not compared yet"
    estimate, low, high = _interval(comparison)
    interval = ", no interval" if low is None else f" [{low * scale:+.{digits}f}, {high * scale:+.{digits}f}]"
    return f"{estimate * scale:+.{digits}f}{interval}, {_conclusion(comparison)}"


def _standing(comparisons: list[dict[str, Any] | None], claim: float) -> str:
    """Where the paper's claimed gain (points) stands against the PGD and worst-case intervals."""
    places = set()
    for comparison in comparisons:
        if comparison is None:
            return "not compared yet"
        _, low, high = _interval(comparison)
        if low is None:
            places.add("no interval")
        else:
            places.add("above" if claim > high * 100 else "below" if claim < low * 100 else "inside")
    if places == {"above"}:
        return "above: not reproduced"
    if places == {"inside"}:
        return "inside: consistent"
    if places == {"below"}:
        return "below: exceeded"
    return "mixed: " + ", ".join(sorted(places))


def _flags(payload: dict[str, Any], model_only: str | None = None) -> str:
    """The gradient-masking flags that fired, per model (or of ``model_only``), with the seeds they fired on."""
    fired = []
    for model, summary in payload["results"].items():
        if model_only is not None and model != model_only:
            continue
        for flag in summary["flags"]:
            seeds = summary.get("flag_seeds", {}).get(flag, [])
            which = f" ({'seeds' if len(seeds) > 1 else 'seed'} {', '.join(map(str, seeds))} of "
            which = f"{which}{len(summary['seeds'])})" if seeds else ""
            fired.append(f"{'' if model_only else _MODELS.get(model, model) + ' '}{flag}{which}")
    return ", ".join(fired) or "none"


def _wrap(line: str) -> str:
    """Prose wrapped to :data:`WIDTH` (markdown joins the lines again); table rows and blank lines unchanged."""
    if not line or line.startswith("|"):
        return line
    indent = "  " if line.startswith("- ") else ""
    return textwrap.fill(line, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def _setup(dataset: str, payload: dict[str, Any]) -> str:
    """What a profile trained and evaluated, from its recipe."""
    t, e, seeds = payload["recipe"]["training"], payload["recipe"]["evaluation"], len(payload["recipe"]["seeds"])
    interval = "t intervals over seeds" if seeds > 1 else "paired bootstrap over test images and exact McNemar"
    return (
        f"{_DATASETS[dataset]}: `{t['arch']}`, {t['n_train']:,} training images, {t['epochs']} epoch"
        f"{'s' * (t['epochs'] > 1)}, PGD-{t['train_steps']} training at eps {_eps(t['train_eps'])}; PGD-"
        f"{e['pgd_iter']} on {e['n_eval']:,} test images, worst case on {e['n_report']:,}; {interval}; "
        f"gradient-masking flags: {_flags(payload)}."
    )


def verdict(results: Path) -> list[str]:
    """The key comparison of the reproduction's standard profiles: ASGT minus each control, with intervals."""
    payloads = {d: _load(results / f"{d}_standard.json") for d in _DATASETS}
    if all(p is None for p in payloads.values()):
        return ["`results/mnist_standard.json`, `results/cifar10_standard.json`: not produced yet."]
    rows, notes, claims, standings, term, flags = [], [], [], {}, [], []
    for dataset, payload in payloads.items():
        name = _DATASETS[dataset]
        if payload is None:
            notes.append(f"{name}: `results/{dataset}_standard.json` not produced yet.")
            continue
        paper, seeds = payload["paper"], len(payload["recipe"]["seeds"])
        found = {(c["b"], c["quantity"]): c for c in payload["comparisons"] if c["a"] == "asgt" and not c["variant"]}
        where = f"{name}, eps {_eps(paper['paper_eps'])}, {seeds} seed{'s' * (seeds > 1)}"
        for baseline, label in _BASELINES.items():
            pgd, worst = found.get((baseline, "pgd_paper_eps")), found.get((baseline, "worst_case_paper_eps"))
            maps = found.get((baseline, "morf_gain"))
            standings[dataset, baseline] = _standing([pgd, worst], paper["claimed_gain"])
            rows.append(
                f"| {where} | {label} | {_cell(pgd, 100, 1)} | {_cell(worst, 100, 1)} | {_cell(maps, 1, 3)} "
                f"| {standings[dataset, baseline]} |"
            )
        said = [
            _conclusion(c) if c else "not compared yet"
            for c in (found.get(("mixed_at", q)) for q in ("pgd_paper_eps", "worst_case_paper_eps", "morf_gain"))
        ]
        term.append(f"on {name} PGD {said[0]}, worst case {said[1]}, MoRF gain {said[2]}")
        flags.append(f"{name} {_flags(payload, 'asgt')}")
        claims.append(f"+{paper['claimed_gain']:g} at eps {_eps(paper['paper_eps'])} on {name}")
        notes.append(_setup(dataset, payload))

    def said_of(baselines: tuple[str, ...]) -> str:
        words = {key: standings[key].rsplit(": ", 1)[-1] for key in standings if key[1] in baselines}
        if len(set(words.values())) == 1:
            return next(iter(words.values()))
        return ", ".join(
            f"{word}{f' against {_MODELS[key[1]]}' if len(baselines) > 1 else ''} on {_DATASETS[key[0]]}"
            for key, word in words.items()
        )

    lines = [
        f"**Verdict.** Against adversarial training (mixed AT and ART Madry) the paper's claimed gain is "
        f"{said_of(('mixed_at', 'pgd_at'))}; against no defence it is {said_of(('standard',))}. The saliency term "
        f"alone (ASGT minus mixed AT): {'; '.join(term)}. ASGT's gradient-masking flags: {'; '.join(flags)}.",
        "",
        "| data | ASGT minus | PGD accuracy, points | worst-case accuracy, points | MoRF gain (maps) "
        f"| the paper's claim ({', '.join(c.split(' at ')[0] for c in claims)}) against both intervals |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Differences of ASGT minus each control at the paper's eps with 95% intervals; the paper claims "
        f"{' and '.join(claims)} (read as absolute points). Mixed AT is ASGT without its saliency term, so its rows "
        "are the term's effect. The worst case counts an image robust only if every attack of the robustness report "
        "fails on it. The MoRF gain measures how faithful the saliency maps are (higher is better). A "
        "gradient-masking flag means a check found the gradient attacks weaker than a black-box or stronger one "
        "(the worst case already counts the stronger attack).",
        "",
        *[f"- {line}" for line in notes],
    ]
    figures = [
        f"`results/{d}_standard/accuracy_vs_eps.png`"
        for d in payloads
        if (results / f"{d}_standard" / "accuracy_vs_eps.png").is_file()
    ]
    reports = [f"`results/{d}_standard.md`" for d in payloads if (results / f"{d}_standard.md").is_file()]
    lines += [
        "",
        f"Worst case against eps per model: {', '.join(figures) or 'no figure produced yet'}. Full reports (every "
        f"control, per-seed tests, ablations, cost): {', '.join(reports) or 'none produced yet'}, and the "
        "documentation's results page (`docs/results.rst`).",
    ]
    return lines


def _ratios(data: dict[str, Any]) -> list[str]:
    parts = []
    for name, row in data.get("ratios", {}).items():
        reference = _REFERENCES.get(row.get("baseline"), f"`{row.get('baseline')}`")
        parts.append(f"{_CONTENDERS.get(name, f'`{name}`')} {row['ratio']:.2f}x {reference}")
    return parts


def _where(data: dict[str, Any]) -> str:
    hardware = data.get("hardware") or {}
    threads = hardware.get("torch_threads")
    where = f", {threads} torch thread{'s' if threads != 1 else ''}" if threads else ""
    if hardware.get("cpu_count"):
        where += f" on {hardware['cpu_count']} CPU cores"
    return f"`{_command(data['command'])}`{where}"


def speed(results: Path) -> list[str]:
    """The benchmarks' ratios of median times, contender over the maintained library measured beside it."""
    data = _load(results / "bench_trainers.json")
    if data is None:
        return _missing("bench_trainers.json")
    lines = [
        f"Time per unit of work against ART, medians measured side by side in one run ({_where(data)}): "
        f"{'; '.join(_ratios(data))}."
    ]
    autoattack = _load(results / "bench_autoattack.json")  # optional: said nothing about until it exists
    if autoattack is not None:
        ratio = autoattack.get("ratio", autoattack.get("ratio_cpu"))  # a single ratio, or ``ratios`` as above
        parts = _ratios(autoattack) or ([f"{ratio:.2f}x"] if isinstance(ratio, (int, float)) else [])
        lines.append(
            "The robustness report's `autoattack` preset against torchattacks' `AutoAttack`, CPU time, side by side "
            f"({_where(autoattack)}): {'; '.join(parts)} (torchattacks' standard version runs APGD, APGD-T and FAB-T "
            "with its default of 10 steps; the preset and `torchattacks_published` run the published 100)."
            if parts
            else "`results/bench_autoattack.json` records no ratio."
        )
    lines.append(
        "A ratio, not a time, so it carries over to other machines only roughly; memory, checkpointing, the "
        "evaluators and the hardware options are measured on the documentation's performance and results pages."
    )
    return lines


def _screening(payload: dict[str, Any]) -> str:
    runs = sum(len(v["runs"]) for v in payload["variants"].values())
    expected = len(payload["expected"]["variants"]) * len(payload["expected"]["seeds"])
    head = f"**Screening** (MNIST, 20,000 training images, 3 epochs, 2 seeds, eps 0.3): {runs} of {expected} runs"
    selection = payload["selection"]
    if selection is None:
        return (
            f"{head} evaluated; the pre-registered rule picks the decisive study's variants once all are "
            "(`results/mnist_screening.md`)."
        )
    outcome = "passed" if selection["passed"] else "no candidate was eligible, so the best worst case goes on"
    chosen = ", ".join(f"`{n}`" for n in selection["chosen"])
    return (
        f"{head} evaluated. Best control `{selection['best_control']}`; the pre-registered rule chose {chosen} "
        f"({outcome}; `results/mnist_screening.md`)."
    )


def _decisive(payload: dict[str, Any] | None) -> list[str]:
    goal = None if payload is None else payload.get("goal")
    if goal is None:
        return ["**Decisive study** (full MNIST, 5 seeds for the candidates and the best controls): not started."]
    if not goal["complete"]:
        runs = sum(len(e["seeds"]) for e in goal["candidates"].values())
        runs += sum(len(c["seeds"]) for c in goal["controls"].values())
        return [
            f"**Decisive study** (full MNIST): under way, {runs} runs of its candidates and best-control candidates "
            "evaluated; no verdict before every seed is in (`results/mnist_decisive.md`)."
        ]
    lines = [f"**Decisive study** (full MNIST), best control `{goal['best_control']}`:", ""]
    for name, entry in goal["candidates"].items():
        ni = entry["tests"]["worst_case"]
        bound = "undefined" if ni is None or ni["lower_bound"] is None else f"{100 * ni['lower_bound']:+.1f}"
        state = "meets the goal" if entry["met"] else "does not meet the goal"
        lines.append(
            f"- `{name}` ({len(entry['seeds'])} seeds) {state}: worst case at eps 0.3 minus the control's, one-sided "
            f"95% lower bound {bound} points (non-inferior above -1), maps better on {entry['map_wins_holm']} of 3 "
            "after Holm's adjustment."
        )
    results = payload["results"]

    def best(key: str) -> str:
        defined = [m for m in results if results[m][key]["mean"] is not None]
        return max(defined, key=lambda m: results[m][key]["mean"])

    robust, maps = best("worst_case_standard_eps"), best("morf_gain")
    lines.append("")
    if goal["met"]:
        lines.append(
            f"Recommended: {', '.join(f'`{n}`' for n in goal['met'])}. Full report: `results/mnist_decisive.md`."
        )
    else:
        lines.append(
            "No saliency-guided objective earns its cost at this budget. Best for robustness (mean worst case at eps "
            f"0.3): `{robust}`; best for maps (mean MoRF gain): `{maps}`. The paper's ASGT stays the faithful "
            "reproduction, with its gradient-masking caveat. Full report: `results/mnist_decisive.md`."
        )
    return lines


def objectives(results: Path) -> list[str]:
    """Where the objectives study stands: the screening's runs and choice, then the decisive study's goal."""
    screening = _load(results / "mnist_screening.json")
    lines = _missing("mnist_screening.json") if screening is None else [_screening(screening)]
    return [*lines, "", *_decisive(_load(results / "mnist_decisive.json"))]


BLOCKS: dict[str, Callable[[Path], list[str]]] = {
    "make-run": make_run,
    "verdict": verdict,
    "objectives": objectives,
    "speed": speed,
}


def update(text: str, results: Path) -> str:
    """``text`` with every generated block rewritten from ``results``; an unknown block name is an error."""
    names = [m.group(2) for m in _BLOCK.finditer(text)]
    unknown = sorted(set(names) - set(BLOCKS))
    if unknown or sorted(names) != sorted(BLOCKS):
        raise ValueError(f"README blocks must be {sorted(BLOCKS)} once each, got {names}")

    def block(match: re.Match[str]) -> str:
        body = "\n".join(_wrap(line) for line in BLOCKS[match.group(2)](results))
        return f"{match.group(1)}{body}\n{match.group(4)}"

    return _BLOCK.sub(block, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--results", default="results")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is not up to date")
    args = parser.parse_args()
    readme = Path(args.readme)
    text = readme.read_text()
    new = update(text, Path(args.results))
    if args.check:
        raise SystemExit(0 if new == text else f"{readme} is out of date: run python examples/update_readme.py")
    readme.write_text(new)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
