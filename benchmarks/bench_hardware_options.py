"""The trainers' hardware options against float32, measured side by side in one run.

For each option of :class:`art_sgt.SaliencyGuidedTrainer` and :class:`art_sgt.SaliencyGuidedAdversarialTrainer`,
``amp="bf16"`` (bfloat16 autocast), ``channels_last=True`` and ``compile=True`` (``torch.compile``, default
inductor backend, ``dynamic=False``), against the default float32 forward, on the project's MNIST CNN
(:class:`art_sgt.MnistCNN`) and synthetic MNIST-shaped data (uniform random inputs and labels: speed does not
depend on content):

- ``sgt``: one epoch of the SGT trainer;
- ``asgt``: one epoch of the ASGT trainer with ART's ``ProjectedGradientDescent`` on the fast path;
- ``fast_pgd``: :func:`art_sgt.attacks.pgd` alone, through the trainer's own attack forward (``_attack_net``:
  the classifier's predict preprocessing, then the model with the option).

Each option is wired as a user wires it (the trainers' keyword arguments). The first call of every contender is
timed on its own (``first_call_seconds``: for ``compile`` it holds the compilation, into an empty inductor cache
in the first thread setting; later settings reuse that cache, as a second run on a machine would); then all
contenders run once per round, interleaved, ``--repeats`` rounds, and the median is compared with the float32
median of the same workload and thread count (``ratio_to_fp32``: below 1 is faster). For ``compile`` the number
of graphs dynamo compiled in the first call and in all later calls is recorded (``graphs_later`` > 0 would mean
recompiling during training). Dynamo's cache is per code object with the weights as graph inputs, so contenders
of one process share graphs of the same shape and mode: ``sgt, compile`` (first) pays the full compilation, a
later contender only for the graphs it adds (``fast_pgd`` reuses those ``asgt`` built for its attack). Each
thread count (``--threads``, ``torch.set_num_threads`` with ``OMP_NUM_THREADS`` set to match) runs in a fresh
process. The fastest round's ratio (``ratio_of_minimums``) and the machine's one-minute load average before and
after each thread setting are recorded too: on a machine shared with other jobs, a load above the thread count
slows rounds unevenly (OpenMP threads wait for cores), which shows in the spread of ``seconds``.

``--device cuda`` runs every contender on the GPU (the classifier with ART's ``device_type="gpu"``, the fast
PGD's tensors on the GPU) and waits for the GPU's queued work before each clock reading; ``--threads`` then
sets only the host's threads. ``--options`` limits the options measured (``fp32`` is always included). The
defaults (``cpu``, every option) are the measurement committed under ``results/``.

Usage::

    python benchmarks/bench_hardware_options.py [--threads 2 1] [--repeats 3] [--n 64] [--batch-size 32]
        [--device cpu] [--options fp32 bf16 channels_last compile] [--out results/bench_hardware_options.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

PGD = dict(eps=0.3, eps_step=0.05, max_iter=5, num_random_init=0)
OPTIONS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "bf16": {"amp": "bf16"},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
}
WORKLOADS = ("sgt", "asgt", "fast_pgd")


def _trainer(workload: str, options: dict[str, Any], seed: int, device: str = "cpu") -> Any:
    from art.attacks.evasion import ProjectedGradientDescent

    from art_sgt import MnistCNN, SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer, make_classifier

    torch.manual_seed(seed)
    device_type = "gpu" if device == "cuda" else "cpu"
    classifier = make_classifier(MnistCNN(), (1, 28, 28), lr=1e-3, device_type=device_type)
    if workload != "asgt":
        return SaliencyGuidedTrainer(classifier, **options)
    attack = ProjectedGradientDescent(classifier, verbose=False, **PGD)
    return SaliencyGuidedAdversarialTrainer(classifier, attack, **options)


def _contender(workload: str, options: dict[str, Any], x: np.ndarray, y: np.ndarray, args: Any) -> Callable[[], None]:
    from art_sgt.attacks import pgd

    trainer = _trainer(workload, options, args.seed, args.device)
    if workload != "fast_pgd":
        return lambda: trainer.fit(x, y, batch_size=args.batch_size, nb_epochs=1, verbose=False, seed=args.seed)
    net = trainer._attack_net  # the forward the fast path attacks through, with the option
    xt, yt = torch.from_numpy(x).to(args.device), torch.from_numpy(y.argmax(1)).to(args.device)
    b = args.batch_size

    def run() -> None:
        for i in range(0, len(xt), b):
            pgd(net, xt[i : i + b], yt[i : i + b], clip_values=(0.0, 1.0), **PGD)

    return run


def _synchronize(device: str) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU), so a clock reading after it counts it."""
    if device == "cuda":
        torch.cuda.synchronize()


