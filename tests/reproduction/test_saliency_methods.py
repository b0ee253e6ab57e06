"""The report's saliency columns recomputed per attribution method: the plain gradient must match the report."""

from __future__ import annotations

import json

import pytest

import art_sgt.reproduction.saliency_methods as saliency_methods
from art_sgt.datasets import random_subset
from art_sgt.reproduction import RunCache, run_pieces
from art_sgt.reproduction.saliency_methods import STORE, compare_methods, methods_markdown
from tests.reproduction.conftest import EVALUATION, TinyNet, spec


def _report_images(data):
    """The report's test images: the evaluation's seeded random subset of the test set."""
    index = random_subset(len(data[2]), EVALUATION.n_report, seed=EVALUATION.subset_seed)
    return data[2][index], data[3][index]


def test_the_plain_gradient_comes_back_equal_and_every_method_and_pair_is_measured(tmp_path, data):
    cache, runs = RunCache(tmp_path), [spec("standard"), spec("sgt"), spec("asgt")]
    run_pieces(cache, runs[::2], lambda: data, network=TinyNet, log=lambda _line: None)  # sgt left undone
    x, y = _report_images(data)
    lines = []
    payload = compare_methods(
        cache,
        runs,
        x,
        y,
        ("saliency", "integrated_gradients"),
        EVALUATION.masking_fill,
        network=TinyNet,
        log=lines.append,
    )
    assert [(r["model"], r["seed"]) for r in payload["runs"]] == [("standard", 0), ("asgt", 0)]
    assert payload["matches_report"] is True and payload["largest_difference"] <= 1e-6
    assert len(lines) == 4 and lines[0].startswith("standard,0 saliency: morf_gain ")
    ig = payload["runs"][1]["methods"]["integrated_gradients"]
    assert set(ig) == {"morf_gain", "lerf_gain", "sparseness"} and ig != payload["runs"][1]["methods"]["saliency"]
    assert [(c["a"], c["b"], c["method"]) for c in payload["comparisons"]][::3] == [
        ("asgt", "standard", "saliency"),
        ("asgt", "standard", "integrated_gradients"),
    ]
    assert all("no interval" in c["verdict"] for c in payload["comparisons"])  # one seed
    text = methods_markdown(payload, "T", "P.")
    assert "match the cached report's numbers: True" in text and "| ASGT | integrated_gradients | 1 |" in text

    other = compare_methods(
        cache, runs, data[2], data[3], ("saliency",), EVALUATION.masking_fill, network=TinyNet, log=lambda _line: None
    )
    assert other["matches_report"] is None  # other images than the report's: nothing to check against
    assert "not checked against the report" in methods_markdown(other, "T", "P.")


def test_a_drift_from_the_report_is_caught(tmp_path, data):
    cache, run = RunCache(tmp_path), spec("standard")
    run_pieces(cache, [run], lambda: data, network=TinyNet, log=lambda _line: None)
    x, y = _report_images(data)
    payload = compare_methods(cache, [run], x, y, ("saliency",), "uniform", network=TinyNet, log=lambda _line: None)
    assert EVALUATION.masking_fill != "uniform" and payload["matches_report"] is False  # another fill: not the report


@pytest.mark.parametrize(
    ("methods", "n_y", "match"),
    [(("integrated_gradients",), 8, "methods must start with 'saliency'"), (("saliency",), 7, "same number")],
)
def test_bad_inputs_are_refused(tmp_path, data, methods, n_y, match):
    with pytest.raises(ValueError, match=match):
        compare_methods(RunCache(tmp_path), [], data[2][:8], data[3][:n_y], methods)


def test_numbers_are_kept_per_run_and_only_what_is_new_is_measured(tmp_path, data, monkeypatch):
    cache, runs = RunCache(tmp_path), [spec("standard"), spec("asgt")]
    run_pieces(cache, runs, lambda: data, network=TinyNet, log=lambda _line: None)
    x, y = _report_images(data)
    fill = EVALUATION.masking_fill
    first = compare_methods(cache, runs[:1], x, y, ("saliency",), fill, network=TinyNet, log=lambda _line: None)
    assert (cache.folder(runs[0]) / STORE).is_file() and first["runs"][0]["reused"] == []
    assert len(first["code"]["commits"]) == 1 and first["code"]["commits"][0] != "None"

    measured = []
    real = saliency_methods.map_quality

    def counting(classifier, x, y, method, fill, seed):
        measured.append(method)
        return real(classifier, x, y, method, fill, seed)

    monkeypatch.setattr(saliency_methods, "map_quality", counting)
    lines = []
    again = compare_methods(
        cache, runs, x, y, ("saliency", "integrated_gradients"), fill, network=TinyNet, log=lines.append
    )
    assert measured == ["integrated_gradients", "saliency", "integrated_gradients"]  # standard's gradient is kept
    assert again["runs"][0]["reused"] == ["saliency"] and again["runs"][1]["reused"] == []
    assert again["runs"][0]["methods"]["saliency"] == first["runs"][0]["methods"]["saliency"]
    assert lines[0].endswith("kept from an earlier run)") and "kept" not in lines[1]
    assert again["matches_report"] is True  # a kept number is still checked against the report

    measured.clear()
    compare_methods(cache, runs, x, y, ("saliency",), fill, network=TinyNet, log=lambda _line: None)
    assert measured == []  # everything kept
    compare_methods(cache, runs, x[:-1], y[:-1], ("saliency",), fill, network=TinyNet, log=lambda _line: None)
    assert measured == ["saliency", "saliency"]  # other images: measured, not taken from the store
    measured.clear()
    compare_methods(cache, runs, x, y, ("saliency",), "uniform", network=TinyNet, log=lambda _line: None)
    assert measured == ["saliency", "saliency"]  # another fill
    measured.clear()
    compare_methods(cache, runs, x, y, ("saliency",), fill, network=TinyNet, log=lambda _line: None, reuse=False)
    assert measured == ["saliency", "saliency"]  # asked to measure again
    kept = json.loads((cache.folder(runs[1]) / STORE).read_text())
    assert len(kept) == 4 and any(k.startswith("integrated_gradients|") for k in kept)  # the other entries stay
