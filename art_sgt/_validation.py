"""Argument checks shared by every public entry point.

Every check raises before any work starts, with a message of one style:
``"<name> must be <expected form>, got <what was given>."``
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch import nn

__all__ = [
    "NORMS",
    "check_bool",
    "check_positive",
    "check_norm",
    "check_clip_values",
    "preserved_modes",
    "check_fraction",
    "check_non_negative",
    "check_positive_int",
    "check_non_negative_int",
    "check_choice",
    "check_array",
    "check_finite",
    "check_same_length",
    "check_labels",
]


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_bool(name: str, value: Any) -> bool:
    """Check that ``value`` is a bool (Python's or numpy's).

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :return: ``value`` as a Python bool.
    :raises TypeError: If ``value`` is not a bool.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_describe(value)}.")
    return bool(value)


def check_positive(name: str, value: Any) -> float:
    """Check that ``value`` is a finite real number > 0.

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :return: ``value`` as a float.
    :raises TypeError: If ``value`` is not a real number.
    :raises ValueError: If ``value`` is not finite or not positive.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite real number > 0, got {_describe(value)}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite real number > 0, got {value!r}.")
    return float(value)


#: The norms an attack may be asked for, by canonical name, with the spellings accepted for each.
NORMS = {"inf": ("inf", "np.inf", math.inf), "2": ("2", 2.0), "1": ("1", 1.0)}


def check_norm(name: str, value: Any, allowed: tuple[str, ...] = ("inf", "2")) -> str:
    """Check that ``value`` names one of the ``allowed`` norms, as ART spells them (``"inf"``, ``numpy.inf``, 2, 1).

    :param name: The parameter's name, used in the error message.
    :param value: The value to check: a string (``"inf"``, ``"np.inf"``, ``"2"``, ``"1"``) or a real number.
    :param allowed: Canonical names of the norms accepted (keys of :data:`NORMS`).
    :return: The canonical name.
    :raises ValueError: If ``value`` names no allowed norm.

    >>> check_norm("norm", float("inf")), check_norm("norm", 2), check_norm("norm", "inf")
    ('inf', '2', 'inf')
    """
    if isinstance(value, str) or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        key = value if isinstance(value, str) else float(value)
        for canonical in allowed:
            if key in NORMS[canonical]:
                return canonical
    spelled = ", ".join("'inf' (or numpy.inf)" if n == "inf" else n for n in allowed)
    raise ValueError(f"{name} must be one of {spelled}, got {_describe(value)}.")


def check_clip_values(name: str, value: Any, scalar: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """Check that ``value`` is ``None`` or a ``(min, max)`` pair of finite numbers (or arrays, as ART allows)
    with ``min < max`` everywhere.

    :param name: The parameter's name, used in the error message.
    :param value: The value to check: a tuple or list of two, or an array of shape ``(2, ...)`` as ART keeps a
        classifier's ``clip_values``.
    :param scalar: Accept only a pair of numbers (one range for every feature).
    :return: ``None``, or the two bounds as float64 arrays (0-d for numbers).
    :raises TypeError: If ``value`` is not such a pair.
    :raises ValueError: If a bound is not finite or ``min < max`` fails somewhere.

    >>> check_clip_values("clip_values", (0, 1))
    (array(0.), array(1.))
    """
    if value is None:
        return None
    kind = "real numbers" if scalar else "numbers or arrays"
    message = f"{name} must be None or a (min, max) pair of finite {kind} with min < max, got {_describe(value)}."
    pair = isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray) and value.ndim >= 1)
    if not pair or len(value) != 2:  # an ndarray of shape (2, ...) is how ART stores a classifier's clip_values
        raise TypeError(message)
    if scalar and not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise TypeError(message)
    try:
        low, high = (np.asarray(v, dtype=np.float64) for v in value)
        np.broadcast_shapes(low.shape, high.shape)
    except (TypeError, ValueError):
        raise TypeError(message) from None
    if not (np.isfinite(low).all() and np.isfinite(high).all() and np.all(low < high)):
        raise ValueError(message)
    return low, high


@contextlib.contextmanager
def preserved_modes(model: nn.Module, training: bool | None = None, freeze: bool = False) -> Iterator[nn.Module]:
    """Set every submodule's mode (and optionally freeze the parameters); restore each one's own state on exit.

    :param model: The model.
    :param training: ``True``/``False`` to put the model in train/eval mode; ``None`` leaves the mode as it is.
    :param freeze: Also set ``requires_grad=False`` on every parameter while inside.
    :return: A context manager yielding ``model``.
    """
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()] if freeze else []
    if training is not None:
        model.train(training)
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for param, requires_grad in flags:
            param.requires_grad_(requires_grad)


def check_fraction(name: str, value: Any, low_inclusive: bool = False, high_inclusive: bool = False) -> float:
    """Check that ``value`` is a real number in (0, 1), with the bounds made inclusive on request.

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :param low_inclusive: Whether 0 is allowed.
    :param high_inclusive: Whether 1 is allowed.
    :return: ``value`` as a float.
    :raises TypeError: If ``value`` is not a real number.
    :raises ValueError: If ``value`` is outside the interval.
    """
    lo, hi = ("[" if low_inclusive else "("), ("]" if high_inclusive else ")")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in {lo}0, 1{hi}, got {_describe(value)}.")
    value = float(value)
    ok_low = value >= 0.0 if low_inclusive else value > 0.0
    ok_high = value <= 1.0 if high_inclusive else value < 1.0
    if math.isnan(value) or not (ok_low and ok_high):
        raise ValueError(f"{name} must be a real number in {lo}0, 1{hi}, got {value!r}.")
    return value


def check_non_negative(name: str, value: Any) -> float:
    """Check that ``value`` is a finite real number >= 0.

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :return: ``value`` as a float.
    :raises TypeError: If ``value`` is not a real number.
    :raises ValueError: If ``value`` is negative, NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite real number >= 0, got {_describe(value)}.")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite real number >= 0, got {value!r}.")
    return value


