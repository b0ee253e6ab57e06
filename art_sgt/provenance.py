"""What every results file records: the exact command, seed, package versions and hardware."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

__all__ = ["git_state", "run_info", "write_json"]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=_REPO_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


_REPO_ROOT = Path(__file__).resolve().parent.parent


def git_state() -> dict[str, Any]:
    """The commit the code was run from and whether the tree was clean.

    Changes under ``results/`` are not counted: a run that writes its results there is still a run of clean code.
    Outside a git checkout (an installed wheel) both values are ``None``.

    :return: ``{"commit": str | None, "clean": bool | None}``.
    """
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {"commit": None, "clean": None}
    status = _git("status", "--porcelain", "--", ".", ":(exclude)results")
    return {"commit": commit, "clean": None if status is None else status == ""}


def run_info(seed: int | None = None, device: str | None = None) -> dict[str, Any]:
    """Describe the current run.

    :param seed: The seed the run used.
    :param device: The device the run used.
    :return: A JSON-serialisable dict.
    """
    if Path(sys.argv[0]).name == "art-sgt":  # the console script: write the command as the user typed it
        argv = ["art-sgt", *sys.argv[1:]]
    else:
        argv = [Path(sys.executable).name, *sys.argv]
    return {
        "command": " ".join(shlex.quote(a) for a in argv),
        "seed": seed,
        "git": git_state(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "art_sgt": _version("art-sgt"),
            "torch": torch.__version__,
            "adversarial-robustness-toolbox": _version("adversarial-robustness-toolbox"),
            "captum": _version("captum"),
            "numpy": _version("numpy"),
        },
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": device,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
    }


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON, creating the folder, atomically (temporary file, then rename).

    :param path: Destination file.
    :param payload: JSON-serialisable data.
    :return: The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path
