"""ART trainers for saliency-guided training.

:class:`SaliencyGuidedTrainer` and :class:`SaliencyGuidedAdversarialTrainer` are the trainers;
:class:`SaliencyTrainerBase`, the class both are, is importable for writing another trainer on the same loop (a
subclass implements ``_batch_loss`` and names its ``loss_terms``). :func:`load_checkpoint` reads a run's
``checkpoint.pt`` (with ``torch.load(weights_only=True)``) and :func:`save_checkpoint` writes one atomically.
"""

from art_sgt.trainers._checkpoint import load_checkpoint, save_checkpoint
from art_sgt.trainers._robust_validation import default_robust_eval
from art_sgt.trainers._selection import COLLAPSE_DROP, COLLAPSE_GAP, CatastrophicOverfittingWarning
from art_sgt.trainers.asgt import SaliencyGuidedAdversarialTrainer
from art_sgt.trainers.base import BatchLoss, SaliencyTrainerBase
from art_sgt.trainers.sgt import SaliencyGuidedTrainer

__all__ = [
    "SaliencyGuidedTrainer",
    "SaliencyGuidedAdversarialTrainer",
    "SaliencyTrainerBase",
    "BatchLoss",
    "CatastrophicOverfittingWarning",
    "COLLAPSE_DROP",
    "COLLAPSE_GAP",
    "default_robust_eval",
    "load_checkpoint",
    "save_checkpoint",
]
