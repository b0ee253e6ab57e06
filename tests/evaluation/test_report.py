"""Tests of art_sgt.evaluation.report: SaliencyEvaluator end to end on a tiny classifier, JSON output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from art_sgt.evaluation import (
    METRICS,
    MaskingCurve,
    SaliencyEvaluator,
    SaliencyReport,
    StabilityResult,
    attribute,
    masking_curve,
    summarise,
)
from tests.evaluation.conftest import linear_model


def test_evaluator_runs_every_metric_and_serialises(trained, tmp_path):
    clf, (x, y) = trained
    x_copy = x.copy()
    options = {
        "stability": {"eps": (0.0, 0.1), "max_iter": 3},
        "sensitivity": {"n_perturb": 3},
        "infidelity": {"n_perturb": 3},
        "masking": {"fractions": (0.0, 0.3, 0.6), "fill": "uniform"},
    }
    evaluator = SaliencyEvaluator(clf, ["saliency", "input_x_gradient"], METRICS, options=options, n_examples=3)
    report = evaluator.evaluate(x, y)
    assert isinstance(report, SaliencyReport) and report.methods == ["saliency", "input_x_gradient"]
    assert report.accuracy > 0.9 and report.n_samples == len(x)
    saliency = report.results["saliency"]
    assert set(saliency) == set(METRICS)
    assert isinstance(saliency["masking"], MaskingCurve) and isinstance(saliency["stability"], StabilityResult)
    assert saliency["stability"].spearman[0] == 1.0
    assert report.maps["saliency"].shape == (3, 1, 8, 8)
    # The shared maps give the same masking curve as the functional core on its own.
    direct = masking_curve(clf, x, y, attribute(clf, x, y, "saliency"), **options["masking"])
    assert saliency["masking"] == direct
    text = report.to_json(tmp_path / "out" / "report.json")
    loaded = json.loads((tmp_path / "out" / "report.json").read_text())
    assert json.loads(text) == loaded and "maps" not in loaded
    assert loaded["results"]["saliency"]["masking"]["summary"]["auc_morf_accuracy"] == pytest.approx(direct.auc("morf"))
    assert set(loaded["summary"]["input_x_gradient"]) >= {
        "auc_morf_accuracy",
        "sparseness",
        "stability_spearman",
    }
    assert set(report.seconds["saliency"]) == {"attribution", *METRICS}
    np.testing.assert_array_equal(x, x_copy)


def test_nan_becomes_null_and_summarise():
    assert summarise(torch.tensor([float("nan"), 1.0, 3.0])) == {
        "mean": 2.0,
        "std": 1.0,
        "median": 2.0,
        "nan": 1,
    }
    report = SaliencyEvaluator(linear_model(), ["gradient"], ["complexity"]).evaluate(
        np.zeros((2, 1, 2, 5), np.float32) + 0.5, np.zeros(2)
    )
    assert json.loads(report.to_json())["results"]["gradient"]["complexity"]["nan"] == 0
    report.results["gradient"]["complexity"]["mean"] = float("nan")
    assert json.loads(report.to_json())["results"]["gradient"]["complexity"]["mean"] is None


def test_merge(ones_images):
    y = np.zeros(3)
    first = SaliencyEvaluator(linear_model(), ["gradient"], ["sparseness"]).evaluate(ones_images, y)
    second = SaliencyEvaluator(linear_model(), ["saliency"], ["complexity"], seed=1).evaluate(ones_images, y)
    merged = first.merge(second)
    assert merged.methods == ["gradient", "saliency"] and merged.metrics == ["sparseness", "complexity"]
    assert merged.results["saliency"] is second.results["saliency"]
    assert [part["seed"] for part in merged.config["parts"]] == [0, 1]
    with pytest.raises(ValueError, match="other must not repeat methods"):
        first.merge(first)


def test_bad_arguments():
    with pytest.raises(ValueError, match="metrics must be one of"):
        SaliencyEvaluator(linear_model(), ["gradient"], ["sparsity"])
    with pytest.raises(ValueError, match="options must be one of"):
        SaliencyEvaluator(linear_model(), ["gradient"], ["masking"], options={"mask": {}})
    with pytest.raises(TypeError, match="metrics 'stability' needs classifier"):
        SaliencyEvaluator(linear_model(), ["gradient"], ["stability"])
    with pytest.raises(ValueError, match="method must be one of"):
        SaliencyEvaluator(linear_model(), ["nonsense"])
    with pytest.raises(ValueError, match="x and y must have the same length"):
        SaliencyEvaluator(linear_model(), ["gradient"], ["sparseness"]).evaluate(np.ones((2, 10), np.float32), [0])


def _all_black_report():
    from tests.conftest import make_classifier, make_task

    x, y = make_task(n=6)
    options = {"stability": {"eps": (0.0, 0.05), "max_iter": 2}, "masking": {"fractions": (0.0, 0.5)}}
    evaluator = SaliencyEvaluator(make_classifier(), ["saliency", "integrated_gradients"], METRICS, options=options)
    with pytest.warns(RuntimeWarning):  # the evaluators below warn about the undefined samples themselves
        return evaluator.evaluate(np.zeros_like(x), y)


def test_summary_of_all_black_images_warns_and_says_what_each_entry_rests_on():
    report = _all_black_report()  # integrated gradients of a black image is a zero map
    with pytest.warns(RuntimeWarning, match=r"summary: undefined.*integrated_gradients complexity") as caught:
        summary = report.summary()
    support = report.support()
    ig, ig_support = summary["integrated_gradients"], support["integrated_gradients"]
    assert set(support) == set(summary) and all(set(support[m]) == set(summary[m]) for m in summary)
    for entry in ("complexity", "stability_spearman", "randomization_spearman", "random_logit_spearman"):
        assert np.isnan(ig[entry]) and ig_support[entry] == 0, entry
        assert f"integrated_gradients {entry}" in str(caught[0].message)
    assert ig_support["sparseness"] == 6 and ig_support["stability_accuracy"] == 6
    assert all(0 < n <= 6 for n in support["saliency"].values())  # gradients of a black image are not zero
    loaded = json.loads(report.to_json())
    assert loaded["support"] == support and loaded["summary"]["integrated_gradients"]["complexity"] is None


def test_support_of_stability_counts_only_the_predictions_the_attack_kept(trained):
    clf, (x, y) = trained
    options = {"stability": {"eps": (0.0, 1.0), "max_iter": 5}}
    with pytest.warns(RuntimeWarning, match="changed every prediction"):
        report = SaliencyEvaluator(clf, ["saliency"], ["stability"], options=options).evaluate(x[:1], y[:1])
    with pytest.warns(RuntimeWarning, match="saliency stability_spearman"):
        assert np.isnan(report.summary()["saliency"]["stability_spearman"])
    assert report.support()["saliency"] == {
        "stability_accuracy": 1,
        "stability_flipped": 1,
        "stability_spearman": 0,
        "stability_top_k": 0,
    }
