"""The paper reproduction: controls x seeds through a resumable run cache, statistics, report and figures.

- :mod:`~art_sgt.reproduction.recipe`: the controls (standard, SGT, Madry PGD-AT, mixed AT, ASGT), the profiles
  (``quick``, ``standard``, ``gpu``), one :class:`RunSpec` per piece, and the MNIST ablations.
- :mod:`~art_sgt.reproduction.training`: trains one piece, resumable, counting its CPU seconds.
- :mod:`~art_sgt.reproduction.evaluate`: per-sample clean/PGD outcomes, the worst case over ART's attacks,
  saliency quality.
- :mod:`~art_sgt.reproduction.cache`: the run cache keyed by a configuration hash, its manifest, and
  :func:`run_pieces` (skip / resume / run).
- :mod:`~art_sgt.reproduction.statistics`: exact McNemar, paired bootstrap, across-seed t intervals, verdicts.
- :mod:`~art_sgt.reproduction.report` and :mod:`~art_sgt.reproduction.figures`: the report from the cache.
- :mod:`~art_sgt.reproduction.cli`: the ``art-sgt reproduce`` driver.
"""

from art_sgt.reproduction.cache import STATES, RunCache, run_pieces
from art_sgt.reproduction.recipe import (
    LABELS,
    MODELS,
    PAPER,
    PROFILES,
    EvaluationRecipe,
    Profile,
    RunSpec,
    TrainingRecipe,
    ablations,
    get_profile,
    profile_runs,
    select,
)
from art_sgt.reproduction.report import assemble, estimate_cost, readme_section, write_markdown
from art_sgt.reproduction.statistics import (
    Interval,
    McNemar,
    difference_interval,
    mcnemar_exact,
    paired_bootstrap,
    seed_summary,
    verdict,
)

__all__ = [
    "LABELS", "MODELS", "PAPER", "PROFILES", "STATES",
    "EvaluationRecipe", "Interval", "McNemar", "Profile", "RunCache", "RunSpec", "TrainingRecipe",
    "ablations", "assemble", "difference_interval", "estimate_cost", "get_profile", "mcnemar_exact",
    "paired_bootstrap", "profile_runs", "readme_section", "run_pieces", "seed_summary", "select", "verdict",
    "write_markdown",
]  # fmt: skip
