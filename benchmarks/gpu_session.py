"""The steps of one GPU session (issue 31), driven by ``benchmarks/gpu_session.sh``, which sets up the environment.

``run`` does, inside a wall-clock budget (``GPU_SESSION_BUDGET_S``), each step in a child process with its own
time limit, a step that fails or runs out of time not stopping the next:

0. the hardware: ``nvidia-smi`` and ``torch.cuda`` (name, capability, memory), Python and package versions, into
   ``$OUT/hardware.json``;
1. the tests: ``tests/test_cuda.py`` and ``tests/test_device.py`` with ``ART_SGT_TEST_DEVICE`` set to the device,
   the tests the suite skips without CUDA (found by their ``skipif`` on ``torch.cuda.is_available()``), and
   the trainer, attack and evaluator test files, whose ART classifiers use the GPU by ART's default
   (``device_type="gpu"``) wherever CUDA is available; JUnit XML and logs into ``$OUT/step1_tests.tar.gz``;
2. the speed ratios: ``bench_trainers.py`` (SGT / ART fit, ASGT / ART Madry, fast PGD / ART PGD) and
   ``bench_hardware_options.py`` (bf16, channels-last, compile against float32), each measured side by side in
   one run, ``--device`` the session's device; JSON and logs into ``$OUT/step2_bench.tar.gz``;
3. the reproduction's CIFAR-10 ``gpu`` profile, one ``--only MODEL`` piece after another (standard first: it is
   every other model's transfer source), the run cache in ``GPU_SESSION_CACHE`` (outside ``$OUT``, which the
   device tool empties before each command, so a rerun on the same machine resumes it); after every piece the
   report, the session's hardware added to it, and the cache without its weights go into
   ``$OUT/step3_reproduce.tar.gz``. A piece stopped by the time limit gets SIGINT (then SIGTERM), on which the
   trainers write a checkpoint.

``$OUT/summary.json`` is rewritten after every step, so a session cut short still says what finished.
``GPU_SESSION_REDUCED=1`` runs every step on tiny sizes (the check of the script itself on a CPU; its numbers
are not measurements). ``prepare`` writes, on the developer's machine, the CIFAR-10 subset the device call
carries (the tree that travels is limited to 64 MiB) and the commit it was prepared from.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The reproduction's controls in the order they run: the standard model is the others' transfer source, then
#: the comparison the verdict rests on (ASGT against ART's Madry PGD-AT), then the rest.
MODELS = ("standard", "asgt", "pgd_at", "sgt", "mixed_at")
#: The trainer, attack and evaluator test files run on the GPU through ART's default device.
SUITE = (
    "tests/test_trainer_sgt.py",
    "tests/test_trainer_asgt.py",
    "tests/test_fast_asgt.py",
    "tests/test_checkpoint.py",
    "tests/test_attacks.py",
    "tests/test_robust_validation.py",
    "tests/test_hardware_options.py",
    "tests/evaluation",
)
REDUCED_SUITE = ("tests/test_trainer_sgt.py",)
_CUDA_SKIP = re.compile(r"@pytest\.mark\.skipif\(\s*(not\s+)?torch\.cuda\.is_available\(\)")
RESERVE_S = 40  # kept at the end of the budget for stopping (up to 30 s) and packing the last step


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# ---------------------------------------------------------------------------------------------------- prepare


def prepare(data: Path, carry: Path, n_train: int, n_test: int) -> dict[str, Any]:
    """Write ``carry/data/cifar10.npz``: the first ``n_train`` training and ``n_test`` test images of the
    shared CIFAR-10 file (the profile takes the first ones of each), and ``carry/manifest.json``."""
    import numpy as np

    source = data / "cifar10.npz"
    with np.load(source, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    if n_train > len(arrays["x_train"]) or n_test > len(arrays["x_test"]):
        raise ValueError(f"n_train/n_test must be at most {len(arrays['x_train'])}/{len(arrays['x_test'])}.")
    subset = {k: v[: n_train if k.endswith("train") else n_test] for k, v in arrays.items()}
    out = carry / "data" / "cifar10.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **subset)
    status = _git("status", "--porcelain", "--", ".", ":(exclude)results")
    manifest = {
        "prepared_utc": _now(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_clean": None if status is None else status == "",
        "cifar10": {
            "source": str(source),
            "source_sha256": _sha256(source),
            "n_train": n_train,
            "n_test": n_test,
            "file_sha256": _sha256(out),
            "file_mib": round(out.stat().st_size / 2**20, 1),
            "rows": "the first n_train training and n_test test rows of the source",
        },
        "wheels": sorted(p.name for p in (carry / "wheels").glob("*.whl")),
    }
    _write_json(carry / "manifest.json", manifest)
    print(json.dumps(manifest, indent=2))
    return manifest


# -------------------------------------------------------------------------------------------------------- run


class Session:
    """The budget, the folders and the summary of one run."""

    def __init__(self, out: Path) -> None:
        env = os.environ
        self.out = out
        self.device = env.get("GPU_SESSION_DEVICE", "cuda")
        self.reduced = env.get("GPU_SESSION_REDUCED", "0") not in ("", "0")
        self.python = env.get("GPU_SESSION_PYTHON", sys.executable)
        self.steps = [s.strip() for s in env.get("GPU_SESSION_STEPS", "1,2,3").split(",") if s.strip()]
        self.budget = float(env.get("GPU_SESSION_BUDGET_S", 1200 if self.reduced else 480))
        self.caps = {
            "1": float(env.get("GPU_SESSION_STEP1_S", 400 if self.reduced else 120)),
            "2": float(env.get("GPU_SESSION_STEP2_S", 300 if self.reduced else 150)),
        }
        self.cache = Path(env.get("GPU_SESSION_CACHE", "/tmp/art_sgt_gpu_cache" + ("_reduced" if self.reduced else "")))
        self.work = Path(env.get("GPU_SESSION_WORK", "/tmp/gpu_session_work"))
        self.carry = ROOT / env.get("GPU_SESSION_CARRY", ".gpu_carry")
        self.tag = f"{self.device}{'_reduced' if self.reduced else ''}"
        self.start = time.monotonic()
        self.deadline = self.start + self.budget
        self.child_env = dict(env)
        if self.device == "cpu":
            self.child_env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU mode stays on the CPU on a GPU machine too
        self.summary: dict[str, Any] = {
            "started_utc": _now(),
            "device": self.device,
            "reduced": self.reduced,
            "budget_s": self.budget,
            "steps_asked": self.steps,
            "carried": self._carried(),
            "steps": {},
            "note": "reduced mode: tiny sizes, a check of the script; its numbers are not measurements"
            if self.reduced
            else "",
        }

    def _carried(self) -> dict[str, Any] | None:
        path = self.carry / "manifest.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        self.summary["elapsed_s"] = round(time.monotonic() - self.start, 1)
        self.summary["updated_utc"] = _now()
        _write_json(self.out / "summary.json", self.summary)

    def command(self, argv: list[str], log: Path, limit: float, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Run ``argv`` with its output in ``log``; past ``limit`` seconds send its process group SIGINT (pytest then
        writes its JUnit file with the tests done so far; the trainers checkpoint on it, as on SIGTERM), SIGTERM
        20 s later and SIGKILL 10 s after that."""
        started = time.monotonic()
        limit = max(1.0, limit)
        with open(log, "a") as handle:
            handle.write(f"$ {' '.join(argv)}   (limit {limit:.0f} s, {_now()})\n")
            handle.flush()
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**self.child_env, **(env or {})},
                start_new_session=True,
            )
            timed_out = False
            try:
                proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                for stop, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, None)):
                    try:
                        os.killpg(proc.pid, stop)
                    except ProcessLookupError:
                        break
                    try:
                        proc.wait(timeout=grace)
                        break
                    except subprocess.TimeoutExpired:
                        continue
            handle.write(
                f"# exit {proc.returncode}{' (time limit)' if timed_out else ''}, {time.monotonic() - started:.1f} s\n"
            )
        return {"rc": proc.returncode, "timed_out": timed_out, "seconds": round(time.monotonic() - started, 1)}


