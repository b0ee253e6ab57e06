"""Trainer speed against ART's own training, measured side by side in one run.

Times, on the same model architecture, data (2048 MNIST-shaped samples, batch 128) and machine, interleaved so
that machine noise hits every contender alike:

- ``art_fit``: one epoch of ART's ``PyTorchClassifier.fit`` (the baseline);
- ``sgt``: one epoch of :class:`art_sgt.SaliencyGuidedTrainer` (defaults);
- ``art_madry``: one epoch of ART's ``AdversarialTrainerMadryPGD`` (PGD eps 0.3, eps_step 0.01, 10 steps, no
  random init), the baseline of
- ``asgt``: one epoch of :class:`art_sgt.SaliencyGuidedAdversarialTrainer` with the same ART PGD object;
- ``art_pgd``: ART's ``ProjectedGradientDescent.generate`` on the first 1024 images (same PGD), the baseline of
- ``fast_pgd``: :func:`art_sgt.attacks.pgd` on the same images and model, batch 128 like ART's;

and writes the medians and ratios to ``results/bench_trainers.json``. Other contenders register themselves in
``CONTENDERS`` (name -> (baseline name, setup function)).

It then measures, for both art-sgt trainers on the same data and model:

- memory: in a fresh process per trainer, the RSS at the end of every epoch of one ``fit(nb_epochs=10)`` (read
  by a do-nothing scheduler that ``fit`` steps once per epoch, after a ``gc.collect()``); the growth over the
  epochs read from a least-squares line (target < 5%, i.e. no leak across epochs) and that process's peak RSS;
- checkpointing: one-epoch ``fit`` calls with and without ``checkpoint_dir``, interleaved (alternating which
  goes first), and the time of writing the resulting checkpoint file alone (target < 5% of an epoch; the
  side-by-side figure also holds the per-batch capture of the random states).

``--device cuda`` runs every contender on the GPU (ART's classifiers with ``device_type="gpu"``, the fast PGD's
tensors on the GPU) and waits for the GPU's queued work before each clock reading; the RSS figures then count
host memory only. The default, ``cpu``, is the measurement committed under ``results/``.

Usage::

    python benchmarks/bench_trainers.py [--repeats 5] [--n 2048] [--memory-epochs 10] [--device cpu]
        [--out results/bench_trainers.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.defences.trainer import AdversarialTrainerMadryPGD

from art_sgt import MnistCNN, SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer, make_classifier
from art_sgt.attacks import pgd
from art_sgt.provenance import run_info, write_json
from art_sgt.trainers import load_checkpoint, save_checkpoint

Epoch = Callable[[], None]


def _classifier(seed: int, device: str = "cpu"):
    torch.manual_seed(seed)
    return make_classifier(MnistCNN(), (1, 28, 28), lr=1e-3, device_type="gpu" if device == "cuda" else "cpu")


def setup_art_fit(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    classifier = _classifier(args.seed, args.device)
    return lambda: classifier.fit(x, y, batch_size=args.batch_size, nb_epochs=1)


def setup_sgt(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    trainer = SaliencyGuidedTrainer(_classifier(args.seed, args.device))
    return lambda: trainer.fit(x, y, batch_size=args.batch_size, nb_epochs=1, verbose=False, seed=args.seed)


PGD = dict(eps=0.3, eps_step=0.01, max_iter=10, num_random_init=0)


def setup_art_madry(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    trainer = AdversarialTrainerMadryPGD(
        _classifier(args.seed, args.device), nb_epochs=1, batch_size=args.batch_size, **PGD
    )
    return lambda: trainer.fit(x, y)


def setup_asgt(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    classifier = _classifier(args.seed, args.device)
    attack = ProjectedGradientDescent(classifier, batch_size=args.batch_size, verbose=False, **PGD)
    trainer = SaliencyGuidedAdversarialTrainer(classifier, attack)
    return lambda: trainer.fit(x, y, batch_size=args.batch_size, nb_epochs=1, verbose=False, seed=args.seed)


def setup_art_pgd(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    classifier = _classifier(args.seed, args.device)
    attack = ProjectedGradientDescent(classifier, batch_size=args.batch_size, verbose=False, **PGD)
    return lambda: attack.generate(x[: args.pgd_n], y=y[: args.pgd_n])


def setup_fast_pgd(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> Epoch:
    net = _classifier(args.seed, args.device).model  # no preprocessing: the network is what PGD attacks
    xt = torch.from_numpy(x[: args.pgd_n]).to(args.device)
    yt = torch.from_numpy(y[: args.pgd_n].argmax(1)).to(args.device)
    b = args.batch_size

    def run() -> None:
        for i in range(0, len(xt), b):
            pgd(net, xt[i : i + b], yt[i : i + b], clip_values=(0.0, 1.0), **PGD)

    return run


# name -> (baseline name or None, setup); baselines are listed before the contenders that use them
CONTENDERS: dict[str, tuple[str | None, Callable[..., Epoch]]] = {
    "art_fit": (None, setup_art_fit),
    "sgt": ("art_fit", setup_sgt),
    "art_madry": (None, setup_art_madry),
    "asgt": ("art_madry", setup_asgt),
    "art_pgd": (None, setup_art_pgd),
    "fast_pgd": ("art_pgd", setup_fast_pgd),
}

TARGETS = {"sgt": 2.4, "asgt": 1.0, "fast_pgd": 0.4}
FOOTPRINT_TARGETS = {"rss_growth": 0.05, "checkpoint_overhead": 0.05}


def _trainer(name: str, args: argparse.Namespace):
    classifier = _classifier(args.seed, args.device)
    if name == "sgt":
        return SaliencyGuidedTrainer(classifier)
    attack = ProjectedGradientDescent(classifier, batch_size=args.batch_size, verbose=False, **PGD)
    return SaliencyGuidedAdversarialTrainer(classifier, attack)


def rss_bytes() -> int:
    """The resident set size of this process now (Linux ``/proc``; psutil elsewhere)."""
    if os.path.exists("/proc/self/statm"):
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import psutil  # only needed off Linux

    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """The peak resident set size of this process so far (Linux: ``VmHWM``, which starts afresh in a new
    process; ``ru_maxrss`` elsewhere, which a spawned child may inherit from its parent)."""
    if os.path.exists("/proc/self/status"):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class EpochProbe:
    """A do-nothing learning-rate "scheduler" on the classifier's optimizer: ``fit`` steps it once per epoch,
    which is where the RSS is read."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.rss: list[int] = []
        self.tensors: list[tuple[int, int]] = []

    def step(self) -> None:
        gc.collect()
        self.rss.append(rss_bytes())
        with warnings.catch_warnings():  # torch warns about deprecated objects that gc hands over
            warnings.simplefilter("ignore")
            live = [obj for obj in gc.get_objects() if torch.is_tensor(obj)]  # a leak of tensors shows here
        self.tensors.append((len(live), sum(t.nelement() * t.element_size() for t in live)))

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.n, 1, 28, 28), dtype=np.float32)
    return x, np.eye(10, dtype=np.float32)[rng.integers(0, 10, args.n)]


