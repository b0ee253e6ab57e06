"""The package as pip sees it: a wheel with its licence and ``py.typed``, one version, a README PyPI renders."""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import art_sgt

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    build = "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", build, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with zipfile.ZipFile(out / done.stdout.strip().splitlines()[-1]) as archive:
        yield archive


def _metadata(wheel: zipfile.ZipFile) -> str:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return wheel.read(name).decode()


def test_wheel_ships_the_licence_and_declares_it(wheel):
    names = wheel.namelist()
    assert any(re.search(r"\.dist-info/(licenses/)?LICENSE$", n) for n in names), names
    metadata = _metadata(wheel)
    assert "License-File: LICENSE" in metadata
    assert "Classifier: License :: OSI Approved :: MIT License" in metadata
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_wheel_ships_py_typed(wheel):
    assert "art_sgt/py.typed" in wheel.namelist()


def test_wheel_metadata_version_and_extras(wheel):
    metadata = _metadata(wheel)
    assert f"Version: {art_sgt.__version__}\n" in metadata
    assert "Requires-Dist: matplotlib" in metadata  # figures are a core output: no extra needed
    dev = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: ruff")]
    assert dev and all('extra == "dev"' in line for line in dev)  # ruff is for developers, not for tests
    assert any("quantus" in line and 'extra == "test-ref"' in line for line in metadata.splitlines())


def test_one_source_for_the_version():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["version"] == "attr: art_sgt.__version__"
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(rf"^version: {re.escape(art_sgt.__version__)}$", citation, re.M)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {art_sgt.__version__}" in changelog


def test_readme_renders_without_repository_files():
    """PyPI shows README.md as the long description: images and links must not point into the repository."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    relative = [t for t in targets if not re.match(r"^(https?://|#)", t)]
    assert not relative, relative
    assert "![" not in readme
    slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    anchors = {t[1:] for t in targets if t.startswith("#")}
    assert anchors and anchors <= slugs, anchors - slugs  # every in-page link lands on a heading


def test_readme_renders_as_markdown_with_its_tables():
    markdown_it = pytest.importorskip("markdown_it")
    readme = (ROOT / "README.md").read_text()
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(readme)
    assert html.count("<table>") == readme.count("\n|---") >= 2  # every table is parsed as one
    assert "<pre><code>|" not in html and "<p>|" not in html  # no table left as text


def test_project_files_exist():
    for name in ("LICENSE", "CITATION.cff", "CONTRIBUTING.md", "CHANGELOG.md", "art_sgt/py.typed"):
        assert (ROOT / name).is_file(), name


def _update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "examples" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_generated_parts_are_what_update_readme_writes():
    """The README's generated blocks equal what ``examples/update_readme.py`` writes from ``results/`` now."""
    readme = (ROOT / "README.md").read_text()
    assert _update_readme().update(readme, ROOT / "results") == readme, "run python examples/update_readme.py"


def test_readme_is_a_front_page():
    """Short, no line a reader has to scroll, no p-values or CPU bookkeeping, and every file it names exists."""
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert len(lines) <= 180, len(lines)  # room for the objectives study's verdict, a few bullets
    assert max(map(len, lines)) <= 200, max(lines, key=len)
    assert not re.search(r"p = \d|e-\d\d|CPU-hours", readme)
    named = set(re.findall(r"`((?:results|docs|examples|benchmarks|art_sgt)/[^`\s*]+|[A-Z]+\.(?:md|cff))`", readme))
    assert {"results/mnist_standard.md", "docs/results.rst", "CHANGELOG.md"} <= named
    assert [n for n in named if not (ROOT / n).exists() and not n.startswith("docs/_build/")] == []


def _comparison(b, quantity, estimate, low, high, verdict, n_seeds=3):
    across = {"estimate": estimate, "low": low, "high": high, "n": n_seeds}
    per_seed = [] if n_seeds > 1 else [{"bootstrap": {"estimate": estimate, "low": low, "high": high, "n": 100}}]
    if n_seeds == 1:
        across.update(low=None, high=None)
    verdict = f"ASGT - {b}, {quantity}: ... (paired t interval over seeds, n={n_seeds}): {verdict}."
    return {
        "a": "asgt",
        "b": b,
        "variant": "",
        "quantity": quantity,
        "across_seeds": across,
        "per_seed": per_seed,
        "verdict": verdict,
    }


