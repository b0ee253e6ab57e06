"""What the reproduction runs: the controls, the profiles, and one :class:`RunSpec` per (model, seed) piece.

Every model of a profile shares the architecture, data, optimiser (Adam, constant learning rate), batch size,
epochs and training attack (ART PGD, L-inf, ``steps`` steps of ``2.5 eps / steps``, one random start):

- ``standard``: ART's ``PyTorchClassifier.fit``;
- ``sgt``: :class:`~art_sgt.trainers.SaliencyGuidedTrainer`;
- ``pgd_at``: ART's ``AdversarialTrainerMadryPGD`` (adversarial-only batches, Madry et al.);
- ``mixed_at``: ``CE(x) + CE(x_adv)``, the ASGT trainer with ``kl_weight=0`` (ASGT without its saliency term);
- ``asgt``: :class:`~art_sgt.trainers.SaliencyGuidedAdversarialTrainer`.

The objectives study (:data:`OBJECTIVE_MODELS`, the ``screening`` profile) adds the SGT term to other adversarial
objectives and one more control, all trained by ``SaliencyGuidedAdversarialTrainer`` with ``objective=``:

- ``madry_sgt``: ``CE(x_adv) + kl_weight * KL`` (``objective="madry"``);
- ``trades_sgt``: ``CE(x) + beta * KL(p(x) || p(x_adv)) + kl_weight * KL`` (``objective="trades"``, beta 6, x_adv
  crafted on the TRADES KL);
- ``trades_at``: the same with ``kl_weight=0``: TRADES without the saliency term, the trainer being tested equal to
  ART's ``AdversarialTrainerTRADESPyTorch`` on the same batch (``tests/test_objectives.py``).

A :class:`RunSpec` names one piece of work; its training configuration and its evaluation configuration are
hashed separately (:meth:`RunSpec.training_hash`, :meth:`RunSpec.evaluation_hash`), so a change of the
evaluation budget re-evaluates cached weights instead of retraining them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = [
    "MODELS",
    "LABELS",
    "PAPER",
    "ADVERSARIAL",
    "TrainingRecipe",
    "EvaluationRecipe",
    "Profile",
    "PROFILES",
    "RunSpec",
    "get_profile",
    "profile_runs",
    "transfer_source",
    "ABLATIONS",
    "ablations",
    "OBJECTIVE_MODELS",
    "SCREENING",
    "SCREENING_RULE",
    "screening_runs",
    "DECISIVE_MODELS",
    "DECISIVE_FULL_SEEDS",
    "decisive_runs",
    "select",
]

#: The controls, in table order.
MODELS = ("standard", "sgt", "pgd_at", "mixed_at", "asgt")

#: What each control is, for tables and figures.
LABELS = {
    "standard": "standard (ART fit)",
    "sgt": "SGT",
    "pgd_at": "PGD-AT (ART Madry)",
    "mixed_at": "mixed AT (ASGT, kl_weight=0)",
    "asgt": "ASGT",
    "madry_sgt": "Madry AT + SGT term",
    "trades_sgt": "TRADES + SGT term",
    "trades_at": "TRADES (kl_weight=0)",
}

#: The models of the objectives study beyond the controls: the SGT term on Madry's and on TRADES' objective, and
#: TRADES without it.
OBJECTIVE_MODELS = ("madry_sgt", "trades_sgt", "trades_at")

#: The paper's evaluation eps, the community's standard eps, and the gain the ASGT abstract claims.
PAPER = {
    "mnist": {"paper_eps": 0.2, "standard_eps": 0.3, "claimed_gain": 35.0},
    "cifar10": {"paper_eps": 0.02, "standard_eps": 8 / 255, "claimed_gain": 20.0},
}

#: The adversarially trained controls (they take the training attack).
ADVERSARIAL = ("pgd_at", "mixed_at", "asgt", *OBJECTIVE_MODELS)


@dataclass(frozen=True)
class TrainingRecipe:
    """How every model of a profile is trained (hashed into the run's cache key).

    :param arch: ``"mnist_cnn"``, ``"cifar_cnn"`` or ``"resnet18"`` (:mod:`art_sgt.models`).
    :param n_train: Training images (the first ones of the training set).
    :param epochs: Epochs.
    :param batch_size: Batch size.
    :param lr: Adam learning rate (constant).
    :param train_eps: L-inf radius of the training PGD.
    :param train_steps: Training PGD steps, of ``2.5 * train_eps / train_steps`` each, after one random start.
    :param mask_fraction: SGT / ASGT mask fraction.
    :param kl_weight: SGT / ASGT KL weight (``mixed_at`` uses 0).
    :param amp: Train under ``torch.autocast`` with bfloat16 (the gpu profile).
    """

    arch: str
    n_train: int
    epochs: int
    batch_size: int
    lr: float
    train_eps: float
    train_steps: int
    mask_fraction: float = 0.5
    kl_weight: float = 1.0
    amp: bool = False


@dataclass(frozen=True)
class EvaluationRecipe:
    """How every trained model is evaluated (hashed into the evaluation's key).

    :param n_eval: Test images of the clean and PGD accuracies (per-sample outcomes kept for McNemar).
    :param pgd_iter: Iterations of that PGD (ART ``ProjectedGradientDescent``, step ``2.5 eps / iter``).
    :param pgd_restarts: Its random restarts.
    :param n_report: Test images of the worst case over attacks (and of the saliency evaluators unless
        ``n_saliency`` is given).
    :param report_eps: ``eps`` grid of the worst case (the paper's and the standard eps are added).
    :param budget: ``robustness_report`` budget preset (``"quick"``, ``"standard"``, ``"autoattack"``).
    :param report_kwargs: Explicit ``robustness_report`` arguments, as ``(name, value)`` pairs (they override
        the preset; used where no preset exists).
    :param masking_fill: Fill of the masking curves (``"road"``: no model was trained on it).
    :param stability_iter: PGD iterations of the saliency-stability attack.
    :param subset_seed: Seed of the test images: the ``n_eval`` and the ``n_report`` images are each a seeded random
        subset of the whole test set (:func:`art_sgt.datasets.random_subset`), not its first rows (the first half
        of MNIST's test set is the easier half).
    :param report_mode: ``robustness_report``'s ``mode``: ``"cascade"`` (AutoAttack's protocol: each attack on the
        images the attacks before it left correct) or ``"independent"``.
    :param eps_keys: Which of the dataset's :data:`~art_sgt.reproduction.recipe.PAPER` radii the PGD and
        worst-case stages measure (``"paper_eps"``, ``"standard_eps"``); the first is also the radius of the
        checklist and of the map stability. Left at its default, it is not part of the evaluation's hash.
    :param n_saliency: Test images of the saliency evaluators, their own seeded random subset; ``None``: the
        ``n_report`` images of the worst case (and then not part of the evaluation's hash).
    """

    n_eval: int
    pgd_iter: int
    pgd_restarts: int
    n_report: int
    report_eps: tuple[float, ...]
    budget: str = "standard"
    report_kwargs: tuple[tuple[str, Any], ...] = ()
    masking_fill: str = "road"
    stability_iter: int = 10
    subset_seed: int = 0
    report_mode: str = "cascade"
    eps_keys: tuple[str, ...] = ("paper_eps", "standard_eps")
    n_saliency: int | None = None


#: Fields of :class:`EvaluationRecipe` added after runs were cached: at their default they are left out of the
#: evaluation's hash, so the keys of those runs are unchanged.
_UNHASHED_DEFAULTS = {"eps_keys": EvaluationRecipe.eps_keys, "n_saliency": None}


@dataclass(frozen=True)
class Profile:
    """A named budget: the recipes, the seeds, and what the profile may claim.

    :param name: ``"quick"``, ``"standard"`` or ``"gpu"``.
    :param dataset: ``"mnist"`` or ``"cifar10"``.
    :param training: The training recipe.
    :param evaluation: The evaluation recipe.
    :param seeds: Training seeds of every control.
    :param extra_train_eps: Second training radii, run for the adversarial controls with the first seed.
    :param claims: Whether the report may state conclusions (``False``: a smoke test, said so in its outputs).
    :param label: One line stating what the profile is.
    """

    name: str
    dataset: str
    training: TrainingRecipe
    evaluation: EvaluationRecipe
    seeds: tuple[int, ...]
    extra_train_eps: tuple[float, ...] = ()
    claims: bool = True
    label: str = ""


#: The smoke test's attack budget (the "quick" preset made smaller still; its checks are not real tests).
_QUICK_REPORT = (
    ("apgd_max_iter", 10),
    ("large_eps_iter", 20),
    ("pgd_max_iter", 10),
    ("square_max_iter", 100),
    ("strong_factor", 2),
)
#: The standard profile's attack budget: the "standard" preset (PGD 50 x 2 restarts, APGD-CE/DLR 100) with Square
#: at 1,000 queries, the least the checklist's black-box check calls a real test (5,000 would make Square, which
#: runs every query on the samples it has not fooled yet, the bulk of a robust model's evaluation on CPU).
_STANDARD_REPORT = (("square_max_iter", 1000),)

PROFILES: dict[tuple[str, str], Profile] = {
    ("mnist", "quick"): Profile(
        "quick",
        "mnist",
        TrainingRecipe("mnist_cnn", 2000, 1, 64, 1e-3, 0.3, 7),
        EvaluationRecipe(200, 10, 1, 50, (0.1, 0.2, 0.3), "quick", _QUICK_REPORT, stability_iter=5),
        seeds=(0,),
        claims=False,
        label="CI-sized smoke test of the whole pipeline (2,000 training images, 1 epoch, one seed): it makes no "
        "claims",
    ),
    ("mnist", "standard"): Profile(
        "standard",
        "mnist",
        TrainingRecipe("mnist_cnn", 60000, 3, 128, 1e-3, 0.3, 7),
        EvaluationRecipe(1000, 40, 2, 500, (0.1, 0.2, 0.3), "standard", _STANDARD_REPORT),
        seeds=(0, 1, 2),
        extra_train_eps=(0.2,),
        label="MNIST, full 60,000 training images, all controls x 3 seeds, CPU budget (3 epochs, PGD-7 training)",
    ),
    ("mnist", "screening"): Profile(
        "screening",
        "mnist",
        TrainingRecipe("mnist_cnn", 20000, 3, 128, 1e-3, 0.3, 7),
        EvaluationRecipe(300, 40, 1, 300, (0.3,), "autoattack", eps_keys=("standard_eps",)),
        seeds=(0, 1),
        label="MNIST screening of the saliency-guided objectives: 20,000 training images, 3 epochs, PGD-7 training "
        "at eps 0.3, 2 seeds; AutoAttack's standard attacks as a cascade at eps 0.3 on 300 random test images, the "
        "gradient-masking checklist and the saliency metrics at eps 0.3 on the same images",
    ),
    ("mnist", "decisive"): Profile(
        "decisive",
        "mnist",
        TrainingRecipe("mnist_cnn", 60000, 3, 128, 1e-3, 0.3, 7),
        EvaluationRecipe(2000, 40, 1, 500, (0.2, 0.3), "autoattack", n_saliency=300),
        seeds=(0, 1, 2, 3, 4),
        label="MNIST decisive study of the saliency-guided objectives: the standard recipe (60,000 training images, "
        "3 epochs, PGD-7 at eps 0.3); 5 seeds for ASGT, the screening's chosen variants, mixed AT and TRADES, 3 for "
        "standard, SGT and ART Madry; AutoAttack's standard attacks as a cascade at eps 0.2 and 0.3 on 500 random "
        "test images, PGD-40 on 2,000, the saliency metrics on 300",
    ),
    ("cifar10", "quick"): Profile(
        "quick",
        "cifar10",
        TrainingRecipe("cifar_cnn", 2000, 1, 64, 1e-3, 8 / 255, 7),
        EvaluationRecipe(200, 10, 1, 50, (0.01, 0.02, 8 / 255), "quick", _QUICK_REPORT, stability_iter=5),
        seeds=(0,),
        claims=False,
        label="CI-sized smoke test of the whole pipeline (2,000 training images, 1 epoch, one seed): it makes no "
        "claims",
    ),
    ("cifar10", "standard"): Profile(
        "standard",
        "cifar10",
        TrainingRecipe("cifar_cnn", 50000, 1, 128, 1e-3, 8 / 255, 7),
        EvaluationRecipe(500, 40, 2, 100, (0.02,), "standard", _STANDARD_REPORT),
        seeds=(0,),
        label="CIFAR-10 at a CPU budget that finishes in one sitting on 2 cores: the small CNN (not the paper's "
        "ResNet-18), 50,000 training images, 1 epoch, PGD-7 training at eps 8/255, one seed (its "
        "intervals are over test images: the spread between training seeds is not measured); clean and PGD "
        "accuracy on 500 test images, the worst case on 100; the models are far from converged and far below a "
        "ResNet, so it speaks for this budget only",
    ),
    ("cifar10", "gpu"): Profile(
        "gpu",
        "cifar10",
        TrainingRecipe("resnet18", 50000, 4, 512, 2e-3, 8 / 255, 5, amp=True),
        EvaluationRecipe(1000, 20, 1, 500, (0.01, 0.02, 8 / 255), "quick"),
        seeds=(0,),
        label="CIFAR-10 with a ResNet-18 under bfloat16 autocast (4 epochs, PGD-5 training, one seed), meant to fit "
        "in about 10 minutes on one H100 (its time is recorded when it runs)",
    ),
}


def get_profile(dataset: str, profile: str) -> Profile:
    """The profile of a dataset.

    :param dataset: ``"mnist"`` or ``"cifar10"``.
    :param profile: ``"quick"``, ``"standard"`` or ``"gpu"`` (CIFAR-10 only).
    :return: The profile.
    :raises ValueError: For an unknown dataset or profile.
    """
    if (dataset, profile) not in PROFILES:
        raise ValueError(f"dataset and profile must be one of {sorted(PROFILES)}, got {(dataset, profile)!r}.")
    return PROFILES[(dataset, profile)]


def _hash(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunSpec:
    """One piece of work: a model of a profile, trained with one seed and evaluated.

    :param profile: The profile's name.
    :param dataset: ``"mnist"`` or ``"cifar10"``.
    :param model: One of ``MODELS``.
    :param seed: The training (and evaluation) seed.
    :param training: Its training recipe.
    :param evaluation: Its evaluation recipe.
    :param variant: ``""`` for the main comparison; otherwise the name of a second setting or an ablation.
    :param trainer_kwargs: Extra SGT / ASGT trainer arguments, as sorted ``(name, value)`` pairs.
    :param transfer_source: The standard model whose PGD examples the checklist's transfer check (and the worst
        case at the checklist's eps) evaluates this model on; ``None`` for the standard models themselves. Its training
        hash is part of :meth:`evaluation_hash`, so an evaluation made without it (or with another) is not reused.
    """

    profile: str
    dataset: str
    model: str
    seed: int
    training: TrainingRecipe
    evaluation: EvaluationRecipe
    variant: str = ""
    trainer_kwargs: tuple[tuple[str, Any], ...] = field(default=())
    transfer_source: RunSpec | None = None

    @property
    def name(self) -> str:
        """``model`` for the main comparison, ``model[variant]`` otherwise."""
        return f"{self.model}[{self.variant}]" if self.variant else self.model

    def training_config(self) -> dict[str, Any]:
        """Everything that determines the trained weights.

        :return: A JSON-serialisable dictionary.
        """
        return {
            "dataset": self.dataset,
            "model": self.model,
            "seed": self.seed,
            "training": asdict(self.training),
            "trainer_kwargs": dict(self.trainer_kwargs),
        }

    def evaluation_config(self) -> dict[str, Any]:
        """Everything that determines the evaluation of given weights.

        :return: A JSON-serialisable dictionary.
        """
        evaluation = asdict(self.evaluation)
        for name, default in _UNHASHED_DEFAULTS.items():
            if evaluation[name] == default:
                del evaluation[name]
        config = {"dataset": self.dataset, "seed": self.seed, "evaluation": evaluation}
        if self.transfer_source is not None:  # absent, not None, for the standard models: their keys are unchanged
            config["transfer_source"] = self.transfer_source.training_hash()
        return config

    def training_hash(self) -> str:
        """12 hex digits of the SHA-256 of :meth:`training_config` (the cache folder's key)."""
        return _hash(self.training_config())

    def evaluation_hash(self) -> str:
        """12 hex digits of the SHA-256 of :meth:`evaluation_config`."""
        return _hash(self.evaluation_config())


def transfer_source(profile: Profile, seed: int) -> RunSpec:
    """The transfer source of every other model of ``profile`` trained with ``seed``: its standard model.

    :param profile: The profile (for the ablations, the MNIST profile they modify).
    :param seed: The training seed.
    :return: The main comparison's standard run of that seed.
    """
    return RunSpec(profile.name, profile.dataset, "standard", seed, profile.training, profile.evaluation)


def _run(profile: Profile, model: str, seed: int, profile_name: str | None = None, **fields: Any) -> RunSpec:
    """A run of ``profile`` (listed under ``profile_name`` when given) with the recipes of ``profile`` unless
    ``fields`` says otherwise; every model but the standard one takes the standard model of its seed as source."""
    source = None if model == "standard" else transfer_source(profile, seed)
    fields = {"training": profile.training, "evaluation": profile.evaluation, "transfer_source": source, **fields}
    return RunSpec(profile_name or profile.name, profile.dataset, model, seed, **fields)


def profile_runs(profile: Profile, models: tuple[str, ...] = MODELS) -> list[RunSpec]:
    """The pieces of a profile: every control x every seed, then the second training radii (first seed).

    :param profile: The profile.
    :param models: The controls to include (the standard model of a seed is trained for the others' transfer
        check whether or not it is included).
    :return: The run specifications, standard models first.
    """
    runs = [_run(profile, m, s) for s in profile.seeds for m in models]
    for eps in profile.extra_train_eps:
        training = replace(profile.training, train_eps=eps)
        runs += [
            _run(profile, m, profile.seeds[0], training=training, variant=f"train eps {eps:.3g}")
            for m in models
            if m in ADVERSARIAL
        ]
    return runs


#: The MNIST ablations: ``(variant, model, trainer keyword arguments, training-recipe overrides)``. A variant
#: that is the trainers' default (mask 0.5, kl 1, target label, saliency of log p_y, fill uniform) passes
#: nothing, so its training configuration is the main comparison's and the run cache reuses that model.
ABLATIONS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    *[(f"mask {f:g}", "sgt", {}, {"mask_fraction": f}) for f in (0.1, 0.3, 0.5, 0.7)],
    *[(f"kl {w:g}", "sgt", {}, {"kl_weight": w}) for w in (0.3, 1.0, 3.0)],
    ("target label", "asgt", {}, {}),
    ("target prediction", "asgt", {"saliency_target": "prediction"}, {}),
    ("saliency of logit", "sgt", {"saliency_of": "logit"}, {}),
    ("saliency of log p_y", "sgt", {}, {}),
    ("fill uniform", "sgt", {}, {}),
    ("fill road", "sgt", {"fill": "road"}, {}),
]

#: The trainers' defaults the ablations' default variants stand for (a test holds them to the trainers).
ABLATION_DEFAULTS = {
    "target label": ("asgt", "saliency_target", "label"),
    "saliency of log p_y": ("sgt", "saliency_of", "log_prob"),
    "fill uniform": ("sgt", "fill", "uniform"),
}


def _variant_run(
    profile: Profile, seed: int, entry: tuple[str, str, dict[str, Any], dict[str, Any]], profile_name: str | None = None
) -> RunSpec:
    """The run of one ``(variant, model, trainer keyword arguments, training-recipe overrides)`` entry."""
    variant, model, kwargs, over = entry
    return _run(
        profile,
        model,
        seed,
        profile_name,
        variant=variant,
        training=replace(profile.training, **over),
        trainer_kwargs=tuple(sorted(kwargs.items())),
    )


def ablations(profile: Profile) -> list[RunSpec]:
    """The MNIST ablations as run specifications (first seed of ``profile``, profile name ``ablations-...``).

    :param profile: The MNIST profile whose recipes the variants modify.
    :return: One run specification per entry of ``ABLATIONS``.
    :raises ValueError: If ``profile`` is not an MNIST profile.
    """
    if profile.dataset != "mnist":
        raise ValueError(f"ablations run on MNIST only, got a {profile.dataset} profile.")
    return [_variant_run(profile, profile.seeds[0], entry, f"ablations-{profile.name}") for entry in ABLATIONS]


#: The screening's candidates and controls: ``(variant, model, trainer keyword arguments, training-recipe
#: overrides)``. The paper's ASGT with the label and the prediction as saliency target and two KL weights, the SGT
#: term on Madry's and on TRADES' objective, and the three adversarial-training controls.
SCREENING: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("", "asgt", {}, {}),
    ("target prediction", "asgt", {"saliency_target": "prediction"}, {}),
    ("kl 0.3", "asgt", {}, {"kl_weight": 0.3}),
    ("target prediction + kl 0.3", "asgt", {"saliency_target": "prediction"}, {"kl_weight": 0.3}),
    ("", "madry_sgt", {}, {}),
    ("", "trades_sgt", {}, {}),
    ("", "mixed_at", {}, {}),
    ("", "pgd_at", {}, {}),
    ("", "trades_at", {}, {}),
]

#: The controls of the screening, against which its candidates are judged.
SCREENING_CONTROLS = ("mixed_at", "pgd_at", "trades_at")

#: How the screening picks the variants of the decisive study, fixed before any screening run was evaluated.
SCREENING_RULE = (
    "The best control is the control (mixed AT, ART Madry, TRADES) with the highest worst case at eps 0.3, averaged "
    "over the two seeds. A candidate (the four ASGT variants, Madry + SGT, TRADES + SGT) is eligible when its mean "
    "worst case at eps 0.3 is at most 3 points below the best control's and neither of its seeds raises a "
    "gradient-masking flag. Eligible candidates are ranked by how many of MoRF gain, sparseness and map "
    "stability they beat the best control on (seed means), ties broken by the higher worst case; the top two go to "
    "the decisive study. When no candidate is eligible, the one with the highest worst case goes, marked as having "
    "failed the screening, so that the decisive study still measures the best the screening found."
)


def screening_runs(profile: Profile) -> list[RunSpec]:
    """The screening's runs: every entry of :data:`~art_sgt.reproduction.recipe.SCREENING` x every seed of
    ``profile``.

    :param profile: The screening profile (``get_profile("mnist", "screening")``, possibly overridden).
    :return: The run specifications, seed by seed.
    """
    return [_variant_run(profile, seed, entry) for seed in profile.seeds for entry in SCREENING]


#: The decisive study's models trained with every seed of its profile; the others take its first three.
DECISIVE_FULL_SEEDS = ("asgt", "mixed_at", "trades_at")

#: The decisive study's models, in table order (before the screening's chosen variants).
DECISIVE_MODELS = ("standard", "sgt", "pgd_at", "mixed_at", "trades_at", "asgt")


def decisive_runs(profile: Profile, chosen: tuple[str, ...] = ()) -> list[RunSpec]:
    """The decisive study's runs: :data:`~art_sgt.reproduction.recipe.DECISIVE_MODELS` and the screening's
    ``chosen`` variants.

    :param profile: The decisive profile (``get_profile("mnist", "decisive")``, possibly overridden).
    :param chosen: Names of :func:`screening_runs` runs the screening's rule chose
        (:data:`~art_sgt.reproduction.recipe.SCREENING_RULE`); the paper's ASGT is in the study anyway.
    :return: The run specifications, seed by seed; the chosen variants and
        :data:`~art_sgt.reproduction.recipe.DECISIVE_FULL_SEEDS` with every seed of ``profile``, the other models
        with its first three.
    :raises ValueError: If a chosen name is not a screening variant.
    """
    entries = {(f"{m}[{v}]" if v else m): (v, m, kw, over) for v, m, kw, over in SCREENING}
    unknown = [name for name in chosen if name not in entries]
    if unknown:
        raise ValueError(f"chosen must name screening variants ({', '.join(entries)}), got {unknown}.")
    variants = [entries[n] for n in chosen if n not in DECISIVE_MODELS]
    runs = []
    for i, seed in enumerate(profile.seeds):
        runs += [_run(profile, m, seed) for m in DECISIVE_MODELS if m in DECISIVE_FULL_SEEDS or i < 3]
        runs += [_variant_run(profile, seed, entry) for entry in variants]
    return runs


def select(runs: list[RunSpec], only: str | None) -> list[RunSpec]:
    """The runs picked by ``--only NAME[,SEED]``.

    Without a seed, ``NAME`` matches a run's :attr:`RunSpec.name` or its model (``"asgt"``: every seed and variant
    of ASGT). With a seed it picks one piece: the run named ``NAME`` (``"asgt,0"``: the paper's ASGT alone;
    ``"asgt[kl 0.3],0"``), or, when no run has that name, every run of that model with that seed.

    :param runs: The candidate runs.
    :param only: ``None`` (all), ``"asgt"``, ``"asgt,1"`` or ``"asgt[kl 0.3],1"``.
    :return: The selected runs, in order.
    :raises ValueError: If ``only`` is malformed or selects nothing.
    """
    if only is None:
        return list(runs)
    parts = [p.strip() for p in only.split(",")]
    if len(parts) > 2 or not parts[0] or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"only must be MODEL or MODEL,SEED (e.g. 'asgt,1'), got {only!r}.")
    seed = int(parts[1]) if len(parts) == 2 else None
    if seed is None:
        chosen = [r for r in runs if parts[0] in (r.name, r.model)]
    else:  # one piece: the run of that name, else every run of that model, with that seed
        by_name = any(r.name == parts[0] for r in runs)
        chosen = [r for r in runs if (r.name if by_name else r.model) == parts[0] and r.seed == seed]
    if not chosen:
        names = sorted({r.name for r in runs})
        raise ValueError(f"only must pick one of the recipe's runs ({', '.join(names)}), got {only!r}.")
    return chosen
