"""The attack budget of the robustness report: which attacks run by default, and what each may spend.

An :class:`AttackBudget` is a frozen value checked once when it is built (as ART's attacks check their
``attack_params`` in ``_check_params``), so :func:`~art_sgt.evaluation.robustness.robustness_report` takes one object
instead of a parameter per iteration count. Three presets cover the usual cases (:data:`PRESETS`):

- ``"quick"``: for smoke runs only; several of its checks are below the budget at which they are real tests.
- ``"standard"``: Carlini et al. 2019: PGD 50 steps with 2 restarts, APGD 100 steps, Square 5000 queries.
- ``"autoattack"``: AutoAttack's standard version (Croce and Hein 2020): APGD-CE, APGD-T, FAB-T and Square, APGD and
  FAB 100 steps against 9 target classes, Square 5000 queries; its checklist PGD takes 100 steps with 5 restarts.

A preset is changed field by field with :meth:`AttackBudget.replace`, which keeps the preset's name (the report
records it beside the values it ran):

>>> budget = AttackBudget.preset("standard").replace(apgd_max_iter=50)
>>> budget.name, budget.apgd_max_iter, budget.pgd_max_iter
('standard', 50, 50)
>>> budget.replace(apgd_iters=50)
Traceback (most recent call last):
...
TypeError: fields must be names of AttackBudget's fields (pgd_max_iter, ...), got 'apgd_iters'.

| Paper link: https://arxiv.org/abs/1902.06705 (Carlini et al.), https://arxiv.org/abs/2003.01690 (AutoAttack)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from art_sgt._validation import check_choice, check_non_negative_int, check_positive_int

__all__ = ["ATTACKS", "PRESETS", "AttackBudget"]

#: Attack names the robustness report runs: PGD, APGD with the cross-entropy and the DLR loss, APGD-T (targeted
#: APGD with the DLR loss against the ``apgd_targets`` most likely other classes, as in AutoAttack), FAB-T
#: (torchattacks' multi-targeted FAB against as many targets; needs ``pip install art-sgt[autoattack]``) and Square.
ATTACKS = ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square")

#: Names of the preset budgets, for :meth:`AttackBudget.preset`.
PRESETS = ("quick", "standard", "autoattack")

# The presets side by side, one row per field, one column per name of PRESETS.
_PRESET_VALUES: dict[str, tuple[Any, Any, Any]] = {  # field: (quick, standard, autoattack)
    "pgd_max_iter": (20, 50, 100),
    "pgd_restarts": (1, 2, 5),
    "apgd_max_iter": (25, 100, 100),
    "apgd_restarts": (1, 1, 1),
    "apgd_targets": (3, 3, 9),
    "fab_max_iter": (25, 100, 100),
    "square_max_iter": (1000, 5000, 5000),
    "square_restarts": (1, 1, 1),
    "strong_factor": (4, 4, 2),
    "large_eps_iter": (50, 100, 100),
    "attacks": (
        ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square"),
        ("pgd", "apgd-ce", "apgd-dlr", "apgd-t", "square"),
        ("apgd-ce", "apgd-t", "fab-t", "square"),
    ),
}


@dataclass(frozen=True, kw_only=True)
class AttackBudget:
    """What the robustness report's attacks and checks may spend, and which attacks it runs by default.

    Every field is checked when the budget is built; a wrong one raises an error that names it.

    :param pgd_max_iter: PGD iterations (of step ``2.5 eps / pgd_max_iter``, Madry et al.), >= 1.
    :param pgd_restarts: PGD random restarts (ART's ``num_random_init``; 0: one run from the input itself), >= 0.
    :param apgd_max_iter: APGD iterations, >= 1.
    :param apgd_restarts: APGD restarts (ART's ``nb_random_init``), >= 1.
    :param apgd_targets: Target classes of APGD-T per sample, the most likely classes other than the label (capped
        at ``nb_classes - 1``); AutoAttack uses 9. FAB-T attacks as many.
    :param fab_max_iter: FAB-T steps per target, >= 1.
    :param square_max_iter: Square queries per restart, >= 1.
    :param square_restarts: Square restarts, >= 1.
    :param strong_factor: Iteration multiplier of the stronger PGD of the checklist's ``more_iterations`` check, >= 2.
    :param large_eps_iter: PGD iterations of the checklist's ``large_eps`` check, >= 1.
    :param attacks: The attacks the report runs when it is not given its own, in the order a cascade runs them
        (names from :data:`ATTACKS`, each once; a single name is taken as a one-element tuple).
    :param name: The label the report records as ``params["budget"]``: a preset's name, kept by :meth:`replace`;
        ``"custom"`` by default. Not compared: two budgets of the same values are equal whatever their names.

    >>> AttackBudget.preset("autoattack").attacks
    ('apgd-ce', 'apgd-t', 'fab-t', 'square')
    >>> AttackBudget.preset("quick").replace(strong_factor=1)
    Traceback (most recent call last):
    ...
    ValueError: strong_factor must be an integer >= 2, got 1.
    """

    pgd_max_iter: int
    pgd_restarts: int
    apgd_max_iter: int
    apgd_restarts: int
    apgd_targets: int
    fab_max_iter: int
    square_max_iter: int
    square_restarts: int
    strong_factor: int
    large_eps_iter: int
    attacks: tuple[str, ...]
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        checked: dict[str, Any] = {
            name: check_non_negative_int(name, value) if name == "pgd_restarts" else check_positive_int(name, value)
            for name, value in self.to_dict().items()
        }
        if checked["strong_factor"] < 2:
            raise ValueError(f"strong_factor must be an integer >= 2, got {self.strong_factor!r}.")
        checked["attacks"] = _check_attack_names(self.attacks)
        if not isinstance(self.name, str) or not self.name:
            error = ValueError if isinstance(self.name, str) else TypeError
            raise error(f"name must be a non-empty string, got {self.name!r}.")
        for key, value in checked.items():  # plain ints and a tuple: the budget is hashable and JSON-ready
            object.__setattr__(self, key, value)

    @classmethod
    def preset(cls, name: str) -> AttackBudget:
        """The preset budget ``name``.

        :param name: One of :data:`PRESETS`.
        :return: The budget, named ``name``.
        :raises ValueError: If ``name`` is not a preset.

        >>> AttackBudget.preset("standard").square_max_iter
        5000
        """
        column = PRESETS.index(check_choice("budget", name, PRESETS))
        return cls(name=name, **{key: values[column] for key, values in _PRESET_VALUES.items()})

    def replace(self, **fields: Any) -> AttackBudget:
        """A copy with ``fields`` changed, every one checked; the name is kept unless given.

        :param fields: New values, by field name.
        :return: The new budget.
        :raises TypeError: If a name is not a field of :class:`AttackBudget`, or a value has the wrong type.
        :raises ValueError: If a value is out of its range.
        """
        known = [f.name for f in dataclasses.fields(self)]
        unknown = [key for key in fields if key not in known]
        if unknown:
            got = ", ".join(map(repr, unknown))
            raise TypeError(f"fields must be names of AttackBudget's fields ({', '.join(known)}), got {got}.")
        return dataclasses.replace(self, **fields)

    def to_dict(self) -> dict[str, int]:
        """The iteration, restart, target and query counts, as the report records them in its ``params``.

        :return: ``{field: value}`` for every field but ``attacks`` and ``name``.
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("attacks", "name")}

    def cost(self, n_samples: int, n_eps: int, attacks: Sequence[str], checklist: bool) -> dict[str, int]:
        """Upper bounds on the model evaluations (forward, or forward and backward) each attack may spend.

        :param n_samples: Samples attacked.
        :param n_eps: Radii attacked (``eps > 0``) by every attack.
        :param attacks: The attacks run, names of :data:`ATTACKS`.
        :param checklist: Whether the checklist runs (once, at its own ``eps``).
        :return: ``{attack: bound}``, and ``check_<name>`` for the checklist's own attacks.

        >>> AttackBudget.preset("quick").cost(10, 2, ["pgd", "apgd-t"], checklist=False)
        {'pgd': 400, 'apgd-t': 1500}
        """
        runs = {
            "pgd": self.pgd_max_iter * max(1, self.pgd_restarts),
            "apgd-ce": self.apgd_max_iter * self.apgd_restarts,
            "apgd-dlr": self.apgd_max_iter * self.apgd_restarts,
            "apgd-t": self.apgd_max_iter * self.apgd_restarts * self.apgd_targets,
            "fab-t": 2 * self.fab_max_iter * self.apgd_targets,  # a forward and backward, and a forward, per step
            "square": self.square_max_iter * self.square_restarts,
        }
        cost = {name: runs[name] * n_samples * n_eps for name in attacks}
        if checklist:
            cost["check_pgd_strong"] = self.strong_factor * self.pgd_max_iter * (self.pgd_restarts + 1) * n_samples
            cost["check_fgsm"] = n_samples
            cost["check_large_eps"] = self.large_eps_iter * n_samples
            cost["check_square"] = runs["square"] * n_samples
        return cost


def _check_attack_names(attacks: Any) -> tuple[str, ...]:
    """Check that ``attacks`` is one name of :data:`ATTACKS` or a non-empty sequence of distinct ones."""
    names = (attacks,) if isinstance(attacks, str) else attacks
    if not isinstance(names, Sequence):
        raise TypeError(f"attacks must be a name or a sequence of names from {', '.join(ATTACKS)}, got {attacks!r}.")
    if not names:
        raise ValueError("attacks must name at least one attack, got an empty sequence.")
    for name in names:
        if name not in ATTACKS:
            raise ValueError(f"attacks must hold names from {', '.join(map(repr, ATTACKS))}, got {name!r}.")
    if len(set(names)) != len(names):
        raise ValueError(f"attacks must not repeat a name, got {list(names)}.")
    return tuple(names)