def _graphs() -> int:
    from torch._dynamo.utils import counters  # noqa: PLC2701 - torch exposes graph counts only here

    return int(counters["stats"]["unique_graphs"])


def measure(threads: int, args: Any) -> dict[str, Any]:
    """In this process: every (workload, option) contender's first call, then interleaved timed rounds."""
    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.n, 1, 28, 28), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, args.n)]
    contenders, records = {}, {}
    options = getattr(args, "options", None) or list(OPTIONS)
    for workload in WORKLOADS:
        for option, kwargs in OPTIONS.items():
            if option not in options and option != "fp32":
                continue
            name = (workload, option)
            contenders[name] = _contender(workload, kwargs, x, y, args)
            before = _graphs()
            _synchronize(args.device)
            start = time.perf_counter()
            contenders[name]()
            _synchronize(args.device)
            records[name] = {"first_call_seconds": time.perf_counter() - start, "graphs_first_call": _graphs() - before}
    times: dict[tuple[str, str], list[float]] = {name: [] for name in contenders}
    later = {name: 0 for name in contenders}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            before = _graphs()
            _synchronize(args.device)
            start = time.perf_counter()
            run()
            _synchronize(args.device)
            times[name].append(time.perf_counter() - start)
            later[name] += _graphs() - before
    load = {"before": load_before, "after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    result = {}
    for (workload, option), record in records.items():
        median = statistics.median(times[workload, option])
        fastest = min(times[workload, option])
        result[f"{workload}, {option}, {threads} thread{'s' if threads > 1 else ''}"] = {
            "workload": workload,
            "option": option,
            "threads": threads,
            "median_seconds": median,
            "ratio_to_fp32": median / statistics.median(times[workload, "fp32"]),
            "min_seconds": fastest,
            "ratio_of_minimums": fastest / min(times[workload, "fp32"]),
            "first_call_seconds": record["first_call_seconds"],
            "graphs_first_call": record["graphs_first_call"],
            "graphs_later": later[workload, option],
            "seconds": times[workload, option],
            "load_average_1min": load,
        }
    return result


def _in_child(threads: int, args: Any, cache: str) -> dict[str, Any]:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    return measure(threads, args)


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return []
    return sorted(f for f in flags if f.startswith(("avx512_bf16", "amx", "avx512f", "avx2")))


def main() -> None:
    from art_sgt.provenance import run_info, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--n", type=int, default=64, help="training images per epoch (and PGD images)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every contender runs")
    parser.add_argument(
        "--options",
        nargs="+",
        choices=list(OPTIONS),
        default=None,
        help="options to measure against fp32 (default: all)",
    )
    parser.add_argument("--out", default="results/bench_hardware_options.json")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as cache:  # starts empty: the first setting compiles from scratch
        for threads in args.threads:
            saved = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = str(threads)  # read by the child's OpenMP runtime when it starts
            try:
                with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    results.update(pool.submit(_in_child, threads, args, cache).result())
            finally:
                os.environ.pop("OMP_NUM_THREADS") if saved is None else os.environ.__setitem__("OMP_NUM_THREADS", saved)
    print(f"{'contender':<34}{'median s':>10}{'x fp32':>8}{'min x':>7}{'first s':>9}{'graphs':>8}{'later':>7}")
    for name, r in results.items():
        print(
            f"{name:<34}{r['median_seconds']:>10.3f}{r['ratio_to_fp32']:>8.2f}{r['ratio_of_minimums']:>7.2f}"
            f"{r['first_call_seconds']:>9.1f}"
            f"{r['graphs_first_call']:>8}{r['graphs_later']:>7}"
        )
    payload = {
        **run_info(seed=args.seed, device=args.device),
        "setup": {
            "n": args.n,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "threads": args.threads,
            "model": "MnistCNN",
            "pgd": PGD,
            "options": {k: v for k, v in OPTIONS.items() if not args.options or k in args.options or k == "fp32"},
            "compile": "torch.compile(model, dynamic=False), default (inductor) backend; the first thread setting "
            "compiles into an empty inductor cache, later ones reuse it; in one process, contenders share the graphs "
            "of the same shape and mode (sgt first pays the full compilation)",
            "data": "uniform random MNIST-shaped inputs and labels (speed does not depend on content)",
            "cpu_flags": _cpu_flags(),
            "gpu": "none lent to this run: GPU effects not measured"
            if args.device == "cpu"
            else f"{torch.cuda.get_device_name(0)}; torch.cuda.synchronize() before and after every timed call",
            **({} if args.device == "cpu" else {"device": args.device}),
        },
        "results": results,
    }
    print(f"Wrote {write_json(args.out, payload)}")


if __name__ == "__main__":
    main()
