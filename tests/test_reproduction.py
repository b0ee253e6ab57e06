"""Smoke run of the reproduction code path on tiny synthetic data: four models, evaluation, figures, markdown."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from art_sgt import reproduction as rp
from art_sgt._provenance import run_info, write_json


def _task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class = the brightest of three horizontal bands of a 12x12 image; one-hot labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 1, 12, 12), dtype=np.float32) * 0.5
    for c in range(3):
        x[y == c, :, 4 * c : 4 * c + 4, :] += 0.5
    return x.astype(np.float32), np.eye(3, dtype=np.float32)[y]


def _net() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 144, 3)
    )


def test_four_models_evaluated_and_reported(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    x, y = _task(96, 0)
    x_test, y_test = _task(16, 1)
    profile = replace(
        rp.get_profile("mnist", "quick"), n_train=96, epochs=2, batch_size=32, lr=1e-2, train_steps=2, n_eval=16,
        eval_pgd_iter=2, n_report=8, report_eps=(0.2, 0.3), apgd_iter=2, square_queries=3, strong_factor=2,
    )
    payload = {"dataset": "mnist", "profile": "quick", "run": run_info(0, "cpu"), "setup": rp.describe(profile, 96),
               "results": {}}
    objects = {}
    for name in rp.MODELS:
        classifier, seconds = rp.train_model(name, x, y, profile, seed=0, network=_net(), verbose=False)
        transfer = objects.get("standard", {}).get("classifier")
        numbers, objs = rp.evaluate_model(classifier, x_test, y_test, "mnist", profile, transfer, 0, verbose=False)
        numbers["train_seconds"] = seconds
        payload["results"][name] = numbers
        objects[name] = {**objs, "classifier": classifier}
    figures = rp.write_figures(objects, x_test[:8], tmp_path / "fig")
    write_json(tmp_path / "r.json", payload)
    text = rp.write_markdown(payload, tmp_path / "r.md")

    standard = payload["results"]["standard"]
    assert standard["clean"] > 0.6  # the tiny task is learnt, so the numbers below mean something
    for name in rp.MODELS:
        r = payload["results"][name]
        assert 0.0 <= r["worst_case_paper_eps"] <= r["clean"] + 1e-9
        assert r["worst_case_standard_eps"] <= r["worst_case_paper_eps"] + 1e-9  # per-sample min, larger eps
        assert {c["name"] for c in r["robustness"]["checklist"]} >= {"black_box", "large_eps", "transfer"}
        assert 0.0 <= r["saliency"]["sparseness"] <= 1.0
        assert f"| {name} | {r['clean']:.3f} | {r['pgd_paper_eps']:.3f} |" in text
    transfer_flags = [c["flagged"] for c in standard["robustness"]["checklist"] if c["name"] == "transfer"]
    assert transfer_flags == [None]  # the standard model is the transfer source: not checked against itself
    assert "ASGT vs pgd_at under PGD at eps 0.2" in text and "SGT alone vs standard" in text
    gain = 100 * (payload["results"]["asgt"]["pgd_paper_eps"] - payload["results"]["pgd_at"]["pgd_paper_eps"])
    assert f"{gain:+.1f} points" in text  # the statement is generated from the numbers
    assert all((tmp_path / "fig" / f"{k}.png").stat().st_size > 0 for k in figures)
    assert json.loads((tmp_path / "r.json").read_text())["run"]["seed"] == 0


def test_profiles_and_names_are_checked() -> None:
    assert rp.get_profile("cifar10", "full").arch == "resnet18"
    assert rp.get_profile("mnist", "quick", epochs=7, n_train=None).epochs == 7
    with pytest.raises(ValueError, match="dataset and profile"):
        rp.get_profile("imagenet", "quick")
    x, y = _task(8, 0)
    with pytest.raises(ValueError, match="name must be one of"):
        rp.train_model("fgsm_at", x, y, rp.get_profile("mnist", "quick"), network=_net())
