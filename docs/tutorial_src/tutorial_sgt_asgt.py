"""
Tutorial: train SGT and ASGT, then evaluate their maps and robustness
=====================================================================

This page trains three copies of a small CNN on a subset of MNIST (standard training, SGT and ASGT),
then measures what each bought: the quality of its saliency maps and its accuracy under attack.
It is a Python script that runs when the documentation is built, so every number and figure
below is what this code printed and drew: on a **small subset, for two epochs**, so the
numbers show the workflow, not the methods' final quality. For full-size runs see :doc:`/results`.

Run it yourself with ``python docs/tutorial_src/tutorial_sgt_asgt.py`` (MNIST in ``$ART_SGT_DATA`` or ART's
data folder), and raise ``N_TRAIN`` and ``EPOCHS`` for meaningful numbers.
"""

# %%
# Data and the three classifiers
# ------------------------------
#
# :func:`~art_sgt.datasets.load_mnist` returns ART's layout (channels-last images in [0, 1], one-hot labels);
# ``PyTorchClassifier`` wants channels first. Any ``torch.nn.Module`` that returns logits works: this page uses
# a small CNN so that it builds in seconds (the SGT paper's network is :class:`~art_sgt.models.MnistCNN`).
# :func:`~art_sgt.models.make_classifier` wraps it into an ART ``PyTorchClassifier`` with a cross-entropy
# loss and Adam; every model starts from the same weights.

import copy
import logging

import torch

# sphinx_gallery_start_ignore
for name in (
    "art",
    "art_sgt",
):  # ART logs every attack, and the trainers every epoch, at INFO level
    logging.getLogger(name).setLevel(logging.WARNING)
# sphinx_gallery_end_ignore

from art_sgt import load_mnist, make_classifier, random_subset
from art_sgt.models import to_channels_first

N_TRAIN, EPOCHS, N_TEST = 4000, 2, 200  # small, so that the page builds in seconds
torch.manual_seed(0)

(x_train, y_train), (x_test, y_test), _, _ = load_mnist(download=False)
x_train, y_train = to_channels_first(x_train[:N_TRAIN]), y_train[:N_TRAIN]
# a seeded random sample of the test set: its first images are the easier ones
test = random_subset(len(x_test), N_TEST, seed=0)
x_test, labels = to_channels_first(x_test[test]), y_test[test].argmax(1)

initial = torch.nn.Sequential(
    torch.nn.Conv2d(1, 16, 3, stride=2, padding=1),
    torch.nn.ReLU(),
    torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
    torch.nn.ReLU(),
    torch.nn.Flatten(),
    torch.nn.Linear(32 * 7 * 7, 10),
)


def new_classifier():
    return make_classifier(
        copy.deepcopy(initial), input_shape=(1, 28, 28), lr=2e-3, device_type="cpu"
    )


def accuracy(classifier, x):
    return float((classifier.predict(x).argmax(1) == labels).mean())


# %%
# Standard training, SGT and ASGT
# -------------------------------
#
# Standard training is ART's own ``fit``. :class:`~art_sgt.trainers.sgt.SaliencyGuidedTrainer` masks the
# ``mask_fraction`` least salient pixels of each image and adds a KL term that asks for the same prediction
# with or without them. :class:`~art_sgt.trainers.asgt.SaliencyGuidedAdversarialTrainer` does the same on
# adversarial examples from an ART attack: here PGD at eps 0.3 with Madry's step ``2.5 * eps / steps`` from a
# random start, so that it can reach the edge of the eps ball.

from art.attacks.evasion import ProjectedGradientDescent

from art_sgt import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer

standard = new_classifier()
standard.fit(x_train, y_train, nb_epochs=EPOCHS, batch_size=128, verbose=False)

sgt = new_classifier()
sgt_trainer = SaliencyGuidedTrainer(sgt, mask_fraction=0.5, kl_weight=1.0)
sgt_trainer.fit(
    x_train, y_train, nb_epochs=EPOCHS, batch_size=128, seed=0, verbose=False
)

