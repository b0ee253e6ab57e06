"""The report's sentences that set the paper's claim against the measured differences (hand-built payloads)."""

from __future__ import annotations

from art_sgt.reproduction import TrainedRun, claim_lines
from art_sgt.reproduction.records import ModelSummary


def _comparison(b: str, quantity: str, low: float, high: float, n: int = 3, variant: str = "") -> dict:
    across = {
        "estimate": (low + high) / 2,
        "low": low,
        "high": high,
        "confidence": 0.95,
        "n": n,
        "method": "paired t interval over seeds",
    }
    return {"a": "asgt", "b": b, "quantity": quantity, "variant": variant, "across_seeds": across, "per_seed": []}


def _payload(*comparisons: dict, claims: bool = True) -> dict:
    return {"dataset": "mnist", "claims": claims, "paper": {"claimed_gain": 35.0}, "comparisons": list(comparisons)}


def test_each_control_gets_one_line_with_pgd_and_worst_case():
    payload = _payload(
        _comparison("standard", "pgd_paper_eps", 0.79, 0.94),
        _comparison("standard", "worst_case_paper_eps", 0.30, 0.40),
        _comparison("pgd_at", "worst_case_paper_eps", -0.52, 0.50),
        _comparison("mixed_at", "pgd_paper_eps", -0.08, -0.004),
        _comparison("mixed_at", "worst_case_paper_eps", -0.133, -0.005),
        _comparison("mixed_at", "clean", 0.1, 0.2),  # not a robustness figure: not set against the claim
        _comparison("mixed_at", "worst_case_paper_eps", 0.5, 0.6, variant="train eps 0.2"),  # a second setting
    )
    head, blank, *lines = claim_lines(payload)
    assert head.startswith("Read as absolute percentage points, the paper's claim (+35 at eps 0.2)") and not blank
    assert len(lines) == 3
    assert lines[0] == (
        "- ASGT - standard (ART fit): PGD +86.5 [+79.0, +94.0]: a gain, larger than the claimed +35; "
        "worst case +35.0 [+30.0, +40.0]: a gain, consistent with the claimed +35. "
        "(ASGT against no defence; paired t interval over seeds, n=3.)"
    )
    assert lines[1].startswith(
        "- ASGT - PGD-AT (ART Madry): worst case -1.0 [-52.0, +50.0]: inconclusive at this "
        "budget (the interval holds both zero and the claimed +35). (ASGT against Madry"
    )
    assert "PGD -" not in lines[1] and "PGD +" not in lines[1]  # no PGD comparison: only the worst case is shown
    assert "worst case -6.9 [-13.3, -0.5]: a loss: the claimed +35 does not hold. (The saliency/KL term" in lines[2]
    assert "PGD -4.2 [-8.0, -0.4]: a loss" in lines[2]


def test_nothing_is_set_against_the_claim_without_asgt_or_in_a_smoke_test():
    assert claim_lines(_payload()) == []
    sgt = {**_comparison("standard", "pgd_paper_eps", 0.1, 0.2), "a": "sgt"}
    assert claim_lines(_payload(sgt)) == []
    assert claim_lines(_payload(_comparison("standard", "pgd_paper_eps", 0.79, 0.94), claims=False)) == []


def test_one_seed_rests_on_the_test_images_and_the_exact_test():
    boot = {"estimate": 0.02, "low": 0.005, "high": 0.035, "confidence": 0.95, "n": 1000, "method": "bootstrap"}
    mcnemar = {"n": 1000, "a_only": 25, "b_only": 5, "difference": 0.02, "p_value": 0.2}
    one = {
        **_comparison("pgd_at", "pgd_paper_eps", 0.0, 0.0, n=1),
        "per_seed": [{"seed": 0, "bootstrap": boot, "mcnemar": mcnemar}],
    }
    (line,) = claim_lines(_payload(one))[2:]
    assert "one seed: paired bootstrap over test images, seed spread not measured, n=1000" in line
    # the interval excludes zero but the exact test does not reject: not a gain
    assert (
        "PGD +2.0 [+0.5, +3.5]: inconclusive at this budget, but the claimed +35 lies above the interval: not "
        "reproduced." in line
    )
    worst = {
        **_comparison("pgd_at", "worst_case_paper_eps", 0.0, 0.0, n=1),
        "per_seed": [{"seed": 0, "bootstrap": {**boot, "n": 500}, "mcnemar": {**mcnemar, "n": 500}}],
    }
    (line,) = claim_lines(_payload(one, worst))[2:]
    assert line.endswith("seed spread not measured, n=1000 (PGD), n=500 (worst case).)")  # each its own test set


