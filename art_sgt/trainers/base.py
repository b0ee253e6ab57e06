"""The one training loop shared by the SGT and ASGT trainers.

``fit`` and ``fit_generator`` validate their inputs once, turn them into a batch source on the classifier's
device and hand it to one loop; subclasses only say how a batch's loss is formed
(:meth:`SaliencyTrainerBase._batch_loss`). Logging, progress, validation, checkpointing, resuming and
``torch.distributed`` support live here once.
"""

from __future__ import annotations

import abc
import logging
import time
from typing import Any

import numpy as np
import torch
from art.defences.trainer.trainer import Trainer
from torch import nn
from tqdm.auto import tqdm

from art_sgt._art import PreprocessedModel, check_pytorch_classifier
from art_sgt._validation import check_fraction, check_non_negative, check_positive_int
from art_sgt.masking import apply_mask, least_salient_mask
from art_sgt.saliency import eval_mode, input_gradient, is_mode_independent, make_saliency_fn
from art_sgt.trainers import _checkpoint as ckpt
from art_sgt.trainers._data import ArrayBatches, GeneratorBatches
from art_sgt.trainers._options import RunOptions, check_fill, check_run_options, inputs_to_device

__all__ = ["SaliencyTrainerBase"]

logger = logging.getLogger(__name__)


