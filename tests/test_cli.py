"""The ``art-sgt`` command end to end on a tiny synthetic ``mnist.npz`` (offline, a few seconds each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from art_sgt.cli import main
from tests.conftest import write_npz


@pytest.fixture
def data_dir(tmp_path):
    write_npz(tmp_path / "data", "mnist", n_train=96, n_test=32)
    return tmp_path / "data"


def _train(data_dir, tmp_path, name, *extra):
    out = tmp_path / f"{name}.json"
    argv = ["train", "--data-dir", str(data_dir), "--batch-size", "32", "--quiet", "--out", str(out)]
    argv += ["--save-model", str(tmp_path / f"{name}.pt"), *extra]
    assert main(argv) == 0
    return json.loads(out.read_text()), torch.load(tmp_path / f"{name}.pt", weights_only=True)


def test_train_writes_results_model_and_checkpoint(data_dir, tmp_path):
    result, saved = _train(data_dir, tmp_path, "sgt", "--epochs", "2", "--checkpoint-dir", str(tmp_path / "ckpt"))
    assert [record["epoch"] for record in result["history"]] == [1, 2]
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["config"]["trainer"] == "sgt" and result["seed"] == 0 and result["world_size"] == 1
    assert {"versions", "hardware", "command"} <= set(result)
    assert (tmp_path / "ckpt" / "checkpoint.pt").is_file()
    assert saved["dataset"] == "mnist" and saved["trainer"] == "sgt"


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(data_dir, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    _train(data_dir, tmp_path, "first", "--epochs", "1", "--checkpoint-dir", ckpt)
    resumed, resumed_model = _train(
        data_dir, tmp_path, "resumed", "--epochs", "2", "--checkpoint-dir", ckpt, "--resume"
    )
    _, straight_model = _train(data_dir, tmp_path, "straight", "--epochs", "2")
    assert [record["epoch"] for record in resumed["history"]] == [1, 2]
    for name, value in straight_model["state_dict"].items():
        assert torch.equal(resumed_model["state_dict"][name], value), name


def test_asgt_training_and_evaluation(data_dir, tmp_path):
    result, _ = _train(data_dir, tmp_path, "asgt", "--trainer", "asgt", "--epochs", "1", "--pgd-steps", "2")
    assert result["config"]["trainer"] == "asgt" and len(result["history"]) == 1
    out = tmp_path / "evaluation.json"
    argv = ["evaluate", "--model", str(tmp_path / "asgt.pt"), "--data-dir", str(data_dir), "--n", "8"]
    argv += ["--robust-n", "8", "--pgd-iter", "2", "--apgd-iter", "2", "--square-queries", "5", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    evaluation = json.loads(out.read_text())
    robustness = evaluation["robustness"]
    assert robustness["eps"] == [0.1, 0.2, 0.3] and robustness["n_samples"] == 8
    assert set(robustness["accuracy"]) == {"pgd", "apgd-ce", "apgd-dlr", "square"}
    assert robustness["params"]["pgd_max_iter"] == 2 and robustness["params"]["square_max_iter"] == 5
    assert set(evaluation["saliency"]["results"]) == {"saliency", "integrated_gradients"}


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_train_under_torchrun_with_two_processes(data_dir, tmp_path):
    out = tmp_path / "ddp.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += ["-m", "art_sgt.cli", "train", "--data-dir", str(data_dir), "--epochs", "1", "--batch-size", "32"]
    command += ["--quiet", "--device", "cpu", "--out", str(out), "--checkpoint-dir", str(tmp_path / "ckpt")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["world_size"] == 2 and len(result["history"]) == 1
    assert done.stdout.count("test accuracy") == 1 and done.stdout.count("wrote ") == 1  # only rank 0 reports
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["checkpoint.pt"]


def test_reproduce_writes_results_for_the_chosen_models(data_dir, tmp_path):
    argv = ["reproduce", "--dataset", "mnist", "--data-dir", str(data_dir), "--out-dir", str(tmp_path / "out")]
    argv += ["--models", "asgt", "--n-train", "32", "--epochs", "1", "--n-eval", "8", "--n-report", "8"]
    assert main(argv) == 0
    result = json.loads((tmp_path / "out" / "mnist_quick.json").read_text())
    assert list(result["results"]) == ["asgt"]
    assert result["setup"] and (tmp_path / "out" / "mnist_quick.md").is_file()


def test_reproduce_rejects_unknown_models(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--dataset", "mnist", "--models", "standard,trades"])
    assert "--models" in capsys.readouterr().err


def test_reproduce_ablations_only_on_mnist(tmp_path, capsys):
    code = main(["reproduce", "--dataset", "cifar10", "--ablations", "--out-dir", str(tmp_path)])
    assert code == 2 and "--ablations" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
