"""Argument types of the command line: each converts one string or raises ``argparse.ArgumentTypeError``."""

from __future__ import annotations

import argparse

import numpy as np

__all__ = ["positive_int", "non_negative_int", "fraction", "non_negative"]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0.0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
