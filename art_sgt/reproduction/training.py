"""Train one :class:`~art_sgt.reproduction.recipe.RunSpec`, resumable, counting its CPU seconds.

SGT, mixed AT and ASGT resume through the trainers' own checkpoints (``checkpoint_dir`` / ``resume``, mid-epoch);
ART's ``fit`` and ``AdversarialTrainerMadryPGD`` have none, so they run one epoch per call with numpy's and
torch's generators seeded from ``(seed, epoch)`` and a checkpoint of weights and optimiser after each epoch.
The CPU seconds (``time.process_time``, all threads of the process) of every session are added up in
``progress.json``, written whenever a checkpoint lands and when the session ends, so a run trained over several
sessions reports its whole cost and the code of each session, even of one killed without a chance to write: it
counts up to its last checkpoint, the point the next session resumes from.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from art_sgt.precision import Autocast
from art_sgt.reproduction.recipe import RunSpec, TrainingRecipe

__all__ = [
    "ARCHS",
    "Autocast",
    "MODEL_OPTIONS",
    "SessionCost",
    "build_classifier",
    "supported",
    "train_run",
    "load_trained",
    "load_run",
    "weights_sha256",
]

#: Network constructor name in :mod:`art_sgt.models` and input shape, per architecture.
ARCHS = {
    "mnist_cnn": ("MnistCNN", (1, 28, 28)),
    "cifar_cnn": ("CifarCNN", (3, 32, 32)),
    "resnet18": ("resnet18_cifar", (3, 32, 32)),
}


def build_classifier(
    training: TrainingRecipe, network: Callable[[], torch.nn.Module] | None = None, seed: int = 0
) -> Any:
    """A fresh ART ``PyTorchClassifier`` of the recipe's architecture (Adam, inputs in [0, 1]).

    :param training: The recipe (``arch`` and ``lr``).
    :param network: Builds a network to use instead of ``arch`` (tests pass a tiny one; it must have an
        ``input_shape`` attribute). Called after seeding, like the recipe's constructors.
    :param seed: Seed of the initialisation.
    :return: The classifier, on the GPU when one is available.
    :raises ValueError: For an unknown architecture.
    """
    from art_sgt import models

    torch.manual_seed(seed)
    if network is None:
        if training.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(map(repr, ARCHS))}, got {training.arch!r}.")
        name, shape = ARCHS[training.arch]
        net = getattr(models, name)()
    else:
        net = network()
        shape = net.input_shape
    if training.amp:
        net = Autocast(net)
    return models.make_classifier(net, tuple(shape), nb_classes=10, lr=training.lr, device_type="auto")


#: The ``SaliencyGuidedAdversarialTrainer`` options each adversarial model of the recipe is, beyond the recipe's
#: mask fraction and KL weight (``asgt``: none, the paper's objective).
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "asgt": {},
    "mixed_at": {"kl_weight": 0.0},
    "madry_sgt": {"objective": "madry"},
    "trades_sgt": {"objective": "trades"},
    "trades_at": {"objective": "trades", "kl_weight": 0.0},
}

#: The models trained by ART's own ``fit`` and ``AdversarialTrainerMadryPGD``.
ART_MODELS = ("standard", "pgd_at")


def supported(spec: RunSpec) -> str | None:
    """Why a run cannot be trained by this version of the trainers, or ``None`` when it can.

    A trainer keyword of an ablation that the installed trainer does not accept (e.g. ``saliency_of`` before
    the trainers offer it) makes the run unavailable instead of failing halfway through a recipe.

    :param spec: The run.
    :return: ``None``, or a sentence naming the missing keyword.
    """
    from art_sgt.trainers import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer

    trainer = SaliencyGuidedAdversarialTrainer if spec.model in MODEL_OPTIONS else SaliencyGuidedTrainer
    accepted = inspect.signature(trainer.__init__).parameters
    missing = [k for k, _ in spec.trainer_kwargs if k not in accepted]
    return f"{trainer.__name__} takes no {', '.join(missing)}" if missing else None


def _trainer_kwargs(spec: RunSpec) -> dict[str, Any]:
    kwargs = dict(spec.trainer_kwargs)
    if kwargs.get("fill") == "road":  # ROAD's noisy linear imputation as the training fill
        from art_sgt.evaluation import NoisyLinearImputer

        kwargs["fill"] = NoisyLinearImputer(0.01)
    return kwargs


def _pgd_params(training: TrainingRecipe) -> dict[str, Any]:
    eps = training.train_eps
    return {
        "eps": eps,
        "eps_step": 2.5 * eps / training.train_steps,
        "max_iter": training.train_steps,
        "num_random_init": 1,
    }


def _fit_saliency_trainer(
    spec: RunSpec, classifier: Any, x: np.ndarray, y: np.ndarray, folder: Path, verbose: bool
) -> list[dict[str, Any]]:
    from art.attacks.evasion import ProjectedGradientDescent

    from art_sgt.trainers import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer

    t = spec.training
    options = {"mask_fraction": t.mask_fraction, "kl_weight": t.kl_weight, **_trainer_kwargs(spec)}
    if spec.model == "sgt":
        trainer: Any = SaliencyGuidedTrainer(classifier, **options)
    else:
        options.update(MODEL_OPTIONS[spec.model])
        attack = ProjectedGradientDescent(classifier, verbose=False, **_pgd_params(t))
        trainer = SaliencyGuidedAdversarialTrainer(classifier, attack, **options)
    checkpoints = folder / "checkpoint"
    resume = (checkpoints / "checkpoint.pt").is_file()
    trainer.fit(
        x,
        y,
        batch_size=t.batch_size,
        nb_epochs=t.epochs,
        seed=spec.seed,
        verbose=verbose,
        checkpoint_dir=str(checkpoints),
        resume=resume,
    )
    return [dict(record) for record in trainer.history]


def _fit_art(
    spec: RunSpec, classifier: Any, x: np.ndarray, y: np.ndarray, folder: Path, verbose: bool
) -> list[dict[str, Any]]:
    from art.defences.trainer import AdversarialTrainerMadryPGD

    t = spec.training
    path = folder / "checkpoint" / "art_epoch.pt"
    history: list[dict[str, Any]] = []
    if path.is_file():
        state = torch.load(path, map_location=classifier.device, weights_only=True)
        classifier.model.load_state_dict(state["model"])
        classifier.optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
    for epoch in range(len(history), t.epochs):
        np.random.seed((spec.seed * 100_003 + epoch) % 2**32)  # noqa: NPY002 - ART shuffles and attacks with it
        torch.manual_seed(spec.seed * 100_003 + epoch)
        started = time.perf_counter()
        if spec.model == "standard":
            classifier.fit(x, y, batch_size=t.batch_size, nb_epochs=1, verbose=verbose)
        else:
            trainer = AdversarialTrainerMadryPGD(classifier, nb_epochs=1, batch_size=t.batch_size, **_pgd_params(t))
            trainer.attack.set_params(verbose=False)
            trainer.fit(x, y)
        history.append({"epoch": epoch + 1, "seconds": time.perf_counter() - started})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(
            {
                "model": classifier.model.state_dict(),
                "optimizer": classifier.optimizer.state_dict(),
                "history": history,
            },
            tmp,
        )
        tmp.replace(path)
    return history


class SessionCost:
    """The cost and code of a run's training sessions, kept in ``folder/progress.json``.

    Within the ``with`` block (one training session), a thread watches ``folder/checkpoint`` and, whenever a
    checkpoint file lands there, writes the CPU seconds (``time.process_time``) and wall seconds so far, added to
    the earlier sessions', with this session's commit (:func:`~art_sgt.provenance.git_state`). The block's end
    writes them once more when it ends normally or when a checkpoint has landed since the thread last looked (a
    Ctrl-C writes one); after any other error, or a kill, the file keeps what was counted at the last checkpoint,
    where the next session resumes, so the sum is the cost of the training that persisted. A session killed
    before its first checkpoint is not counted.

    :param folder: The run's cache folder.
    :param poll_seconds: How often the thread looks for a new checkpoint.
    """

    def __init__(self, folder: str | Path, poll_seconds: float = 1.0) -> None:
        self.path = Path(folder) / "progress.json"
        self._watched = Path(folder) / "checkpoint"
        self._poll = poll_seconds
        before = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self._before = {"cpu_seconds": 0.0, "wall_seconds": 0.0, "sessions": 0, "git": [], **before}
        #: What ``progress.json`` holds now (the earlier sessions' until this one writes).
        self.progress: dict[str, Any] = dict(self._before)

    def _stamp(self) -> tuple[tuple[str, int], ...]:
        files = self._watched.glob("*.pt") if self._watched.is_dir() else ()
        stamps = []
        for f in files:
            try:
                stamps.append((f.name, f.stat().st_mtime_ns))
            except FileNotFoundError:  # replaced between listing and stat
                continue
        return tuple(sorted(stamps))

    def _write(self) -> None:
        from art_sgt.provenance import write_json

        b = self._before
        self.progress = {
            **b,
            "cpu_seconds": b["cpu_seconds"] + time.process_time() - self._cpu,
            "wall_seconds": b["wall_seconds"] + time.perf_counter() - self._wall,
            "sessions": b["sessions"] + 1,
            "git": [*b["git"], self._git],
        }
        write_json(self.path, self.progress)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            stamp = self._stamp()
            if stamp != self._seen:
                self._seen = stamp
                self._write()

    def __enter__(self) -> SessionCost:
        from art_sgt.provenance import git_state

        self._git = git_state()
        self._seen = self._stamp()
        self._stop = threading.Event()
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        self._thread = threading.Thread(target=self._watch, name="session-cost", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if exc_type is None or self._stamp() != self._seen:
            self._write()


def train_run(
    spec: RunSpec,
    x: np.ndarray,
    y: np.ndarray,
    folder: str | Path,
    network: Callable[[], torch.nn.Module] | None = None,
    verbose: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Train ``spec`` in ``folder``, resuming from its checkpoint when one is there.

    Keeps ``progress.json`` (CPU and wall seconds so far, sessions and their code; see :class:`SessionCost`), and
    on success writes ``train_log.json`` (with the run's training configuration and the SHA-256 of its weights file)
    and then ``weights.pt`` (the float32 network's ``state_dict``, without the
    :class:`~art_sgt.precision.Autocast` wrapper of ``amp``); the checkpoint folder is then removed.

    :param spec: The run.
    :param x: Training inputs, channels first, in [0, 1] (the first ``n_train`` are used).
    :param y: One-hot training labels.
    :param folder: The run's cache folder.
    :param network: Builds a network to train instead of the recipe's architecture (tests).
    :param verbose: Show the trainers' progress bars.
    :return: ``(classifier, training log)``.
    :raises ValueError: For an unknown model, or a run the installed trainers cannot do (see :func:`supported`).
    """
    import shutil

    from art_sgt.provenance import run_info, write_json

    known = (*ART_MODELS, "sgt", *MODEL_OPTIONS)
    if spec.model not in known:
        raise ValueError(f"model must be one of {', '.join(known)}, got {spec.model!r}.")
    reason = supported(spec)
    if reason is not None:
        raise ValueError(f"run {spec.name} is not available: {reason}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = spec.training.n_train
    x, y = x[:n], y[:n]
    classifier = build_classifier(spec.training, network, spec.seed)
    with SessionCost(folder) as session:
        if spec.model in ART_MODELS:
            history = _fit_art(spec, classifier, x, y, folder, verbose)
        else:
            history = _fit_saliency_trainer(spec, classifier, x, y, folder, verbose)
    progress = session.progress
    log = {
        "model": spec.model,
        "variant": spec.variant,
        "seed": spec.seed,
        "n_train": len(x),
        "epochs": spec.training.epochs,
        "cpu_seconds": round(progress["cpu_seconds"], 2),
        "wall_seconds": round(progress["wall_seconds"], 2),
        "sessions": progress["sessions"],
        "sessions_git": progress["git"],
        "cpu_seconds_per_epoch": round(progress["cpu_seconds"] / spec.training.epochs, 2),
        "torch_threads": torch.get_num_threads(),
        "device": str(classifier.device),
        "history": history,
        "provenance": run_info(spec.seed, str(classifier.device)),
    }
    network = classifier.model.network if isinstance(classifier.model, Autocast) else classifier.model
    partial = folder / "weights.pt.partial"  # weights.pt appears whole and last: it marks the run trained
    torch.save(network.state_dict(), partial)
    log["training_config"] = spec.training_config()
    log["weights_sha256"] = weights_sha256(partial)
    write_json(folder / "train_log.json", log)
    os.replace(partial, folder / "weights.pt")
    shutil.rmtree(folder / "checkpoint", ignore_errors=True)
    return classifier, log


def load_trained(spec: RunSpec, folder: str | Path, network: Callable[[], torch.nn.Module] | None = None) -> Any:
    """The classifier of a trained run, its weights read from ``folder/weights.pt``, in float32 (no autocast).

    :param spec: The run.
    :param folder: Its cache folder.
    :param network: Builds the network used in training when it was not the recipe's architecture.
    :return: The classifier.
    """
    classifier = build_classifier(replace(spec.training, amp=False), network, spec.seed)
    classifier.model.load_state_dict(
        torch.load(Path(folder) / "weights.pt", map_location=classifier.device, weights_only=True)
    )
    return classifier


def weights_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, as 64 hex digits (the check of a published run's weights).

    :param path: The file.
    :return: Its digest.
    """
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_run(folder: str | Path, network: Callable[[], torch.nn.Module] | None = None) -> Any:
    """A trained run of a study (e.g. one committed under ``results/runs/``) as an ART ``PyTorchClassifier``.

    The run's ``train_log.json`` names its training configuration and the SHA-256 of its ``weights.pt``; the file
    is checked against it before it is read, and read with ``torch.load(weights_only=True)``, which builds tensors
    and never runs code from the file.

    :param folder: The run's folder (``.../seed<k>-<training hash>/``).
    :param network: Builds the network used in training when it was not a recipe architecture (tests).
    :return: The classifier (Adam optimiser, inputs in [0, 1], channels first), in float32.
    :raises FileNotFoundError: If the folder lacks ``train_log.json`` or ``weights.pt``.
    :raises ValueError: If the log records no training configuration or digest (a run trained before they were
        recorded), or the weights do not match the digest.
    """
    from art_sgt.reproduction.recipe import TrainingRecipe

    folder = Path(folder)
    log_path, weights = folder / "train_log.json", folder / "weights.pt"
    for path in (log_path, weights):
        if not path.is_file():
            raise FileNotFoundError(f"folder must hold a trained run's {path.name}, got {str(folder)!r}.")
    log = json.loads(log_path.read_text())
    if "training_config" not in log or "weights_sha256" not in log:
        raise ValueError(f"{log_path} records no training_config / weights_sha256: the run cannot be checked.")
    digest = weights_sha256(weights)
    if digest != log["weights_sha256"]:
        raise ValueError(f"{weights} has SHA-256 {digest}, but its log records {log['weights_sha256']}.")
    training = replace(TrainingRecipe(**log["training_config"]["training"]), amp=False)
    classifier = build_classifier(training, network, seed=int(log["training_config"]["seed"]))
    classifier.model.load_state_dict(torch.load(weights, map_location=classifier.device, weights_only=True))
    return classifier