def _profile(n_seeds, comparisons, flags=None):
    results = {m: {"flags": [], "flag_seeds": {}, "seeds": list(range(n_seeds))} for m in ("mixed_at", "asgt")}
    for flag, seeds in (flags or {}).items():
        results["asgt"]["flags"].append(flag)
        results["asgt"]["flag_seeds"][flag] = seeds
    training = {"arch": "mnist_cnn", "n_train": 600, "epochs": 1, "train_steps": 7, "train_eps": 8 / 255}
    return {
        "paper": {"paper_eps": 0.2, "claimed_gain": 35.0},
        "recipe": {
            "training": training,
            "evaluation": {"pgd_iter": 40, "n_eval": 100, "n_report": 50},
            "seeds": list(range(n_seeds)),
        },
        "comparisons": comparisons,
        "results": results,
    }


def test_readme_verdict_is_read_from_the_reports(tmp_path):
    """Intervals, conclusions and the claim's standing come from the reports' comparisons; a missing one says so."""
    update = _update_readme()
    assert "not produced yet" in "\n".join(update.verdict(tmp_path))
    mnist = _profile(
        3,
        [
            _comparison("mixed_at", "pgd_paper_eps", -0.039, -0.054, -0.024, "ASGT is lower"),
            _comparison("mixed_at", "worst_case_paper_eps", -0.059, -0.105, -0.013, "ASGT is lower"),
            _comparison("mixed_at", "morf_gain", -0.21, -0.565, 0.145, "inconclusive at this budget"),
            _comparison("standard", "pgd_paper_eps", 0.40, 0.30, 0.50, "ASGT is higher"),
            _comparison("standard", "worst_case_paper_eps", 0.35, 0.20, 0.50, "ASGT is higher"),
        ],
        flags={"black_box": [0, 1]},
    )
    cifar = _profile(1, [_comparison("mixed_at", "pgd_paper_eps", 0.002, -0.028, 0.032, "inconclusive at this budget")])
    (tmp_path / "mnist_standard.json").write_text(json.dumps(mnist))
    (tmp_path / "cifar10_standard.json").write_text(json.dumps(cifar))
    text = "\n".join(update.verdict(tmp_path))
    assert "| -3.9 [-5.4, -2.4], lower | -5.9 [-10.5, -1.3], lower | -0.210 [-0.565, +0.145], inconclusive " in text
    assert "| above: not reproduced |" in text and "| inside: consistent |" in text  # claim +35 vs the intervals
    assert "| +0.2 [-2.8, +3.2], inconclusive | not compared yet |" in text  # one seed: its bootstrap interval
    assert "MNIST black_box (seeds 0, 1 of 3); CIFAR-10 none" in text
    assert "PGD-7 training at eps 8/255" in text and "3 seeds" in text and "1 seed |" in text
    assert "accuracy_vs_eps.png" not in text  # no figure in tmp_path: none named


def test_readme_run_time_and_speed_are_read_from_results(tmp_path):
    update = _update_readme()
    assert update.make_run(tmp_path) == ["`results/mnist_sgt.json`: not produced yet."]
    hardware = {"cpu_count": 2}
    run = {
        "hardware": hardware,
        "dataset": {"train": 10000},
        "standard": {"epochs": 2, "test_accuracy": 0.98, "train_seconds": 250.0},
        "sgt": {"epochs": 4, "test_accuracy": 0.99, "train_seconds": 1790.0},
    }
    (tmp_path / "mnist_sgt.json").write_text(json.dumps(run))
    assert "`make run` trained for 34 min" in update.make_run(tmp_path)[0]
    assert len(update.make_run(tmp_path)) == 1  # no quick run recorded: no taste line
    (tmp_path / "mnist_sgt_quick.json").write_text(json.dumps(run))
    assert "--quick` (10,000 training images" in update.make_run(tmp_path)[1]
    bench = {
        "command": "python benchmarks/b.py --data-dir /home/me/data --out /home/me/b.json",
        "hardware": hardware,
        "ratios": {"asgt": {"baseline": "art_madry", "ratio": 0.851}},
    }
    (tmp_path / "bench_trainers.json").write_text(json.dumps(bench))
    text = "\n".join(update.speed(tmp_path))
    assert "an ASGT epoch 0.85x ART `AdversarialTrainerMadryPGD`" in text and "--data-dir $ART_SGT_DATA" in text
    assert "/home/me" not in text and "AutoAttack" not in text  # the AutoAttack benchmark is left out until it exists
    autoattack = {
        "command": "python benchmarks/bench_autoattack.py",
        "ratios": {"report": {"baseline": "x", "ratio": 0.5}},
    }
    (tmp_path / "bench_autoattack.json").write_text(json.dumps(autoattack))
    assert "torchattacks' `AutoAttack`" in "\n".join(update.speed(tmp_path)) and "0.50x" in update.speed(tmp_path)[1]
    (tmp_path / "bench_autoattack.json").write_text(json.dumps({"command": "b", "ratio_cpu": 0.25}))
    assert "(`b`): 0.25x (torchattacks' standard version runs" in update.speed(tmp_path)[1]


