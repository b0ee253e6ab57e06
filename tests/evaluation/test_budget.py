"""AttackBudget: the presets' values, every field checked by name, replace, and the report it drives."""

from __future__ import annotations

import dataclasses
import doctest

import numpy as np
import pytest
import torch
from art.estimators.classification import PyTorchClassifier

from art_sgt.evaluation import budget as budget_module
from art_sgt.evaluation import robustness_report
from art_sgt.evaluation.budget import ATTACKS, PRESETS, AttackBudget

#: The budget's count fields, by today's names, and the presets' values (Carlini et al. 2019 for "standard",
#: AutoAttack's standard version for "autoattack"), written out.
FIELDS = (
    "pgd_max_iter",
    "pgd_restarts",
    "apgd_max_iter",
    "apgd_restarts",
    "apgd_targets",
    "fab_max_iter",
    "square_max_iter",
    "square_restarts",
    "strong_factor",
    "large_eps_iter",
)
EXPECTED = {
    "quick": dict(zip(FIELDS, (20, 1, 25, 1, 3, 25, 1000, 1, 4, 50))),
    "standard": dict(zip(FIELDS, (50, 2, 100, 1, 3, 100, 5000, 1, 4, 100))),
    "autoattack": dict(zip(FIELDS, (100, 5, 100, 1, 9, 100, 5000, 1, 2, 100))),
}
EXPECTED_ATTACKS = {
    "quick": ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square"),
    "standard": ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square"),
    "autoattack": ("apgd-ce", "apgd-t", "fab-t", "square"),
}


@pytest.mark.parametrize("name", PRESETS)
def test_presets_hold_the_stated_values(name) -> None:
    budget = AttackBudget.preset(name)
    assert budget.name == name
    assert budget.to_dict() == EXPECTED[name]
    assert budget.attacks == EXPECTED_ATTACKS[name]
    assert budget == AttackBudget(**EXPECTED[name], attacks=EXPECTED_ATTACKS[name])  # the name is not compared


def test_preset_names_and_attack_names() -> None:
    assert PRESETS == ("quick", "standard", "autoattack")
    assert ATTACKS == ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square")
    with pytest.raises(ValueError, match="budget must be one of 'quick', 'standard', 'autoattack', got 'fast'"):
        AttackBudget.preset("fast")


def test_the_fields_are_the_counts_the_attacks_and_the_name() -> None:
    assert [f.name for f in dataclasses.fields(AttackBudget)] == [*FIELDS, "attacks", "name"]


@pytest.mark.parametrize("field", FIELDS)
def test_every_count_refuses_a_bad_value_by_name(field) -> None:
    standard = AttackBudget.preset("standard")
    with pytest.raises(ValueError, match=f"^{field} must be an integer >= "):
        standard.replace(**{field: -1})
    with pytest.raises(TypeError, match=f"^{field} must be an integer"):
        standard.replace(**{field: 2.5})
    with pytest.raises(TypeError, match=f"^{field} must be an integer"):
        standard.replace(**{field: True})


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"pgd_max_iter": 0}, ValueError, "pgd_max_iter must be an integer >= 1, got 0"),
        ({"fab_max_iter": 0}, ValueError, "fab_max_iter must be an integer >= 1"),
        ({"apgd_targets": 0}, ValueError, "apgd_targets must be an integer >= 1"),
        ({"strong_factor": 1}, ValueError, "strong_factor must be an integer >= 2, got 1"),
        ({"pgd_restarts": -1}, ValueError, "pgd_restarts must be an integer >= 0, got -1"),
        ({"attacks": ()}, ValueError, "attacks must name at least one attack"),
        ({"attacks": ("pgd", "cw")}, ValueError, "attacks must hold names from .*got 'cw'"),
        ({"attacks": ("pgd", "pgd")}, ValueError, "attacks must not repeat a name"),
        ({"attacks": 3}, TypeError, "attacks must be a name or a sequence of names"),
        ({"name": ""}, ValueError, "name must be a non-empty string"),
        ({"name": None}, TypeError, "name must be a non-empty string"),
    ],
)
def test_bad_fields_name_the_field(fields, error, message) -> None:
    with pytest.raises(error, match=message):
        AttackBudget.preset("quick").replace(**fields)
    with pytest.raises(error, match=message):  # the constructor checks the same way
        AttackBudget(**{**EXPECTED["quick"], "attacks": EXPECTED_ATTACKS["quick"], **fields})


def test_zero_pgd_restarts_is_a_valid_budget() -> None:
    assert AttackBudget.preset("quick").replace(pgd_restarts=0).pgd_restarts == 0


