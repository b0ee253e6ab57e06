"""Provenance: results files record the commit and whether the code tree was clean."""

import shutil
import subprocess

import pytest

from art_sgt import provenance

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True
    )


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "old.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    monkeypatch.setattr(provenance, "_REPO_ROOT", tmp_path)
    return tmp_path


def test_clean_tree_records_commit(repo):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert provenance.git_state() == {"commit": head, "clean": True}


def test_changed_code_is_not_clean(repo):
    (repo / "code.py").write_text("x = 2\n")
    assert provenance.git_state()["clean"] is False


def test_untracked_code_is_not_clean(repo):
    (repo / "new_module.py").write_text("y = 1\n")
    assert provenance.git_state()["clean"] is False


def test_results_written_by_the_run_keep_the_tree_clean(repo):
    (repo / "results" / "old.json").write_text('{"new": 1}\n')
    (repo / "results" / "fresh.json").write_text("{}\n")
    assert provenance.git_state()["clean"] is True


def test_outside_a_checkout_both_are_none(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_REPO_ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance.git_state() == {"commit": None, "clean": None}


def test_run_info_carries_git_state():
    assert set(provenance.run_info()["git"]) == {"commit", "clean"}
