"""robustness_report: numbers equal ART's attacks run by hand, the checklist flags a masked model, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from art.attacks.evasion import AutoProjectedGradientDescent, ProjectedGradientDescent, SquareAttack
from art.estimators.classification import PyTorchClassifier

from art_sgt.evaluation import AttackBudget, RobustnessReport, plot_robustness, robustness_report

STANDARD = AttackBudget.preset("standard")
ATTACKS = STANDARD.attacks

SHAPE = (1, 8, 8)


def _data(n: int = 40, seed: int = 0, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: the mean pixel below / above 0.5 (0.15 to 0.3 away); three: means near 0.2, 0.5, 0.8."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    if classes == 2:
        centre = np.where(y == 1, 0.5 + rng.uniform(0.15, 0.3, n), 0.5 - rng.uniform(0.15, 0.3, n))
    else:
        centre = 0.2 + 0.3 * y + rng.uniform(-0.05, 0.05, n)
    x = np.clip(centre[:, None, None, None] + rng.uniform(-0.1, 0.1, (n, *SHAPE)), 0, 1)
    return x.astype(np.float32), y.astype(np.int64)


class _Quantise(torch.nn.Module):
    """Rounds inputs to multiples of 0.1: the gradient is zero everywhere (a deliberately masked model)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 10) / 10


def _classifier(masked: bool = False, classes: int = 2) -> PyTorchClassifier:
    """A linear model on the mean pixel (the Bayes classifier of :func:`_data`); ``masked``: rounding in front."""
    linear = torch.nn.Linear(64, classes)
    slopes, biases = ([-20.0, 20.0], [10.0, -10.0]) if classes == 2 else ([-20.0, 0.0, 20.0], [7.0, 0.0, -13.0])
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(slopes)[:, None].repeat(1, 64) / 64)
        linear.bias.copy_(torch.tensor(biases))
    layers = [_Quantise()] if masked else []
    model = torch.nn.Sequential(*layers, torch.nn.Flatten(), linear)
    return PyTorchClassifier(
        model, loss=torch.nn.CrossEntropyLoss(), input_shape=SHAPE, nb_classes=classes, clip_values=(0.0, 1.0)
    )


def _accuracy(classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray) -> float:
    return float((classifier.predict(x).argmax(1) == y).mean())


def test_numbers_equal_art_attacks_run_by_hand() -> None:
    x, y = _data(classes=3)
    clf = _classifier(classes=3)
    eps = (0.0, 0.1, 0.2)
    report = robustness_report(
        clf,
        x,
        y,
        eps=eps,
        budget=STANDARD.replace(pgd_max_iter=5, apgd_max_iter=5, square_max_iter=30),
        checklist=False,
        seed=3,
        verbose=False,
        mode="independent",
    )
    onehot = np.eye(3, dtype=np.float32)[y]
    by_hand = {name: [] for name in ATTACKS}

    def apgd(e, loss_type, targeted=False):
        options = {"loss_type": loss_type, "targeted": targeted, "verbose": False}
        return AutoProjectedGradientDescent(clf, eps=e, eps_step=2 * e, max_iter=5, nb_random_init=1, **options)

    for e in eps[1:]:
        attacks = {
            "pgd": ProjectedGradientDescent(clf, eps=e, eps_step=2.5 * e / 5, max_iter=5, verbose=False),
            "apgd-ce": apgd(e, "cross_entropy"),
            "apgd-dlr": apgd(e, "difference_logits_ratio"),
            "square": SquareAttack(clf, eps=e, max_iter=30, verbose=False),
        }
        clean_correct = np.flatnonzero(clf.predict(x).argmax(1) == y)  # as AutoAttack: only these are attacked
        for name, attack in attacks.items():
            np.random.seed(3)  # noqa: NPY002 - the report seeds ART's global generator the same way
            torch.manual_seed(3)
            x_adv = attack.generate(x[clean_correct], y=onehot[clean_correct])
            by_hand[name].append(float((clf.predict(x_adv).argmax(1) == y[clean_correct]).sum() / len(x)))
        # APGD-T: targeted DLR against each other class, most likely first; robust only if robust to every target.
        targeted = apgd(e, "difference_logits_ratio", targeted=True)
        logits = clf.predict(x)
        robust = clf.predict(x).argmax(1) == y
        for rank in range(2):  # 3 classes: two targets per sample
            targets = [
                sorted((c for c in range(3) if c != y[i]), key=lambda c, i=i: -logits[i, c])[rank]
                for i in range(len(y))
            ]
            still = np.flatnonzero(robust)  # as AutoAttack: each target attacks only the samples still correct
            np.random.seed(3)  # noqa: NPY002
            torch.manual_seed(3)
            x_adv = targeted.generate(x[still], y=np.eye(3, dtype=np.float32)[np.asarray(targets)[still]])
            robust[still] = clf.predict(x_adv).argmax(1) == y[still]
        by_hand["apgd-t"].append(float(robust.mean()))
    clean = _accuracy(clf, x, y)
    assert report.clean_accuracy == clean
    for name in ATTACKS:
        assert report.accuracy[name] == [clean, *by_hand[name]], name
    # The worst case is per sample, so it is at most the smallest attack accuracy and not above clean.
    assert report.worst_case[0] == clean
    for i in range(len(eps)):
        assert report.worst_case[i] <= min(report.accuracy[name][i] for name in ATTACKS) + 1e-12
    assert report.accuracy_at(0.2, "pgd") == by_hand["pgd"][-1]
    # The per-sample outcomes behind the worst case are kept for paired tests between models.
    assert [len(w) for w in report.worst_case_correct] == [len(x)] * len(eps)
    assert [float(np.mean(w)) for w in report.worst_case_correct] == report.worst_case
    assert report.accuracy["pgd"][2] < clean  # the attacks do something on this model


