"""ART trainers for saliency-guided training."""

from art_sgt.trainers._selection import CatastrophicOverfittingWarning
from art_sgt.trainers.asgt import SaliencyGuidedAdversarialTrainer
from art_sgt.trainers.base import SaliencyTrainerBase
from art_sgt.trainers.sgt import SaliencyGuidedTrainer

__all__ = [
    "SaliencyTrainerBase",
    "SaliencyGuidedTrainer",
    "SaliencyGuidedAdversarialTrainer",
    "CatastrophicOverfittingWarning",
]
