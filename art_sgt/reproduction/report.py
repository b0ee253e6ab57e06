"""The study report from the cached runs: the entry point over aggregation, rendering and the cost model.

- :func:`assemble` (:mod:`~art_sgt.reproduction.aggregate`): the cached records of a profile -> the report's JSON
  payload (per-model summaries over seeds, paired comparisons);
- :func:`write_markdown`, :func:`readme_section`, :func:`claim_lines` (:mod:`~art_sgt.reproduction.render`): the
  payload -> markdown, every conclusion naming the interval it rests on;
- :func:`cost_summary`, :func:`estimate_cost` (:mod:`~art_sgt.reproduction.cost`): the CPU time spent, and
  extrapolated from measured timings for the runs not done.
"""

from __future__ import annotations

from art_sgt.reproduction.aggregate import COMPARISONS, QUANTITIES, SALIENCY_QUANTITIES, assemble
from art_sgt.reproduction.cost import attack_units, cost_summary, estimate_cost, training_cost_complete
from art_sgt.reproduction.render import claim_lines, flag_evidence, per_seed_detail, readme_section, write_markdown

__all__ = [
    "QUANTITIES",
    "SALIENCY_QUANTITIES",
    "COMPARISONS",
    "assemble",
    "write_markdown",
    "readme_section",
    "claim_lines",
    "flag_evidence",
    "per_seed_detail",
    "attack_units",
    "estimate_cost",
    "cost_summary",
    "training_cost_complete",
]
