#!/usr/bin/env bash
# One GPU session of art-sgt (issue 31): the device tests, the speed ratios and the CIFAR-10 `gpu` profile,
# each step's output under $OUT as it finishes. The steps themselves are in benchmarks/gpu_session.py; this
# file sets up the environment and has a `prepare` mode that builds, on the developer's machine, the folder the
# device call carries.
#
# What the device machine has (/work/.library/device/README.md and KINDS.md, read 2026-12):
#   - "nothing outside it can be reached from it" and "package registries: none": no pip install from the
#     network, so the two pure-Python packages it lacks (adversarial-robustness-toolbox, captum) travel as
#     wheels in the carried folder and are installed with `pip install --no-index --no-deps --target`;
#   - "a plain 'python3' there is the one that holds PyTorch": Python 3.12.3 at /opt/torch/.venv, torch
#     2.11.0+cu130, with numpy, scipy, scikit-learn, matplotlib, tqdm, six, pytest, pytest-xdist,
#     pytest-timeout and hypothesis among its packages. So no torch is installed there (neither 2.13.0+cpu nor
#     the 2.14.1 CUDA build of this machine's disk: both are for Python 3.11 and the device image has 3.12);
#   - "the ../shared beside a developer's checkout does not [travel]": the CIFAR-10 data travels in the carried
#     folder, as a subset, since the tree that travels is limited to 64 MiB (the full cifar10.npz is 162 MiB);
#   - "one command's run (timeout_s at most) 10 minutes", 15 minutes of device time per session (start and
#     idle included), "$OUT is emptied before each command", "at most 8 files, 16 MiB each" come back: the
#     script stays inside GPU_SESSION_BUDGET_S (default 480 s: with the machine's start, ~10 of the 15 minutes),
#     packs each step into one .tar.gz (6 files in all), and keeps the run cache outside $OUT
#     (GPU_SESSION_CACHE) so that a rerun on the still-warm machine (warm for 30 s after a call) resumes it.
#
# Before the device call, here, once (downloads two wheels from PyPI, writes .gpu_carry/, ~37 MiB; the tree
# that travels is then ~42 MiB of the 64 allowed):
#   bash benchmarks/gpu_session.sh prepare
# The device call (one `run`):
#   command: set -o pipefail; bash benchmarks/gpu_session.sh 2>&1 | tee $OUT/session.log
#   carry:   [".gpu_carry"]
#   timeout_s: 540
# At once after it, on the still-warm machine, a rerun of chosen steps (step 3 resumes from the cache kept
# there; $OUT is emptied, so fetch the first call's files first -- the tool does so before it replies):
#   command: set -o pipefail; GPU_SESSION_STEPS=3 GPU_SESSION_BUDGET_S=240 bash benchmarks/gpu_session.sh 2>&1 | tee $OUT/session.log
#   carry:   [".gpu_carry"]
#   timeout_s: 270
# Reduced CPU mode, end to end on tiny sizes (a few minutes on two cores):
#   GPU_SESSION_DEVICE=cpu GPU_SESSION_REDUCED=1 OUT=/tmp/gpu_out bash benchmarks/gpu_session.sh
#
# Environment: OUT (required), GPU_SESSION_DEVICE (cuda), GPU_SESSION_REDUCED (0), GPU_SESSION_STEPS (1,2,3),
# GPU_SESSION_BUDGET_S (480; reduced 1200), GPU_SESSION_STEP1_S (120), GPU_SESSION_STEP2_S (150),
# GPU_SESSION_N_TRAIN (the carried subset's), GPU_SESSION_CACHE (/tmp/art_sgt_gpu_cache), GPU_SESSION_PYTHON
# (.venv/bin/python on the CPU when present, else python3), GPU_SESSION_CARRY (.gpu_carry).
set -u

cd "$(dirname "$0")/.." || exit 1
CARRY=${GPU_SESSION_CARRY:-.gpu_carry}

if [ "${1:-}" = "prepare" ]; then
    PY=${GPU_SESSION_PYTHON:-.venv/bin/python}
    DATA=${ART_SGT_DATA:-../shared/data}
    mkdir -p .git/info "$CARRY/wheels" "$CARRY/data" || exit 1
    grep -qx "/$CARRY/" .git/info/exclude 2>/dev/null || echo "/$CARRY/" >>.git/info/exclude
    rm -f "$CARRY"/wheels/*.whl
    for pkg in adversarial-robustness-toolbox captum; do
        version=$("$PY" -c "import importlib.metadata as m; print(m.version('$pkg'))") || exit 1
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d "$CARRY/wheels" "$pkg==$version" || exit 1
    done
    "$PY" benchmarks/gpu_session.py prepare --data "$DATA" --carry "$CARRY" || exit 1
    du -sh "$CARRY"
    echo "tree that travels besides $CARRY (tracked + untracked-not-ignored files; the limit is 64 MiB in all):"
    { git ls-files -z; git ls-files -z --others --exclude-standard; } | du -c --files0-from=- -b 2>/dev/null | tail -1
    exit 0
fi

: "${OUT:?OUT must name the folder the results go to}"
mkdir -p "$OUT" || exit 1
export PYTHONUNBUFFERED=1
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}  # read when CUDA starts: deterministic cuBLAS
export GPU_SESSION_DEVICE=${GPU_SESSION_DEVICE:-cuda}
export GPU_SESSION_REDUCED=${GPU_SESSION_REDUCED:-0}
if [ "$GPU_SESSION_DEVICE" = "cpu" ]; then
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi
if [ -z "${GPU_SESSION_PYTHON:-}" ]; then
    if [ "$GPU_SESSION_DEVICE" = "cpu" ] && [ -x .venv/bin/python ]; then
        GPU_SESSION_PYTHON=.venv/bin/python
    else
        GPU_SESSION_PYTHON=python3
    fi
fi
export GPU_SESSION_PYTHON
# The carried CIFAR-10 subset, else this workplace's shared data (reduced CPU mode).
if [ -f "$CARRY/data/cifar10.npz" ]; then
    export ART_SGT_DATA=${ART_SGT_DATA:-$PWD/$CARRY/data}
else
    export ART_SGT_DATA=${ART_SGT_DATA:-$PWD/../shared/data}
fi
# The wheels the device image lacks, into a folder of their own (the image's own packages stay as they are).
if ! "$GPU_SESSION_PYTHON" -c "import art, captum" 2>/dev/null; then
    if ls "$CARRY"/wheels/*.whl >/dev/null 2>&1; then
        "$GPU_SESSION_PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/gpu_session_site "$CARRY"/wheels/*.whl || echo "gpu_session: wheel install failed" >&2
        export PYTHONPATH=/tmp/gpu_session_site${PYTHONPATH:+:$PYTHONPATH}
    else
        echo "gpu_session: art/captum missing and no wheels in $CARRY/wheels (run: bash $0 prepare)" >&2
    fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # art_sgt from this tree, not installed
echo "gpu_session: python $GPU_SESSION_PYTHON, device $GPU_SESSION_DEVICE, reduced $GPU_SESSION_REDUCED," \
    "data $ART_SGT_DATA, out $OUT"
"$GPU_SESSION_PYTHON" benchmarks/gpu_session.py run --out "$OUT"