class _PushToClass:
    """A stand-in targeted attack: moves each sample to the mean pixel of its target class when that target is
    ``fooled_by`` (else leaves it), and records how many samples each run was given."""

    targeted = True

    def __init__(self, fooled_by: int) -> None:
        self.fooled_by, self.sizes = fooled_by, []

    def generate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        self.sizes.append(len(x))
        target = y.argmax(1)
        out = x.copy()
        hit = target == self.fooled_by
        out[hit] = (0.2 + 0.3 * self.fooled_by) * np.ones_like(out[hit])
        return out


def test_targeted_runs_attack_only_the_samples_still_correct() -> None:
    from art_sgt.evaluation._art_attacks import run_attack

    x, y = _data(n=30, classes=3)
    clf = _classifier(classes=3)
    y[:3] = (y[:3] + 1) % 3  # three samples wrong on clean inputs: no targeted run may spend work on them
    clean = clf.predict(x).argmax(1) == y
    onehot = np.eye(3, dtype=np.float32)[y]
    attack = _PushToClass(fooled_by=1)
    p = {"batch_size": 8, "seed": 0, "apgd_targets": 2}
    correct = run_attack(attack, clf, x, onehot, y, p)
    # Samples of class 0 or 2 are fooled by the run whose target is class 1; class-1 samples never are.
    assert correct.tolist() == (clean & (y == 1)).tolist()
    first_targets = np.where(y == 0, 1, np.where(y == 2, 1, 0))  # the class nearest each sample besides its own
    fooled_first = int((clean & (first_targets == 1)).sum())
    assert attack.sizes == [int(clean.sum()), int(clean.sum()) - fooled_first]
    # Without class-1 samples the first run fools every sample: the second target is not run at all.
    keep = np.flatnonzero(clean & (y != 1))
    all_fooled = _PushToClass(fooled_by=1)
    assert not run_attack(all_fooled, clf, x[keep], onehot[keep], y[keep], p).any()
    assert all_fooled.sizes == [len(keep)]