def _memory_in_child(name: str, args: argparse.Namespace) -> dict:
    """Run in a fresh process: RSS and live tensors after every epoch of one ``fit``, and the peak RSS."""
    x, y = _data(args)
    trainer = _trainer(name, args)
    probe = EpochProbe(trainer.get_classifier().optimizer)
    fit_kwargs = dict(batch_size=args.batch_size, verbose=False, seed=args.seed, scheduler=probe)
    trainer.fit(x, y, nb_epochs=args.memory_epochs, **fit_kwargs)
    return {"rss": probe.rss, "tensors": probe.tensors, "peak": peak_rss_bytes()}


# glibc moves its mmap threshold up as large blocks are freed and then keeps them in its heap, so the RSS of a
# healthy loop swings by 10% or more from epoch to epoch; a fixed threshold returns freed blocks to the system at once.
FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def _rss_summary(child: dict) -> dict:
    rss_mb = [r / 2**20 for r in child["rss"]]
    slope, intercept = np.polyfit(np.arange(len(rss_mb)), rss_mb, 1)
    return {
        "rss_mb_after_epoch": rss_mb,
        "rss_growth": float(slope * (len(rss_mb) - 1) / intercept),
        "rss_slope_mb_per_epoch": float(slope),
        "rss_growth_end_points": (rss_mb[-1] - rss_mb[0]) / rss_mb[0],
        "peak_rss_mb_of_the_process": child["peak"] / 2**20,
    }


