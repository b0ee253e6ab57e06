"""The run cache: one folder per run, keyed by the hash of its training configuration.

``<root>/<profile>/<dataset>/<run name>/seed<k>-<training hash>/`` holds

- ``checkpoint/``: the trainer's checkpoint while training (removed once training is done);
- ``progress.json``: CPU and wall seconds spent so far, over every session;
- ``weights.pt`` and ``train_log.json``: the trained model and its training log;
- ``evaluation_partial.json``: the finished stages of an evaluation under way (removed once it is done), and
  ``robustness_runs_eps<eps>.json``: the finished attack runs of its worst-case stage under way (removed once
  that stage is done);
- ``evaluation.json``: the evaluation, with the hash of the evaluation configuration it was made with.

A run is ``done`` when its evaluation matches the current evaluation configuration, ``trained`` when its
weights and training log are there (it is evaluated, not retrained, resuming after the last finished stage of an
interrupted evaluation), ``partial`` when an interrupted training left a checkpoint file or its cost so far
(it resumes from the checkpoint), ``missing`` otherwise, and ``unavailable`` when the installed trainers cannot do it.
:func:`run_pieces` skips, resumes and runs accordingly; :meth:`RunCache.manifest` lists every state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from art_sgt.provenance import run_info, write_json
from art_sgt.reproduction.recipe import RunSpec

__all__ = ["STATES", "RunCache", "run_pieces"]

#: The states of a run, from nothing to done.
STATES = ("unavailable", "missing", "partial", "trained", "done")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


class RunCache:
    """The cache folder of the reproduction's runs.

    :param root: The folder (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, spec: RunSpec) -> Path:
        """The run's folder (it may not exist yet).

        :param spec: The run.
        :return: ``<root>/<profile>/<dataset>/<name>/seed<k>-<training hash>``.
        """
        return self.root / spec.profile / spec.dataset / _slug(spec.name) / f"seed{spec.seed}-{spec.training_hash()}"

    def evaluation(self, spec: RunSpec) -> dict[str, Any] | None:
        """The run's cached record when it matches the current evaluation configuration and keeps every per-sample
        outcome of :func:`~art_sgt.reproduction.evaluate.per_sample_keys` (a record written by older code without them
        cannot be paired, and is evaluated again), else ``None``. Its PGD outcomes count an image robust only where
        it is also correct clean (``evaluate.robust_pgd``), as the current code does.

        :param spec: The run.
        :return: The content of ``evaluation.json``, or ``None``.
        """
        from art_sgt.reproduction.evaluate import from_bits, per_sample_keys, robust_pgd

        path = self.folder(spec) / "evaluation.json"
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        if record.get("evaluation_hash") != spec.evaluation_hash():
            return None
        evaluation = record.get("evaluation", {})
        if not set(per_sample_keys(spec.evaluation)) <= set(evaluation.get("per_sample", {})):
            return None
        evaluation["per_sample"] = robust_pgd(evaluation["per_sample"])  # as the current code counts them
        evaluation.update(
            {k: float(from_bits(v).mean()) for k, v in evaluation["per_sample"].items() if k.startswith("pgd_")}
        )
        return record

    def status(self, spec: RunSpec) -> str:
        """The run's state, one of ``STATES``.

        :param spec: The run.
        :return: The state.
        """
        from art_sgt.reproduction.training import supported

        folder = self.folder(spec)
        if self.evaluation(spec) is not None:
            return "done"
        if (folder / "weights.pt").is_file() and (folder / "train_log.json").is_file():
            return "trained"
        checkpoint = folder / "checkpoint"
        if (checkpoint.is_dir() and any(checkpoint.glob("*.pt"))) or (folder / "progress.json").is_file():
            return "partial"
        return "missing" if supported(spec) is None else "unavailable"

    def manifest(self, runs: Sequence[RunSpec]) -> dict[str, Any]:
        """What is done and what is missing.

        :param runs: The runs of a recipe.
        :return: ``{"counts": {state: n}, "runs": [{name, model, variant, seed, status, folder,
            evaluation_stages}, ...]}`` (``evaluation_stages``: the stages an interrupted evaluation kept).
        """
        from art_sgt.reproduction.evaluate import kept_stages

        rows = [
            {
                "name": r.name,
                "model": r.model,
                "variant": r.variant,
                "seed": r.seed,
                "status": self.status(r),
                "folder": str(self.folder(r).relative_to(self.root)),
                "evaluation_stages": list(kept_stages(self.folder(r) / "evaluation_partial.json", r.evaluation_hash())),
            }
            for r in runs
        ]
        counts = {state: sum(row["status"] == state for row in rows) for state in STATES}
        return {"root": str(self.root), "counts": counts, "runs": rows}

    def twin(self, spec: RunSpec) -> Path | None:
        """Another folder of the cache holding weights trained with the same configuration (e.g. an ablation's
        default setting, which is the main comparison's model), or ``None``.

        :param spec: The run.
        :return: The twin's folder.
        """
        own = self.folder(spec)
        for folder in sorted(self.root.glob(f"*/{spec.dataset}/*/seed{spec.seed}-{spec.training_hash()}")):
            if folder != own and (folder / "weights.pt").is_file() and (folder / "train_log.json").is_file():
                return folder
        return None

    def write_manifest(self, runs: Sequence[RunSpec], path: str | Path) -> dict[str, Any]:
        """Write :meth:`manifest` as JSON to ``path``.

        :param runs: The runs of a recipe.
        :param path: The JSON file.
        :return: The manifest.
        """
        manifest = self.manifest(runs)
        write_json(path, manifest)
        return manifest

    def records(self, runs: Sequence[RunSpec]) -> list[dict[str, Any]]:
        """The cached records of the runs that are done, in the order of ``runs``.

        :param runs: The runs of a recipe.
        :return: Their ``evaluation.json`` contents.
        """
        return [record for record in map(self.evaluation, runs) if record is not None]

    def train_record(self, spec: RunSpec) -> dict[str, Any] | None:
        """The training side of a record, for a run trained but not evaluated (or done).

        :param spec: The run.
        :return: ``{"name", "model", "seed", "dataset", "training_config", "train", "evaluation_kept_cpu_seconds"}``
            (the CPU seconds of the evaluation stages an interrupted evaluation kept), or ``None`` when the run is
            not trained.
        """
        from art_sgt.reproduction.evaluate import kept_stages

        folder = self.folder(spec)
        path = folder / "train_log.json"
        if not (folder / "weights.pt").is_file() or not path.is_file():
            return None
        kept = kept_stages(folder / "evaluation_partial.json", spec.evaluation_hash())
        return {
            "name": spec.name,
            "model": spec.model,
            "seed": spec.seed,
            "dataset": spec.dataset,
            "training_config": spec.training_config(),
            "train": _read(path),
            "evaluation_kept_cpu_seconds": round(sum(float(s["cpu"]) for s in kept.values()), 2),
        }


