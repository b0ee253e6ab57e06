"""Former location of the reproduction driver, kept until ``art_sgt/cli.py`` imports
:mod:`art_sgt.reproduction.cli` directly (same ``add_arguments`` / ``run`` / ``main``)."""

from art_sgt.reproduction.cli import add_arguments, main, run

__all__ = ["add_arguments", "run", "main"]
