"""The layering of DESIGN.md is enforced by `make lint`: each check fires on a deliberate break and not on main."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent))


def _copy_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "art_sgt", tmp_path / "art_sgt", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=folder, env=env, capture_output=True, text=True)


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter (the dev extra) is not installed")
@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("art_sgt/evaluation/leak.py", "from art_sgt.trainers._checkpoint import save_checkpoint\n", "private"),
        ("art_sgt/masking.py", "", "floor"),
    ],
)
def test_lint_imports_keeps_main_and_breaks_on_a_private_import_or_an_art_import_in_the_floor(
    tmp_path, module, line, contract
):
    folder = _copy_package(tmp_path)
    assert _lint_imports(folder).returncode == 0
    if contract == "floor":
        masking = folder / "art_sgt" / "masking.py"
        masking.write_text(masking.read_text() + "\n\ndef _leak():\n    import art  # noqa: F401\n")
    else:
        (folder / module).write_text(line)
    done = _lint_imports(folder)
    assert done.returncode != 0
    assert (
        "art_sgt.evaluation.leak -> art_sgt.trainers._checkpoint" in done.stdout
        if contract == "private"
        else "art_sgt.masking -> art" in done.stdout
    )


@pytest.mark.skipif(RUFF is None, reason="ruff (the dev extra) is not installed")
def test_ruff_refuses_a_private_art_sgt_name_in_an_example(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "examples").mkdir()
    example = tmp_path / "examples" / "leak.py"
    example.write_text("from art_sgt.models import make_classifier\n\nprint(make_classifier)\n")
    assert subprocess.run([RUFF, "check", "examples"], cwd=tmp_path, capture_output=True).returncode == 0
    example.write_text("from art_sgt._art import silence\n\nprint(silence)\n")
    done = subprocess.run([RUFF, "check", "examples"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and "import-private-name" in done.stdout