asgt = new_classifier()
steps, eps = 5, 0.3
attack = ProjectedGradientDescent(
    asgt,
    eps=eps,
    eps_step=2.5 * eps / steps,
    max_iter=steps,
    num_random_init=1,
    verbose=False,
)
asgt_trainer = SaliencyGuidedAdversarialTrainer(
    asgt, attack, mask_fraction=0.5, kl_weight=1.0
)
asgt_trainer.fit(
    x_train, y_train, nb_epochs=EPOCHS, batch_size=128, seed=0, verbose=False
)

models = {"standard": standard, "SGT": sgt, "ASGT": asgt}
for name, classifier in models.items():
    print(f"{name:>8}: clean test accuracy {accuracy(classifier, x_test):.3f}")

# %%
# Each trainer keeps one record per epoch in ``history``:

for record in asgt_trainer.history:
    print({key: round(value, 4) for key, value in record.items()})

# %%
# Saliency maps
# -------------
#
# The absolute input gradient of the true class, per model (brighter = more salient). SGT is meant to make
# the maps concentrate on the digit's strokes; compare the columns, then the numbers of the next section.

from art_sgt import input_gradient
from art_sgt.plotting import plot_map_grid

x_shown = torch.from_numpy(x_test[:5])
maps = {
    name: input_gradient(
        classifier.model, x_shown, torch.from_numpy(labels[:5])
    ).numpy()
    for name, classifier in models.items()
}
figure = plot_map_grid(x_test[:5], maps, titles=[str(k) for k in labels[:5]])

# %%
# Map quality
# -----------
#
# :class:`~art_sgt.evaluation.report.SaliencyEvaluator` computes each model's maps once and runs the chosen
# evaluators on them (see :doc:`/evaluators`): the accuracy left after masking the most (MoRF) and least
# (LeRF) salient pixels first, and the sparseness (Gini index, higher is sparser) and complexity (entropy,
# lower is simpler) of the maps. A faithful map has a low MoRF and a high LeRF accuracy.

from art_sgt.evaluation import SaliencyEvaluator

rows = {}
for name, classifier in models.items():
    report = SaliencyEvaluator(
        classifier, ["saliency"], ["masking", "sparseness", "complexity"]
    ).evaluate(x_test, labels)
    rows[name] = report.summary()["saliency"]
columns = ["auc_morf_accuracy", "auc_lerf_accuracy", "sparseness", "complexity"]
print(f"{'model':>8}  " + "  ".join(f"{c:>17}" for c in columns))
for name, row in rows.items():
    print(f"{name:>8}  " + "  ".join(f"{row[c]:>17.3f}" for c in columns))

# %%
# Robustness
# ----------
#
# :func:`~art_sgt.evaluation.robustness.robustness_report` attacks each model with ART's PGD, APGD-CE,
# APGD-DLR and Square at every eps, takes the per-sample worst case (a sample counts as robust only if it
# survives every attack), and runs the gradient-masking checks (see :doc:`/robustness`). The ``"quick"``
# budget (here with fewer Square queries) is for a page like this one only: a claim needs ``"standard"`` or
# ``"autoattack"``.

from art_sgt.evaluation import AttackBudget, plot_robustness, robustness_report

budget = AttackBudget.preset("quick").replace(square_max_iter=100)
reports = {}
for name, classifier in models.items():
    reports[name] = robustness_report(
        classifier,
        x_test[:100],
        labels[:100],
        eps=(0.1, 0.2, 0.3),
        budget=budget,
        verbose=False,
    )
    worst = " / ".join(f"{a:.2f}" for a in reports[name].worst_case)
    flags = ", ".join(reports[name].flags) or "none"
    print(f"{name:>8}: worst case at eps 0.1 / 0.2 / 0.3: {worst}; flags: {flags}")

figure = plot_robustness(reports)

# %%
# Reading the report
# ------------------
#
# ``report.table()`` prints everything one report holds: the accuracy per attack and eps, the worst case,
# and each gradient-masking check with its evidence. A flag means the robustness number cannot be trusted
# as it stands (see the gradient-masking FAQ in :doc:`/robustness`); no flag is necessary, not sufficient.

print(reports["ASGT"].table())

# %%
# What to take away: SGT changes the maps and costs about one extra forward/backward pass per batch, but it
# is not adversarial training; ASGT is, and costs the attack's steps per batch. See :doc:`/which_trainer`.
