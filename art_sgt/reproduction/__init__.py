"""The paper reproduction: controls x seeds through a resumable run cache, then the report from what is cached.

A study in three calls (``art-sgt reproduce`` runs them, through ``art_sgt.reproduction.cli``):

- **run**: :func:`run_pieces` brings every :class:`RunSpec` of a :class:`Profile` (:func:`profile_runs`,
  :func:`ablations`, the objectives study's :func:`screening_runs` and :func:`decisive_runs`, :func:`select`) to
  done in a :class:`RunCache`, skipping what is done and resuming what was interrupted;
- **manifest**: :meth:`RunCache.manifest` lists what is done and what is missing; :func:`load_run` returns a
  trained run as a ``PyTorchClassifier`` after checking its weights' SHA-256;
- **report**: :func:`assemble` turns the cached records into the report's payload (read as :class:`TrainedRun`,
  compared as :class:`Comparison`), :func:`write_markdown` and :func:`readme_section` render it,
  :func:`claim_lines` and :func:`claim_standing` set the paper's claim against it, :func:`cost_summary` and
  :func:`estimate_cost` say what it cost and what the rest will.

The modules behind it: ``recipe`` (controls, profiles, ablations), ``training`` and ``evaluate`` (one run),
``cache`` (the run cache), ``screening`` and ``decisive`` (the objectives study's selection rule and its goal),
``diagnosis`` (an epoch-by-epoch trace of a training), ``records`` (typed runs, evaluations, comparisons),
``statistics`` (exact McNemar, paired bootstrap, across-seed t intervals and tests, Holm, verdicts),
``aggregate``, ``render``, ``cost`` and ``figures`` (the report), ``saliency_methods`` (the saliency columns
checked with other attribution methods).
"""

from art_sgt.reproduction.cache import RunCache, run_pieces
from art_sgt.reproduction.cost import cost_summary, estimate_cost, training_cost_complete
from art_sgt.reproduction.recipe import (
    MODELS,
    EvaluationRecipe,
    Profile,
    RunSpec,
    TrainingRecipe,
    ablations,
    decisive_runs,
    get_profile,
    profile_runs,
    screening_runs,
    select,
)
from art_sgt.reproduction.records import Comparison, Evaluation, TrainedRun
from art_sgt.reproduction.report import assemble, claim_lines, readme_section, write_markdown
from art_sgt.reproduction.statistics import claim_standing
from art_sgt.reproduction.training import load_run

__all__ = [
    "MODELS",
    "Profile",
    "RunSpec",
    "TrainingRecipe",
    "EvaluationRecipe",
    "get_profile",
    "profile_runs",
    "ablations",
    "screening_runs",
    "decisive_runs",
    "select",
    "RunCache",
    "run_pieces",
    "load_run",
    "TrainedRun",
    "Evaluation",
    "Comparison",
    "assemble",
    "write_markdown",
    "readme_section",
    "claim_lines",
    "claim_standing",
    "cost_summary",
    "estimate_cost",
    "training_cost_complete",
]
