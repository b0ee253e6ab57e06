"""Child process for the kill-and-resume test: trains, optionally SIGKILLs itself at a given batch."""

import os
import signal
import sys

import torch

from art_sgt import SaliencyGuidedTrainer
from tests.conftest import make_classifier, make_task, small_model


class KillAt(SaliencyGuidedTrainer):
    kill_at = -1
    calls = 0

    def _batch_loss(self, x, y):
        KillAt.calls += 1
        if KillAt.calls == KillAt.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._batch_loss(x, y)


def main(checkpoint_dir: str, out: str, kill_at: int, resume: bool) -> None:
    torch.set_num_threads(1)
    x, y = make_task(n=192, seed=4)
    classifier = make_classifier(model=small_model(seed=9))
    KillAt.kill_at = kill_at
    trainer = KillAt(classifier, mask_fraction=0.3)
    trainer.fit(x, y, nb_epochs=3, batch_size=32, seed=21, verbose=False, checkpoint_dir=checkpoint_dir, resume=resume)
    torch.save(classifier.model.state_dict(), out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "resume")