def _pack(folder: Path, target: Path, extra: list[tuple[Path, str]] = ()) -> None:
    """``folder`` (and ``extra`` folders, under their names) into ``target``, weights and checkpoints left out."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if info.name.endswith((".pt", ".tmp")) else info

    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(folder, arcname=folder.name, filter=keep)
        for path, name in extra:
            if path.exists():
                tar.add(path, arcname=name, filter=keep)
    tmp.replace(target)


def hardware(s: Session) -> dict[str, Any]:
    """What ran the session: nvidia-smi, torch.cuda, versions."""
    info: dict[str, Any] = {"date_utc": _now(), "python": sys.version.split()[0], "executable": s.python}
    for name, argv in (
        ("nvidia_smi", ["nvidia-smi"]),
        (
            "nvidia_smi_query",
            [
                "nvidia-smi",
                "--format=csv",
                "--query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit",
            ],
        ),
    ):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            info[name] = out.stdout if out.returncode == 0 else f"exit {out.returncode}: {out.stderr.strip()}"
        except (OSError, subprocess.SubprocessError) as error:
            info[name] = f"not run: {error}"
    probe = (
        "import json, os, platform, torch, importlib.metadata as m\n"
        "def v(n):\n    try:\n        return m.version(n)\n    except m.PackageNotFoundError:\n        return None\n"
        "d = {'torch': torch.__version__, 'cuda_runtime': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(),"
        " 'cuda_available': torch.cuda.is_available(), 'cpu_count': os.cpu_count(), 'machine': platform.machine(),"
        " 'packages': {n: v(n) for n in ('adversarial-robustness-toolbox', 'captum', 'numpy', 'scipy', 'pytest',"
        " 'hypothesis', 'triton')}}\n"
        "if torch.cuda.is_available():\n"
        "    p = torch.cuda.get_device_properties(0)\n"
        "    d.update(device_name=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)),"
        " total_memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count)\n"
        "print(json.dumps(d))\n"
    )
    try:
        out = subprocess.run([s.python, "-c", probe], capture_output=True, text=True, timeout=120, env=s.child_env)
        info["torch"] = json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-2000:]}
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        info["torch"] = {"error": repr(error)}
    _write_json(s.out / "hardware.json", info)
    return info


def cuda_marked_tests() -> list[str]:
    """Node ids of the tests the suite skips (or runs) by ``torch.cuda.is_available()``."""
    ids = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if _CUDA_SKIP.search(line):
                name = next((m.group(1) for m in map(re.compile(r"^def (test_\w+)").match, lines[i + 1 :]) if m), None)
                if name:
                    ids.append(f"{path.relative_to(ROOT)}::{name}")
    return ids


def _junit(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"error": "no JUnit file (the run did not finish)"}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {k: sum(int(x.get(k, 0)) for x in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    return {**counts, "failed": failed[:40]}


def _has(python: str, module: str, env: dict[str, str]) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True, env=env).returncode == 0


def step_tests(s: Session, folder: Path) -> dict[str, Any]:
    limit_all = min(s.caps["1"], s.left() - RESERVE_S)
    end = time.monotonic() + limit_all
    base = [s.python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-ra"]
    if _has(s.python, "pytest_timeout", s.child_env):
        base += ["--timeout", "120"]
    result: dict[str, Any] = {}
    env = {"ART_SGT_TEST_DEVICE": s.device}
    marked = cuda_marked_tests()
    result["cuda_marked"] = marked
    runs = [("device", ["tests/test_cuda.py", "tests/test_device.py", *marked], 0.4)]
    suite = list(REDUCED_SUITE if s.reduced else SUITE)
    parallel = [] if s.reduced or not _has(s.python, "xdist", s.child_env) else ["-n", "8"]
    runs.append(("suite", [*parallel, *suite], 1.0))
    for name, args, share in runs:
        xml = folder / f"{name}.xml"
        limit = (end - time.monotonic()) * share
        run = s.command([*base, f"--junitxml={xml}", *args], folder / f"{name}.log", limit, env)
        result[name] = {**run, **_junit(xml), "args": args}
    result["ok"] = all(result[n].get("rc") == 0 for n, _, _ in runs)
    return result


def _ratios(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"error": "no JSON (the run did not finish)"}
    payload = json.loads(path.read_text())
    if "ratios" in payload:
        return {k: round(v["ratio"], 3) for k, v in payload["ratios"].items()}
    return {k: round(v["ratio_to_fp32"], 3) for k, v in payload.get("results", {}).items()}


def step_bench(s: Session, folder: Path) -> dict[str, Any]:
    end = time.monotonic() + min(s.caps["2"], s.left() - RESERVE_S)
    if s.reduced:
        trainers = ["--n", "64", "--pgd-n", "32", "--batch-size", "32", "--repeats", "1", "--memory-epochs", "2"]
        options = ["--threads", "1", "--n", "32", "--batch-size", "16", "--repeats", "1"]
    else:
        trainers = ["--repeats", "3", "--memory-epochs", "2"]  # the committed CPU run's sizes, fewer rounds/epochs
        options = ["--threads", "4", "--n", "2048", "--batch-size", "256", "--repeats", "3"]
    result: dict[str, Any] = {}
    for name, script, args, share in (
        ("bench_trainers", "benchmarks/bench_trainers.py", trainers, 0.5),
        ("bench_hardware_options", "benchmarks/bench_hardware_options.py", options, 1.0),
    ):
        out = folder / f"{name}_{s.tag}.json"
        argv = [s.python, script, "--device", s.device, *args, "--out", str(out)]
        run = s.command(argv, folder / f"{name}.log", (end - time.monotonic()) * share)
        result[name] = {**run, "ratios": _ratios(out)}
    result["ok"] = all(result[n]["rc"] == 0 for n in ("bench_trainers", "bench_hardware_options"))
    return result


def _n_train(s: Session) -> int | None:
    if "GPU_SESSION_N_TRAIN" in os.environ:
        return int(os.environ["GPU_SESSION_N_TRAIN"])
    carried = s.summary.get("carried") or {}
    return (carried.get("cifar10") or {}).get("n_train")


def step_reproduce(s: Session, folder: Path, machine: dict[str, Any]) -> dict[str, Any]:
    report = folder / "report"
    models = ("standard", "asgt") if s.reduced else MODELS
    over = ["--n-train", "64", "--epochs", "1", "--n-eval", "16", "--n-report", "8"] if s.reduced else []
    n_train = _n_train(s)
    if not s.reduced and n_train is not None and n_train < 50000:
        over += ["--n-train", str(n_train)]  # the carried subset (the profile asks for 50,000)
    base = [
        s.python,
        "examples/reproduce_paper.py",
        "--dataset",
        "cifar10",
        "--profile",
        "gpu",
        "--cache-dir",
        str(s.cache),
        "--out-dir",
        str(report),
        *over,
    ]
    result: dict[str, Any] = {"cache": str(s.cache), "overrides": over, "pieces": {}}
    target = s.out / "step3_reproduce.tar.gz"
    for model in models:
        limit = s.left() - RESERVE_S
        if limit < 30:
            result["pieces"][model] = "not started: out of time (resumable: run step 3 again)"
            continue
        run = s.command([*base, "--only", model], folder / "reproduce.log", limit)
        result["pieces"][model] = run
        stem = report / "cifar10_gpu.json"
        if stem.is_file():  # the report names the GPU itself; the session's full hardware record goes beside it
            payload = json.loads(stem.read_text())
            payload["session_hardware"] = machine
            _write_json(stem, payload)
        manifest = subprocess.run([*base, "--manifest"], cwd=ROOT, capture_output=True, text=True, env=s.child_env)
        (folder / "manifest.txt").write_text(manifest.stdout + manifest.stderr)
        _pack(folder, target, [(s.cache, "cache")])
        s.summary["steps"]["3"] = {**result, "status": "running"}
        s.save()
        if run["timed_out"]:
            break
    result["manifest"] = (
        (folder / "manifest.txt").read_text().strip().splitlines()[-1:] if (folder / "manifest.txt").is_file() else None
    )
    result["ok"] = all(isinstance(p, dict) and p["rc"] == 0 for p in result["pieces"].values()) and len(
        result["pieces"]
    ) == len(models)
    return result


def run(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    s = Session(out)
    shutil.rmtree(s.work, ignore_errors=True)
    s.work.mkdir(parents=True)
    s.save()
    machine = hardware(s)
    probe = machine["torch"] if isinstance(machine.get("torch"), dict) else {}
    s.summary["hardware"] = {k: probe.get(k) for k in ("device_name", "torch", "cuda_runtime", "error")}
    s.save()
    steps = {"1": ("tests", step_tests), "2": ("bench", step_bench), "3": ("reproduce", None)}
    for key in s.steps:
        if key not in steps:
            s.summary["steps"][key] = {"status": "unknown step"}
            continue
        name, function = steps[key]
        folder = s.work / f"step{key}_{name}"
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if s.left() < RESERVE_S + 30:
            s.summary["steps"][key] = {"status": "not started: out of time"}
            s.save()
            continue
        print(f"gpu_session: step {key} ({name}), {s.left():.0f} s left", flush=True)
        try:
            result = step_reproduce(s, folder, machine) if key == "3" else function(s, folder)
            ok = result.pop("ok")
            parts = [*result.values(), *result.get("pieces", {}).values()]
            stopped = any(
                (isinstance(v, dict) and v.get("timed_out")) or (isinstance(v, str) and v.startswith("not started"))
                for v in parts
            )
            status = "ok" if ok else "incomplete: time limit (rerun the step)" if stopped else "failed"
        except Exception as error:  # a broken step is recorded; the next one still runs
            result, status = {"error": repr(error)}, "crashed"
        if key != "3":
            _pack(folder, s.out / f"step{key}_{name}.tar.gz")
        s.summary["steps"][key] = {"status": status, "seconds": round(time.monotonic() - started, 1), **result}
        s.save()
        print(f"gpu_session: step {key} {status} in {time.monotonic() - started:.0f} s", flush=True)
    s.summary["finished_utc"] = _now()
    s.summary["files"] = sorted(p.name for p in out.iterdir())
    s.save()
    print(json.dumps({k: v.get("status") for k, v in s.summary["steps"].items()}))
    return 0 if all(v.get("status") == "ok" for v in s.summary["steps"].values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("prepare", help="write the carried CIFAR-10 subset and manifest (developer's machine)")
    p.add_argument("--data", type=Path, required=True, help="folder with cifar10.npz")
    p.add_argument("--carry", type=Path, default=ROOT / ".gpu_carry")
    p.add_argument("--n-train", type=int, default=12000, help="training images carried (the tree's 64 MiB limit)")
    p.add_argument("--n-test", type=int, default=1000, help="test images carried (the profile's n_eval)")
    r = sub.add_parser("run", help="run the steps (the device machine, or the CPU in reduced mode)")
    r.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.mode == "prepare":
        prepare(args.data, args.carry, args.n_train, args.n_test)
        return 0
    return run(args.out)


if __name__ == "__main__":
    sys.exit(main())
