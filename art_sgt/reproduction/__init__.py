"""The paper reproduction: controls x seeds through a resumable run cache, statistics, report and figures.

- ``recipe``: the controls (standard, SGT, Madry PGD-AT, mixed AT, ASGT), the profiles
  (``quick``, ``standard``, ``gpu``), one ``RunSpec`` per piece, and the MNIST ablations.
- ``training``: trains one piece, resumable, counting its CPU seconds.
- ``evaluate``: per-sample clean/PGD outcomes, the worst case over ART's attacks,
  saliency quality.
- ``cache``: the run cache keyed by a configuration hash, its manifest, and
  ``run_pieces`` (skip / resume / run).
- ``statistics``: exact McNemar, paired bootstrap, across-seed t intervals, verdicts.
- ``report`` and ``figures``: the report from the cache.
- ``saliency_methods``: the report's saliency columns checked with other attribution methods.
- ``cli``: the ``art-sgt reproduce`` driver.
"""

from art_sgt.reproduction.cache import STATES, RunCache, run_pieces
from art_sgt.reproduction.evaluate import map_quality
from art_sgt.reproduction.recipe import (
    ABLATIONS,
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
    transfer_source,
)
from art_sgt.reproduction.report import (
    assemble,
    attack_units,
    claim_lines,
    cost_summary,
    estimate_cost,
    flag_evidence,
    per_seed_detail,
    readme_section,
    training_cost_complete,
    write_markdown,
)
from art_sgt.reproduction.saliency_methods import compare_methods, methods_markdown
from art_sgt.reproduction.statistics import (
    Interval,
    McNemar,
    claim_standing,
    difference_interval,
    mcnemar_exact,
    paired_bootstrap,
    seed_summary,
    verdict,
)

__all__ = [
    "ABLATIONS", "LABELS", "MODELS", "PAPER", "PROFILES", "STATES", "EvaluationRecipe", "Interval", "McNemar",
    "Profile", "RunCache", "RunSpec", "TrainingRecipe", "ablations", "assemble", "attack_units", "claim_lines",
    "claim_standing", "compare_methods", "cost_summary", "difference_interval", "estimate_cost", "flag_evidence",
    "get_profile", "map_quality", "mcnemar_exact", "methods_markdown", "paired_bootstrap", "per_seed_detail",
    "profile_runs", "readme_section", "run_pieces", "seed_summary", "select", "training_cost_complete",
    "transfer_source", "verdict", "write_markdown",
]  # fmt: skip
