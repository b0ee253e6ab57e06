"""Child process for the kill-and-resume test: trains, optionally SIGKILLs itself at a given batch."""

import os
import signal
import sys

import torch
from art.attacks.evasion import ProjectedGradientDescent

from art_sgt import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer
from tests.conftest import make_classifier, make_task, small_model


class KillAt:
    """Mixin: SIGKILL this process when the ``kill_at``-th batch starts."""

    kill_at = -1
    calls = 0

    def _batch_loss(self, x, y):
        KillAt.calls += 1
        if KillAt.calls == KillAt.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._batch_loss(x, y)


class KillSGT(KillAt, SaliencyGuidedTrainer):
    pass


class KillASGT(KillAt, SaliencyGuidedAdversarialTrainer):
    pass


def main(name: str, checkpoint_dir: str, out: str, kill_at: int, resume: bool) -> None:
    torch.set_num_threads(1)
    x, y = make_task(n=192, seed=4)
    classifier = make_classifier(model=small_model(seed=9))
    KillAt.kill_at = kill_at
    if name == "sgt":
        trainer = KillSGT(classifier, mask_fraction=0.3)
    else:  # random PGD starts and uniform fill: the trainer's generator must be restored exactly
        attack = ProjectedGradientDescent(classifier, eps=0.1, eps_step=0.05, max_iter=3, num_random_init=1)
        trainer = KillASGT(classifier, attack, mask_fraction=0.3)
    trainer.fit(x, y, nb_epochs=3, batch_size=32, seed=21, verbose=False, checkpoint_dir=checkpoint_dir, resume=resume)
    torch.save(classifier.model.state_dict(), out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "resume")
