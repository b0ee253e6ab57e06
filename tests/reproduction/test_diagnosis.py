"""The epoch-by-epoch trace of a saliency-guided adversarial training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from art_sgt.reproduction.diagnosis import map_statistics, trace_run
from art_sgt.reproduction.training import build_classifier
from tests.reproduction.conftest import TRAINING, TinyNet, band_task


def test_map_statistics_known_answers():
    constant, one_hot = np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2))
    one_hot[0, 0, 1, 1] = 3.0
    assert map_statistics(constant) == pytest.approx({"entropy": 1.0, "sparseness": 0.0}, abs=1e-6)
    assert map_statistics(one_hot) == pytest.approx({"entropy": 0.0, "sparseness": 0.75}, abs=1e-6)
    both = map_statistics(np.concatenate([constant, one_hot]))
    assert both["entropy"] == pytest.approx(0.5, abs=1e-6)


def _trainer(classifier):
    from art.attacks.evasion import ProjectedGradientDescent

    from art_sgt.trainers import SaliencyGuidedAdversarialTrainer

    attack = ProjectedGradientDescent(classifier, eps=0.3, eps_step=0.15, max_iter=2, num_random_init=1, verbose=False)
    return SaliencyGuidedAdversarialTrainer(classifier, attack, mask_fraction=0.5, kl_weight=1.0)


def test_the_trace_records_every_epoch_and_ends_with_the_weights_of_one_uninterrupted_run(tmp_path):
    x, y = band_task(64, 0)
    x_val, y_val = band_task(16, 2)
    probe = band_task(12, 1)
    traced = build_classifier(TRAINING, TinyNet, seed=0)
    result = trace_run(
        lambda: _trainer(traced),
        x,
        y,
        (x_val, y_val),
        probe,
        tmp_path / "trace",
        epochs=2,
        seed=3,
        batch_size=16,
        log=lambda _: None,
    )
    assert [r["epoch"] for r in result["epochs"]] == [1, 2]
    for record in result["epochs"]:
        assert 0.0 <= record["entropy"] <= 1.0 and 0.0 <= record["sparseness"] <= 1.0
        assert np.isfinite(record["morf_gain"]) and 0.0 <= record["robust_val_accuracy"] <= 1.0
    check = result["obfuscation"]
    assert check["worst_case"] <= min(check["pgd"], check["square"])

    plain = build_classifier(TRAINING, TinyNet, seed=0)
    _trainer(plain).fit(x, y, batch_size=16, nb_epochs=2, seed=3, verbose=False, robust_validation=(x_val, y_val))
    for a, b in zip(traced.model.state_dict().values(), plain.model.state_dict().values()):
        assert torch.equal(a, b)


def _script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "diagnose_asgt.py"
    spec = importlib.util.spec_from_file_location("diagnose_asgt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_diagnosis_script_skips_a_finished_trace_and_refuses_one_of_another_length(tmp_path, capsys):
    import argparse
    import json

    script = _script()
    done = tmp_path / "paper" / "seed0.json"
    done.parent.mkdir()
    done.write_text(json.dumps({"n_train": 100, "epochs": [{"epoch": 1}, {"epoch": 2}]}))
    args = argparse.Namespace(out=str(tmp_path), n_train=100, epochs=2)
    script.run(args, "paper", 0, data=())  # no data needed: nothing is trained
    assert "done, skipped" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--n-train 100 --epochs 2"):
        script.run(argparse.Namespace(out=str(tmp_path), n_train=100, epochs=3), "paper", 0, data=())
