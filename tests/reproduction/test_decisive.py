"""The decisive study's goal: non-inferiority of the worst case, map wins, Holm over the family."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from art_sgt.reproduction import decisive
from art_sgt.reproduction.evaluate import bits
from tests.reproduction.conftest import TRAINING

CONTROL = [0.80, 0.82, 0.81, 0.79, 0.80]
#: Differences whose one-sided t p-value is about 0.036 on 4 degrees of freedom: significant alone, not after
#: Holm's adjustment in a family of four.
BORDERLINE = [0.01, 0.02, 0.03, -0.005, 0.015]


def _record(name, seed, worst_case, morf=0.4, sparse=0.5, stab=0.7, cpu=60.0, n_images=0):
    """A decisive run's record as the run cache holds it; ``n_images`` > 0 keeps per-image worst-case outcomes
    with the first ``round(worst_case * n_images)`` images robust."""
    evaluation = {
        "clean": 0.99,
        "pgd_paper_eps": worst_case + 0.1,
        "worst_case_paper_eps": worst_case + 0.08,
        "pgd_standard_eps": worst_case + 0.05,
        "worst_case_standard_eps": worst_case,
        "robustness": {"clean_accuracy": 0.99, "accuracy": {}, "eps": [0.2, 0.3]},
        "worst_case": {"eps": [0.2, 0.3], "accuracy": [worst_case + 0.08, worst_case]},
        "saliency": {
            "masking": {"morf_gain_accuracy": morf, "lerf_gain_accuracy": 0.1},
            "sparseness": sparse,
            "stability": {"spearman": stab},
        },
        "flags": [],
        "cpu_seconds": {"pgd": 1.0},
    }
    if n_images:
        robust = np.arange(n_images) < round(worst_case * n_images)
        evaluation["per_sample"] = {"worst_case_standard_eps": bits(robust), "worst_case_paper_eps": bits(robust)}
    return {
        "name": name,
        "seed": seed,
        "model": name.split("[")[0],
        "dataset": "mnist",
        "training_config": {"training": asdict(TRAINING)},
        "train": {"cpu_seconds": cpu},
        "evaluation": evaluation,
    }


def _study(candidate_diffs, morf_diffs, sparse_diffs, stab_diffs, name="asgt[kl 0.3]"):
    records = [_record("mixed_at", s, w, n_images=100) for s, w in enumerate(CONTROL)]
    records += [_record("trades_at", s, w - 0.02) for s, w in enumerate(CONTROL)]
    for s, w in enumerate(CONTROL):
        records.append(
            _record(
                name,
                s,
                w + candidate_diffs[s],
                morf=0.4 + morf_diffs[s],
                sparse=0.5 + sparse_diffs[s],
                stab=0.7 + stab_diffs[s],
                cpu=90.0,
                n_images=100,
            )
        )
    return records


def test_a_non_inferior_candidate_with_two_clear_map_wins_meets_the_goal():
    wins = [0.10, 0.12, 0.09, 0.11, 0.10]
    goal = decisive.assess(_study([0.005, 0.01, 0.0, 0.008, 0.004], wins, wins, [-0.1] * 4 + [-0.12]), seeds=range(5))
    entry = goal["candidates"]["asgt[kl 0.3]"]
    assert goal["best_control"] == "mixed_at" and goal["complete"]
    assert "Goal met by: ASGT [kl 0.3]." in decisive.goal_lines(goal)
    assert entry["non_inferior"] and entry["map_wins"] == 2 and entry["map_wins_holm"] == 2
    assert goal["met"] == ["asgt[kl 0.3]"]
    assert goal["family_size"] == 4
    assert entry["train_cpu_minutes"] == 1.5 and entry["control_train_cpu_minutes"] == 1.0
    ni = entry["tests"]["worst_case"]
    assert ni["difference"] == pytest.approx(0.0054)
    assert ni["sign_flip_p"] == pytest.approx(1 / 32)  # every seed above the -1 point margin
    assert all(t["holm_p"] >= t["t_p"] for t in entry["tests"].values())


def test_a_candidate_three_points_below_the_control_is_not_non_inferior():
    wins = [0.10, 0.12, 0.09, 0.11, 0.10]
    goal = decisive.assess(_study([-0.03, -0.025, -0.035, -0.03, -0.028], wins, wins, wins))
    entry = goal["candidates"]["asgt[kl 0.3]"]
    assert not entry["non_inferior"] and entry["map_wins"] == 3
    assert goal["met"] == [] and not entry["met"]
    assert "not non-inferior" in "\n".join(decisive.goal_lines(goal))


def test_map_wins_that_hold_alone_but_not_after_holm_do_not_meet_the_goal():
    goal = decisive.assess(_study([0.005, 0.01, 0.0, 0.008, 0.004], BORDERLINE, BORDERLINE, [-0.1] * 4 + [-0.12]))
    entry = goal["candidates"]["asgt[kl 0.3]"]
    morf = entry["tests"]["MoRF gain"]
    assert morf["t_p"] == pytest.approx(0.036, abs=0.002) and morf["lower_bound"] > 0
    assert morf["holm_p"] == pytest.approx(3 * morf["t_p"])  # the second and third smallest of four, both x3
    assert entry["meets"] and not entry["meets_holm"] and not entry["met"]
    assert "met on the intervals, not after Holm" in "\n".join(decisive.goal_lines(goal))


def test_the_best_control_is_chosen_among_the_five_seed_controls_only():
    records = _study([0.0] * 5, [0.0] * 5, [0.0] * 5, [0.0] * 5)
    records += [_record("pgd_at", s, 0.95) for s in range(3)]  # higher, but three seeds only
    assert decisive.assess(records)["best_control"] == "mixed_at"
    better_trades = [r for r in records if r["name"] != "mixed_at"]
    assert decisive.assess(better_trades)["best_control"] == "trades_at"


def test_per_seed_mcnemar_runs_on_the_shared_images_where_outcomes_are_kept():
    goal = decisive.assess(_study([0.02] * 5, [0.0] * 5, [0.0] * 5, [0.0] * 5))
    rows = goal["candidates"]["asgt[kl 0.3]"]["per_seed"]
    assert [r["seed"] for r in rows] == [0, 1, 2, 3, 4]
    first = rows[0]["worst_case_standard_eps"]  # 82 against 80 robust of 100: 2 discordant, both for the candidate
    assert (first["a_only"], first["b_only"], first["p_value"]) == (2, 0, 0.5)


def test_one_seed_gives_undefined_bounds_that_serialise_and_never_win():
    records = [_record("mixed_at", 0, 0.8), _record("asgt", 0, 0.9, morf=0.9, sparse=0.9, stab=0.9)]
    goal = decisive.assess(records)
    entry = goal["candidates"]["asgt"]
    assert entry["tests"]["worst_case"]["lower_bound"] is None and entry["map_wins"] == 0 and not entry["met"]
    json.dumps(goal, allow_nan=False)
    assert "undefined" in "\n".join(decisive.goal_lines(goal))


def test_nothing_to_assess_until_a_control_and_a_candidate_are_evaluated():
    assert decisive.assess([_record("mixed_at", 0, 0.8)]) is None
    assert decisive.assess([_record("asgt", 0, 0.8)]) is None
    unevaluated = {k: v for k, v in _record("asgt", 0, 0.8).items() if k != "evaluation"}
    assert decisive.assess([_record("mixed_at", 0, 0.8), unevaluated]) is None
    assert "No control or candidate" in "\n".join(decisive.goal_lines(None))


def test_the_decisive_report_carries_the_goal_section(tmp_path):
    from art_sgt.reproduction.cli import main

    argv = ["--dataset", "mnist", "--profile", "decisive", "--report-only"]
    assert main([*argv, "--cache-dir", str(tmp_path / "c"), "--out-dir", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "mnist_decisive.json").read_text())["goal"] is None
    assert "## The goal: non-inferior worst case, better maps" in (tmp_path / "mnist_decisive.md").read_text()


def test_until_every_seed_is_in_the_assessment_is_provisional():
    wins = [0.10, 0.12, 0.09, 0.11, 0.10]
    records = _study([0.005, 0.01, 0.0, 0.008, 0.004], wins, wins, wins)
    partial = [r for r in records if not (r["name"] == "trades_at" and r["seed"] == 4)]
    goal = decisive.assess(partial, seeds=range(5))
    assert not goal["complete"] and goal["met"] == ["asgt[kl 0.3]"]  # the tests stand; the verdict waits
    text = "\n".join(decisive.goal_lines(goal))
    assert "**Provisional**" in text and "Goal met by" not in text and "No candidate meets" not in text
    assert decisive.assess(records, seeds=range(5))["complete"]


def test_a_test_without_spread_is_left_out_of_the_family():
    constant = [0.05] * 5  # every seed the same difference: no t p-value
    goal = decisive.assess(_study([0.005, 0.01, 0.0, 0.008, 0.004], constant, BORDERLINE, [-0.1] * 4 + [-0.12]))
    tests = goal["candidates"]["asgt[kl 0.3]"]["tests"]
    assert tests["MoRF gain"]["t_p"] is None and tests["MoRF gain"]["holm_p"] is None
    assert goal["family_size"] == 3
