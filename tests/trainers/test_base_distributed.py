"""Two gloo processes on CPU train to the same weights as one process with the same global batch, for both
trainers (deterministic fill and PGD start, so that the per-rank random streams do not enter)."""

import gc
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from art.data_generators import DataGenerator
from torch.nn.parallel import DistributedDataParallel

from art_sgt import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer
from tests.conftest import make_classifier, make_task, small_model

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def _train(name: str) -> tuple[dict, list]:
    torch.set_num_threads(1)
    x, y = make_task(n=128, seed=8)
    classifier = make_classifier(model=small_model(seed=4), optimizer="sgd", lr=0.05)
    if name == "sgt":
        trainer = SaliencyGuidedTrainer(classifier, fill="zero", mask_fraction=0.3)
    else:
        from art.attacks.evasion import ProjectedGradientDescent

        attack = ProjectedGradientDescent(
            classifier, eps=0.1, eps_step=0.05, max_iter=3, num_random_init=0, verbose=False
        )
        trainer = SaliencyGuidedAdversarialTrainer(classifier, attack, fill="zero", mask_fraction=0.3)
    # ASGT also keeps its best epoch by robust validation: every rank must measure and choose alike
    selection = {"robust_validation": make_task(n=48, seed=9), "keep_best": "robust"} if name == "asgt" else {}
    trainer.fit(x, y, nb_epochs=3, batch_size=32, seed=3, verbose=False, **selection)
    if selection:
        assert trainer.best_epoch is not None and trainer.best_measure == "robust_val_accuracy"
    # the classifier handed back is a plain ART classifier on every rank (DDP stays inside the trainer)
    assert trainer.get_classifier() is classifier and not isinstance(classifier.model, DistributedDataParallel)
    assert classifier.predict(x[:8]).shape == (8, 4)
    _assert_no_ddp_alive()
    return {k: v.detach().clone() for k, v in classifier.model.state_dict().items()}, trainer.history


def _assert_no_ddp_alive() -> None:
    """Once ``fit`` returns, nothing keeps a DDP wrapper (and with it the process group) alive, though the trainer
    still is: a group torn down at interpreter exit instead of by ``destroy_process_group`` can abort gloo."""
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, DistributedDataParallel)]


class _SameBatches(DataGenerator):
    """Every rank draws the same batches, so N ranks average N equal gradients: one process's gradient."""

    def __init__(self, x, y):
        super().__init__(size=len(x), batch_size=16)
        self.x, self.y, self.at = x, y, 0

    def get_batch(self):
        start = self.at % self.size
        self.at += self.batch_size
        return self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


def _train_batchnorm() -> dict:
    """A BatchNorm model: the clean and masked batches must be normalised alike with and without DDP."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 64, 4),
    )
    classifier = make_classifier(model=model, optimizer="sgd", lr=0.05)
    x, y = make_task(n=32, seed=8)
    trainer = SaliencyGuidedTrainer(classifier, fill="zero")
    trainer.fit_generator(_SameBatches(x, y), nb_epochs=1, seed=3, verbose=False)
    _assert_no_ddp_alive()
    return {k: v.detach().clone() for k, v in classifier.model.state_dict().items()}


def _worker(rank: int, world: int, port: int, out: str, name: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        weights, history = _train(name)
        batchnorm = _train_batchnorm() if name == "sgt" else None
        torch.save({"weights": weights, "history": history, "batchnorm": batchnorm}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["sgt", "asgt"])
def test_two_gloo_processes_match_one_process(tmp_path, name):
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_worker, args=(2, _free_port(), out, name), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(2)]
    ddp = ranks[0]
    single, single_history = _train(name)
    for run in ranks:  # every rank ends with the weights one process ends with (with ASGT: of the same best epoch)
        for key, value in single.items():
            torch.testing.assert_close(run["weights"][key], value, rtol=1e-4, atol=1e-5)
    # epoch statistics are all-reduced over ranks, so rank 0 reports the global numbers
    assert ddp["history"][-1]["train_accuracy"] == pytest.approx(single_history[-1]["train_accuracy"])
    if name == "asgt":  # every rank recorded the robust-validation numbers of one process
        for run in ranks:
            assert [r["robust_val_accuracy"] for r in run["history"]] == pytest.approx(
                [r["robust_val_accuracy"] for r in single_history]
            )
    if name == "sgt":  # clean and masked batches of a BatchNorm model: the same forwards with and without DDP
        for key, value in _train_batchnorm().items():
            torch.testing.assert_close(ddp["batchnorm"][key], value, rtol=1e-4, atol=1e-5)


def _resume_worker(rank: int, world: int, port: int, folder: str) -> None:
    """Uniform fill draws from each rank's own stream: resuming must give every rank its own stream back."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        x, y = make_task(n=129, seed=8)  # 129 = 4 batches of 32 and a last batch of 1, fewer than the 2 ranks

        def run(**kwargs) -> dict:
            classifier = make_classifier(model=small_model(seed=4), optimizer="sgd", lr=0.05)
            SaliencyGuidedTrainer(classifier, fill="uniform").fit(x, y, batch_size=32, seed=3, verbose=False, **kwargs)
            return {k: v.detach().clone() for k, v in classifier.model.state_dict().items()}

        straight = run(nb_epochs=2)
        run(nb_epochs=1, checkpoint_dir=f"{folder}/ckpt")
        dist.barrier()  # rank 0 has written the checkpoint every rank resumes from
        resumed = run(nb_epochs=2, checkpoint_dir=f"{folder}/ckpt", resume=True)
        torch.save({"straight": straight, "resumed": resumed}, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_distributed_resume_restores_every_ranks_stream_and_uneven_batches_do_not_hang(tmp_path):
    context = mp.start_processes(_resume_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False)
    deadline = 240.0
    while not context.join(timeout=5):
        deadline -= 5
        if deadline <= 0:
            for process in context.processes:
                process.kill()
            pytest.fail("the distributed run hung")
    for rank in range(2):
        run = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for name, value in run["straight"].items():
            assert torch.equal(run["resumed"][name], value), (rank, name)
    payload = torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)
    assert len(payload["noise_per_rank"]) == 2
    assert not torch.equal(payload["noise_per_rank"][0], payload["noise_per_rank"][1])
