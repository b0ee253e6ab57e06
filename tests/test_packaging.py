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


def test_project_files_exist():
    for name in ("LICENSE", "CITATION.cff", "CONTRIBUTING.md", "CHANGELOG.md", "art_sgt/py.typed"):
        assert (ROOT / name).is_file(), name


def _update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "examples" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_are_rendered_for_readers(tmp_path):
    """The README's results section: labels instead of raw keys, no machine paths, no repository images."""
    update = _update_readme()
    (tmp_path / "mnist_asgt.json").write_text(
        json.dumps(
            {
                "command": "python examples/mnist_asgt.py --data-dir /home/me/data",
                "seed": 0,
                "dataset": {"train": 100, "test": 10},
                "training": {
                    "epochs": 1,
                    "train_seconds": 3.0,
                    "attack": {"eps": 0.3, "max_iter": 10, "eps_step": 0.075},
                },
                "evaluation": {"attack": "ART PGD", "accuracy": {"clean": 0.9, "pgd40_eps0.1": 0.5}},
            }
        )  # fmt: skip
    )
    (tmp_path / "bench_robustness.json").write_text(
        json.dumps(
            {
                "command": "python benchmarks/bench_robustness.py --data-dir /home/me/data --out /home/me/b.json",
                "config": {"targets": 9, "max_iter": 10, "n": 200},
                "model": "MnistCNN",
                "clean_accuracy": 0.95,
                "by_eps": {
                    "eps 0.1": {
                        "robust_art_by_hand": 0.4,
                        "robust_report": 0.41,
                        "cpu_seconds_art_by_hand": 60,
                        "cpu_seconds_report": 30,
                        "ratio_cpu": 0.5,
                        "ratio_wall": 0.5,
                    }
                },
            }
        )  # fmt: skip
    )
    text = update.render(tmp_path)
    assert "PGD-40, eps 0.1" in text and "pgd40_eps0.1" not in text
    assert "| 0.1 | 0.400 | 0.410 | 60.0 | 30.0 | 0.500 |" in text and "--out" not in text
    assert "--data-dir $ART_SGT_DATA" in text and "/home/me" not in text
    assert "results/mnist_sgt.json`: not produced yet" in text  # a missing file is said to be missing
    assert "![" not in update.render(ROOT / "results")


def test_readme_shows_the_saliency_method_check_beside_the_report(tmp_path):
    update = _update_readme()
    comparison = {"a": "asgt", "b": "mixed_at", "quantity": "morf_gain", "verdict": "ASGT - mixed AT, MoRF gain (ig)."}
    payload = {"runs": [{}, {}], "n": 500, "matches_report": False, "comparisons": [comparison]}
    (tmp_path / "mnist_standard_saliency_methods.json").write_text(json.dumps(payload))
    lines = update._saliency_methods(tmp_path, "mnist_standard")
    assert "- ASGT - mixed AT, MoRF gain (ig)." in lines and "does NOT match the report" in lines[0]
    assert "(2 runs, 500 test images" in lines[0]
    assert update._saliency_methods(tmp_path, "cifar10_standard") == []  # no such results: nothing shown


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
