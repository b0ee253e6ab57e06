"""Saliency-map quality evaluators: a functional core and a thin :class:`SaliencyEvaluator`.

Every function takes an ART ``PyTorchClassifier`` (its preprocessing composed differentiably before its
model) or a ``torch.nn.Module`` returning logits, and numpy arrays or tensors (channels first). Work runs in
batches on the model's device, seeded, without modifying the inputs or the model.

- :mod:`~art_sgt.evaluation.attribution`: Captum attributions by name, class or instance.
- :mod:`~art_sgt.evaluation.faithfulness`: MoRF / LeRF / random masking curves, ROAD imputation.
- :mod:`~art_sgt.evaluation.metrics`: infidelity, max-sensitivity, sparseness, complexity.
- :mod:`~art_sgt.evaluation.similarity`: Spearman (absolute, signed), top-k, cosine and SSIM of map pairs.
- :mod:`~art_sgt.evaluation.stability`: map stability under ART's PGD.
- :mod:`~art_sgt.evaluation.sanity`: cascading randomisation and random-logit tests.
- :mod:`~art_sgt.evaluation.robustness`: robustness report over ART's attacks.
- :mod:`~art_sgt.evaluation.budget`: the attack budget of that report, with its presets.
- :mod:`~art_sgt.evaluation.checklist`: the gradient-masking checklist of that report.
- :mod:`~art_sgt.evaluation.report`: the results, :class:`SaliencyReport` (built by :class:`SaliencyEvaluator`) and
  :class:`RobustnessReport`, and their plots.
"""

from art_sgt.evaluation.attribution import METHODS, Method, MethodSpec, attribute, get_method, register_method
from art_sgt.evaluation.budget import ATTACKS, PRESETS, AttackBudget
from art_sgt.evaluation.checklist import CHECKS, GradientMaskingCheck
from art_sgt.evaluation.faithfulness import (
    FRACTIONS,
    ORDERS,
    MaskingCurve,
    NoisyLinearImputer,
    area_under_curve,
    masking_curve,
    noisy_linear_imputation,
    ranking_scores,
    removal_ranks,
)
from art_sgt.evaluation.metrics import CHANNEL_REDUCTIONS, complexity, infidelity, sensitivity, sparseness
from art_sgt.evaluation.report import (
    METRICS,
    RobustnessReport,
    SaliencyEvaluator,
    SaliencyReport,
    plot_robustness,
    summarise,
)
from art_sgt.evaluation.robustness import MODES, robustness_report
from art_sgt.evaluation.sanity import (
    RandomizationResult,
    RandomLogitResult,
    cascading_randomization,
    parameter_layers,
    random_logit,
)
from art_sgt.evaluation.similarity import SIMILARITIES, mean_similarity, similarities, structural_similarity
from art_sgt.evaluation.stability import (
    EPS,
    StabilityResult,
    adversarial_stability,
    cosine_similarity,
    map_similarity,
    rank_correlation,
    top_k_intersection,
)

__all__ = [
    # robustness
    "ATTACKS",
    "AttackBudget",
    "CHECKS",
    "MODES",
    "PRESETS",
    "GradientMaskingCheck",
    "RobustnessReport",
    "plot_robustness",
    "robustness_report",
    # attribution
    "METHODS",
    "Method",
    "MethodSpec",
    "attribute",
    "get_method",
    "register_method",
    # faithfulness
    "FRACTIONS",
    "ORDERS",
    "MaskingCurve",
    "NoisyLinearImputer",
    "area_under_curve",
    "masking_curve",
    "noisy_linear_imputation",
    "ranking_scores",
    "removal_ranks",
    # metrics
    "CHANNEL_REDUCTIONS",
    "complexity",
    "infidelity",
    "sensitivity",
    "sparseness",
    # similarity
    "SIMILARITIES",
    "mean_similarity",
    "similarities",
    "structural_similarity",
    # stability
    "EPS",
    "StabilityResult",
    "adversarial_stability",
    "cosine_similarity",
    "map_similarity",
    "rank_correlation",
    "top_k_intersection",
    # sanity
    "RandomizationResult",
    "RandomLogitResult",
    "cascading_randomization",
    "parameter_layers",
    "random_logit",
    # report
    "METRICS",
    "SaliencyEvaluator",
    "SaliencyReport",
    "summarise",
]