def _closed_form_robust(x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
    """Robustness of the 3-class model of :func:`_classifier` under L-inf ``eps`` with no pixel clipped: its logits
    depend on the mean pixel ``m`` alone, which the attack moves anywhere in ``[m - eps, m + eps]``, and the classes
    own ``m < 0.35``, ``0.35 < m < 0.65`` and ``m > 0.65``."""
    m = x.reshape(len(x), -1).mean(1, dtype=np.float64)
    low, high = np.array([-np.inf, 0.35, 0.65])[y], np.array([0.35, 0.65, np.inf])[y]
    return (m - eps > low) & (m + eps < high)


def test_cascade_equals_the_independent_conjunction_on_a_known_answer_model() -> None:
    x, y = _data(n=60, classes=3)
    clf, eps = _classifier(classes=3), 0.11
    m = x.reshape(len(x), -1).mean(1)
    edges = np.array([0.35, 0.65])
    assert np.abs(np.abs(m[:, None] - edges[None, :]) - eps).min() > 2e-3  # no sample on a knife edge
    pixels = x.reshape(len(x), -1)
    # no pixel clipped in the direction an attack pushes it (class 0 up, class 2 down, class 1 either way)
    assert (pixels[y != 2] + eps < 1).all() and (pixels[y != 0] - eps > 0).all()
    names = ("pgd", "apgd-ce", "apgd-t", "apgd-dlr")
    budget = STANDARD.replace(pgd_restarts=0, pgd_max_iter=10, apgd_max_iter=10)
    common = {"eps": (0.0, eps), "attacks": names, "budget": budget, "checklist": False, "verbose": False}
    cascade = robustness_report(clf, x, y, **common)
    independent = robustness_report(clf, x, y, mode="independent", **common)
    expected = _closed_form_robust(x, y, eps)
    assert 0.2 < expected.mean() < 0.9  # the eps breaks some samples and leaves others
    assert cascade.worst_case_correct[1] == independent.worst_case_correct[1] == expected.tolist()
    assert cascade.params["mode"] == "cascade" and independent.params["mode"] == "independent"
    # In a cascade each row is the accuracy after its attack and those above it: non-increasing, ending at the
    # worst case; the first attack saw every clean-correct sample in both modes.
    steps = [cascade.accuracy[name][1] for name in names]
    assert steps == sorted(steps, reverse=True) and steps[-1] == cascade.worst_case[1]
    assert steps[0] == independent.accuracy["pgd"][1]
    assert all(independent.accuracy[name][1] >= independent.worst_case[1] for name in names)
    assert "cascade: each row" in cascade.table() and "cascade" not in independent.table()


def test_a_cascade_attacks_only_the_samples_every_attack_before_left_correct(monkeypatch) -> None:
    from art_sgt.evaluation import robustness as module

    sizes: list[int] = []
    real = module.run_attack

    def spy(attack, target, x, *args, **kwargs):
        sizes.append(len(x))
        return real(attack, target, x, *args, **kwargs)

    monkeypatch.setattr(module, "run_attack", spy)
    x, y = _data(n=40, classes=3)
    y[:4] = (y[:4] + 1) % 3  # wrong on clean inputs: never attacked
    budget = STANDARD.replace(apgd_max_iter=5, pgd_max_iter=5)
    attacks = ("apgd-ce", "apgd-dlr", "pgd")
    report = robustness_report(
        _classifier(classes=3), x, y, eps=0.12, attacks=attacks, budget=budget, checklist=False, verbose=False
    )
    n = len(x)
    after = [round(report.accuracy[name][0] * n) for name in ("apgd-ce", "apgd-dlr")]
    assert sizes == [round(report.clean_accuracy * n), *after]
    assert after[0] < round(report.clean_accuracy * n)  # the first attack broke something the others skipped


def test_autoattack_preset_without_torchattacks_skips_fab_t_and_says_so(monkeypatch) -> None:
    from art_sgt.evaluation import robustness as module

    monkeypatch.setattr(module, "fab_available", lambda: False)
    x, y = _data(n=12, classes=3)
    with pytest.warns(UserWarning, match="fab-t skipped"):
        budget = AttackBudget.preset("autoattack").replace(apgd_max_iter=2, apgd_targets=2, square_max_iter=5)
        report = robustness_report(
            _classifier(classes=3), x, y, eps=0.05, budget=budget, checklist=False, verbose=False
        )
    assert report.attacks == ["apgd-ce", "apgd-t", "square"]
    assert any("fab-t skipped" in note and "art-sgt[autoattack]" in note for note in report.notes)
    with pytest.raises(ImportError, match="attacks"):  # named explicitly: an error, before any work
        robustness_report(_classifier(classes=3), x, y, eps=0.05, attacks=("fab-t",), verbose=False)


def test_fab_t_refuses_inputs_outside_the_unit_box() -> None:
    pytest.importorskip("torchattacks")
    x, y = _data(n=8, classes=3)
    clf = _classifier(classes=3)
    wide = PyTorchClassifier(
        clf.model, loss=torch.nn.CrossEntropyLoss(), input_shape=SHAPE, nb_classes=3, clip_values=(0.0, 2.0)
    )
    with pytest.raises(ValueError, match="clip_values"):
        robustness_report(wide, x, y, eps=0.05, attacks=("fab-t",), verbose=False)


def test_checklist_flags_a_masked_model_and_not_a_normal_one(tmp_path) -> None:
    x, y = _data(seed=1)
    kwargs = dict(
        eps=(0.1, 0.3),
        attacks=("pgd", "square"),
        budget=STANDARD.replace(pgd_max_iter=10, square_max_iter=200),
        check_eps=0.3,
        seed=0,
        verbose=False,
    )
    normal = robustness_report(_classifier(), x, y, **kwargs)
    masked = robustness_report(_classifier(masked=True), x, y, transfer_from=_classifier(), **kwargs)
    assert normal.clean_accuracy == masked.clean_accuracy == 1.0
    assert normal.flags == [] and not normal.gradient_masking
    assert masked.gradient_masking
    assert {"black_box", "large_eps", "transfer"} <= set(masked.flags)
    checks = {c.name: c for c in masked.checklist}
    assert checks["black_box"].evidence["square"] < checks["black_box"].evidence["pgd"]
    assert {c.name: c.flagged for c in normal.checklist}["transfer"] is None  # not run without transfer_from
    payload = json.loads(json.dumps(masked.to_dict()))
    assert payload["gradient_masking"] is True and "large_eps" in payload["flags"]
    fig = plot_robustness({"normal": normal, "masked": masked}, path=tmp_path / "acc.png")
    assert (tmp_path / "acc.png").stat().st_size > 0
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"eps": (0.1, -0.1)}, ValueError, "eps"),
        ({"eps": 1.5}, ValueError, "eps"),
        ({"attacks": ("pgd", "cw")}, ValueError, "attacks"),
        ({"attacks": ()}, ValueError, "attacks"),
        ({"norm": 1, "attacks": ("pgd", "square")}, ValueError, "norm"),  # Square has no L1 version
        ({"norm": "l3"}, ValueError, "norm"),
        ({"norm": 3.0}, ValueError, "norm"),
        ({"norm": True}, ValueError, "norm"),
        ({"tolerance": 1.0}, ValueError, "tolerance"),
        ({"budget": "fast"}, ValueError, "budget"),
        ({"budget": {"pgd_max_iter": 5}}, TypeError, "budget"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"attacks": ("apgd-dlr",)}, ValueError, "attacks"),  # DLR needs 3 classes or more
        ({"attacks": ("apgd-t",)}, ValueError, "attacks"),
        ({"mode": "parallel"}, ValueError, "mode"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, error, name) -> None:
    x, y = _data(8)
    with pytest.raises(error, match=name):
        robustness_report(_classifier(), x, y, verbose=False, **{"attacks": ("pgd",), **kwargs})


