"""The objectives study's recipe, published runs and the screening's selection rule."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from art_sgt.reproduction import recipe, screening
from art_sgt.reproduction.cache import RunCache, run_pieces
from art_sgt.reproduction.training import MODEL_OPTIONS, load_run, supported, train_run, weights_sha256
from tests.reproduction.conftest import EVALUATION, TRAINING, TinyNet, spec


def test_the_screening_runs_every_candidate_and_control_with_both_seeds_and_every_one_is_trainable():
    profile = recipe.get_profile("mnist", "screening")
    runs = recipe.screening_runs(profile)
    assert len(runs) == len(recipe.SCREENING) * 2 == 18
    assert {r.seed for r in runs} == {0, 1}
    names = [r.name for r in runs if r.seed == 0]
    assert len(set(names)) == len(names)
    assert {"asgt", "asgt[target prediction]", "madry_sgt", "trades_sgt", "trades_at", "pgd_at"} <= set(names)
    assert all(supported(r) is None for r in runs)
    assert all(r.transfer_source is not None and r.transfer_source.model == "standard" for r in runs)
    kl = {r.name: r.training.kl_weight for r in runs}
    assert kl["asgt[kl 0.3]"] == 0.3 and kl["asgt"] == 1.0
    assert set(recipe.SCREENING_CONTROLS) <= set(names)


def test_the_objective_models_train_with_their_objective():
    assert MODEL_OPTIONS["trades_at"] == {"objective": "trades", "kl_weight": 0.0}
    assert MODEL_OPTIONS["trades_sgt"] == {"objective": "trades"}
    assert MODEL_OPTIONS["madry_sgt"] == {"objective": "madry"}
    assert MODEL_OPTIONS["mixed_at"] == {"kl_weight": 0.0}
    assert set(recipe.OBJECTIVE_MODELS) <= set(recipe.ADVERSARIAL)
    assert set(recipe.OBJECTIVE_MODELS) <= set(MODEL_OPTIONS)


def test_the_default_radii_stay_out_of_the_evaluation_hash_and_a_narrower_choice_enters_it():
    default = spec("asgt")
    assert "eps_keys" not in default.evaluation_config()["evaluation"]
    narrow = replace(default, evaluation=replace(EVALUATION, eps_keys=("standard_eps",)))
    assert narrow.evaluation_config()["evaluation"]["eps_keys"] == ("standard_eps",)
    assert narrow.evaluation_hash() != default.evaluation_hash()
    assert narrow.training_hash() == default.training_hash()


@pytest.mark.parametrize("model", ["trades_at", "madry_sgt"])
def test_a_trained_run_loads_as_a_classifier_after_its_digest_is_checked(tmp_path, data, model):
    run = spec(model, epochs=1)
    classifier, log = train_run(run, data[0], data[1], tmp_path, network=TinyNet)
    assert log["weights_sha256"] == weights_sha256(tmp_path / "weights.pt")
    assert log["training_config"] == json.loads(json.dumps(run.training_config()))
    loaded = load_run(tmp_path, network=TinyNet)
    np.testing.assert_array_equal(loaded.predict(data[2]), classifier.predict(data[2]))

    weights = tmp_path / "weights.pt"
    raw = bytearray(weights.read_bytes())
    raw[-20] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256"):
        load_run(tmp_path, network=TinyNet)


def test_a_run_without_a_recorded_digest_or_files_is_refused(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="train_log.json"):
        load_run(tmp_path)
    train_run(spec("trades_at", epochs=1), data[0], data[1], tmp_path, network=TinyNet)
    log = json.loads((tmp_path / "train_log.json").read_text())
    del log["weights_sha256"]
    (tmp_path / "train_log.json").write_text(json.dumps(log))
    with pytest.raises(ValueError, match="weights_sha256"):
        load_run(tmp_path, network=TinyNet)


def test_an_evaluation_at_the_standard_radius_only_keeps_its_outcomes_and_counts_as_done(tmp_path, data):
    run = replace(spec("trades_at", epochs=1), evaluation=replace(EVALUATION, eps_keys=("standard_eps",)))
    cache = RunCache(tmp_path)
    done = run_pieces(cache, [run], lambda: data, network=TinyNet, log=lambda _: None)
    assert done == {"trades_at,0": "trained"}
    assert cache.status(run) == "done"
    evaluation = cache.evaluation(run)["evaluation"]
    assert set(evaluation["per_sample"]) == {"clean", "pgd_standard_eps", "worst_case_standard_eps"}
    assert 0.3 in evaluation["worst_case"]["eps"] and 0.2 not in evaluation["worst_case"]["eps"]
    assert "worst_case_paper_eps" not in evaluation


def _record(name, seed, worst_case, morf=0.4, sparse=0.5, stab=0.7, flags=()):
    """A run record as the run cache holds it, with the numbers the screening reads."""
    saliency = {
        "masking": {"morf_gain_accuracy": morf, "lerf_gain_accuracy": 0.1},
        "sparseness": sparse,
        "stability": {"spearman": stab},
    }
    evaluation = {
        "clean": 0.99,
        "pgd_standard_eps": worst_case + 0.05,
        "worst_case_standard_eps": worst_case,
        "robustness": {"clean_accuracy": 0.99, "accuracy": {}, "eps": [0.3]},
        "worst_case": {"eps": [0.3], "accuracy": [worst_case]},
        "saliency": saliency,
        "flags": list(flags),
        "cpu_seconds": {"pgd": 1.0, "report": 2.0},
    }
    training = {"training": asdict(TRAINING)}
    return {
        "name": name,
        "seed": seed,
        "model": name.split("[")[0],
        "dataset": "mnist",
        "training_config": training,
        "train": {"cpu_seconds": 60.0},
        "evaluation": evaluation,
    }


def test_the_rule_picks_eligible_candidates_by_map_wins_and_drops_flagged_or_far_ones():
    records = []
    for seed in (0, 1):
        records += [
            _record("mixed_at", seed, 0.80),
            _record("pgd_at", seed, 0.78),
            _record("trades_at", seed, 0.70),
            _record("asgt", seed, 0.70, morf=0.9, sparse=0.9, stab=0.9),  # 10 points below: not eligible
            _record("madry_sgt", seed, 0.78, morf=0.5),  # 1 map win
            _record("trades_sgt", seed, 0.785, morf=0.5, sparse=0.6),  # 2 map wins
            _record("asgt[kl 0.3]", seed, 0.82, morf=0.5, sparse=0.6, stab=0.8, flags=["black_box"] if seed else []),
        ]
    names = sorted({r["name"] for r in records})
    payload = screening.screening_payload(records, "test", names, (0, 1))
    selection = payload["selection"]
    assert selection["best_control"] == "mixed_at"
    assert selection["chosen"] == ["trades_sgt", "madry_sgt"] and selection["passed"]
    flagged = selection["candidates"]["asgt[kl 0.3]"]
    assert flagged["flagged"] and not flagged["eligible"]
    assert not selection["candidates"]["asgt"]["eligible"]
    assert selection["candidates"]["asgt"]["difference"] == pytest.approx(-0.10)
    assert payload["variants"]["mixed_at"]["mean"]["worst_case"] == pytest.approx(0.80)


def test_when_no_candidate_is_eligible_the_best_worst_case_goes_on_marked_as_failed():
    summary = screening.summarise([_record("ctl", 0, 0.9), _record("a", 0, 0.5), _record("b", 0, 0.6)])
    result = screening.choose(summary, controls=("ctl",))
    assert result == {**result, "chosen": ["b"], "passed": False}
    with pytest.raises(ValueError, match="every control"):
        screening.choose(summary, controls=("ctl", "absent"))
    with pytest.raises(ValueError, match="candidate"):
        screening.choose({"ctl": summary["ctl"]}, controls=("ctl",))


def test_the_rule_waits_for_every_variant_and_seed_and_the_markdown_says_so(tmp_path):
    names = [spec.name for spec in recipe.screening_runs(recipe.get_profile("mnist", "screening")) if spec.seed == 0]
    seed0 = [_record(name, 0, 0.8) for name in names]  # every variant, but only the first seed
    assert screening.screening_payload(seed0, "one seed", names, (0, 1))["selection"] is None
    missing = seed0[1:] + [_record(name, 1, 0.8) for name in names[1:]]  # both seeds, one variant missing
    assert screening.screening_payload(missing, "one missing", names, (0, 1))["selection"] is None
    both = seed0 + [_record(name, 1, 0.8) for name in names]
    assert screening.screening_payload(both, "complete", names, (0, 1))["selection"] is not None

    payload = screening.screening_payload(seed0[:2], "partial study", names, (0, 1))
    text = screening.write_markdown(payload, tmp_path / "s.md")
    assert "2 of 9 variants evaluated (seeds 0, 1 wanted)" in text and "applied once every variant" in text
    assert (tmp_path / "s.md").read_text() == text


def test_an_undefined_stability_of_one_seed_is_left_out_of_its_mean():
    summary = screening.summarise([_record("a", 0, 0.8, stab=0.6), _record("a", 1, 0.8, stab=float("nan"))])
    assert summary["a"]["mean"]["stability"] == pytest.approx(0.6)


def test_every_screening_variant_can_be_run_as_one_piece():
    runs = recipe.screening_runs(recipe.get_profile("mnist", "screening"))
    for run in runs:
        assert recipe.select(runs, f"{run.name},{run.seed}") == [run]


def test_the_committed_runs_keep_their_keys():
    """The folders under results/runs are keyed by these hashes: a change of the recipe that moved them would
    silently orphan the committed runs (and retrain them)."""
    runs = {(r.name, r.seed): r for r in recipe.screening_runs(recipe.get_profile("mnist", "screening"))}
    asgt = runs[("asgt", 0)]
    assert asgt.training_hash() == "155d90952715"
    assert asgt.evaluation_hash() == "136fec7d4bea"
    assert asgt.transfer_source.training_hash() == "096272b43306"


def test_the_decisive_study_runs_five_seeds_where_the_issue_asks_and_three_elsewhere():
    profile = recipe.get_profile("mnist", "decisive")
    runs = recipe.decisive_runs(profile, chosen=("asgt", "madry_sgt", "asgt[kl 0.3]"))
    seeds = {}
    for r in runs:
        seeds.setdefault(r.name, []).append(r.seed)
    assert seeds["asgt"] == seeds["mixed_at"] == seeds["trades_at"] == [0, 1, 2, 3, 4]
    assert seeds["madry_sgt"] == seeds["asgt[kl 0.3]"] == [0, 1, 2, 3, 4]
    assert seeds["standard"] == seeds["sgt"] == seeds["pgd_at"] == [0, 1, 2]
    assert next(r for r in runs if r.name == "asgt[kl 0.3]").training.kl_weight == 0.3
    assert all(supported(r) is None for r in runs)
    # the standard recipe's training: the decisive controls and the standard profile's share their weights
    standard = {
        (r.name, r.seed): r.training_hash() for r in recipe.profile_runs(recipe.get_profile("mnist", "standard"))
    }
    assert all(standard[(r.name, r.seed)] == r.training_hash() for r in runs if (r.name, r.seed) in standard)
    with pytest.raises(ValueError, match="screening variants"):
        recipe.decisive_runs(profile, chosen=("nonsense",))


def test_the_saliency_subset_is_its_own_random_draw_and_enters_the_hash_only_when_set(tmp_path, data):
    default = spec("trades_at", epochs=1)
    assert "n_saliency" not in default.evaluation_config()["evaluation"]
    run = replace(default, evaluation=replace(EVALUATION, n_saliency=5))
    assert run.evaluation_config()["evaluation"]["n_saliency"] == 5
    cache = RunCache(tmp_path)
    run_pieces(cache, [run], lambda: data, network=TinyNet, log=lambda _: None)
    evaluation = cache.evaluation(run)["evaluation"]
    assert evaluation["n_saliency"] == 5 and len(evaluation["test_subsets"]["saliency_indices"]) == 5
    assert evaluation["n_report"] == EVALUATION.n_report


def test_the_command_lists_the_decisive_study_with_the_variants_a_complete_screening_chose(tmp_path, capsys):
    from art_sgt.reproduction.cli import main

    argv = [
        "--dataset",
        "mnist",
        "--profile",
        "decisive",
        "--manifest",
        "--cache-dir",
        str(tmp_path / "c"),
        "--out-dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "holds no complete screening yet" in out and "asgt[kl 0.3]" not in out
    assert "missing  trades_at,4" in out and "missing  pgd_at,2" in out and "pgd_at,3" not in out

    (tmp_path / "mnist_screening.json").write_text(json.dumps({"selection": {"chosen": ["asgt[kl 0.3]"]}}))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "missing  asgt[kl 0.3],4" in out and "holds no complete screening" not in out

    with pytest.raises(ValueError, match="--ablations modifies the quick or the standard profile"):
        main([*argv, "--ablations"])


def test_the_markdown_states_the_threads_each_variant_trained_on(tmp_path):
    one, two = _record("asgt", 0, 0.8), _record("asgt", 1, 0.8)
    one["train"]["torch_threads"], two["train"]["torch_threads"] = 1, 2
    payload = screening.screening_payload(
        [one, two, _record("mixed_at", 0, 0.8)], "label", ["asgt", "mixed_at"], [0, 1]
    )
    text = screening.write_markdown(payload, tmp_path / "s.md")
    assert "| train CPU min (threads) |" in text
    assert "| 1.0 (1, 2) |" in text and "| 1.0 (?) |" in text  # a log without the field says so
