"""ART trainers for saliency-guided training."""

from art_sgt.trainers._robust_validation import default_robust_eval
from art_sgt.trainers._selection import COLLAPSE_DROP, COLLAPSE_GAP, CatastrophicOverfittingWarning
from art_sgt.trainers.asgt import SaliencyGuidedAdversarialTrainer
from art_sgt.trainers.sgt import SaliencyGuidedTrainer

__all__ = [
    "SaliencyGuidedTrainer",
    "SaliencyGuidedAdversarialTrainer",
    "CatastrophicOverfittingWarning",
    "COLLAPSE_DROP",
    "COLLAPSE_GAP",
    "default_robust_eval",
]
