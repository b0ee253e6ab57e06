"""The ``art-sgt`` command end to end on a tiny synthetic ``mnist.npz`` (offline, a few seconds each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import art_sgt
from art_sgt import cli
from art_sgt.cli import DATASETS, build_parser, main
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
    from art_sgt.datasets import random_subset

    assert result["validation_images"] == random_subset(32, 32).tolist()  # all 32 test images, drawn as a sample


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
    argv += ["--robust-n", "8", "--budget", "quick", "--pgd-iter", "2", "--apgd-iter", "2", "--square-queries", "5"]
    argv += ["--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    evaluation = json.loads(out.read_text())
    robustness = evaluation["robustness"]
    assert robustness["eps"] == [0.1, 0.2, 0.3] and robustness["n_samples"] == 8
    assert set(robustness["accuracy"]) == {"pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square"}
    assert robustness["params"]["pgd_max_iter"] == 2 and robustness["params"]["square_max_iter"] == 5
    assert robustness["params"]["budget"] == "quick"
    assert set(evaluation["saliency"]["results"]) == {"saliency", "integrated_gradients"}
    from art_sgt.datasets import random_subset

    assert evaluation["test_images"] == {
        "seed": 0,
        "saliency": random_subset(32, 8).tolist(),
        "robustness": random_subset(32, 8).tolist(),
    }


def test_robust_val_holds_out_the_last_training_images_and_keeps_the_best_epoch(data_dir, tmp_path, monkeypatch):
    from art_sgt.trainers import SaliencyGuidedTrainer

    seen = {}
    fit = SaliencyGuidedTrainer.fit

    def spy(self, x, y, **kwargs):
        seen.update(x=x, **kwargs)
        return fit(self, x, y, **kwargs)

    monkeypatch.setattr(SaliencyGuidedTrainer, "fit", spy)
    result, saved = _train(data_dir, tmp_path, "best", "--epochs", "2", "--robust-val", "32", "--keep-best", "robust")
    (x_train, _), _ = cli._load_data("mnist", str(data_dir))
    x_val, _ = seen["robust_validation"]
    assert len(seen["x"]) == 64 and (x_val == x_train[-32:]).all() and (seen["x"] == x_train[:64]).all()
    assert "validation_data" not in seen and seen["robust_eval"].eps == pytest.approx(0.3)  # mnist's eps
    robust = [record["robust_val_accuracy"] for record in result["history"]]
    assert {"robust_val_clean_accuracy", "single_step_val_accuracy", "catastrophic_overfitting"} <= set(
        result["history"][0]
    )
    assert result["best_epoch"] == 1 + robust.index(max(robust)) and result["best_measure"] == "robust_val_accuracy"
    assert result["best_score"] == max(robust) and result["config"]["robust_val"] == 32
    assert result["config"]["keep_best"] == "robust"


def test_keep_best_without_robust_val_is_refused_before_loading_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_load_data", lambda *a, **k: pytest.fail("loaded data before checking options"))
    line = _one_line_error(capsys, ["train", "--keep-best", "clean", "--out", str(tmp_path / "r")])
    assert "--keep-best clean needs --robust-val" in line


def test_robust_val_must_leave_training_images(data_dir, tmp_path, capsys):
    argv = ["train", "--data-dir", str(data_dir), "--robust-val", "96", "--out", str(tmp_path / "r")]
    assert "--robust-val 96 must leave training images: there are 96" in _one_line_error(capsys, argv)


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
    argv += [
        "--cache-dir",
        str(tmp_path / "cache"),
        "--models",
        "asgt",
        "--n-train",
        "32",
        "--epochs",
        "1",
        "--n-eval",
        "8",
        "--n-report",
        "8",
    ]
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


# ----------------------------------------------------------------------------------------- help and version
def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"art-sgt {art_sgt.__version__}"


@pytest.mark.parametrize("command", ["train", "evaluate", "reproduce"])
def test_every_subcommand_has_a_description_examples_and_shown_defaults(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert text.split("\n\n")[1].strip(), "no description"
    assert f"art-sgt {command} --" in text.split("examples:")[1]
    assert "(default: " in text  # option defaults are shown
    assert "(default: None)" not in text and "(default: False)" not in text


def test_device_is_described_per_subcommand():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    helps = {name: next(a.help for a in sub[name]._actions if a.dest == "device") for name in ("train", "evaluate")}
    assert "train" in helps["train"] and "attacks" in helps["evaluate"]


# ------------------------------------------------------------------------------------ dataset-aware defaults
@pytest.mark.parametrize(("dataset", "eps"), [("mnist", 0.3), ("cifar10", 8 / 255)])
def test_asgt_eps_default_depends_on_the_dataset(dataset, eps, tmp_path, monkeypatch):
    seen = {}

    def stop_after_defaults(name, data_dir, limit=None):
        seen["eps"] = args.eps
        raise cli.UserError("stop")

    monkeypatch.setattr(cli, "_load_data", stop_after_defaults)
    args = build_parser().parse_args(["train", "--trainer", "asgt", "--dataset", dataset])
    args.out = str(tmp_path / "r.json")
    with pytest.raises(cli.UserError):
        cli._run(args)
    assert seen["eps"] == pytest.approx(eps) and DATASETS[dataset].train_eps == pytest.approx(eps)


def test_explicit_eps_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_load_data", lambda *a, **k: (_ for _ in ()).throw(cli.UserError("stop")))
    args = build_parser().parse_args(["train", "--dataset", "cifar10", "--eps", "0.05", "--out", str(tmp_path / "r")])
    with pytest.raises(cli.UserError):
        cli._run(args)
    assert args.eps == 0.05


# ----------------------------------------------------------------------------- user errors: one line, exit 2
def _one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_missing_data_offline_is_one_line(tmp_path, capsys):
    line = _one_line_error(capsys, ["train", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")])
    assert line.startswith("art-sgt train: error:") and "nowhere" in line


def test_unwritable_save_model_is_refused_before_training(data_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setattr(cli, "_load_data", lambda *a, **k: pytest.fail("loaded data before checking outputs"))
    line = _one_line_error(
        capsys, ["train", "--data-dir", str(data_dir), "--save-model", str(tmp_path / "a_file/m.pt")]
    )
    assert "--save-model" in line and "cannot be written" in line


def test_save_model_that_is_a_folder_is_refused(data_dir, tmp_path, capsys):
    line = _one_line_error(capsys, ["train", "--data-dir", str(data_dir), "--save-model", str(tmp_path)])
    assert "--save-model" in line and "is a folder" in line


@pytest.mark.parametrize("option", ["--out", "--checkpoint-dir"])
def test_unwritable_out_and_checkpoint_dir_are_refused(option, data_dir, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    argv = ["train", "--data-dir", str(data_dir), option, str(tmp_path / "a_file" / "x")]
    assert option in _one_line_error(capsys, argv)


def test_resume_without_checkpoint_dir_is_refused(data_dir, tmp_path, capsys):
    line = _one_line_error(capsys, ["train", "--data-dir", str(data_dir), "--resume", "--out", str(tmp_path / "r")])
    assert "--checkpoint-dir" in line


def test_evaluate_missing_model_is_one_line(tmp_path, capsys):
    line = _one_line_error(capsys, ["evaluate", "--model", str(tmp_path / "sub" / "none.pt")])
    assert "--model" in line and "does not exist" in line
    assert not (tmp_path / "sub").exists()  # nothing created for the default --out of a model that is not there


def test_evaluate_refuses_a_dataset_that_disagrees_with_the_model(data_dir, tmp_path, capsys):
    _train(data_dir, tmp_path, "m", "--epochs", "1", "--limit", "32")
    argv = ["evaluate", "--model", str(tmp_path / "m.pt"), "--dataset", "cifar10", "--data-dir", str(data_dir)]
    line = _one_line_error(capsys, [*argv, "--out", str(tmp_path / "e.json")])
    assert "--dataset cifar10" in line and "mnist" in line
    assert not (tmp_path / "e.json").exists()


def test_reproduce_unwritable_out_dir_is_one_line(tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    line = _one_line_error(capsys, ["reproduce", "--dataset", "mnist", "--out-dir", str(tmp_path / "a_file" / "o")])
    assert "--out-dir" in line


# ------------------------------------------------------------------------- outputs that fail after training
def test_model_that_cannot_be_written_after_training_is_kept_and_reported(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_check_writable", lambda *a, **k: None)  # the folder vanishes during training
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "r.json"
    argv = ["train", "--data-dir", str(data_dir), "--epochs", "1", "--limit", "32", "--quiet", "--out", str(out)]
    code = main([*argv, "--save-model", str(tmp_path / "a_file" / "m.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--save-model" in err[0] and "kept in" in err[0]
    kept = err[0].split("kept in ")[1]
    assert torch.load(kept, weights_only=True)["dataset"] == "mnist"
    assert json.loads(out.read_text())["test_accuracy"] >= 0.0  # the results were written all the same


def test_ctrl_c_is_one_line_naming_the_checkpoint(tmp_path, capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    code = main(["train", "--checkpoint-dir", str(tmp_path / "ckpt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 130 and len(err) == 1 and str(tmp_path / "ckpt") in err[0] and "--resume" in err[0]


def test_missing_package_is_one_line(capsys, monkeypatch):
    def missing(args):
        raise ModuleNotFoundError("No module named 'captum'")

    monkeypatch.setattr(cli, "_run", missing)
    assert "captum" in _one_line_error(capsys, ["train"])


@pytest.mark.parametrize("command", ["train", "evaluate", "reproduce"])
def test_data_dir_default_is_not_read_from_this_machine(command, monkeypatch):
    monkeypatch.setenv("ART_SGT_DATA", "/some/machine/path")
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    assert sub.get_default("data_dir") is None and all(a.default is None for a in sub._actions if a.dest == "data_dir")


# ------------------------------------------------------------------------ bugs stay visible (exit 1, traceback)
def test_an_unexpected_exception_keeps_its_traceback_and_exits_1(capsys, monkeypatch):
    def bug(args):
        raise ValueError("a bug inside the command")

    monkeypatch.setattr(cli, "_run", bug)
    assert main(["train"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ValueError: a bug inside the command" in err
    assert err.strip().splitlines()[-1].startswith("art-sgt train: internal error")


def test_resume_of_another_run_is_one_line_naming_the_option(data_dir, tmp_path, capsys):
    ckpt = str(tmp_path / "ckpt")
    _train(data_dir, tmp_path, "first", "--epochs", "1", "--limit", "32", "--checkpoint-dir", ckpt)
    argv = ["train", "--data-dir", str(data_dir), "--epochs", "1", "--limit", "32", "--quiet", "--lr", "0.5"]
    line = _one_line_error(capsys, [*argv, "--checkpoint-dir", ckpt, "--resume", "--out", str(tmp_path / "r")])
    assert "--checkpoint-dir holds a checkpoint of a different run" in line and "allow_config_change" not in line


def test_no_data_reachable_is_one_line_saying_where_it_looked_and_how_to_point_at_the_data(
    tmp_path, capsys, monkeypatch
):
    import logging
    from urllib.error import URLError

    import art.config
    import art.utils

    (tmp_path / "empty").mkdir()
    (tmp_path / "art").mkdir()
    monkeypatch.setenv("ART_SGT_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(art.config, "ART_DATA_PATH", str(tmp_path / "art"))

    def offline(raw=False):  # what ART's download does without a network
        logging.getLogger("art.utils").error("https://example.org/mnist.npz", URLError("Name or service not known"))
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(art.utils, "load_mnist", offline)
    line = _one_line_error(capsys, ["train", "--out", str(tmp_path / "r.json")])
    assert str(tmp_path / "empty") in line and str(tmp_path / "art") in line and "Name or service" in line
    assert "--data-dir DIR" in line and "ART_SGT_DATA=DIR" in line and "data_dir=" not in line


@pytest.mark.parametrize("option", ["--eps", "--eps-step"])
def test_asgt_radius_beyond_the_data_range_is_refused_before_loading_data(option, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_load_data", lambda *a, **k: pytest.fail("loaded data before checking --eps"))
    line = _one_line_error(capsys, ["train", "--trainer", "asgt", option, "5", "--out", str(tmp_path / "r")])
    assert f"{option} 5 exceeds the data's range [0.0, 1.0]" in line and "0.3" in line


# ---------------------------------------------------------------------------- evaluate a model of your own
def _user_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 13 * 13, 10)
    )


FACTORY = """
import torch


