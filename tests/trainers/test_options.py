"""The options of a ``fit`` call: one frozen, keyword-only record, built from the call's arguments."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from art_sgt import SaliencyGuidedTrainer
from art_sgt.trainers import SaliencyTrainerBase
from art_sgt.trainers._options import _CALL_OPTIONS, FitOptions
from tests.conftest import make_classifier, make_task


def test_fit_and_fit_generator_take_exactly_the_options_fitoptions_checks():
    own = {
        SaliencyTrainerBase.fit: {"self", "x", "y", "batch_size"},
        SaliencyTrainerBase.fit_generator: {"self", "generator"},
    }
    for method, inputs in own.items():
        assert set(inspect.signature(method).parameters) - inputs == {*_CALL_OPTIONS, "kwargs"}
    check = set(inspect.signature(FitOptions.check).parameters)
    assert check == {"trainer", "fit_kwargs", *_CALL_OPTIONS}


def test_options_are_frozen_and_keyword_only():
    trainer = SaliencyGuidedTrainer(make_classifier())
    arguments = {name: None for name in _CALL_OPTIONS}
    arguments.update(nb_epochs=3, verbose=False, checkpoint_every=1, resume=False, allow_config_change=False)
    options = FitOptions.of_call(trainer, {**arguments, "kwargs": {"drop_last": True}})
    assert (options.nb_epochs, options.drop_last, options.training_mode) == (3, True, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.nb_epochs = 4
    with pytest.raises(TypeError):
        FitOptions(3, None, None, None, None, 1, None, False)


def test_an_unknown_fit_keyword_is_refused():
    trainer = SaliencyGuidedTrainer(make_classifier())
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        trainer.fit(*make_task(n=8), shuffle=True)
