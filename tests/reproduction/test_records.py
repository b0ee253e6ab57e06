"""The typed records read from hand-written payloads of the run cache's format, and from records the cache wrote."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict

import numpy as np
import pytest

from art_sgt.reproduction import Comparison, Evaluation, RunCache, TrainedRun, assemble, run_pieces
from art_sgt.reproduction.recipe import TrainingRecipe
from art_sgt.reproduction.records import CHALLENGERS, GradientCheck, RunCost, TrainLog
from tests.reproduction.conftest import EVALUATION, TRAINING, TinyNet, spec

GIT_A, GIT_B = {"commit": "a", "clean": True}, {"commit": "b", "clean": True}


def run_payload(seed: int = 0, model: str = "asgt") -> dict:
    """An ``evaluation.json`` as the run cache writes it, with small hand-picked numbers."""
    check = {
        "name": "black_box",
        "description": "black-box Square is not stronger than white-box PGD",
        "flagged": True,
        "evidence": {"eps": 0.2, "pgd": 0.75, "square": 0.5, "b": 3, "c": 1, "drop": 0.25, "queries": 100},
        "n": 8,
        "p_value": 0.3125,
        "budget_adequate": False,
    }
    evaluation = {
        "n_eval": 4,
        "n_report": 4,
        "per_sample": {
            "clean": "1111",
            "pgd_paper_eps": "1100",
            "pgd_standard_eps": "1000",
            "worst_case_paper_eps": "1000",
            "worst_case_standard_eps": "0000",
        },
        "clean": 1.0,
        "pgd_paper_eps": 0.5,
        "pgd_standard_eps": 0.25,
        "robustness": {
            "eps": [0.1, 0.2, 0.3],
            "clean_accuracy": 0.75,
            "accuracy": {"pgd": [0.75, 0.5, 0.25], "apgd-dlr": [0.5, 0.5, 0.0], "square": [0.75, 0.5, 0.25]},
            "checklist": [check],
        },
        "worst_case": {"eps": [0.1, 0.2, 0.3], "accuracy": [0.5, 0.25, 0.0]},
        "worst_case_paper_eps": 0.25,
        "worst_case_standard_eps": 0.0,
        "flags": ["black_box"],
        "transfer_source": "standard",
        "saliency": {
            "masking": {"morf_gain_accuracy": 0.4, "lerf_gain_accuracy": -0.1},
            "sparseness": 0.6,
            "stability": {"spearman": 0.7, "flipped": 0.25},
        },
        "cpu_seconds": {"pgd": 1.5, "report": 12.0, "saliency": 0.5},
        "stage_git": {"pgd": GIT_A, "report eps 0.2": None, "saliency": GIT_B},
    }
    train = {
        "model": model,
        "seed": seed,
        "cpu_seconds": 120.0,
        "wall_seconds": 61.0,
        "sessions": 2,
        "sessions_git": [GIT_A, GIT_B],
        "cpu_seconds_per_epoch": 60.0,
        "history": [{"epoch": 1, "seconds": 30.0}, {"epoch": 2, "seconds": 31.0}],
        "provenance": {"git": GIT_B},
    }
    return {
        "name": model,
        "model": model,
        "variant": "",
        "seed": seed,
        "profile": "quick",
        "dataset": "mnist",
        "training_config": {"dataset": "mnist", "model": model, "seed": seed, "training": asdict(TRAINING)},
        "evaluation_config": {
            "dataset": "mnist",
            "seed": seed,
            "evaluation": json.loads(json.dumps(asdict(EVALUATION))),
        },
        "train": train,
        "evaluation": evaluation,
        "provenance": {"git": GIT_B},
    }


def test_a_run_reads_its_spec_log_cost_and_code():
    payload = run_payload(seed=3)
    kept = copy.deepcopy(payload)
    run = TrainedRun.from_payload(payload)
    assert payload == kept  # reading does not change the record
    assert (run.name, run.model, run.variant, run.seed, run.profile, run.dataset) == (
        "asgt",
        "asgt",
        "",
        3,
        "quick",
        "mnist",
    )
    assert run.key == "asgt,3" and run.cost.key == "asgt,3"
    assert run.cost.training == TRAINING and run.cost.evaluation_recipe == EVALUATION  # JSON lists back to tuples
    assert run.train.cpu_seconds == 120.0 and run.train.cpu_seconds_per_epoch == 60.0
    assert run.train.epoch_seconds == (30.0, 31.0) and run.train.cost_complete  # 61 s of epochs in 61 s counted
    assert run.cost.evaluation_cpu_seconds == {"pgd": 1.5, "report": 12.0, "saliency": 0.5}
    assert run.git == GIT_B and run.cost.reused_from is None


def test_an_evaluation_reads_its_accuracies_outcomes_checks_and_saliency():
    ev = Evaluation.from_payload(run_payload()["evaluation"])
    assert ev.accuracy == {
        "clean": 1.0,
        "pgd_paper_eps": 0.5,
        "pgd_standard_eps": 0.25,
        "worst_case_paper_eps": 0.25,
        "worst_case_standard_eps": 0.0,
    }
    assert ev.value("pgd_paper_eps") == 0.5 and ev.value("morf_gain") == 0.4 and ev.value("lerf_gain") == -0.1
    assert ev.value("sparseness") == 0.6 and ev.value("stability_spearman") == 0.7
    assert ev.value("stability_flipped") == 0.25
    np.testing.assert_array_equal(ev.outcomes("pgd_paper_eps"), [True, True, False, False])
    assert ev.outcomes("morf_gain") is None  # saliency qualities keep no per-image values
    assert ev.worst_case_curve == [0.75, 0.5, 0.25, 0.0]  # eps 0: the clean accuracy on the worst case's images
    assert ev.attack_eps == (0.1, 0.2, 0.3) and ev.attack_accuracy["apgd-dlr"] == (0.5, 0.5, 0.0)
    assert ev.flags == ("black_box",) and ev.cpu_seconds == {"pgd": 1.5, "report": 12.0, "saliency": 0.5}
    (check,) = ev.checklist
    assert (check.name, check.flagged, check.n, check.p_value) == ("black_box", True, 8, 0.3125)
    assert check.challenger == "square" and check.challenger_accuracy == 0.5
    with pytest.raises(KeyError, match="unknown"):
        ev.value("unknown")


def test_an_undefined_stability_reads_as_nan_and_an_evaluation_without_saliency_says_so():
    payload = run_payload()["evaluation"]
    payload["saliency"]["stability"] = {"spearman": None, "flipped": 1.0}
    assert math.isnan(Evaluation.from_payload(payload).value("stability_spearman"))
    del payload["saliency"]
    with pytest.raises(KeyError, match="no saliency"):
        Evaluation.from_payload(payload).value("sparseness")


def test_every_paired_check_names_its_challenger():
    from art_sgt.evaluation.checklist import CHECKS

    assert set(CHALLENGERS) == set(CHECKS) - {"large_eps"}  # large_eps tests PGD alone
    large = GradientCheck.from_payload({"name": "large_eps", "flagged": True, "evidence": {"pgd": 0.3}})
    assert large.challenger is None and large.challenger_accuracy is None
    strong = {"eps": 0.2, "pgd": 0.5, "pgd_strong": 0.25, "b": 2, "c": 0, "strong_iter": 200, "strong_restarts": 3}
    check = GradientCheck.from_payload({"name": "more_iterations", "flagged": True, "evidence": strong})
    assert check.challenger_accuracy == 0.25  # the key is named, not found by ruling out the others


def test_a_training_log_counted_in_part_and_a_log_without_its_sessions():
    log = TrainLog.from_payload({"cpu_seconds": 50.0, "wall_seconds": 40.0, "history": [{"seconds": 30.0}] * 2})
    assert not log.cost_complete and log.cpu_seconds_per_epoch is None  # 60 s of epochs, 40 counted
    assert TrainLog.from_payload({"cpu_seconds": 50.0}).cost_complete  # no wall seconds: cannot show it


def test_code_states_of_a_record_cover_every_session_and_stage():
    from art_sgt.reproduction.aggregate import _provenance

    unknown = {"commit": None, "clean": None}
    run = TrainedRun.from_payload(run_payload())
    assert run.code_states() == [GIT_A, GIT_B, GIT_A, unknown, GIT_B, GIT_B]  # sessions, stages, the record
    assert _provenance([run]) == {"commits": ["None", "a", "b"], "all_clean": False}

    def with_train(**train: object) -> TrainedRun:
        payload = run_payload()
        payload["train"] = {"cpu_seconds": 1.0, "provenance": {"git": GIT_A}, **train}
        payload["evaluation"]["stage_git"] = {}
        payload["provenance"] = {"git": GIT_A}
        return TrainedRun.from_payload(payload)

    assert _provenance([with_train(sessions=1)]) == {"commits": ["a"], "all_clean": True}  # one session: its log
    assert _provenance([with_train(sessions=2)]) == {"commits": ["None", "a"], "all_clean": False}  # first unknown
    assert with_train(sessions=3, sessions_git=[GIT_A]).code_states()[:3] == [GIT_A, unknown, unknown]


def test_the_cost_side_reads_a_training_record_not_evaluated():
    training = asdict(TrainingRecipe("mnist_cnn", 1000, 2, 64, 1e-3, 0.3, 10))
    record = {
        "name": "sgt[mask 0.1]",
        "model": "sgt",
        "seed": 1,
        "dataset": "mnist",
        "training_config": {"training": training},
        "train": {"cpu_seconds": 90.0, "reused_from": "standard/mnist/sgt/seed1-0123"},
        "evaluation_kept_cpu_seconds": 4.5,
    }
    cost = RunCost.from_payload(record)
    assert (cost.key, cost.model, cost.training.arch, cost.training.epochs) == (
        "sgt[mask 0.1],1",
        "sgt",
        "mnist_cnn",
        2,
    )
    assert cost.evaluation_recipe is None and cost.evaluation_cpu_seconds is None
    assert cost.kept_evaluation_cpu_seconds == 4.5 and cost.train.reused_from == "standard/mnist/sgt/seed1-0123"
    run = TrainedRun.from_payload(record)
    assert run.evaluation is None and run.variant == "" and run.profile is None


def test_a_comparison_reads_back_what_the_report_wrote():
    interval = {"estimate": 0.25, "low": None, "high": None, "confidence": 0.95, "n": 1, "method": "t"}
    boot = {"estimate": 0.25, "low": 0.0, "high": 0.5, "confidence": 0.95, "n": 4, "method": "bootstrap"}
    mcnemar = {"n": 4, "a_only": 1, "b_only": 0, "difference": 0.25, "p_value": 1.0}
    payload = {
        "across_seeds": interval,
        "per_seed": [{"seed": 0, "mcnemar": mcnemar, "bootstrap": boot}],
        "a": "asgt",
        "b": "standard",
        "variant": "",
        "quantity": "clean",
        "meaning": "ASGT against no defence",
        "verdict": "inconclusive",
    }
    comparison = Comparison.from_payload(payload)
    assert math.isnan(comparison.across_seeds.low) and comparison.per_seed[0].mcnemar.a_only == 1
    assert comparison.to_payload() == payload
    used, p_value = comparison.verdict_interval()  # one seed: the bootstrap over its images, with the exact test
    assert (used.low, used.high, used.n, p_value) == (0.0, 0.5, 4, 1.0)
    assert used.method == "one seed: paired bootstrap over test images, seed spread not measured"


def test_records_the_cache_wrote_load_and_report_as_their_payloads(tmp_path, data):
    cache, runs = RunCache(tmp_path), [spec("standard"), spec("asgt")]
    run_pieces(cache, runs, lambda: data, network=TinyNet, log=lambda _: None)
    records = cache.records(runs)
    loaded = [TrainedRun.from_payload(r) for r in records]
    assert [(r.name, r.seed, r.evaluation is not None) for r in loaded] == [("standard", 0, True), ("asgt", 0, True)]
    assert all(r.cost.training == TRAINING and r.cost.evaluation_recipe == EVALUATION for r in loaded)
    assert loaded[1].evaluation.checklist and all(c.name for c in loaded[1].evaluation.checklist)
    trained = TrainedRun.from_payload(cache.train_record(runs[1]))
    assert trained.evaluation is None and trained.train == loaded[1].train
    from art_sgt.reproduction.recipe import Profile

    profile = Profile("test", "mnist", TRAINING, EVALUATION, seeds=(0,), label="test")
    manifest, info = cache.manifest(runs), {"command": "test", "git": GIT_A}
    as_json = [json.dumps(assemble(profile, r, manifest, info)) for r in (loaded, records)]  # NaN spreads: as text
    assert as_json[0] == as_json[1]


def test_a_model_summary_reads_back_what_the_report_wrote():
    from art_sgt.reproduction.aggregate import _summaries
    from art_sgt.reproduction.records import ModelSummary

    runs = [TrainedRun.from_payload(run_payload(seed)) for seed in (0, 1)]
    summary = _summaries(runs)
    assert summary.seeds == (0, 1) and summary.flags == ("black_box",) and summary.flag_seeds == {"black_box": (0, 1)}
    assert summary.quantities["pgd_paper_eps"] == {"mean": 0.5, "std": 0.0, "min": 0.5, "max": 0.5, "n": 2}
    assert summary.train_cpu_minutes == {"mean": 2.0, "std": 0.0, "min": 2.0, "max": 2.0, "n": 2}
    assert summary.worst_case_eps == (0.0, 0.1, 0.2, 0.3) and summary.worst_case_per_seed[0] == (0.75, 0.5, 0.25, 0.0)
    payload = json.loads(json.dumps(summary.to_payload()))
    assert ModelSummary.from_payload(payload) == summary
    assert list(payload)[-7:] == [
        "cost_incomplete_seeds",
        "train_cpu_minutes",
        "train_cpu_minutes_per_epoch",
        "worst_case_curve",
        "flags",
        "flag_seeds",
        "seeds",
    ]