def make_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 13 * 13, 10)
    )
"""

QUICK = ["--n", "8", "--robust-n", "6", "--budget", "quick", "--pgd-iter", "2", "--apgd-iter", "2"]
QUICK += ["--square-queries", "5", "--quiet"]


def test_evaluate_a_torchscript_model_on_a_seeded_random_subset(data_dir, tmp_path):
    from art_sgt.datasets import random_subset

    torch.jit.script(_user_cnn()).save(str(tmp_path / "cnn.ts"))
    out = tmp_path / "e.json"
    argv = ["evaluate", "--model", str(tmp_path / "cnn.ts"), "--torchscript", "--dataset", "mnist"]
    assert main([*argv, "--data-dir", str(data_dir), *QUICK, "--preprocessing", "0.5", "0.25", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["test_images"]["saliency"] == random_subset(32, 8, seed=0).tolist() != list(range(8))
    assert result["test_images"]["robustness"] == random_subset(32, 6, seed=0).tolist()
    assert result["test_images"]["seed"] == 0 and result["robustness"]["n_samples"] == 6
    assert set(result["saliency"]["results"]) == {"saliency", "integrated_gradients"}
    assert set(result["saliency"]["support"]["saliency"]) == set(result["saliency"]["summary"]["saliency"])
    assert result["config"]["torchscript"] is True and result["config"]["preprocessing"] == [[0.5], [0.25]]


def test_evaluate_a_state_dict_with_a_factory(data_dir, tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)  # the module is found in the working folder, as `python -m` finds it
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    torch.save(_user_cnn().state_dict(), tmp_path / "weights.pt")
    out = tmp_path / "e.json"
    argv = ["evaluate", "--model", "weights.pt", "--factory", "my_nets:make_cnn", "--dataset", "mnist"]
    assert main([*argv, "--data-dir", str(data_dir), *QUICK, "--out", str(out)]) == 0
    assert json.loads(out.read_text())["config"]["factory"] == "my_nets:make_cnn"


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("state_dict", ["--torchscript"], "is not a TorchScript file"),
        ("torchscript", [], "it is a TorchScript file. A TorchScript file is a program: if you trust it, pass"),
        ("torchscript", ["--torchscript", "--input-shape", "3,32,32"], "--input-shape 3,32,32 does not match"),
        ("torchscript", ["--torchscript", "--nb-classes", "5"], "--nb-classes is 5 but model maps one input"),
        ("torchscript", ["--torchscript", "--clip-values", "0,0.5"], "--clip-values 0,0.5 must contain"),
        ("torchscript", ["--torchscript", "--preprocessing", "0,0", "1,1"], "--preprocessing mean and std of shape"),
        ("state_dict", ["--factory", "no_such_module_here:make"], "cannot import no_such_module_here"),
        ("state_dict", ["--factory", "collections:OrderedDict"], "must return a torch.nn.Module, got OrderedDict"),
        ("torchscript", ["--factory", "tests.test_cli:_user_cnn"], "is a TorchScript file, not a state_dict"),
        ("state_dict", ["--factory", "tests.test_cli:_user_cnn", "--input-shape", "1,28"], "--input-shape 1,28"),
    ],
)
def test_evaluate_a_model_of_your_own_refuses_bad_input_in_one_line(setup, extra, message, data_dir, tmp_path, capsys):
    path = tmp_path / "model.pt"
    if setup == "torchscript":
        torch.jit.script(_user_cnn()).save(str(path))
    else:
        torch.save(_user_cnn().state_dict(), path)
    argv = ["evaluate", "--model", str(path), "--dataset", "mnist", "--data-dir", str(data_dir), *extra]
    line = _one_line_error(capsys, [*argv, "--out", str(tmp_path / "e.json")])
    assert message in line and not (tmp_path / "e.json").exists()


def test_evaluate_a_state_dict_that_does_not_fit_the_factory_is_one_line(data_dir, tmp_path, capsys):
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "w.pt")
    argv = ["evaluate", "--model", str(tmp_path / "w.pt"), "--factory", "tests.test_cli:_user_cnn", "--dataset"]
    line = _one_line_error(capsys, [*argv, "mnist", "--data-dir", str(data_dir), "--out", str(tmp_path / "e")])
    assert "does not fit the network" in line and "Missing key" in line


def test_evaluate_needs_the_dataset_of_a_model_of_your_own(tmp_path, capsys):
    torch.jit.script(_user_cnn()).save(str(tmp_path / "cnn.ts"))
    line = _one_line_error(capsys, ["evaluate", "--model", str(tmp_path / "cnn.ts"), "--torchscript"])
    assert "--dataset is needed" in line


def test_the_docs_example_evaluating_a_torchscript_model_runs(data_dir, monkeypatch, capsys):
    """docs/cli.rst's example, as the doctest build runs it (there on MNIST), here on the tiny synthetic data."""
    import re
    import textwrap
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.rst").read_text()
    [(code, output)] = re.findall(r"\.\. testcode::\n\n(.*?)\n\.\. testoutput::\n\n(.*?)\n\n", page, re.S)
    monkeypatch.setenv("ART_SGT_DATA", str(data_dir))
    exec(compile(textwrap.dedent(code), "docs/cli.rst", "exec"), {})
    assert capsys.readouterr().out.strip().splitlines() == textwrap.dedent(output).strip().splitlines()


