"""The run cache: states, manifest, skipping what is done, re-evaluating on a new budget, resuming interrupted runs."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from art_sgt.provenance import run_info
from art_sgt.reproduction import (
    RunCache,
    assemble,
    cost_summary,
    estimate_cost,
    get_profile,
    readme_section,
    run_pieces,
    training_cost_complete,
    write_markdown,
)
from art_sgt.reproduction.evaluate import PER_SAMPLE
from art_sgt.reproduction.figures import _cost_label, write_figures
from art_sgt.reproduction.training import load_trained, train_run
from tests.reproduction.conftest import EVALUATION, TinyNet, spec


def _quiet(_line: str) -> None:
    pass


def test_pieces_run_once_then_skip_and_reevaluate_on_a_new_budget(tmp_path, data):
    pytest.importorskip("matplotlib")
    cache, runs = RunCache(tmp_path / "cache"), [spec("standard"), spec("asgt")]
    calls = []

    def load():
        calls.append(1)
        return data

    assert cache.manifest(runs)["counts"]["missing"] == 2
    assert run_pieces(cache, runs, load, network=TinyNet, log=_quiet) == {"standard,0": "trained", "asgt,0": "trained"}
    weights = {r.name: (cache.folder(r) / "weights.pt").stat().st_mtime_ns for r in runs}
    assert cache.manifest(runs)["counts"]["done"] == 2 and len(calls) == 1
    assert not (cache.folder(runs[1]) / "checkpoint").exists()  # removed once trained

    assert run_pieces(cache, runs, load, network=TinyNet, log=_quiet) == {"standard,0": "skipped", "asgt,0": "skipped"}
    assert len(calls) == 1  # nothing to do: the data are not even loaded

    smaller = [replace(r, evaluation=replace(EVALUATION, n_eval=8)) for r in runs]
    assert [cache.folder(r) for r in smaller] == [cache.folder(r) for r in runs]  # same training, same folder
    assert {cache.status(r) for r in smaller} == {"trained"}
    assert set(run_pieces(cache, smaller, load, network=TinyNet, log=_quiet).values()) == {"evaluated"}
    assert weights == {r.name: (cache.folder(r) / "weights.pt").stat().st_mtime_ns for r in runs}  # not retrained

    records = cache.records(smaller)
    asgt = records[1]
    assert asgt["evaluation"]["n_eval"] == 8 and len(asgt["evaluation"]["per_sample"]["pgd_paper_eps"]) == 8
    worst = asgt["evaluation"]["per_sample"]["worst_case_paper_eps"]  # kept per sample for McNemar
    assert len(worst) == asgt["evaluation"]["n_report"]
    assert worst.count("1") / len(worst) == asgt["evaluation"]["worst_case_paper_eps"]
    assert asgt["evaluation"]["transfer_source"] == "standard" and records[0]["evaluation"]["transfer_source"] is None
    assert asgt["train"]["cpu_seconds"] > 0 and asgt["provenance"]["git"]["commit"]
    assert set(asgt["evaluation"]["cpu_seconds"]) == {"pgd", "report", "saliency"}

    # A record written by older code may count an image wrong clean as robust to PGD: it is read as not robust.
    path = cache.folder(smaller[1]) / "evaluation.json"
    stored = json.loads(path.read_text())
    outcomes = stored["evaluation"]["per_sample"]
    outcomes["clean"], outcomes["pgd_paper_eps"] = "0" + outcomes["clean"][1:], "1" + outcomes["pgd_paper_eps"][1:]
    path.write_text(json.dumps(stored))
    read = cache.evaluation(smaller[1])["evaluation"]
    assert read["per_sample"]["pgd_paper_eps"] == "0" + outcomes["pgd_paper_eps"][1:]
    assert read["pgd_paper_eps"] == read["per_sample"]["pgd_paper_eps"].count("1") / 8
    assert read["per_sample"]["worst_case_paper_eps"] == worst  # the other outcomes as stored

    profile = replace(get_profile("mnist", "quick"), name="test")
    payload = assemble(profile, records, cache.manifest(smaller), run_info())
    assert list(payload["results"]) == ["standard", "asgt"]
    text = write_markdown(payload, tmp_path / "r.md")
    assert "makes no claims" in text and "| ASGT | 1 |" in text
    assert all(c["verdict"].endswith("no claim.") for c in payload["comparisons"])
    assert "smoke test and makes no claims" in readme_section([payload])
    assert "Main comparison: 2 of 2 runs done." in text and "Interim" not in text
    claimed = assemble(replace(profile, claims=True), records, cache.manifest(smaller), run_info())
    assert "ASGT - standard (ART fit), worst-case accuracy at eps 0.2" in readme_section([claimed])
    assert "Interim" not in readme_section([claimed])
    assert "Read as absolute percentage points, the paper's claim (+35 at eps 0.2)" in readme_section([claimed])
    assert "Read as absolute" not in text and "\n\n\n" not in text  # a smoke test makes no claims
    table = [x for x in readme_section([claimed]).splitlines() if x.startswith("| ")]
    assert table[0].startswith("| model | seeds | clean | PGD eps 0.2 | worst case eps 0.2 | gradient-masking")
    asgt_row = f"| ASGT | 1 | {asgt['evaluation']['clean']:.3f} | {asgt['evaluation']['pgd_paper_eps']:.3f} | "
    assert asgt_row in table[2] and len(table) == 3  # header, standard, ASGT
    assert "Per seed" not in readme_section([claimed])  # one seed: its test images are the verdict itself
    two_seeds = assemble(
        replace(profile, claims=True),
        records + [{**r, "seed": 1} for r in records],
        cache.manifest(smaller),
        run_info(),
    )
    line = next(x for x in readme_section([two_seeds]).splitlines() if "worst-case accuracy at eps 0.2" in x)
    assert "(paired t interval over seeds" in line and "Per seed, over its test images" in line
    assert "seed 0 " in line and "; seed 1 " in line and line.endswith(".")
    assert write_markdown(two_seeds).count("Per seed, over its test images") == 5  # each accuracy, one pair
    saliency = [c for c in two_seeds["comparisons"] if c["quantity"] == "morf_gain"]
    assert len(saliency) == 1 and saliency[0]["across_seeds"]["n"] == 2 and not saliency[0]["per_seed"]
    as_mixed = [{**r, "name": "mixed_at", "model": "mixed_at"} if r["name"] == "standard" else r for r in records]
    term = readme_section([assemble(replace(profile, claims=True), as_mixed, cache.manifest(smaller), run_info())])
    assert "The saliency term's effect on the maps (ASGT - mixed AT, over seeds):" in term
    assert "- ASGT - mixed AT (ASGT, kl_weight=0), sparseness" not in term  # the label is the table's
    assert "- ASGT - mixed AT (ASGT, kl_weight=0), saliency sparseness (Gini): " in term
    unflipped = {"spearman": None, "flipped": 1.0}  # every prediction flipped: the stability is undefined
    undefined = [
        {**r, "evaluation": {**r["evaluation"], "saliency": {**r["evaluation"]["saliency"], "stability": unflipped}}}
        for r in records
    ]
    keys = {c["quantity"] for c in assemble(profile, undefined, cache.manifest(smaller), run_info())["comparisons"]}
    assert "stability_spearman" not in keys and "sparseness" in keys  # no seed to compare it on: left out
    alone = assemble(replace(profile, claims=True), records[:1], cache.manifest(smaller), run_info())  # no ASGT
    assert "No comparison of ASGT with a control is done yet." in readme_section([alone])
    assert "| standard (ART fit) | 1 |" in readme_section([alone])  # the models done are shown all the same
    assert "headline gain" not in readme_section([alone]) and "Read as absolute" not in write_markdown(alone)
    assert "the 9 comparisons of this report are not corrected for multiplicity" in text
    assert "- ASGT - standard (ART fit), MoRF gain over random: " in text
    assert "MoRF gain over random: " in text and "no interval (paired t interval over seeds, n=1)" in text
    assert "saliency term's effect" not in readme_section([claimed])  # no mixed AT run to compare with
    assert "multiplicity" not in write_markdown(alone) and "No pair of controls is done yet." in write_markdown(alone)
    assert "nothing here stands beside it" in write_markdown(alone) and "stand beside it," not in write_markdown(alone)
    assert "stand beside it, each with its interval" in text and "nothing here stands beside it" not in text
    section = readme_section([claimed])
    assert (
        section.index("Read as absolute")
        < section.index("The differences in detail:")
        < section.index("- ASGT - standard (ART fit), worst-case accuracy at eps 0.2")
    )  # the answer first, then the differences it rests on
    assert text.count("## Gradient-masking flags") == 1
    fired = {
        "name": "single_step",
        "flagged": True,
        "p_value": 0.01,
        "n": 8,
        "evidence": {"eps": 0.2, "pgd": 0.5, "fgsm": 0.25, "b": 2, "c": 0, "drop": 0.25},
    }
    robustness = {**asgt["evaluation"]["robustness"], "checklist": [fired]}
    flagged = {**asgt, "evaluation": {**asgt["evaluation"], "robustness": robustness}}
    flagged_text = write_markdown(assemble(profile, [records[0], flagged], cache.manifest(smaller), run_info()))
    line = next(x for x in flagged_text.splitlines() if x.startswith("- ASGT, seed 0: single_step at eps 0.2"))
    index = robustness["eps"].index(0.2)
    white = min(v[index] for k, v in robustness["accuracy"].items() if k != "square")
    assert "fgsm 0.250 against PGD 0.500 (2 images broken by fgsm alone, 0 by PGD alone" in line
    assert "strongest white-box attack at this eps: " in line and f" {white:.3f}; worst case " in line
    assert "No check of the gradient-masking checklist fired" not in flagged_text
    unflagged = [{**c, "flagged": False} for c in asgt["evaluation"]["robustness"]["checklist"]]
    calm = [
        {
            **r,
            "evaluation": {**r["evaluation"], "robustness": {**r["evaluation"]["robustness"], "checklist": unflagged}},
        }
        for r in records
    ]
    assert "No check of the gradient-masking checklist fired on any run." in write_markdown(
        assemble(profile, calm, cache.manifest(smaller), run_info())
    )
    one_more = [*smaller, replace(smaller[0], seed=1)]  # a second seed not run yet: an interim report
    interim = assemble(replace(profile, claims=True), records, cache.manifest(one_more), run_info())
    assert "Main comparison: 2 of 3 runs done. **Interim report**" in readme_section([interim])
    assert "(seeds [0])" in write_markdown(interim)
    assert "Interim" not in readme_section([assemble(profile, records, cache.manifest(one_more), run_info())])
    setting = [{**r, "name": f"{r['model']}[setting B]", "variant": "setting B"} for r in records]  # a second setting
    both = assemble(replace(profile, claims=True), records + setting, cache.manifest(smaller), run_info())
    assert [c["variant"] for c in both["comparisons"]] == [""] * 9 + ["setting B"] * 9  # 5 + 4 saliency quantities
    assert "(setting B)" in both["comparisons"][9]["verdict"] and "setting B" not in readme_section([both])
    assert sum(x.startswith("| ") for x in readme_section([both]).splitlines()) == 3  # the main comparison only
    ablation = [{**r, "name": f"{r['model']}[v{i}]", "variant": f"v{i}"} for i, r in enumerate(records)]
    variants_only = assemble(profile, ablation, cache.manifest(smaller), run_info())  # nothing to pair
    assert not variants_only["comparisons"] and "Comparisons" not in write_markdown(variants_only)
    assert "| asgt[v1] | 1 |" in write_markdown(variants_only)
    variant_runs = [replace(r, variant=f"v{i}") for i, r in enumerate(smaller)]  # not run under these names
    listed = assemble(profile, ablation, cache.manifest(variant_runs), run_info())
    assert "Settings (one run each): 0 of 2 runs done." in write_markdown(listed)
    paths = write_figures(payload, tmp_path / "fig")
    assert len(paths) == 4 and all((tmp_path / "fig" / f"{k}.png").stat().st_size > 0 for k in paths)

    # a log whose epochs took longer than its counted sessions lost a session's cost: flagged and left out
    assert all(training_cost_complete(r["train"]) for r in records)
    epochs = [{**e, "seconds": 5.0} for e in asgt["train"]["history"]]  # 10 s of epochs, 2 s of sessions counted
    lost = {**asgt, "train": {**asgt["train"], "wall_seconds": 2.0, "history": epochs}}
    assert not training_cost_complete(lost["train"])
    partly = assemble(profile, [records[0], lost], cache.manifest(smaller), run_info())
    assert partly["results"]["asgt"]["train_cpu_minutes"] is None
    assert partly["results"]["asgt"]["cost_incomplete_seeds"] == [0]
    assert partly["results"]["standard"]["cost_incomplete_seeds"] == []
    assert "| unknown (seed 0 not counted: its cost is incomplete) |" in write_markdown(partly)
    assert "not counted" not in write_markdown(payload)
    assert cost_summary([records[0], lost], [])["cost_incomplete"] == ["asgt,0"]
    assert cost_summary(records, [])["cost_incomplete"] == []
    partly["cost"] = cost_summary([records[0], lost], [])
    assert "Counted only in part: the training cost of asgt,0" in write_markdown(partly)
    assert estimate_cost([records[0], lost], runs, partial=True)["not_estimated"] == ["asgt,0"]  # no rate from it
    assert estimate_cost(records, runs, partial=True)["not_estimated"] == []
    assert len(write_figures(partly, tmp_path / "partly")) == 4  # the model without a cost is left off the cost figure
    half = assemble(profile, [records[0], asgt, {**lost, "seed": 1}], cache.manifest(smaller), run_info())
    assert half["results"]["asgt"]["cost_incomplete_seeds"] == [1]
    assert _cost_label("asgt", half["results"]["asgt"]).endswith("CPU-min/epoch (cost of 1 of 2 seeds)")
    assert _cost_label("standard", half["results"]["standard"]).endswith("CPU-min/epoch")


def test_manifest_states(tmp_path):
    cache = RunCache(tmp_path)
    run, odd = spec("sgt"), replace(spec("sgt"), trainer_kwargs=(("no_such_option", 1),), variant="odd")
    assert [cache.status(run), cache.status(odd)] == ["missing", "unavailable"]
    folder = cache.folder(run)
    (folder / "checkpoint").mkdir(parents=True)
    assert cache.status(run) == "missing"  # the trainer made the folder, no checkpoint was written yet
    (folder / "checkpoint" / "checkpoint.pt").write_bytes(b"")
    assert cache.status(run) == "partial"
    (folder / "checkpoint" / "checkpoint.pt").unlink()
    (folder / "progress.json").write_text("{}")
    assert cache.status(run) == "partial"
    (folder / "weights.pt").write_bytes(b"")
    assert cache.status(run) == "partial"  # weights without their training log: not a finished training
    (folder / "train_log.json").write_text("{}")
    assert cache.status(run) == "trained"
    partial = {"evaluation_hash": run.evaluation_hash(), "stages": {"pgd": {}, "report eps 0.1": {}}}
    (folder / "evaluation_partial.json").write_text(json.dumps(partial))
    assert cache.manifest([run])["runs"][0]["evaluation_stages"] == ["pgd", "report eps 0.1"]
    (folder / "evaluation.json").write_text(json.dumps({"evaluation_hash": "stale"}))
    assert cache.status(run) == "trained"  # an evaluation made with another configuration does not count
    (folder / "evaluation.json").write_text(json.dumps({"evaluation_hash": run.evaluation_hash()}))
    assert cache.status(run) == "trained"  # written by older code: no per-sample outcomes to pair
    per_sample = dict.fromkeys(PER_SAMPLE, "01")
    record = {"evaluation_hash": run.evaluation_hash(), "evaluation": {"per_sample": per_sample}}
    (folder / "evaluation.json").write_text(json.dumps(record))
    manifest = cache.manifest([run, odd])
    assert [r["status"] for r in manifest["runs"]] == ["done", "unavailable"]
    assert manifest["counts"] == {"unavailable": 1, "missing": 0, "partial": 0, "trained": 0, "done": 1}
    assert run_pieces(cache, [odd], lambda: None, log=_quiet)["sgt[odd],0"].startswith("unavailable: ")


class _Interrupting(TinyNet):
    """Raises KeyboardInterrupt at the ``budget``-th training-mode forward (a Ctrl-C in the middle of a run)."""

    budget: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and _Interrupting.budget is not None:
            _Interrupting.budget -= 1
            if _Interrupting.budget < 0:
                raise KeyboardInterrupt
        return super().forward(x)


@pytest.mark.parametrize(("model", "budget"), [("standard", 6), ("sgt", 11)])
def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, data, model, budget):
    x, y = data[:2]
    run = spec(model)
    _Interrupting.budget = None
    reference, _ = train_run(run, x, y, tmp_path / "reference", network=_Interrupting)

    _Interrupting.budget = budget  # in the second of two epochs
    with pytest.raises(KeyboardInterrupt):
        train_run(run, x, y, tmp_path / "run", network=_Interrupting)
    assert RunCache(tmp_path).status(run) == "missing"  # (another root) while the run's own folder is partial
    assert (tmp_path / "run" / "checkpoint").is_dir() and not (tmp_path / "run" / "weights.pt").exists()
    _Interrupting.budget = None
    resumed, log = train_run(run, x, y, tmp_path / "run", network=_Interrupting)
    assert log["sessions"] == 2 and len(log["history"]) == 2
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


_KILLED_SESSION = """
import sys
import time
from pathlib import Path