def measure_memory(name: str, args: argparse.Namespace) -> dict:
    """RSS and live tensors after each of ``args.memory_epochs`` epochs of one ``fit`` call, in a fresh process
    (so that memory freed by earlier contenders cannot hide a leak); once with glibc's default allocator settings
    and once with a fixed mmap threshold (:data:`FIXED_MMAP_THRESHOLD`). The growth is read from a least-squares
    line through the epochs."""
    runs = {}
    for allocator, env in (("default", {}), ("fixed_mmap_threshold", FIXED_MMAP_THRESHOLD)):
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)  # read by the child's C library when it starts
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                runs[allocator] = pool.submit(_memory_in_child, name, args).result()
        finally:
            for key, value in saved.items():
                os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    counts, sizes = zip(*runs["default"]["tensors"])
    return {
        "epochs": args.memory_epochs,
        **_rss_summary(runs["default"]),
        "live_tensors_after_epoch": list(counts),
        "live_tensor_mb_after_epoch": [b / 2**20 for b in sizes],
        "fixed_mmap_threshold": _rss_summary(runs["fixed_mmap_threshold"]),
        "target": FOOTPRINT_TARGETS["rss_growth"],
    }


def measure_checkpointing(name: str, x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> dict:
    """One-epoch fits with and without a checkpoint, interleaved; then the checkpoint write alone."""
    trainer = _trainer(name, args)
    fit_kwargs = dict(batch_size=args.batch_size, nb_epochs=1, verbose=False, seed=args.seed)
    plain, with_ckpt, writes = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(1 + args.repeats):
            for checkpointing in (False, True) if round_ % 2 else (True, False):  # alternate which goes first
                synchronize(args.device)
                start = time.perf_counter()
                trainer.fit(x, y, checkpoint_dir=folder if checkpointing else None, **fit_kwargs)
                synchronize(args.device)
                if round_:
                    (with_ckpt if checkpointing else plain).append(time.perf_counter() - start)
        payload = load_checkpoint(folder)
        size_mb = os.path.getsize(os.path.join(folder, "checkpoint.pt")) / 2**20
        for _ in range(args.repeats):
            start = time.perf_counter()
            save_checkpoint(folder, payload)
            writes.append(time.perf_counter() - start)
    epoch = statistics.median(plain)
    return {
        "epoch_seconds": epoch,
        "epoch_with_checkpoint_seconds": statistics.median(with_ckpt),
        "overhead_measured_side_by_side": statistics.median(with_ckpt) / epoch - 1,
        "write_seconds": statistics.median(writes),
        "write_fraction_of_epoch": statistics.median(writes) / epoch,
        "checkpoint_mb": size_mb,
        "target": FOOTPRINT_TARGETS["checkpoint_overhead"],
    }


def footprint(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> dict:
    """Memory and checkpointing measurements of both trainers, printed as a table."""
    result = {}
    print(
        f"\n{'trainer':<8}{'RSS ep1 MB':>12}{'RSS ep' + str(args.memory_epochs) + ' MB':>12}{'growth':>9}"
        f"{'epoch s':>9}{'+ckpt':>8}{'write s':>9}{'write/ep':>10}"
    )
    for name in ("sgt", "asgt"):
        memory = measure_memory(name, args)
        checkpoint = measure_checkpointing(name, x, y, args)
        result[name] = {"memory": memory, "checkpointing": checkpoint}
        rss = memory["rss_mb_after_epoch"]
        print(
            f"{name:<8}{rss[0]:>12.1f}{rss[-1]:>12.1f}{memory['rss_growth']:>9.2%}"
            f"{checkpoint['epoch_seconds']:>9.3f}{checkpoint['overhead_measured_side_by_side']:>8.1%}"
            f"{checkpoint['write_seconds']:>9.4f}{checkpoint['write_fraction_of_epoch']:>10.2%}"
        )
    print("growth: least-squares line over the epochs (glibc defaults), each trainer in a fresh process; target < 5%")
    return result


def synchronize(device: str) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU), so a clock reading after it counts it."""
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(
    epochs: dict[str, Epoch], repeats: int, warmup: int = 1, device: str = "cpu"
) -> dict[str, list[float]]:
    """Run every contender once per round, ``warmup`` untimed rounds first; return seconds per contender."""
    times: dict[str, list[float]] = {name: [] for name in epochs}
    for round_ in range(warmup + repeats):
        for name, epoch in epochs.items():
            synchronize(device)
            start = time.perf_counter()
            epoch()
            synchronize(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pgd-n", type=int, default=1024, help="images for the PGD comparison")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="contenders to run (their baselines are added)")
    parser.add_argument("--memory-epochs", type=int, default=10, help="epochs of the RSS measurement; 0 skips it")
    parser.add_argument(
        "--footprint-only", action="store_true", help="only redo the memory/checkpoint part, in the --out file"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every contender runs")
    parser.add_argument("--out", default="results/bench_trainers.json")
    args = parser.parse_args()

    x, y = _data(args)
    if args.footprint_only:
        with open(args.out) as handle:
            payload = json.load(handle)
        payload["footprint"] = footprint(x, y, args)
        payload["footprint_run"] = run_info(seed=args.seed, device=args.device)
        payload["setup"]["memory_epochs"] = args.memory_epochs
        print(f"Wrote {write_json(args.out, payload)}")
        return
    names = list(CONTENDERS) if not args.only else args.only
    wanted = [n for n in CONTENDERS if n in names or any(CONTENDERS[m][0] == n for m in names)]
    epochs = {name: CONTENDERS[name][1](x, y, args) for name in wanted}
    times = time_interleaved(epochs, args.repeats, device=args.device)

    medians = {name: statistics.median(t) for name, t in times.items()}
    ratios = {}
    print(f"{'contender':<14}{'median s':>10}{'baseline':>12}{'ratio':>8}{'target':>8}")
    for name in wanted:
        baseline = CONTENDERS[name][0]
        ratio = medians[name] / medians[baseline] if baseline else None
        if ratio is not None:
            ratios[name] = {"baseline": baseline, "ratio": ratio, "target": TARGETS.get(name)}
        target = TARGETS.get(name)
        print(
            f"{name:<14}{medians[name]:>10.3f}{baseline or '-':>12}"
            f"{'' if ratio is None else f'{ratio:.3f}':>8}{'' if target is None else f'<={target}':>8}"
        )
    payload = {
        **run_info(seed=args.seed, device=args.device),
        "setup": {
            "n": args.n,
            "pgd_n": args.pgd_n,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "model": "MnistCNN",
            "pgd": PGD,
            "data": "uniform random MNIST-shaped inputs and labels (speed does not depend on content)",
            **_device_setup(args.device),
        },
        "seconds": times,
        "median_seconds": medians,
        "ratios": ratios,
    }
    if args.memory_epochs > 0:
        payload["setup"]["memory_epochs"] = args.memory_epochs
        payload["footprint"] = footprint(x, y, args)
    else:  # keep the footprint of an earlier run (it records its own command as footprint_run)
        earlier = _earlier_footprint(args.out)
        if earlier:
            payload["setup"]["memory_epochs"] = earlier.pop("memory_epochs")
            payload.update(earlier)
    print(f"Wrote {write_json(args.out, payload)}")


def _device_setup(device: str) -> dict:
    """The setup entries of a GPU run (none for the CPU, whose results file keeps its keys)."""
    if device == "cpu":
        return {}
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(0),
        "timing": "torch.cuda.synchronize() before and after every timed call",
        "rss": "host memory only (the GPU's memory is not in the RSS)",
    }


def _earlier_footprint(path: str) -> dict:
    """The footprint section of the results file already at ``path``, if it has one."""
    try:
        with open(path) as handle:
            earlier = json.load(handle)
    except (OSError, ValueError):
        return {}
    if "footprint" not in earlier or "memory_epochs" not in earlier.get("setup", {}):
        return {}
    return {
        "footprint": earlier["footprint"],
        "footprint_run": earlier.get("footprint_run")
        or {k: earlier[k] for k in ("command", "git", "date_utc") if k in earlier},
        "memory_epochs": earlier["setup"]["memory_epochs"],
    }


if __name__ == "__main__":
    main()