def test_resume_after_a_run_killed_in_its_first_write_names_the_kept_checkpoint(data_dir, tmp_path, capsys):
    from art_sgt.trainers._checkpoint import keep_previous

    ckpt = tmp_path / "ckpt"
    _train(data_dir, tmp_path, "first", "--epochs", "1", "--limit", "32", "--checkpoint-dir", str(ckpt))
    kept = keep_previous(ckpt)  # what a fresh run leaves when it is killed writing its first checkpoint
    (ckpt / ".checkpoint-killed.tmp").write_bytes(b"half a checkpoint")
    argv = ["train", "--data-dir", str(data_dir), "--epochs", "1", "--limit", "32", "--checkpoint-dir", str(ckpt)]
    line = _one_line_error(capsys, [*argv, "--resume", "--out", str(tmp_path / "r.json")])
    assert str(kept) in line and "call again with --resume" in line and "resume=True" not in line
    assert not list(ckpt.glob(".checkpoint-*.tmp"))


@pytest.mark.parametrize("command", ["train", "reproduce"])
def test_a_data_file_that_is_not_data_is_one_line(command, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist.npz").write_bytes(b"not a zip file")
    argv = [command, "--dataset", "mnist", "--data-dir", str(tmp_path / "data")]
    argv += ["--out", str(tmp_path / "r.json")] if command == "train" else ["--out-dir", str(tmp_path / "out")]
    assert "mnist.npz is not a readable .npz archive" in _one_line_error(capsys, argv)


def test_reproduce_without_data_says_how_to_point_at_it(tmp_path, capsys, monkeypatch):
    import art.config

    monkeypatch.setenv("ART_SGT_DATA", str(tmp_path))
    monkeypatch.setattr(art.config, "ART_DATA_PATH", str(tmp_path))
    monkeypatch.setattr("art_sgt.datasets._load_from_art", lambda *a: (_ for _ in ()).throw(OSError("offline")))
    line = _one_line_error(capsys, ["reproduce", "--dataset", "mnist", "--out-dir", str(tmp_path / "out")])
    assert "no mnist.npz found" in line and "--data-dir DIR" in line and "OSError('offline')" in line