SPELLINGS = [
    (2, "2"),
    (2.0, "2"),
    (np.float64(2.0), "2"),
    (1.0, "1"),
    ("1", "1"),
    (np.inf, "inf"),
    (float("inf"), "inf"),
    ("inf", "inf"),
]


@pytest.mark.parametrize(("norm", "key"), SPELLINGS)
def test_every_spelling_of_a_norm_is_accepted(norm, key) -> None:
    x, y = _data(8)
    budget = STANDARD.replace(pgd_max_iter=2)
    report = robustness_report(
        _classifier(), x, y, eps=0.1, norm=norm, attacks="pgd", budget=budget, checklist=False, verbose=False
    )
    assert report.norm == key


def test_the_models_get_their_own_modes_back() -> None:
    """ART's predict and attacks set eval mode and never restore it; the report must not leave that behind."""
    x, y = _data(8)
    classifier, source = _classifier(), _classifier()
    classifier.model.train()
    source.model.train()
    source.model[0].eval()  # a submodule in its own mode keeps it too
    budget = AttackBudget.preset("quick").replace(pgd_max_iter=2, square_max_iter=2, large_eps_iter=2)
    attacks = ("pgd", "square")
    robustness_report(classifier, x, y, eps=0.1, attacks=attacks, budget=budget, transfer_from=source, verbose=False)
    assert classifier.model.training and all(m.training for m in classifier.model.modules())
    assert source.model.training and not source.model[0].training and source.model[1].training


def test_bad_models_and_data_name_the_parameter() -> None:
    x, y = _data(8)
    with pytest.raises(TypeError, match="classifier"):
        robustness_report(torch.nn.Linear(64, 2), x, y)
    with pytest.raises(ValueError, match="x must have shape"):
        robustness_report(_classifier(), x.reshape(8, 1, 4, 16), y, attacks="pgd")
    with pytest.raises(ValueError, match="x and y"):
        robustness_report(_classifier(), x, y[:4], attacks="pgd")
    other = PyTorchClassifier(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 2, 2),
        nb_classes=2,
    )
    with pytest.raises(ValueError, match="transfer_from"):
        robustness_report(_classifier(), x, y, attacks="pgd", transfer_from=other)
    with pytest.raises(TypeError, match="reports"):
        plot_robustness({"a": 1})
    budget = STANDARD.replace(pgd_max_iter=2)
    report = robustness_report(
        _classifier(), x, y, eps=0.1, attacks="pgd", budget=budget, checklist=False, verbose=False
    )
    assert isinstance(report, RobustnessReport)


