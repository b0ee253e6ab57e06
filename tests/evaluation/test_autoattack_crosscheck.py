"""The report's ``autoattack`` worst case against torchattacks' AutoAttack on a small trained model, per image.

Both sides run APGD-CE, APGD-T, FAB-T and Square as a cascade, Square with 1000 queries instead of 5000 (the
benchmark ``benchmarks/bench_autoattack.py`` compares the full budgets on MNIST).

Needs the optional extra (``pip install art-sgt[autoattack]``): skipped without torchattacks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.estimators.classification import PyTorchClassifier

from art_sgt.evaluation import AttackBudget, robustness_report

torchattacks = pytest.importorskip("torchattacks")

CLASSES, SHAPE, EPS, SQUARE = 5, (1, 8, 8), 0.12, 1000


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Five classes, each a fixed random 8x8 pattern, plus pixel noise."""
    prototypes = np.random.default_rng(100).uniform(0.2, 0.8, (CLASSES, *SHAPE))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = np.clip(prototypes[y] + rng.normal(0, 0.12, (n, *SHAPE)), 0, 1)
    return x.astype(np.float32), y.astype(np.int64)


def _trained_classifier() -> PyTorchClassifier:
    """A small CNN trained for a few hundred Adam steps on clean data (seeded)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 64, CLASSES)
    )
    x, y = (torch.as_tensor(a) for a in _data(1000, seed=1))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(200):
        batch = slice(step * 100 % 1000, step * 100 % 1000 + 100)
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimiser.step()
    return PyTorchClassifier(
        model.eval(), loss=torch.nn.CrossEntropyLoss(), input_shape=SHAPE, nb_classes=CLASSES, clip_values=(0.0, 1.0)
    )


def test_autoattack_preset_breaks_every_image_torchattacks_autoattack_breaks() -> None:
    classifier = _trained_classifier()
    x, y = _data(100, seed=2)
    # Square at 1000 queries on both sides keeps the test fast; benchmarks/bench_autoattack.py compares at 5000.
    budget = AttackBudget.preset("autoattack").replace(square_max_iter=SQUARE)
    report = robustness_report(classifier, x, y, eps=(EPS,), budget=budget, checklist=False, verbose=False)
    assert report.attacks == list(budget.attacks)  # FAB-T included: torchattacks is installed
    ours = np.asarray(report.worst_case_correct[0])

    attack = torchattacks.AutoAttack(
        classifier.model, norm="Linf", eps=EPS, version="standard", n_classes=CLASSES, seed=0
    )
    square = attack._autoattack.attacks[-1]  # torchattacks keeps its four attacks in a MultiAttack, Square last
    assert type(square).__name__ == "Square" and square.n_queries == 5000
    square.n_queries = SQUARE
    x_t, y_t = torch.as_tensor(x), torch.as_tensor(y)
    with torch.no_grad():
        x_adv = attack(x_t, y_t)
        theirs = (classifier.model(x_adv).argmax(1) == y_t).numpy() & (classifier.model(x_t).argmax(1) == y_t).numpy()
    assert float((x_adv - x_t).abs().max()) <= EPS + 1e-6
    assert 0.2 < theirs.mean() < 0.9  # the eps leaves some images robust and breaks others
    missed = np.flatnonzero(ours & ~theirs)
    assert missed.size == 0, f"images AutoAttack breaks and the report does not: {missed.tolist()}"
    assert abs(report.worst_case[0] - float(theirs.mean())) <= 0.01  # within one point