def test_replace_checks_the_field_names_and_keeps_the_name() -> None:
    quick = AttackBudget.preset("quick")
    with pytest.raises(TypeError, match="fields must be names of AttackBudget's fields .* got 'apgd_iters'"):
        quick.replace(apgd_iters=5)
    changed = quick.replace(apgd_max_iter=np.int64(7), attacks="pgd")
    assert changed.name == "quick" and changed.apgd_max_iter == 7 and type(changed.apgd_max_iter) is int
    assert changed.attacks == ("pgd",)
    assert changed != quick and quick.apgd_max_iter == 25  # a new budget; the preset is unchanged
    assert quick.replace(name="mine").name == "mine" and quick.replace(name="mine") == quick
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.pgd_max_iter = 3  # type: ignore[misc]


def test_a_budget_is_hashable_and_its_attacks_a_tuple() -> None:
    budget = AttackBudget(**EXPECTED["standard"], attacks=["pgd", "square"])
    assert budget.attacks == ("pgd", "square") and budget.name == "custom"
    assert len({budget, AttackBudget.preset("standard").replace(attacks=("pgd", "square"))}) == 1


def test_cost_bounds_each_attack_and_check() -> None:
    budget = AttackBudget.preset("standard")
    cost = budget.cost(10, 3, ATTACKS, checklist=True)
    assert cost["pgd"] == 50 * 2 * 10 * 3
    assert cost["apgd-t"] == 100 * 1 * 3 * 10 * 3
    assert cost["fab-t"] == 2 * 100 * 3 * 10 * 3
    assert cost["square"] == 5000 * 10 * 3
    assert cost["check_pgd_strong"] == 4 * 50 * 3 * 10 and cost["check_fgsm"] == 10
    assert cost["check_large_eps"] == 100 * 10 and cost["check_square"] == 5000 * 10
    assert budget.replace(pgd_restarts=0).cost(1, 1, ["pgd"], checklist=False) == {"pgd": 50}  # one run from x


def test_the_module_examples_run() -> None:
    assert doctest.testmod(budget_module, optionflags=doctest.ELLIPSIS).failed == 0


def _tiny() -> tuple[PyTorchClassifier, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    classifier = PyTorchClassifier(
        model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=3, clip_values=(0.0, 1.0)
    )
    x = np.random.default_rng(0).random((12, 1, 8, 8), dtype=np.float32)
    return classifier, x, classifier.predict(x).argmax(1)


def test_a_preset_name_and_the_equal_budget_give_the_same_report() -> None:
    classifier, x, y = _tiny()
    small = dict(pgd_max_iter=3, apgd_max_iter=3, apgd_targets=2, square_max_iter=10, large_eps_iter=3)
    common = dict(eps=(0.05, 0.2), checklist=True, seed=1, verbose=False)
    by_name = robustness_report(classifier, x, y, budget="quick", **common)
    by_object = robustness_report(classifier, x, y, budget=AttackBudget.preset("quick"), **common)
    hand_built = AttackBudget(**EXPECTED["quick"], attacks=EXPECTED_ATTACKS["quick"])
    by_hand = robustness_report(classifier, x, y, budget=hand_built, **common)
    for report in (by_object, by_hand):
        ours, theirs = report.to_dict(), by_name.to_dict()
        ours["seconds"] = theirs["seconds"] = None
        ours["params"]["budget"] = theirs["params"]["budget"]  # "custom" for the hand-built one
        assert ours == theirs
    assert by_name.params["budget"] == "quick" and by_hand.params["budget"] == "custom"
    assert {k: by_name.params[k] for k in EXPECTED["quick"]} == EXPECTED["quick"]
    assert by_name.attacks == list(EXPECTED_ATTACKS["quick"])
    # A changed field reaches the attacks, and the report records it under the preset's name.
    changed = robustness_report(classifier, x, y, budget=AttackBudget.preset("quick").replace(**small), **common)
    assert changed.params["budget"] == "quick" and {k: changed.params[k] for k in small} == small
    assert changed.params["cost"]["pgd"] == 3 * 1 * 12 * 2


def test_explicit_attacks_override_the_budgets_and_are_checked() -> None:
    classifier, x, y = _tiny()
    budget = AttackBudget.preset("quick").replace(pgd_max_iter=2)
    report = robustness_report(
        classifier, x, y, eps=0.1, attacks=("pgd",), budget=budget, checklist=False, verbose=False
    )
    assert report.attacks == ["pgd"] and report.params["pgd_max_iter"] == 2
    with pytest.raises(ValueError, match="attacks must hold names"):
        robustness_report(classifier, x, y, eps=0.1, attacks=("pgd", "cw"), budget=budget, verbose=False)
    with pytest.raises(TypeError, match="budget must be an AttackBudget or the name of a preset"):
        robustness_report(classifier, x, y, eps=0.1, budget=EXPECTED["quick"], verbose=False)