def test_images_too_small_for_square_are_refused_up_front_and_skipped_by_the_checklist() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 1, 4, 4), dtype=np.float32), np.arange(8) % 2
    small = PyTorchClassifier(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 4, 4),
        nb_classes=2,
        clip_values=(0.0, 1.0),
    )
    with pytest.raises(ValueError, match="attacks must not include 'square'.*5x5"):
        robustness_report(small, x, y, attacks=("pgd", "square"), verbose=False)
    report = robustness_report(
        small, x, y, eps=0.1, attacks="pgd", budget=STANDARD.replace(pgd_max_iter=2), verbose=False
    )
    checks = {c.name: c for c in report.checklist}
    assert checks["black_box"].flagged is None and checks["black_box"].evidence["square"] is None
    assert checks["single_step"].flagged is not None  # the other checks still ran


def test_reports_per_eps_concatenate_to_the_report_of_one_call() -> None:
    x, y = _data(n=30, seed=2, classes=3)
    clf = _classifier(classes=3)
    budget = AttackBudget.preset("quick").replace(
        pgd_max_iter=5, apgd_max_iter=5, square_max_iter=30, large_eps_iter=5, strong_factor=2
    )
    kwargs = dict(budget=budget, check_eps=0.12, transfer_from=_classifier(classes=3), seed=3, verbose=False)
    whole = robustness_report(clf, x, y, eps=(0.05, 0.12, 0.2), **kwargs)
    parts = [robustness_report(clf, x, y, eps=(e,), checklist=e == 0.12, **kwargs) for e in (0.05, 0.12, 0.2)]
    parts = [RobustnessReport.from_dict(json.loads(json.dumps(p.to_dict()))) for p in parts]  # kept as JSON
    merged = RobustnessReport.concatenate(parts)
    assert 0 < whole.worst_case[1] < whole.worst_case[0] <= 1  # not a trivial case: some samples fall, some hold
    assert whole.worst_case[2] < whole.worst_case[1]
    assert {c.name: c.flagged for c in merged.checklist}["transfer"] is False  # the checklist ran, with transfer
    assert set(whole.seconds) == set(merged.seconds)
    assert {**merged.to_dict(), "seconds": None} == {**whole.to_dict(), "seconds": None}
    with pytest.raises(ValueError, match="different eps"):
        RobustnessReport.concatenate([parts[0], parts[0]])
    with pytest.raises(ValueError, match="at most one"):
        RobustnessReport.concatenate([parts[1], robustness_report(clf, x, y, eps=(0.2,), **kwargs)])
    with pytest.raises(ValueError, match="budget"):
        RobustnessReport.concatenate([parts[0], robustness_report(clf, x, y, eps=(0.2,), **{**kwargs, "seed": 4})])
    with pytest.raises(ValueError, match="at least one"):
        RobustnessReport.concatenate([])


class _Interrupt(Exception):
    """Stands for a session's end in the middle of a report."""


def _counting(monkeypatch, fail_at: int | None = None) -> list[int]:
    """Count the report's attack runs (the cascade's and the checklist's); raise at run number ``fail_at``."""
    from art_sgt.evaluation import checklist, robustness

    calls, original = [], robustness.run_attack

    def run_attack(*args, **kwargs):
        calls.append(1)
        if fail_at is not None and len(calls) == fail_at:
            raise _Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(robustness, "run_attack", run_attack)
    monkeypatch.setattr(checklist, "run_attack", run_attack)
    return calls


def _without_times(report: RobustnessReport) -> dict:
    out = report.to_dict()
    out.pop("seconds")
    return out


