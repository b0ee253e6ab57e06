"""Time ART's ``ProjectedGradientDescent.generate`` against :func:`art_sgt.attacks.pgd` on the MNIST CNN.

Both craft the same L-inf PGD (eps 0.3, eps_step 0.01, 10 iterations, no random start) on the same seeded
model and the same seeded MNIST-shaped inputs in [0, 1], with the same batch size: ART batches internally,
``pgd`` is called batch by batch. Runs are interleaved (ART, ours, ART, ours, ...) and the medians compared;
wall-clock and process CPU time are both recorded because the machine may be shared. Both timings go from
a numpy array in to a numpy array out. The two outputs are also compared element-wise.

Example::

    python benchmarks/bench_pgd.py --n 1024 --repeats 5 --out results/bench_pgd.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import art
import numpy as np
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier
from torch import nn

from art_sgt.attacks import pgd

try:
    from art_sgt.models import MnistCNN
except ImportError:  # art_sgt.models is optional for this script

    class MnistCNN(nn.Sequential):  # type: ignore[no-redef]
        """conv(1->32, 3x3) - ReLU - conv(32->64, 3x3) - ReLU - maxpool 2 - flatten - fc(9216->128) - ReLU - fc."""

        def __init__(self) -> None:
            super().__init__(
                nn.Conv2d(1, 32, 3),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(9216, 128),
                nn.ReLU(),
                nn.Linear(128, 10),
            )


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1024, help="number of inputs")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each implementation")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size of both implementations")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--channels-last", action="store_true", help="store the model's weights channels-last (for both)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/bench_pgd.json"))
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.batch_size < 1:
        parser.error("--n, --repeats and --batch-size must be >= 1")
    return args


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _timed(fn: Callable[[], np.ndarray]) -> tuple[float, float, np.ndarray]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table and write the JSON report.

    :param argv: Command-line arguments (``sys.argv[1:]`` when ``None``).
    :return: The report written to ``--out``.
    """
    args = _parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = MnistCNN()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        preprocessing=None,
        device_type="cpu",
    )
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, size=args.n)

    attack = ProjectedGradientDescent(
        classifier, eps=0.3, eps_step=0.01, max_iter=10, num_random_init=0, batch_size=args.batch_size, verbose=False
    )
    kwargs = {"eps": 0.3, "eps_step": 0.01, "max_iter": 10, "num_random_init": 0, "clip_values": (0.0, 1.0)}

    def run_art() -> np.ndarray:
        return attack.generate(x, y)

    def run_ours() -> np.ndarray:
        x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
        batches = [
            pgd(model, x_t[i : i + args.batch_size], y_t[i : i + args.batch_size], **kwargs)
            for i in range(0, args.n, args.batch_size)
        ]
        return torch.cat(batches).numpy()

    load_before = os.getloadavg()
    ref, ours = run_art(), run_ours()  # warm-up, also the agreement check
    diff = np.abs(ref - ours)
    times: dict[str, dict[str, list[float]]] = {name: {"wall_s": [], "cpu_s": []} for name in ("art", "ours")}
    for _ in range(args.repeats):
        for name, fn in (("art", run_art), ("ours", run_ours)):
            wall, cpu, _ = _timed(fn)
            times[name]["wall_s"].append(wall)
            times[name]["cpu_s"].append(cpu)

    medians = {name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()}
    minima = {name: {k: min(v) for k, v in t.items()} for name, t in times.items()}
    ratio = {k: medians["ours"][k] / medians["art"][k] for k in ("wall_s", "cpu_s")}
    report = {
        "command": " ".join([sys.executable, *sys.argv]),
        "n": args.n,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "attack": {"norm": "inf", "eps": 0.3, "eps_step": 0.01, "max_iter": 10, "num_random_init": 0},
        "threads": torch.get_num_threads(),
        "channels_last": args.channels_last,
        "torch": torch.__version__,
        "art": art.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{_cpu_name()}, {os.cpu_count()} logical CPUs",
        "load_average_before_after": [load_before, os.getloadavg()],
        "timings": times,
        "median": medians,
        "min": minima,
        "ratio_ours_over_art": ratio,
        "max_abs_diff": float(diff.max()),
        "fraction_differing_over_1e-6": float((diff > 1e-6).mean()),
    }

    print(f"PGD L-inf, n={args.n}, batch {args.batch_size}, {report['threads']} threads, {args.repeats} repeats")
    print(f"{'':6} {'wall median (min), s':>22} {'CPU median (min), s':>22}")
    for name in ("art", "ours"):
        cells = [f"{medians[name][k]:.3f} ({minima[name][k]:.3f})" for k in ("wall_s", "cpu_s")]
        print(f"{name:6} {cells[0]:>22} {cells[1]:>22}")
    print(f"{'ratio':6} {ratio['wall_s']:>22.3f} {ratio['cpu_s']:>22.3f}   (ours / ART, medians)")
    print(f"max |ART - ours| = {report['max_abs_diff']:.3g}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
