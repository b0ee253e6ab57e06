"""art-sgt: Saliency-guided Training for the Adversarial Robustness Toolbox."""

__version__ = "0.1.0"