class SaliencyTrainerBase(Trainer, abc.ABC):
    """Shared machinery of the saliency-guided trainers (subclass it; do not use it directly).

    :param classifier: An ART ``PyTorchClassifier`` with an optimizer; its model, optimizer, loss, device,
        preprocessing and ``clip_values`` are used as they are.
    :param mask_fraction: Fraction of input positions masked per sample, in (0, 1).
    :param kl_weight: Weight of the KL term, >= 0.
    :param saliency: ``"gradient"``, a Captum attribution class or instance, or a callable
        ``(model, x, target) -> map`` (see :func:`art_sgt.saliency.make_saliency_fn`).
    :param absolute: Rank positions by absolute instead of signed saliency.
    :param fill: What masked positions receive (see :func:`art_sgt.masking.apply_mask`).
    :raises TypeError: If ``classifier`` is not a ``PyTorchClassifier`` or an argument has the wrong type.
    :raises ValueError: If the classifier has no optimizer or an argument is out of range.
    """

    def __init__(
        self,
        classifier: Any,
        mask_fraction: float = 0.5,
        kl_weight: float = 1.0,
        saliency: Any = "gradient",
        absolute: bool = False,
        fill: Any = "uniform",
    ) -> None:
        check_pytorch_classifier("classifier", classifier, need_optimizer=True)
        self.mask_fraction = check_fraction("mask_fraction", mask_fraction)
        self.kl_weight = check_non_negative("kl_weight", kl_weight)
        self._saliency_fn = make_saliency_fn(saliency)
        if not isinstance(absolute, (bool, np.bool_)):
            raise TypeError(f"absolute must be a bool, got {type(absolute).__name__}.")
        self.absolute = bool(absolute)
        self.fill = check_fill(fill)
        super().__init__(classifier)
        self._net = PreprocessedModel(classifier, apply="fit")
        self._device = torch.device(classifier.device)
        self._clip = None if classifier.clip_values is None else tuple(float(v) for v in classifier.clip_values)
        self._noise = torch.Generator(device=self._device)
        self._noise.manual_seed(0)
        self._couples_samples = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in classifier.model.modules())
        self._fused = False
        self._ddp: nn.Module | None = None
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ the seam subclasses fill in
    @abc.abstractmethod
    def _batch_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Form one batch's loss.

        :param x: Raw inputs on the device (before preprocessing).
        :param y: Class indices on the device.
        :return: ``(loss, clean_logits)``; the loop back-propagates ``loss`` and reports accuracy from the logits.
        """

    def _check_fit_inputs(self, x: torch.Tensor) -> None:
        """Extra checks a subclass runs on the training inputs before any work starts (none by default)."""

    # ------------------------------------------------------------------ building blocks for _batch_loss
    def _mask(self, x: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
        """``x`` with the ``mask_fraction`` least salient positions of ``saliency`` replaced by ``fill``."""
        if saliency.shape != x.shape:
            raise ValueError(
                f"saliency must return a map of the input's shape {tuple(x.shape)}, got {tuple(saliency.shape)}."
            )
        mask = least_salient_mask(saliency, self.mask_fraction, self.absolute)
        return apply_mask(x, mask, self.fill, generator=self._noise, clip_values=self._clip)

    def _logits_and_masked(
        self, x: torch.Tensor, target: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Saliency of ``x`` (eval-mode semantics) for ``target`` (``None``: the prediction), then masking.

        When the model computes the same function in train and eval mode and the saliency is the plain input
        gradient, one train-mode forward serves both the saliency and the loss: its logits are returned (with
        their graph) so the caller need not run ``x`` again. Otherwise returns ``(None, masked)``.
        """
        if self._fused:
            x_in = x.detach().requires_grad_(True)
            logits = self._net(x_in)
            chosen = logits.detach().argmax(1) if target is None else target
            (grad,) = torch.autograd.grad(logits.gather(1, chosen[:, None]).sum(), x_in, retain_graph=True)
            return logits, self._mask(x, grad)
        if target is None:
            with torch.no_grad(), eval_mode(self._net):
                target = self._net(x).argmax(1)
        return None, self._mask(x, self._saliency_fn(self._net, x, target))

    def _train_logits(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Train-mode logits of several batches, in one forward pass unless a layer couples samples."""
        net = self._ddp if self._ddp is not None else self._net
        if len(inputs) == 1:
            return [net(inputs[0])]
        if self._couples_samples and self._ddp is None:
            return [net(t) for t in inputs]
        return list(net(torch.cat(inputs)).split([len(t) for t in inputs]))

    def _task_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._classifier.loss(logits, y)

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        batch_size: int = 128,
        nb_epochs: int = 20,
        scheduler: Any = None,
        seed: int | None = None,
        verbose: bool = True,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        **kwargs: Any,
    ) -> None:
        """Train the classifier's model in place.

        :param x: Training inputs in the classifier's input format, ``(n, *input_shape)``. Never modified.
        :param y: Labels, index ``(n,)`` or one-hot ``(n, nb_classes)``.
        :param validation_data: Optional ``(x_val, y_val)``; its accuracy is logged after every epoch.
        :param batch_size: Batch size (the global batch size under ``torch.distributed``).
        :param nb_epochs: Number of epochs.
        :param scheduler: Optional torch learning-rate scheduler on the classifier's optimizer, stepped once per
            epoch (``ReduceLROnPlateau`` receives the epoch's mean training loss).
        :param seed: Seed of the shuffling, the fill noise, attack random starts and torch's, numpy's and Python's
            global generators (the caller's global states are restored when ``fit`` returns). ``None`` draws one.
        :param verbose: Show a progress bar per epoch and a line per epoch.
        :param checkpoint_dir: Folder for ``checkpoint.pt``: written every ``checkpoint_every`` epochs, at the
            end, and on Ctrl-C (after the current batch; a second Ctrl-C stops at once).
        :param checkpoint_every: Epochs between checkpoints.
        :param resume: Continue from the checkpoint in ``checkpoint_dir``; an interrupted run resumed with the
            same arguments ends with the same weights as an uninterrupted one (bitwise, on CPU).
        :raises TypeError: For an unknown keyword argument or an argument of the wrong type.
        :raises ValueError: For inputs of the wrong shape, range or content, before any training.
        :raises FloatingPointError: If the loss becomes non-finite (the message names epoch and batch).
        """
        x_t, y_t = inputs_to_device(self._classifier, self._device, "x", x, "y", y)
        self._check_fit_inputs(x_t)
        batch_size = check_positive_int("batch_size", batch_size)
        options = check_run_options(
            self, validation_data, nb_epochs, scheduler, seed, verbose, checkpoint_dir, checkpoint_every, resume, kwargs
        )
        rank, world = _dist_info()
        self._run(lambda s: ArrayBatches(x_t, y_t, batch_size, s, rank, world), x_t[:8], options)

    def fit_generator(
        self,
        generator: Any,
        nb_epochs: int = 20,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        scheduler: Any = None,
        seed: int | None = None,
        verbose: bool = True,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        **kwargs: Any,
    ) -> None:
        """Train from an ART ``DataGenerator`` (its ``get_batch()`` yields numpy ``(x, y)`` batches).

        Each batch is validated as in :meth:`fit` and moved to the device. The other parameters are those of
        :meth:`fit`; on resume, the batches of the interrupted epoch already done are drawn and skipped.

        :param generator: An ``art.data_generators.DataGenerator``.
        :raises TypeError: If ``generator`` is not an ART ``DataGenerator``.
        """
        from art.data_generators import DataGenerator

        if not isinstance(generator, DataGenerator):
            raise TypeError(f"generator must be an art.data_generators.DataGenerator, got {type(generator).__name__}.")
        options = check_run_options(
            self, validation_data, nb_epochs, scheduler, seed, verbose, checkpoint_dir, checkpoint_every, resume, kwargs
        )

        def convert(x_batch: np.ndarray, y_batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            batch = inputs_to_device(
                self._classifier, self._device, "generator batch x", x_batch, "generator batch y", y_batch
            )
            self._check_fit_inputs(batch[0])
            return batch

        self._run(lambda s: GeneratorBatches(generator, convert), None, options)

    def predict(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        """Predict with the trained classifier (ART's ``PyTorchClassifier.predict``).

        :param x: Inputs.
        :param kwargs: Passed to ``predict`` (e.g. ``batch_size``).
        :return: The classifier's predictions.
        """
        return self._classifier.predict(x, **kwargs)

    # ------------------------------------------------------------------ the loop
    def _run(self, make_source: Any, probe: torch.Tensor | None, options: RunOptions) -> None:
        rank, world = _dist_info()
        if world > 1 and self._ddp is None:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self._device.index] if self._device.type == "cuda" else None
            self._ddp = DistributedDataParallel(self._net, device_ids=device_ids)
        elif world == 1:
            self._ddp = None
        self._fused = (
            self._saliency_fn is input_gradient
            and self._ddp is None
            and probe is not None
            and is_mode_independent(self._net, probe)
        )
        payload = options.resume_payload
        seed = int(payload["seed"]) if payload is not None else _resolve_seed(options.seed, world, self._device)
        devices = [self._device.index or 0] if self._device.type == "cuda" else []
        with ckpt.seeded_global_rng(seed, devices):
            self._noise.manual_seed(seed + 7919 * (rank + 1))
            self._loop(make_source(seed), seed, options, rank)

    def _loop(self, source: Any, seed: int, options: RunOptions, rank: int) -> None:
        optimizer = self._classifier.optimizer
        params = [p for p in self._classifier.model.parameters() if p.requires_grad]
        payload = options.resume_payload
        start_epoch, start_batch = self._restore(payload, options.scheduler, rank) if payload is not None else (0, 0)
        writer = options.checkpoint_dir is not None and rank == 0
        position = (start_epoch, start_batch)
        rng_after = ckpt.capture_rng({"noise": self._noise}) if writer else None
        try:
            with ckpt.DeferredInterrupt(enabled=writer) as interrupt:
                for epoch in range(start_epoch, options.nb_epochs):
                    self._classifier.model.train()
                    started = time.perf_counter()
                    totals = torch.zeros(3, dtype=torch.float64, device=self._device)
                    bar = tqdm(
                        total=len(source),
                        initial=start_batch,
                        desc=f"Epoch {epoch + 1}/{options.nb_epochs}",
                        disable=not options.verbose or rank != 0,
                        leave=False,
                    )
                    for b, (xb, yb) in enumerate(source.epoch(epoch, start_batch), start=start_batch):
                        loss, logits = self._batch_loss(xb, yb)
                        if not bool(torch.isfinite(loss)):
                            raise FloatingPointError(
                                f"non-finite training loss ({float(loss.detach())}) at epoch {epoch + 1}, "
                                f"batch {b + 1}; training stopped, the last checkpoint is untouched."
                            )
                        optimizer.zero_grad(set_to_none=True)  # after _batch_loss: ART attacks may write .grad
                        loss.backward(inputs=params)
                        optimizer.step()
                        with torch.no_grad():
                            correct = (logits.argmax(1) == yb).sum()
                            totals += torch.stack([loss.detach() * len(yb), correct, torch.ones_like(loss) * len(yb)])
                        position = (epoch, b + 1)
                        if writer:
                            rng_after = ckpt.capture_rng({"noise": self._noise})
                        bar.update(1)
                        if interrupt.requested:
                            raise KeyboardInterrupt
                    bar.close()
                    start_batch = 0
                    record = self._end_epoch(epoch, totals, options, started)
                    if rank == 0:
                        _report(record, options)
                    position = (epoch + 1, 0)
                    last = epoch + 1 == options.nb_epochs
                    if options.checkpoint_dir is not None and ((epoch + 1) % options.checkpoint_every == 0 or last):
                        noise_per_rank = self._gather_noise_states()  # every rank takes part
                        if writer:
                            rng_after = ckpt.capture_rng({"noise": self._noise})
                            state = self._state(seed, *position, options, rng_after, noise_per_rank)
                            ckpt.save_checkpoint(options.checkpoint_dir, state)
        except KeyboardInterrupt:
            if writer:
                path = ckpt.save_checkpoint(options.checkpoint_dir, self._state(seed, *position, options, rng_after))
                logger.warning("Interrupted: checkpoint written to %s (continue with resume=True).", path)
            raise

    def _gather_noise_states(self) -> list[torch.Tensor] | None:
        """Every rank's fill/PGD-start generator state under ``torch.distributed`` (a collective), else ``None``."""
        if self._ddp is None:
            return None
        states: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(states, self._noise.get_state())
        return states

    def _state(
        self, seed: int, epoch: int, batch: int, options: RunOptions, rng: Any, noise_per_rank: Any = None
    ) -> dict[str, Any]:
        return {
            "trainer": type(self).__name__,
            "seed": seed,
            "epoch": epoch,
            "batch": batch,
            "model": self._classifier.model.state_dict(),
            "optimizer": self._classifier.optimizer.state_dict(),
            "scheduler": None if options.scheduler is None else options.scheduler.state_dict(),
            "rng": rng,
            "noise_per_rank": noise_per_rank,
            "history": list(self.history),
        }

    def _restore(self, payload: dict[str, Any], scheduler: Any, rank: int) -> tuple[int, int]:
        self._classifier.model.load_state_dict(payload["model"])
        self._classifier.optimizer.load_state_dict(payload["optimizer"])
        if scheduler is not None and payload["scheduler"] is not None:
            scheduler.load_state_dict(payload["scheduler"])
        ckpt.restore_rng(payload["rng"], {"noise": self._noise})  # rank 0's states
        per_rank = payload.get("noise_per_rank")
        if self._ddp is not None:
            if per_rank is not None and len(per_rank) == torch.distributed.get_world_size():
                self._noise.set_state(per_rank[rank])
            else:  # a mid-epoch (Ctrl-C) checkpoint of a distributed run holds rank 0's stream only
                self._noise.manual_seed(int(payload["seed"]) + 7919 * (rank + 1) + 104729 * int(payload["batch"]))
                logger.warning("This checkpoint has no per-rank random states: rank %d draws a new stream.", rank)
        self.history = list(payload["history"])
        logger.info("Resuming %s at epoch %d, batch %d.", type(self).__name__, payload["epoch"] + 1, payload["batch"])
        return int(payload["epoch"]), int(payload["batch"])

    def _end_epoch(self, epoch: int, totals: torch.Tensor, options: RunOptions, started: float) -> dict[str, float]:
        if self._ddp is not None:
            totals = totals.clone()
            torch.distributed.all_reduce(totals)
        loss_sum, correct, count = totals.tolist()
        record = {"epoch": epoch + 1, "loss": loss_sum / max(count, 1), "train_accuracy": correct / max(count, 1)}
        if options.scheduler is not None:
            if isinstance(options.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                options.scheduler.step(record["loss"])
            else:
                options.scheduler.step()
        if options.validation is not None:
            record["val_accuracy"] = self._accuracy(*options.validation)
        record["seconds"] = time.perf_counter() - started
        self.history.append(record)
        return record

    @torch.no_grad()
    def _accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
        net = PreprocessedModel(self._classifier, apply="predict")
        correct = torch.zeros((), dtype=torch.int64, device=self._device)
        with eval_mode(net):
            for start in range(0, len(x), batch_size):
                correct += (net(x[start : start + batch_size]).argmax(1) == y[start : start + batch_size]).sum()
        return int(correct) / len(x)


def _dist_info() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _resolve_seed(seed: int | None, world: int, device: torch.device) -> int:
    if seed is None:
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    if world > 1:
        shared = torch.tensor([seed], dtype=torch.int64, device=device if device.type == "cuda" else "cpu")
        torch.distributed.broadcast(shared, src=0)
        seed = int(shared.item())
    return seed


def _report(record: dict[str, float], options: RunOptions) -> None:
    text = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "seconds"))
    line = f"epoch {record['epoch']}/{options.nb_epochs}: {text} ({record['seconds']:.1f}s)"
    logger.info(line)
    if options.verbose:
        tqdm.write(line)