from art_sgt.reproduction.training import train_run
from tests.reproduction.conftest import TinyNet, band_task, spec

folder = Path(sys.argv[2])


class Stalling(TinyNet):  # stalls in the second epoch, once the first epoch's checkpoint is written
    def forward(self, x):
        if self.training and list((folder / "checkpoint").glob("*.pt")):
            while True:
                time.sleep(1)
        return super().forward(x)


x, y = band_task(64, 0)
train_run(spec(sys.argv[1]), x, y, folder, network=Stalling)
"""


@pytest.mark.parametrize("model", ["standard", "sgt"])
def test_a_killed_session_keeps_the_cost_and_code_of_the_epochs_it_checkpointed(tmp_path, data, model):
    """A session killed (SIGKILL, no chance to write) after its first epoch's checkpoint still counts that epoch's
    CPU seconds and its commit, so the resumed run reports both sessions and a complete cost. (The weights of a
    resumed run are compared with an uninterrupted one's in-process above; the killed process may use another
    number of threads, which changes float sums.)"""
    root = Path(__file__).resolve().parents[2]
    folder = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SESSION, model, str(folder)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not (folder / "progress.json").is_file():
            assert child.poll() is None, "the training process ended before it was killed"
            assert time.monotonic() < deadline, "no progress.json within 120 s of a checkpoint"
            time.sleep(0.2)
    finally:
        child.kill()
        child.wait()
    killed = json.loads((folder / "progress.json").read_text())
    assert killed["sessions"] == 1 and killed["git"] == [run_info()["git"]] and killed["cpu_seconds"] > 0
    assert not (folder / "weights.pt").exists()

    x, y = data[:2]
    _, log = train_run(spec(model), x, y, folder, network=TinyNet)  # resumes at the second epoch
    assert log["sessions"] == 2 and len(log["sessions_git"]) == 2 and len(log["history"]) == 2
    assert log["cpu_seconds"] > killed["cpu_seconds"] and training_cost_complete(log)


class _AutocastProbe(TinyNet):
    seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            _AutocastProbe.seen.append(torch.is_autocast_enabled("cpu"))
        return super().forward(x)


@pytest.mark.parametrize("model", ["pgd_at", "asgt"])
def test_gpu_profile_code_path_runs_under_autocast_on_cpu(tmp_path, data, model):
    gpu = get_profile("cifar10", "gpu")
    assert gpu.training.amp and gpu.training.arch == "resnet18"
    run = replace(spec(model), training=replace(gpu.training, n_train=32, epochs=1, batch_size=16, train_steps=2))
    _AutocastProbe.seen = []
    classifier, log = train_run(run, *data[:2], tmp_path, network=_AutocastProbe)
    assert _AutocastProbe.seen and all(_AutocastProbe.seen)
    assert all(torch.isfinite(p).all() for p in classifier.model.parameters()) and log["epochs"] == 1
    _AutocastProbe.seen = []
    train_run(
        replace(run, training=replace(run.training, amp=False)), *data[:2], tmp_path / "fp32", network=_AutocastProbe
    )
    assert _AutocastProbe.seen and not any(_AutocastProbe.seen)


def test_an_interrupted_evaluation_resumes_after_its_last_finished_stage(tmp_path, data, monkeypatch):
    from art_sgt.reproduction import evaluate
    from art_sgt.reproduction.evaluate import kept_stages

    x, y, x_test, y_test = data
    run = spec("asgt")
    classifier, _ = train_run(run, x, y, tmp_path / "train", network=TinyNet)
    reference = evaluate.evaluate_run(run, classifier, x_test, y_test)  # one uninterrupted pass, nothing kept

    calls: list[float] = []
    original = evaluate._robustness

    def counted(*args, **kwargs):
        calls.append(args[3])
        return original(*args, **kwargs)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "_robustness", counted)
    monkeypatch.setattr(evaluate, "_saliency", interrupted)
    partial = tmp_path / "evaluation_partial.json"
    with pytest.raises(KeyboardInterrupt):
        evaluate.evaluate_run(run, classifier, x_test, y_test, partial=partial)
    kept = json.loads(partial.read_text())
    assert list(kept_stages(partial, run.evaluation_hash())) == list(kept["stages"])
    assert kept_stages(partial, "another") == {} and kept_stages(tmp_path / "none.json", "x") == {}
    assert kept["evaluation_hash"] == run.evaluation_hash()
    assert list(kept["stages"]) == ["pgd", "report eps 0.1", "report eps 0.2", "report eps 0.3"]
    assert calls == [0.1, 0.2, 0.3]

    monkeypatch.undo()
    monkeypatch.setattr(evaluate, "_robustness", counted)
    resumed = evaluate.evaluate_run(run, classifier, x_test, y_test, partial=partial)
    assert calls == [0.1, 0.2, 0.3]  # the finished stages were not run again

    def timeless(numbers):  # the numbers alone: not their timings, nor the code state each stage saw
        skip = ("cpu_seconds", "wall_seconds", "eval_seconds", "stage_git")
        out = {k: v for k, v in numbers.items() if k not in skip}
        out["robustness"] = {k: v for k, v in numbers["robustness"].items() if k != "seconds"}
        return out

    assert timeless(resumed) == timeless(reference)  # the same numbers as one uninterrupted pass
    assert set(resumed["cpu_seconds"]) == {"pgd", "report", "saliency"}
    assert resumed["robustness"]["checklist"] and resumed["worst_case"]["eps"] == [0.1, 0.2, 0.3]

    # A PGD stage kept by older code could count an image wrong on clean inputs as robust: it is not.
    stale = json.loads(partial.read_text())
    values = stale["stages"]["pgd"]["value"]
    values["clean"], values["pgd_paper_eps"] = "0" + values["clean"][1:], "1" + values["pgd_paper_eps"][1:]
    partial.write_text(json.dumps(stale))
    old_stage = evaluate.evaluate_run(run, classifier, x_test, y_test, partial=partial)["per_sample"]
    assert old_stage["clean"][0] == old_stage["pgd_paper_eps"][0] == "0"
    assert old_stage["pgd_paper_eps"][1:] == resumed["per_sample"]["pgd_paper_eps"][1:]

    other = replace(run, evaluation=replace(EVALUATION, n_eval=8))  # another configuration: the kept stages are stale
    calls.clear()
    evaluate.evaluate_run(other, classifier, x_test, y_test, partial=partial)
    assert calls == [0.1, 0.2, 0.3]


def test_an_evaluation_interrupted_within_a_worst_case_stage_resumes_after_its_last_attack_run(
    tmp_path, data, monkeypatch
):
    from art_sgt.evaluation import robustness
    from art_sgt.reproduction import evaluate

    x, y, x_test, y_test = data
    run = spec("asgt")
    classifier, _ = train_run(run, x, y, tmp_path / "train", network=TinyNet)
    reference = evaluate.evaluate_run(run, classifier, x_test, y_test)
    calls, original = [], robustness.run_attack

    def run_attack(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # the PGD stage's two runs, then two of the first worst-case stage
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(robustness, "run_attack", run_attack)
    partial = tmp_path / "evaluation_partial.json"
    with pytest.raises(KeyboardInterrupt):
        evaluate.evaluate_run(run, classifier, x_test, y_test, partial=partial)
    runs = tmp_path / "robustness_runs_eps0.1.json"
    assert len(json.loads(runs.read_text())["runs"]) == 2  # the first stage's two finished attack runs
    monkeypatch.undo()
    monkeypatch.setattr(robustness, "run_attack", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    calls.clear()
    resumed = evaluate.evaluate_run(run, classifier, x_test, y_test, partial=partial)
    assert not runs.exists()
    assert resumed["per_sample"] == reference["per_sample"] and resumed["flags"] == reference["flags"]
    assert resumed["robustness"]["accuracy"] == reference["robustness"]["accuracy"]
    monkeypatch.undo()
    monkeypatch.setattr(robustness, "run_attack", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    total = len(calls)
    calls.clear()
    evaluate.evaluate_run(run, classifier, x_test, y_test)
    assert total == len(calls) - 4  # neither the kept PGD stage (two runs) nor the two kept attack runs ran again


def test_a_run_trained_with_the_same_configuration_elsewhere_is_reused_not_retrained(tmp_path, data):
    from art_sgt.reproduction import cost_summary

    cache, runs = RunCache(tmp_path), [spec("standard"), spec("sgt")]
    run_pieces(cache, runs, lambda: data, network=TinyNet, log=_quiet)
    twins = [replace(r, profile="ablations-test", variant="default") for r in runs]  # same training, other folder
    assert [cache.twin(t) for t in twins] == [cache.folder(r) for r in runs]
    assert cache.twin(spec("sgt", seed=1)) is None and cache.twin(runs[0]) is None  # another seed; itself

    def no_data():
        raise AssertionError("a reused run must not load the data")

    assert run_pieces(cache, twins, no_data, network=TinyNet, log=_quiet) == {
        "standard[default],0": "reused",
        "sgt[default],0": "reused",
    }
    for run, twin in zip(runs, twins):
        assert (cache.folder(twin) / "weights.pt").read_bytes() == (cache.folder(run) / "weights.pt").read_bytes()
    records = cache.records(twins)
    assert [(r["name"], r["profile"], r["variant"]) for r in records] == [
        ("standard[default]", "ablations-test", "default"),
        ("sgt[default]", "ablations-test", "default"),
    ]
    assert records[1]["evaluation"] == cache.records(runs)[1]["evaluation"]
    assert records[1]["train"]["reused_from"] == str(cache.folder(runs[1]).relative_to(tmp_path))
    assert cost_summary(records, [])["measured_cpu_hours"] == 0  # nothing was spent on them
    assert cost_summary(cache.records(runs), [])["measured_cpu_hours"] > 0

    other = replace(runs[1], profile="third", evaluation=replace(EVALUATION, n_eval=8))  # weights yes, evaluation no
    assert run_pieces(cache, [other], lambda: data, network=TinyNet, log=_quiet) == {"sgt,0": "evaluated"}
    assert cache.records([other])[0]["evaluation"]["n_eval"] == 8


def test_a_piece_run_alone_trains_its_transfer_source_first_and_keeps_the_transfer_check(tmp_path, data):
    cache, asgt = RunCache(tmp_path), spec("asgt")
    lines: list[str] = []
    assert run_pieces(cache, [asgt], lambda: data, network=TinyNet, log=lines.append) == {"asgt,0": "trained"}
    assert any("first training its transfer source standard,0" in line for line in lines)
    assert cache.status(asgt.transfer_source) == "trained"  # weights only: its own evaluation waits for its piece
    record = cache.records([asgt])[0]
    assert record["evaluation"]["transfer_source"] == "standard"
    assert record["transfer_source_folder"] == str(cache.folder(asgt.transfer_source).relative_to(tmp_path))
    assert any(
        c["name"] == "transfer" and c["flagged"] is not None for c in record["evaluation"]["robustness"]["checklist"]
    )
    assert record["evaluation_config"]["transfer_source"] == asgt.transfer_source.training_hash()

    lines.clear()
    run_pieces(cache, [spec("sgt")], lambda: data, network=TinyNet, log=lines.append)  # the source is trained now
    assert not any("transfer source" in line for line in lines)

    profile = replace(get_profile("mnist", "quick"), name="test", claims=True)
    other_seed = {**record, "name": "standard", "model": "standard", "seed": 1}  # no seed done for both
    payload = assemble(profile, [other_seed, record], cache.manifest([asgt]), run_info())
    assert payload["comparisons"] == [] and "No comparison of ASGT" in readme_section([payload])


def test_every_stage_and_training_session_records_its_code(tmp_path, data):
    cache, run = RunCache(tmp_path), spec("standard")
    run_pieces(cache, [run], lambda: data, network=TinyNet, log=_quiet)
    record = cache.records([run])[0]
    state = run_info()["git"]
    assert record["train"]["sessions_git"] == [state]
    assert list(record["evaluation"]["stage_git"]) == [
        "pgd",
        "report eps 0.1",
        "report eps 0.2",
        "report eps 0.3",
        "saliency",
    ]
    assert all(g == state for g in record["evaluation"]["stage_git"].values())


def test_a_stage_records_the_code_state_it_started_with(tmp_path, monkeypatch):
    """A stage runs for hours: a commit (or an edit) made meanwhile must not be recorded as the code that ran."""
    import art_sgt.provenance
    from art_sgt.reproduction.evaluate import _Stages

    states = iter([{"commit": "a" * 40, "clean": False}, {"commit": "b" * 40, "clean": True}])
    monkeypatch.setattr(art_sgt.provenance, "git_state", lambda: next(states))
    stages = _Stages(tmp_path / "partial.json", "key")
    assert stages.run("pgd", lambda: art_sgt.provenance.git_state()["commit"]) == "b" * 40  # the tree moved on
    assert stages.done["pgd"]["git"] == {"commit": "a" * 40, "clean": False}


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("name", ["checkpoint/art_epoch.pt", "weights.pt"])
def test_a_crafted_checkpoint_or_weights_file_in_a_run_folder_runs_no_code(tmp_path, data, name):
    x, y = data[:2]
    folder, marker = tmp_path / "run", tmp_path / "ran"
    (folder / "checkpoint").mkdir(parents=True)
    torch.save({"model": _RunsCode(marker)}, folder / name)
    with pytest.raises(pickle.UnpicklingError):
        if name == "weights.pt":
            load_trained(spec("standard"), folder, network=TinyNet)
        else:
            train_run(spec("standard"), x, y, folder, network=TinyNet)
    assert not marker.exists()