def _manifest(*rows: tuple[str, str]) -> dict:
    return {"manifest": {"runs": [{"variant": v, "status": s} for v, s in rows]}, "claims": True, "runs": [{"seed": 0}]}


def test_the_interim_note_names_what_is_missing():
    from art_sgt.reproduction.render import _progress

    main_missing = _manifest(("", "done"), ("", "missing"), ("train eps 0.2", "missing"), ("train eps 0.2", "done"))
    assert _progress(main_missing) == (
        "Main comparison: 1 of 2 runs done; train eps 0.2: 1 of 2 runs done. **Interim report**: the comparisons "
        "rest on the runs done so far (seeds [0]); where one seed is done, their intervals are over test images and "
        "say nothing of the spread between training seeds."
    )
    setting_missing = _manifest(("", "done"), ("", "done"), ("train eps 0.2", "trained"), ("train eps 0.2", "done"))
    assert _progress(setting_missing) == (
        "Main comparison: 2 of 2 runs done; train eps 0.2: 1 of 2 runs done. The main comparison is complete; "
        "**interim for train eps 0.2**: its comparisons rest on the runs done so far."
    )
    complete = _manifest(("", "done"), ("", "done"), ("train eps 0.2", "done"), ("train eps 0.2", "done"))
    assert _progress(complete) == "Main comparison: 2 of 2 runs done; train eps 0.2: 2 of 2 runs done."
    assert _progress({**main_missing, "claims": False}).endswith("train eps 0.2: 1 of 2 runs done.")  # smoke test
    ablations = _manifest(("mask 0.1", "done"), ("mask 0.3", "missing"))  # one run per setting: nothing to pool
    assert _progress(ablations) == "Settings (one run each): 1 of 2 runs done."


def test_a_flag_names_its_seeds_when_it_did_not_fire_on_every_seed():
    from art_sgt.reproduction.aggregate import _summaries
    from art_sgt.reproduction.render import _flags_cell
    from tests.reproduction.test_records import run_payload

    def record(seed: int, flags: list[str]) -> TrainedRun:
        payload = run_payload(seed)
        payload["evaluation"]["flags"] = flags
        return TrainedRun.from_payload(payload)

    summary = _summaries([record(0, ["black_box"]), record(1, ["black_box", "single_step"]), record(2, [])])
    assert summary.flag_seeds == {"black_box": (0, 1), "single_step": (1,)}
    assert _flags_cell(summary) == "black_box (seeds 0, 1 of 3), single_step (seed 1 of 3)"
    every = _summaries([record(0, ["black_box"]), record(1, ["black_box"])])
    assert _flags_cell(every) == "black_box"  # fired on every seed: no seeds named
    assert _flags_cell(_summaries([record(0, [])])) == "none"
    assert _flags_cell(ModelSummary.from_payload(summary.to_payload())) == _flags_cell(summary)  # as the JSON reads


def test_a_model_whose_cost_is_incomplete_on_some_seeds_names_them():
    from art_sgt.reproduction.aggregate import _summaries
    from art_sgt.reproduction.render import _cost_cell
    from tests.reproduction.test_records import run_payload

    def record(seed: int, wall_seconds: float) -> TrainedRun:
        payload = run_payload(seed)
        payload["train"]["wall_seconds"] = wall_seconds  # its epochs took 61 s
        return TrainedRun.from_payload(payload)

    assert _cost_cell(_summaries([record(0, 61.0), record(1, 70.0)])) == "2.0 ± 0.0"  # 120 CPU s each
    assert _cost_cell(_summaries([record(0, 61.0), record(1, 30.0)])) == (
        "2.0 (seed 1 not counted: its cost is incomplete)"
    )
    assert _cost_cell(_summaries([record(0, 30.0), record(1, 30.0)])) == "unknown (seeds 0, 1 not counted)"