def run_pieces(
    cache: RunCache,
    runs: Sequence[RunSpec],
    data: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    network: Callable[[], Any] | None = None,
    verbose: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Bring every run to ``done``: skip what is done, evaluate what is trained, resume what was interrupted,
    and reuse the weights of a twin trained with the same configuration instead of training them again.

    A run's transfer source (:attr:`RunSpec.transfer_source`, the standard model of its seed) is trained first
    when it is not trained yet, whether or not it is among ``runs`` (``--only asgt,1`` trains ``standard,1``; its
    own evaluation waits for its own piece).

    :param cache: The cache.
    :param runs: The runs to do.
    :param data: Returns ``(x_train, y_train, x_test, y_test)``; called once, only when a run needs work.
    :param network: Builds the network instead of the recipe's architecture (tests).
    :param verbose: Show the trainers' progress bars.
    :param log: Where progress lines go.
    :return: ``{run name and seed: what was done}`` (``"skipped"``, ``"evaluated"``, ``"trained"``,
        ``"resumed"``, ``"reused"`` (weights and evaluation of a twin, see :meth:`RunCache.twin`),
        ``"unavailable: ..."``).
    """
    from art_sgt.reproduction.evaluate import evaluate_run
    from art_sgt.reproduction.training import load_trained, supported

    loaded: list[Any] = []
    done: dict[str, str] = {}
    for spec in runs:
        key = f"{spec.name},{spec.seed}"
        state = cache.status(spec)
        if state in ("done", "unavailable"):
            done[key] = "skipped" if state == "done" else f"unavailable: {supported(spec)}"
            log(f"== {key}: {done[key]}")
            continue
        folder = cache.folder(spec)
        twin = cache.twin(spec) if state == "missing" else None
        if twin is not None:
            state = _adopt(cache, spec, twin)
            log(f"== {key}: the same training as {twin.relative_to(cache.root)}: its weights reused")
            if state == "done":
                done[key] = "reused"
                continue
        if not loaded:
            loaded.append(data())
        x_test, y_test = loaded[0][2:]
        done[key] = _train(cache, spec, state, loaded[0], network, verbose, log)
        classifier = load_trained(spec, folder, network)  # evaluated in float32, as saved
        train_log = _read(folder / "train_log.json")
        source, transfer = spec.transfer_source, None
        if source is not None:
            if cache.status(source) in ("missing", "partial"):
                log(f"== {key}: first training its transfer source {source.name},{source.seed}")
                _train(cache, source, cache.status(source), loaded[0], network, verbose, log)
            transfer = load_trained(source, cache.folder(source), network)
        log(f"== {key}: trained ({train_log['cpu_seconds']:.0f} CPU s); evaluating")
        numbers = evaluate_run(spec, classifier, x_test, y_test, transfer, partial=folder / "evaluation_partial.json")
        record = {
            "name": spec.name,
            "model": spec.model,
            "variant": spec.variant,
            "seed": spec.seed,
            "profile": spec.profile,
            "dataset": spec.dataset,
            "training_hash": spec.training_hash(),
            "evaluation_hash": spec.evaluation_hash(),
            "training_config": spec.training_config(),
            "evaluation_config": spec.evaluation_config(),
            "train": train_log,
            "evaluation": numbers,
            "provenance": run_info(spec.seed, str(classifier.device)),
        }
        if source is not None:
            record["transfer_source_folder"] = str(cache.folder(source).relative_to(cache.root))
        write_json(folder / "evaluation.json", record)
        (folder / "evaluation_partial.json").unlink(missing_ok=True)
        measured = ", ".join(
            f"PGD {numbers[f'pgd_{k}']:.3f} and worst case {numbers[f'worst_case_{k}']:.3f} at {k}"
            for k in spec.evaluation.eps_keys
        )
        log(f"== {key}: clean {numbers['clean']:.3f}, {measured}, flags {numbers['flags'] or 'none'}")
    return done


def _train(
    cache: RunCache,
    spec: RunSpec,
    state: str,
    data: tuple[np.ndarray, ...],
    network: Any,
    verbose: bool,
    log: Callable[[str], None],
) -> str:
    """Train ``spec`` unless its weights are there (``state`` ``"trained"``); what was done, as :func:`run_pieces`
    reports it (``"evaluated"``, ``"resumed"`` or ``"trained"``)."""
    from art_sgt.reproduction.training import train_run

    if state == "trained":
        return "evaluated"
    folder = cache.folder(spec)
    log(f"== {spec.name},{spec.seed}: {'resuming' if state == 'partial' else 'training'} in {folder}")
    train_run(spec, data[0], data[1], folder, network, verbose)
    return "resumed" if state == "partial" else "trained"


def _adopt(cache: RunCache, spec: RunSpec, twin: Path) -> str:
    """Copy a twin's weights and training log into the run's folder (and its evaluation when made with the same
    configuration, renamed to the run); the training log names the twin. Returns the run's new state."""
    import shutil

    folder = cache.folder(spec)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(twin / "weights.pt", folder / "weights.pt")
    log = {**_read(twin / "train_log.json"), "reused_from": str(twin.relative_to(cache.root))}
    write_json(folder / "train_log.json", log)
    evaluation = twin / "evaluation.json"
    if evaluation.is_file() and _read(evaluation).get("evaluation_hash") == spec.evaluation_hash():
        names = {"name": spec.name, "model": spec.model, "variant": spec.variant, "profile": spec.profile}
        record = {**_read(evaluation), **names, "train": log, "reused_from": log["reused_from"]}
        write_json(folder / "evaluation.json", record)
    return cache.status(spec)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
