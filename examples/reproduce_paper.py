"""Reproduce SGT / ASGT on real MNIST or CIFAR-10: four models, ART's attacks, saliency quality, a markdown verdict.

Usage::

    python examples/reproduce_paper.py --dataset mnist --profile quick
    python examples/reproduce_paper.py --dataset cifar10 --profile quick
    python examples/reproduce_paper.py --dataset mnist --profile quick --ablations
    python examples/reproduce_paper.py --dataset mnist --profile quick --rewrite-md  # markdown from the JSON

(the same as ``art-sgt reproduce ...``). Writes ``results/<dataset>_<profile>.json`` / ``.md`` and
``results/<dataset>_<profile>/*.png``, rewritten after every model, so a partial run leaves partial results.
The recipe lives in :mod:`art_sgt.reproduction`, the driver in ``art_sgt/_reproduce.py``.
"""

import sys

from art_sgt._reproduce import main

if __name__ == "__main__":
    sys.exit(main())