@pytest.mark.parametrize("mode", ["cascade", "independent"])
def test_an_interrupted_report_resumes_from_its_kept_runs_to_the_uninterrupted_report(tmp_path, monkeypatch, mode):
    x, y = _data(n=24, classes=3)
    kwargs = dict(eps=(0.1, 0.3), budget="quick", mode=mode, transfer_from=_classifier(classes=3), verbose=False)
    whole = robustness_report(_classifier(classes=3), x, y, **kwargs)
    resume = tmp_path / "steps.json"

    with monkeypatch.context() as patch:
        total = _counting(patch)
        robustness_report(_classifier(classes=3), x, y, resume=resume, **kwargs)
    assert not resume.exists()  # a complete report removes its file
    with monkeypatch.context() as patch:
        _counting(patch, fail_at=4)
        with pytest.raises(_Interrupt):
            robustness_report(_classifier(classes=3), x, y, resume=resume, **kwargs)
    kept = json.loads(resume.read_text())  # plain JSON: nothing in it can run code
    assert len(kept["runs"]) == 3 and all(set(r["correct"]) <= {"0", "1"} for r in kept["runs"].values())

    with monkeypatch.context() as patch:
        again = _counting(patch)
        resumed = robustness_report(_classifier(classes=3), x, y, resume=resume, **kwargs)
    assert len(again) == len(total) - 3  # the kept runs are not attacked again
    assert _without_times(resumed) == _without_times(whole)
    assert set(resumed.seconds) == set(whole.seconds) and not resume.exists()


def test_a_kept_file_of_another_model_or_budget_is_ignored(tmp_path, monkeypatch):
    x, y = _data(n=24, classes=3)
    resume = tmp_path / "steps.json"
    with monkeypatch.context() as patch:
        _counting(patch, fail_at=3)
        with pytest.raises(_Interrupt):
            robustness_report(_classifier(classes=3), x, y, eps=0.3, budget="quick", resume=resume, verbose=False)
    other = _classifier(classes=3)
    with torch.no_grad():
        other.model[1].bias.add_(0.5)
    with monkeypatch.context() as patch:
        calls = _counting(patch)
        robustness_report(_classifier(classes=3), x, y, eps=0.3, budget="quick", verbose=False)
        expected = len(calls)
        calls.clear()
        robustness_report(other, x, y, eps=0.3, budget="quick", resume=resume, verbose=False)
        assert len(calls) == expected  # another model's runs are not reused
    with monkeypatch.context() as patch:
        _counting(patch, fail_at=3)
        with pytest.raises(_Interrupt):
            robustness_report(_classifier(classes=3), x, y, eps=0.3, budget="quick", resume=resume, verbose=False)
    with monkeypatch.context() as patch:
        calls = _counting(patch)
        budget = AttackBudget.preset("quick").replace(pgd_max_iter=3)
        robustness_report(_classifier(classes=3), x, y, eps=0.3, budget=budget, resume=resume, verbose=False)
        assert len(calls) == expected  # nor those of another budget


def test_a_repeated_eps_attacks_the_cascade_s_survivors_again_without_a_resume_file(tmp_path):
    x, y = _data(n=24, classes=3)
    report = robustness_report(_classifier(classes=3), x, y, eps=(0.05, 0.05), budget="quick", verbose=False)
    assert len(report.worst_case) == 2 and not list(tmp_path.iterdir())


def test_a_kept_file_of_another_loss_clip_range_or_a_corrupt_one_is_not_reused(tmp_path, monkeypatch):
    from art_sgt.evaluation._steps import fingerprint

    x, y = _data(n=24, classes=3)
    base = _classifier(classes=3)
    key = fingerprint(base, x, y, {}, None)
    other_loss = PyTorchClassifier(
        base.model, loss=torch.nn.NLLLoss(), input_shape=SHAPE, nb_classes=3, clip_values=(0.0, 1.0)
    )
    other_clip = PyTorchClassifier(
        base.model, loss=torch.nn.CrossEntropyLoss(), input_shape=SHAPE, nb_classes=3, clip_values=(0.0, 0.9)
    )
    scaled = PyTorchClassifier(
        base.model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=SHAPE,
        nb_classes=3,
        clip_values=(0.0, 1.0),
        preprocessing=(0.5, 0.5),
    )
    assert len({key, *(fingerprint(c, x, y, {}, None) for c in (other_loss, other_clip, scaled))}) == 4
    assert fingerprint(_classifier(classes=3), x, y, {}, None) == key  # the same classifier built again

    resume = tmp_path / "steps.json"
    for content in ("{not json", "[1, 2]", '{"key": 3}'):
        resume.write_text(content)
        report = robustness_report(base, x, y, eps=0.3, budget="quick", resume=resume, verbose=False)
        assert report.clean_accuracy > 0 and not resume.exists()
