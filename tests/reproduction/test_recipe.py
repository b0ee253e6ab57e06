"""The recipe (controls x seeds, hashes, --only), the cost estimate, and the driver's refusals."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest

from art_sgt.reproduction import (
    MODELS,
    ablations,
    cost_summary,
    estimate_cost,
    get_profile,
    profile_runs,
    select,
)
from art_sgt.reproduction.cli import main
from art_sgt.reproduction.report import attack_units
from art_sgt.reproduction.training import supported
from tests.reproduction.conftest import EVALUATION, spec


def test_standard_profile_is_every_control_times_three_seeds_plus_the_second_training_eps():
    profile = get_profile("mnist", "standard")
    runs = profile_runs(profile)
    assert profile.training.n_train == 60000 and profile.training.train_steps >= 7 and profile.seeds == (0, 1, 2)
    assert [(r.model, r.seed) for r in runs[:15]] == [(m, s) for s in (0, 1, 2) for m in MODELS]
    assert [r.name for r in runs[15:]] == [f"{m}[train eps 0.2]" for m in ("pgd_at", "mixed_at", "asgt")]
    assert all(r.training == profile.training for r in runs[:15]) and runs[15].training.train_eps == 0.2
    assert profile.evaluation.n_eval >= 1000 and profile.evaluation.n_report >= 500
    assert not get_profile("mnist", "quick").claims and get_profile("cifar10", "gpu").training.amp
    with pytest.raises(ValueError, match="dataset and profile"):
        get_profile("mnist", "gpu")


def test_hashes_separate_training_from_evaluation():
    run = spec("asgt")
    assert run.training_hash() == spec("asgt").training_hash()  # stable
    more_epochs = replace(run, training=replace(run.training, epochs=3))
    assert more_epochs.training_hash() != run.training_hash()
    assert more_epochs.evaluation_hash() == run.evaluation_hash()
    smaller = replace(run, evaluation=replace(run.evaluation, n_eval=4))
    assert smaller.training_hash() == run.training_hash() and smaller.evaluation_hash() != run.evaluation_hash()
    assert spec("asgt", seed=1).training_hash() != run.training_hash()


def test_the_transfer_source_is_part_of_the_evaluation_key():
    run = spec("asgt")
    assert spec("standard").transfer_source is None and run.transfer_source.model == "standard"
    assert "transfer_source" not in spec("standard").evaluation_config()  # the standard models' keys are unchanged
    assert replace(run, transfer_source=None).evaluation_hash() != run.evaluation_hash()
    other = replace(run.transfer_source, training=replace(run.transfer_source.training, epochs=5))
    assert replace(run, transfer_source=other).evaluation_hash() != run.evaluation_hash()
    assert replace(run, transfer_source=other).training_hash() == run.training_hash()

    profile = get_profile("mnist", "standard")
    runs = profile_runs(profile)
    standard = {r.seed: r for r in runs if r.model == "standard"}
    assert all(r.transfer_source == standard[r.seed] for r in runs if r.model != "standard")
    assert all(r.transfer_source == standard[r.seed] for r in profile_runs(profile, ("asgt",)))  # standard not listed
    assert all(r.transfer_source == standard[0] for r in ablations(profile))  # the main comparison's model


def test_only_selects_one_piece():
    runs = profile_runs(get_profile("mnist", "standard"))
    assert [(r.name, r.seed) for r in select(runs, "asgt,1")] == [("asgt", 1)]
    assert [r.name for r in select(runs, "asgt")] == ["asgt"] * 3 + ["asgt[train eps 0.2]"]
    assert select(runs, None) == runs
    for bad, match in (
        ("asgt,x", "MODEL or MODEL,SEED"),
        ("trades", "one of the recipe's runs"),
        ("asgt,7", "one of the recipe's runs"),
    ):
        with pytest.raises(ValueError, match=match):
            select(runs, bad)


def test_ablations_are_recipe_entries_on_mnist_only():
    runs = ablations(get_profile("mnist", "standard"))
    names = [r.name for r in runs]
    assert {f"sgt[mask {f}]" for f in ("0.1", "0.3", "0.5", "0.7")} <= set(names)
    assert {"sgt[kl 0.3]", "sgt[kl 1]", "sgt[kl 3]", "asgt[target label]", "asgt[target prediction]"} <= set(names)
    assert {"sgt[fill uniform]", "sgt[fill road]", "sgt[saliency of logit]"} <= set(names)
    assert all(r.seed == 0 and r.profile == "ablations-standard" for r in runs)
    assert next(r for r in runs if r.name == "sgt[mask 0.1]").training.mask_fraction == 0.1
    assert supported(next(r for r in runs if r.name == "sgt[fill road]")) is None
    assert "takes no no_such_option" in supported(replace(runs[0], trainer_kwargs=(("no_such_option", 1),)))
    with pytest.raises(ValueError, match="MNIST only"):
        ablations(get_profile("cifar10", "standard"))


def test_default_ablations_are_the_trainers_defaults_and_the_main_comparisons_models():
    import inspect

    from art_sgt.reproduction.recipe import ABLATION_DEFAULTS
    from art_sgt.trainers import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer

    profile = get_profile("mnist", "standard")
    main_runs = {(r.model, r.seed): r.training_hash() for r in profile_runs(profile) if not r.variant}
    trainers = {"sgt": SaliencyGuidedTrainer, "asgt": SaliencyGuidedAdversarialTrainer}
    for variant, (model, name, value) in ABLATION_DEFAULTS.items():
        assert inspect.signature(trainers[model].__init__).parameters[name].default == value, variant
    sgt = inspect.signature(SaliencyGuidedTrainer.__init__).parameters
    assert (sgt["mask_fraction"].default, sgt["kl_weight"].default) == (0.5, 1.0)  # "mask 0.5", "kl 1"
    twins = {r.variant for r in ablations(profile) if r.training_hash() == main_runs[(r.model, r.seed)]}
    assert twins == {"mask 0.5", "kl 1", "target label", "saliency of log p_y", "fill uniform"}


def test_attack_units_known_answer():
    # quick preset (large_eps_iter 50, pgd_restarts 1, square_restarts 1, apgd_targets 3) with the test recipe's
    # overrides: pgd 2, apgd 2, square 5, strong_factor 2; eps grid {0.1} + paper 0.2 + standard 0.3
    units = attack_units("mnist", asdict(EVALUATION))
    per_eps = 2 + 2 * (2 + 3) + 5 / 3  # PGD; APGD-CE, APGD-DLR and APGD-T on 3 targets; Square forwards only
    checklist = 2 * 2 * 2 + 50 + 2 * 2 + 1
    assert units == pytest.approx({"pgd": 16 * 2 * 2, "report": 8 * (3 * per_eps + checklist), "saliency": 8 * 3})


def test_cost_estimate_scales_measured_cpu_seconds():
    run = spec("asgt")
    units = attack_units("mnist", asdict(EVALUATION))
    evaluation = {"cpu_seconds": {k: 2.0 * v for k, v in units.items()}}  # 2 CPU seconds per unit
    measured = [
        {
            "model": "asgt",
            "dataset": "mnist",
            "training_config": run.training_config(),
            "evaluation_config": run.evaluation_config(),
            "train": {"cpu_seconds": 128.0},
            "evaluation": evaluation,
        }
    ]
    bigger = replace(EVALUATION, n_eval=32, n_report=16)  # twice the images: twice the units
    target = replace(run, training=replace(run.training, n_train=640, epochs=3), evaluation=bigger)  # 64 x 2 measured
    cost = estimate_cost(measured, [target, target], cores=2)
    assert cost["training_cpu_hours"] == pytest.approx(2 * 128.0 * (640 * 3) / (64 * 2) / 3600)
    assert cost["evaluation_cpu_hours"] == pytest.approx(2 * 2.0 * 2 * sum(units.values()) / 3600)
    assert cost["wall_hours_on_cores"] == pytest.approx(cost["cpu_hours"] / 2) and "extrapolated" in cost["note"]
    with pytest.raises(ValueError, match="measured must hold a run of sgt"):
        estimate_cost(measured, [spec("sgt")])


def test_cost_summary_adds_up_the_runs_done_and_estimates_the_rest():
    run = spec("asgt")
    units = attack_units("mnist", asdict(EVALUATION))
    done = {
        "model": "asgt",
        "dataset": "mnist",
        "training_config": run.training_config(),
        "evaluation_config": run.evaluation_config(),
        "train": {"cpu_seconds": 3600.0},
        "evaluation": {"cpu_seconds": {"pgd": 1800.0, "report": 5400.0, "saliency": 0.0}},
    }
    cost = cost_summary([done, done], [run])
    assert (cost["measured_training_cpu_hours"], cost["measured_evaluation_cpu_hours"]) == (2.0, 4.0)
    assert cost["measured_cpu_hours"] == 6.0 and (cost["done_runs"], cost["missing_runs"]) == (2, 1)
    assert cost["remaining"] == estimate_cost([done, done], [run])  # the same recipe: one measured run's cost
    assert cost["remaining"]["cpu_hours"] == pytest.approx(1.0 + 2.0)
    assert set(units) == set(done["evaluation"]["cpu_seconds"])
    assert "remaining" not in cost_summary([done], [])
    nothing = cost_summary([], [spec("sgt")])
    assert nothing["measured_cpu_hours"] == 0 and nothing["remaining"]["not_estimated"] == ["sgt,0"]
    assert nothing["remaining"]["cpu_hours"] == 0 and nothing["remaining"]["estimated_runs"] == 0

    # an sgt run measured for training only: its training counts as spent; the asgt evaluation rate stands in
    # for sgt's evaluation (same architecture); a standard run with no measured model is named, not estimated
    sgt = spec("sgt", seed=1)
    trained = {
        "name": "sgt",
        "model": "sgt",
        "seed": 1,
        "dataset": "mnist",
        "training_config": sgt.training_config(),
        "train": {"cpu_seconds": 1800.0},
    }
    partial = cost_summary([done], [sgt, spec("sgt", seed=2), spec("standard")], trained=[trained])
    assert partial["measured_training_cpu_hours"] == 1.5 and partial["trained_runs"] == 1
    rest = partial["remaining"]
    assert rest["not_estimated"] == ["standard,0"] and rest["estimated_runs"] == 2
    assert rest["training_cpu_hours"] == pytest.approx(0.5)  # sgt,2 only: sgt,1 is trained
    assert rest["evaluation_cpu_hours"] == pytest.approx(2 * 2.0)  # both sgt runs, at asgt's measured rate
    with pytest.raises(ValueError, match="measured must hold a run of standard"):
        estimate_cost([done], [spec("standard")])

    # a measured model of the same kind (not adversarially trained) stands in before the architecture's others;
    # the CPU seconds of the evaluation stages sgt,1 kept count as spent and come off its estimate
    standard = spec("standard")
    quarter = {k: v / 4 for k, v in done["evaluation"]["cpu_seconds"].items()}
    plain = {
        **done,
        "model": "standard",
        "training_config": standard.training_config(),
        "evaluation": {"cpu_seconds": quarter},
    }
    kept = {**trained, "evaluation_kept_cpu_seconds": 900.0}
    mixed = cost_summary([done, plain], [sgt, spec("sgt", seed=2)], trained=[kept])
    assert mixed["measured_evaluation_cpu_hours"] == pytest.approx(2.0 + 0.5 + 0.25)
    assert mixed["remaining"]["evaluation_cpu_hours"] == pytest.approx((0.5 - 0.25) + 0.5)  # at standard's rate


def test_driver_lists_the_manifest_and_refuses_bad_requests(tmp_path, capsys):
    assert main(["--dataset", "mnist", "--profile", "standard", "--manifest", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "missing  asgt,2" in out and "missing: 18" in out and not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="MNIST only"):
        main(["--dataset", "cifar10", "--ablations", "--cache-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="MODEL or MODEL,SEED"):
        main(["--dataset", "mnist", "--only", "asgt,", "--cache-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["--dataset", "mnist", "--models", "standard,trades"])
    assert "--models" in capsys.readouterr().err


def test_command_line_overrides_are_named_in_the_profile_label():
    import argparse

    from art_sgt.reproduction.cli import _profile, add_arguments

    parser = add_arguments(argparse.ArgumentParser())
    plain = _profile(parser.parse_args(["--dataset", "mnist", "--profile", "standard"]))
    assert plain == get_profile("mnist", "standard")
    changed = _profile(
        parser.parse_args(["--dataset", "mnist", "--profile", "standard", "--n-train", "500", "--seeds", "3"])
    )
    assert changed.training.n_train == 500 and changed.seeds == (3,)
    assert changed.label.endswith("; overridden on the command line: n_train 500, seeds (3,)")


def test_repeated_seeds_and_several_ablation_seeds_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--dataset", "mnist", "--seeds", "0,0", "--manifest"])  # one run would count as two seeds
    assert "--seeds" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--ablations runs one seed"):
        main(["--dataset", "mnist", "--ablations", "--seeds", "1,2", "--manifest"])


def test_more_images_than_the_data_holds_are_refused(monkeypatch):
    import argparse

    import art_sgt.datasets
    from art_sgt.reproduction.cli import _loader, _profile, add_arguments

    x = np.zeros((30, 28, 28, 1), np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(30) % 10]
    monkeypatch.setattr(art_sgt.datasets, "load_mnist", lambda data_dir=None: ((x, y), (x[:20], y[:20]), 0.0, 1.0))
    parser = add_arguments(argparse.ArgumentParser())
    for argv, flag in (
        (["--n-train", "40", "--n-eval", "10", "--n-report", "10"], "--n-train"),
        (["--n-train", "30", "--n-eval", "25", "--n-report", "10"], "--n-eval"),
    ):
        args = parser.parse_args(["--dataset", "mnist", *argv])
        with pytest.raises(ValueError, match=flag):
            _loader(args, _profile(args))()
    args = parser.parse_args(["--dataset", "mnist", "--n-train", "30", "--n-eval", "20", "--n-report", "20"])
    assert [len(a) for a in _loader(args, _profile(args))()] == [30, 30, 20, 20]
