"""ART's L-inf Square attack with one model evaluation per still-robust sample per iteration.

Each iteration of ART's ``SquareAttack.generate`` under the L-inf norm predicts every sample to find the ones
still classified correctly, predicts those again for their current margin, then predicts their candidates:
about three forwards per robust sample per iteration, plus one per fooled sample. A sample's logits change
only when its candidate is accepted, so keeping each sample's current logits yields the same iterates with one
forward per robust sample per iteration (and each sample's current margin, computed once per accepted
candidate instead of once per iteration). The random draws are ART's own numpy calls, in the same order, so
for a model whose outputs do not depend on the batch they sit in, the adversarial examples are ART's exactly
(``tests/evaluation/test_square.py`` holds them equal).

ART's ``predict`` feeds each batch through a ``DataLoader`` that indexes the samples one by one, which costs more
than a small model's forward; on a ``PyTorchClassifier`` whose preprocessing runs in torch (and without
postprocessing defences) the logits here come from the model directly, batch by batch in ART's batches, in eval
mode and without autograd.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from art.attacks.evasion import SquareAttack
from art.config import ART_NUMPY_DTYPE
from art.estimators.classification import PyTorchClassifier
from art.utils import check_and_transform_label_format, get_labels_np_array

from art_sgt._art import PreprocessedModel
from art_sgt._validation import preserved_modes

__all__ = ["LinfSquareAttack"]


class LinfSquareAttack(SquareAttack):
    """:class:`art.attacks.evasion.SquareAttack` with fewer forwards under the L-inf norm (same parameters).

    Other norms, and a custom ``adv_criterion`` or ``loss``, run ART's own ``generate``.
    """

    def __init__(self, estimator: Any, *args: Any, adv_criterion: Any = None, loss: Any = None, **kwargs: Any):
        super().__init__(estimator, *args, adv_criterion=adv_criterion, loss=loss, **kwargs)
        self._own_criteria = adv_criterion is None and loss is None

    @staticmethod
    def _margin(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        """ART's default loss: the correct logit minus the highest other (the second highest when correct)."""
        correct = np.take_along_axis(logits, np.argmax(y, axis=1)[:, None], axis=1)
        highest_other = np.take_along_axis(logits, np.argsort(logits, axis=1)[:, -2][:, None], axis=1)
        return (correct - highest_other)[:, 0]

    def _predict(self) -> Any:
        """``estimator.predict``, or the same logits straight from the torch model (see the module's note)."""
        estimator = self.estimator
        if not (isinstance(estimator, PyTorchClassifier) and estimator.all_framework_preprocessing) or (
            estimator.postprocessing_defences
        ):
            return estimator.predict
        model, device = PreprocessedModel(estimator, apply="predict"), estimator.device

        def predict(x: np.ndarray, batch_size: int = 128) -> np.ndarray:
            with torch.no_grad():
                batches = (
                    np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32) for i in range(0, len(x), batch_size)
                )
                return torch.cat([model(torch.from_numpy(b).to(device)) for b in batches]).cpu().numpy()

        return predict

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: Any) -> np.ndarray:
        """Adversarial examples, as ``SquareAttack.generate`` (see the module's note on what differs).

        :param x: Images, ``(n, c, h, w)`` or ``(n, h, w, c)`` as the estimator takes them.
        :param y: One-hot labels or label indices; the model's predictions when ``None``.
        :return: The adversarial examples.
        """
        if self.norm not in (np.inf, "inf") or not self._own_criteria or x.ndim != 4:
            return super().generate(x, y=y, **kwargs)
        with preserved_modes(self.estimator.model, training=False):
            return self._generate(x, y, self._predict())

    def _generate(self, x: np.ndarray, y: np.ndarray | None, predict: Any) -> np.ndarray:
        x_adv = x.astype(ART_NUMPY_DTYPE)
        if y is not None:
            y = check_and_transform_label_format(y, nb_classes=self.estimator.nb_classes)
        else:
            y = get_labels_np_array(predict(x, batch_size=self.batch_size))
        if self.estimator.channels_first:
            channels, height, width = x.shape[1:]
        else:
            height, width, channels = x.shape[1:]
        low, high = self.estimator.clip_values
        labels = np.argmax(y, axis=1)
        for _ in range(self.nb_restarts):
            current = predict(x_adv, batch_size=self.batch_size)  # logits of x_adv, kept up to date below
            robust = np.flatnonzero(np.argmax(current, axis=1) == labels)
            if robust.size == 0:
                break
            x_robust, y_robust = x[robust], y[robust]  # each restart starts from x, as ART's
            start = predict(x_robust, batch_size=self.batch_size)
            size = (
                (robust.size, channels, 1, width)
                if self.estimator.channels_first
                else (robust.size, 1, width, channels)
            )
            stripes = np.random.choice([-1, 1], size=size)  # noqa: NPY002 - ART's draws, from numpy's global generator
            candidate = np.clip(x_robust + self.eps * stripes, a_min=low, a_max=high).astype(ART_NUMPY_DTYPE)
            new = predict(candidate, batch_size=self.batch_size)
            improved = (self._margin(new, y_robust) - self._margin(start, y_robust)) < 0.0
            x_robust[improved] = candidate[improved]
            x_adv[robust] = x_robust
            current[robust] = np.where(improved[:, None], new, start)
            margins = self._margin(current, y)  # the margin of each row of current, kept up to date with it
            for i_iter in range(self.max_iter):
                fraction = self._get_percentage_of_elements(i_iter)
                robust = np.flatnonzero(np.argmax(current, axis=1) == labels)
                if robust.size == 0:
                    break
                x_robust, x_init, y_robust = x_adv[robust], x[robust], y[robust]
                tile = max(int(round(math.sqrt(fraction * height * width))), 1)
                top = np.random.randint(0, height - tile)  # noqa: NPY002 - ART's draws, in ART's order
                left = np.random.randint(0, width - tile)  # noqa: NPY002
                delta = np.zeros(self.estimator.input_shape)
                if self.estimator.channels_first:
                    delta[:, top : top + tile, left : left + tile] = np.random.choice(  # noqa: NPY002
                        [-2 * self.eps, 2 * self.eps], size=[channels, 1, 1]
                    )
                else:
                    delta[top : top + tile, left : left + tile, :] = np.random.choice(  # noqa: NPY002
                        [-2 * self.eps, 2 * self.eps], size=[1, 1, channels]
                    )
                candidate = np.minimum(np.maximum(x_robust + delta, x_init - self.eps), x_init + self.eps)
                candidate = np.clip(candidate, a_min=low, a_max=high).astype(ART_NUMPY_DTYPE)
                new = predict(candidate, batch_size=self.batch_size)
                margin = self._margin(new, y_robust)
                improved = (margin - margins[robust]) < 0.0
                x_robust[improved] = candidate[improved]
                x_adv[robust] = x_robust
                current[robust[improved]] = new[improved]
                margins[robust[improved]] = margin[improved]
        return x_adv