def test_readme_objectives_block_follows_the_screening_and_the_decisive_study(tmp_path):
    update = _update_readme()
    text = "\n".join(update.objectives(tmp_path))
    assert "`results/mnist_screening.json`: not produced yet." in text and "not started" in text
    run = {"name": "asgt", "seed": 0, "worst_case": 0.433}
    screening = {
        "label": "MNIST screening",
        "variants": {"asgt": {"runs": [run]}},
        "expected": {"variants": ["asgt", "mixed_at"], "seeds": [0, 1]},
        "selection": None,
    }
    (tmp_path / "mnist_screening.json").write_text(json.dumps(screening))
    text = "\n".join(update.objectives(tmp_path))
    assert "1 of 4 runs evaluated; the pre-registered rule picks" in text
    screening["selection"] = {"best_control": "mixed_at", "chosen": ["asgt"], "passed": False}
    (tmp_path / "mnist_screening.json").write_text(json.dumps(screening))
    assert "Best control `mixed_at`; the pre-registered rule chose `asgt` (no candidate was eligible" in "\n".join(
        update.objectives(tmp_path)
    )

    test = {"lower_bound": -0.031}
    entry = {"seeds": [0, 1, 2, 3, 4], "tests": {"worst_case": test}, "met": False, "map_wins_holm": 1}
    results = {
        "asgt": {"worst_case_standard_eps": {"mean": 0.80}, "morf_gain": {"mean": 0.30}},
        "mixed_at": {"worst_case_standard_eps": {"mean": 0.85}, "morf_gain": {"mean": 0.45}},
        "trades_at": {"worst_case_standard_eps": {"mean": 0.88}, "morf_gain": {"mean": 0.20}},
    }
    controls = {"trades_at": {"seeds": [0, 1]}, "mixed_at": {"seeds": [0, 1, 2]}}
    goal = {"best_control": "trades_at", "candidates": {"asgt": entry}, "met": [], "complete": False}
    goal["controls"] = controls
    decisive = {"label": "MNIST decisive", "goal": goal, "results": results}
    (tmp_path / "mnist_decisive.json").write_text(json.dumps(decisive))
    text = "\n".join(update.objectives(tmp_path))
    assert "under way, 10 runs" in text and "no verdict before every seed is in" in text and "earns" not in text
    goal["complete"] = True
    (tmp_path / "mnist_decisive.json").write_text(json.dumps(decisive))
    text = "\n".join(update.objectives(tmp_path))
    assert "`asgt` (5 seeds) does not meet the goal: " in text and "lower bound -3.1 points" in text
    assert "No saliency-guided objective earns its cost" in text
    assert "robustness (mean worst case at eps 0.3): `trades_at`; best for maps (mean MoRF gain): `mixed_at`" in text
    entry["met"], goal["met"] = True, ["asgt"]
    (tmp_path / "mnist_decisive.json").write_text(json.dumps(decisive))
    assert "Recommended: `asgt`." in "\n".join(update.objectives(tmp_path))


def test_update_readme_refuses_a_readme_without_its_blocks(tmp_path):
    with pytest.raises(ValueError, match="README blocks must be"):
        _update_readme().update("# a README\n<!-- generated:verdict -->\n<!-- /generated:verdict -->\n", tmp_path)


def test_docs_show_a_results_file_s_command_without_machine_folders_and_with_its_code():
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        docs = importlib.import_module("artsgt_docs")
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    data = {
        "command": "python benchmarks/b.py --data-dir /home/me/data --threads 1 --out /home/me/r.json",
        "git": {"commit": "0123456789abcdef", "clean": False},
    }
    line = docs._provenance("results/b.json", data)
    assert "``python benchmarks/b.py --data-dir $ART_SGT_DATA --threads 1``" in line and "/home/me" not in line
    assert "commit 0123456789 (tree with uncommitted changes)" in line
    assert "clean tree" in docs._provenance("results/b.json", {"git": {"commit": "ab", "clean": True}})
