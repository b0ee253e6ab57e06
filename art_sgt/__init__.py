"""art-sgt: Saliency-guided Training (SGT) and Adversarial SGT as drop-in trainers for the Adversarial
Robustness Toolbox (ART), with Captum-based saliency evaluators."""

from art_sgt.datasets import load_cifar10, load_mnist, random_subset
from art_sgt.losses import asgt_loss, sgt_loss
from art_sgt.masking import apply_mask, least_salient_mask
from art_sgt.models import MnistCNN, make_classifier
from art_sgt.saliency import input_gradient, make_saliency_fn
from art_sgt.trainers import CatastrophicOverfittingWarning, SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer

__version__ = "0.1.0"

__all__ = [
    "SaliencyGuidedTrainer",
    "SaliencyGuidedAdversarialTrainer",
    "CatastrophicOverfittingWarning",
    "load_mnist",
    "load_cifar10",
    "random_subset",
    "MnistCNN",
    "make_classifier",
    "input_gradient",
    "make_saliency_fn",
    "least_salient_mask",
    "apply_mask",
    "sgt_loss",
    "asgt_loss",
    "__version__",
]
