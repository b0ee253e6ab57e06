"""The finished attack runs of one robustness report, kept in a JSON file so that an interrupted report resumes.

An AutoAttack-strength report on a robust model runs for an hour or more, its attacks one after another. Given a
file, :func:`~art_sgt.evaluation.robustness.robustness_report` keeps each attack run's per-sample outcomes there as
soon as the run ends (with its seconds and the notes it raised), and a report started again on the same
classifier, inputs and parameters takes the kept runs instead of attacking again. Every attack is seeded just
before it runs, so a resumed report equals one that was never interrupted. The file holds JSON only (nothing in
it can run code), is ignored and replaced when it was made for another classifier, other inputs or other
parameters, and is removed once the report is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


def _weights_digest(model: torch.nn.Module, digest: Any) -> None:
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())


def _array(value: Any) -> Any:
    return None if value is None else np.asarray(value, dtype=float).tolist()


def describe(classifier: Any) -> dict[str, Any]:
    """What, besides its weights, makes a classifier's attacks come out as they do: its architecture, loss, clip
    values, preprocessing and classes, and the versions of ART and torch. Reprs that hold a memory address (a plain
    loss function) are replaced by the qualified name, so the description is the same in every session.

    :param classifier: An ART ``PyTorchClassifier``.
    :return: A JSON-serialisable description.
    """
    import art

    loss = classifier.loss
    preprocessing = [
        [type(op).__name__, _array(getattr(op, "mean", None)), _array(getattr(op, "std", None))]
        for op in getattr(classifier, "preprocessing_operations", None) or []
    ]
    return {
        "model": repr(classifier.model),
        "loss": repr(loss) if isinstance(loss, torch.nn.Module) else getattr(loss, "__qualname__", type(loss).__name__),
        "clip_values": _array(classifier.clip_values),
        "nb_classes": int(classifier.nb_classes),
        "input_shape": list(classifier.input_shape),
        "preprocessing": preprocessing,
        "versions": [art.__version__, torch.__version__],
    }


def fingerprint(classifier: Any, x: np.ndarray, labels: np.ndarray, params: dict[str, Any], extra: Any) -> str:
    """A SHA-256 of what a report's attack runs depend on: the classifier (its weights and :func:`describe`), the
    inputs, the labels and the parameters.

    :param classifier: The ART classifier under test.
    :param x: The inputs, float32.
    :param labels: The class indices.
    :param params: The report's parameters.
    :param extra: Anything else the runs depend on, JSON-serialisable (the eps, the attacks, the transfer model's
        :func:`model_digest`).
    :return: The hex digest.
    """
    digest = hashlib.sha256()
    _weights_digest(classifier.model, digest)
    for array in (np.ascontiguousarray(x), np.ascontiguousarray(labels, dtype=np.int64)):
        digest.update(f"{array.shape}:{array.dtype}".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps([describe(classifier), params, extra], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def model_digest(classifier: Any) -> str:
    """:return: A SHA-256 of an ART classifier's weights and :func:`describe` (the transfer check's source)."""
    digest = hashlib.sha256()
    _weights_digest(classifier.model, digest)
    digest.update(json.dumps(describe(classifier), sort_keys=True).encode())
    return digest.hexdigest()


class AttackSteps:
    """Attack runs, each done once: kept in ``path`` (when given) as soon as it ends.

    :param path: The JSON file, or ``None`` (nothing kept: every run is computed).
    :param key: The report's :func:`fingerprint`; a file made under another key is ignored and replaced.
    """

    def __init__(self, path: str | os.PathLike | None, key: str) -> None:
        self.path, self.key = (None if path is None else Path(path)), key
        self.done: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.is_file():
            try:
                kept = json.loads(self.path.read_text())
                runs = dict(kept["runs"]) if kept.get("key") == key else None
            except (ValueError, TypeError, KeyError, AttributeError):
                runs = None
            if runs is None:
                logger.warning("%s is unreadable or was made for another report: ignored and replaced", self.path)
            else:
                self.done = runs
                logger.info("resuming a robustness report: %d attack runs kept in %s", len(runs), self.path)

    def run(
        self, name: str, work: Callable[[], np.ndarray], notes: list[str], samples: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """The outcomes of run ``name``: kept, or computed by ``work()`` (and kept, when there is a file).

        :param name: The run's name, unique within the report (e.g. ``"apgd-ce eps=0.3 (1)"``).
        :param work: Computes the per-sample correctness (a boolean vector), appending to ``notes``.
        :param notes: The report's notes; a kept run's notes are appended again.
        :param samples: The indices of the samples the run attacks, when not all: a kept run of other samples (a
            cascade whose earlier runs came out otherwise) is run again.
        :return: The outcomes and the run's wall-clock seconds (those it took when it ran).
        """
        which = None if samples is None else hashlib.sha256(np.asarray(samples, dtype=np.int64).tobytes()).hexdigest()
        kept = self.done.get(name)
        if kept is not None and kept.get("samples") == which:
            notes.extend(kept["notes"])
            return np.frombuffer(kept["correct"].encode(), dtype=np.uint8) == ord("1"), float(kept["seconds"])
        first, started = len(notes), time.perf_counter()
        correct = np.asarray(work(), dtype=bool)
        seconds = time.perf_counter() - started
        if self.path is not None:
            self.done[name] = {
                "correct": "".join("1" if c else "0" for c in correct),
                "samples": which,
                "seconds": seconds,
                "notes": notes[first:],
            }
            self._write()
        return correct, seconds

    def _write(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"key": self.key, "runs": self.done}))
        os.replace(tmp, self.path)  # atomic: an interruption leaves the last complete file

    def finish(self) -> None:
        """Remove the file: the report is complete and holds every run."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
