"""Reproduce SGT / ASGT on real MNIST or CIFAR-10: five controls x seeds, ART's attacks, saliency quality, a report.

Usage::

    python examples/reproduce_paper.py --dataset mnist --profile quick          # smoke test, minutes, no claims
    python examples/reproduce_paper.py --dataset mnist --profile standard --only asgt,1   # one piece
    python examples/reproduce_paper.py --dataset mnist --profile standard --manifest     # what is done / missing
    python examples/reproduce_paper.py --dataset mnist --profile standard --report-only  # report from the cache
    python examples/reproduce_paper.py --dataset mnist --profile quick --ablations
    python examples/reproduce_paper.py --dataset cifar10 --profile gpu                   # on one GPU

(the same as ``art-sgt reproduce ...``). Every (profile, dataset, model, seed) run lands in the run cache
(``--cache-dir``, ``$ART_SGT_CACHE``, default ``~/.cache/art-sgt/reproduction``); a rerun skips what is done and
resumes what was interrupted. The report ``results/<dataset>_<profile>.json`` / ``.md`` and its figures under
``results/<dataset>_<profile>/`` are assembled from the cache. The code lives in :mod:`art_sgt.reproduction`.
"""

import sys

from art_sgt.reproduction.cli import main

if __name__ == "__main__":
    sys.exit(main())