def check_positive_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    """Check that ``value`` is an integer >= 1 (or ``None`` when allowed).

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :param allow_none: Whether ``None`` is accepted.
    :return: ``value`` as an int, or ``None``.
    :raises TypeError: If ``value`` is not an integer.
    :raises ValueError: If ``value`` is smaller than 1.
    """
    if value is None and allow_none:
        return None
    return _check_int(name, value, 1)


def check_non_negative_int(name: str, value: Any) -> int:
    """Check that ``value`` is an integer >= 0 (a count that may be zero, or a seed).

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :return: ``value`` as an int.
    :raises TypeError: If ``value`` is not an integer.
    :raises ValueError: If ``value`` is negative.
    """
    return _check_int(name, value, 0)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_describe(value)}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Check that ``value`` is one of the strings in ``choices``.

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :param choices: The accepted strings.
    :return: ``value``.
    :raises ValueError: If ``value`` is not one of ``choices``.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {_describe(value)}.")
    return value


def check_array(name: str, value: Any, min_ndim: int = 1) -> np.ndarray:
    """Check that ``value`` is a non-empty numeric numpy array with at least ``min_ndim`` dimensions.

    :param name: The parameter's name, used in the error message.
    :param value: The value to check.
    :param min_ndim: The smallest accepted number of dimensions.
    :return: ``value`` (never copied, never modified).
    :raises TypeError: If ``value`` is not a numeric numpy array.
    :raises ValueError: If ``value`` is empty or has too few dimensions.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}.")
    if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
        raise TypeError(f"{name} must have a numeric dtype, got dtype {value.dtype}.")
    if np.issubdtype(value.dtype, np.complexfloating):
        raise TypeError(f"{name} must have a real dtype, got dtype {value.dtype} (the imaginary part would be lost).")
    if value.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {value.shape}.")
    if value.shape[0] == 0:
        raise ValueError(f"{name} must not be empty, got shape {value.shape}.")
    return value


def check_finite(name: str, value: np.ndarray) -> np.ndarray:
    """Check that a numeric array holds no NaN or infinity.

    :param name: The parameter's name, used in the error message.
    :param value: The array to check.
    :return: ``value``.
    :raises ValueError: If ``value`` holds a NaN or an infinity.
    """
    if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
        bad = int((~np.isfinite(value)).sum())
        raise ValueError(f"{name} must hold only finite values, got {bad} NaN or infinite entries.")
    return value


def check_same_length(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Check that two arrays have the same number of samples.

    :param name_a: The first parameter's name.
    :param a: The first array.
    :param name_b: The second parameter's name.
    :param b: The second array.
    :raises ValueError: If ``len(a) != len(b)``.
    """
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {len(a)} and {len(b)}.")


def check_labels(name: str, y: np.ndarray, nb_classes: int) -> np.ndarray:
    """Check class labels and return them as int64 indices.

    Accepts index labels of shape ``(n,)`` (or ``(n, 1)``) and one-hot / probability labels of shape
    ``(n, nb_classes)``, the two forms ART accepts. A row of a one-hot array names its class by its one largest
    entry; a row without one (all zero, or multi-hot: a tie between classes) names no class and is refused, where
    ``argmax`` would silently pick the first of the tied classes.

    :param name: The parameter's name, used in the error message.
    :param y: The labels.
    :param nb_classes: The number of classes of the classifier.
    :return: A new int64 array of shape ``(n,)``.
    :raises ValueError: If the labels have a wrong shape, are not finite or are out of range, or if a one-hot row
        has no single largest entry.

    >>> check_labels("y", np.array([[0.0, 1.0], [0.9, 0.1]]), 2).tolist()
    [1, 0]
    >>> check_labels("y", np.array([[1.0, 1.0], [0.0, 0.0]]), 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: y must be one-hot labels with one largest entry per row (the class), got 2 row(s) ...
    """
    check_array(name, y)
    check_finite(name, y)
    if y.ndim == 2 and y.shape[1] == nb_classes and nb_classes > 1:
        _check_one_class_per_row(name, y)
        return np.argmax(y, axis=1).astype(np.int64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be index labels of shape (n,) or one-hot labels of shape (n, {nb_classes}), "
            f"got shape {y.shape}."
        )
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError(f"{name} must hold integer class indices, got non-integer values.")
    if y.min() < 0 or y.max() >= nb_classes:
        raise ValueError(
            f"{name} must hold class indices in [0, {nb_classes - 1}], got values in [{y.min()}, {y.max()}]."
        )
    return y.astype(np.int64)


def _check_one_class_per_row(name: str, y: np.ndarray) -> None:
    """Refuse the rows of one-hot labels whose largest entry is shared (all-zero and multi-hot rows)."""
    ties = (y == y.max(axis=1, keepdims=True)).sum(axis=1) > 1
    if not ties.any():
        return
    first = int(np.flatnonzero(ties)[0])
    tied = np.flatnonzero(y[first] == y[first].max())
    what = "is all zero" if not y[first].any() else f"ties classes {', '.join(map(str, tied[:-1]))} and {tied[-1]}"
    raise ValueError(
        f"{name} must be one-hot labels with one largest entry per row (the class), got {int(ties.sum())} row(s) "
        f"without one: row {first} {what}."
    )
