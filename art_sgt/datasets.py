"""Offline-first loaders for MNIST and CIFAR-10 in the layout of ART's ``art.utils`` loaders.

Both loaders look for the data, in order, in:

1. the ``data_dir`` argument (explicit: it must exist and hold the file, otherwise an error is raised);
2. the folder named by the environment variable ``ART_SGT_DATA``;
3. ART's data folder, ``art.config.ART_DATA_PATH``;
4. ART's own download (``art.utils.load_mnist`` / ``art.utils.load_cifar10``), unless ``download=False``.

A folder holds ``mnist.npz`` and/or ``cifar10.npz`` with the uint8 arrays ``x_train``, ``y_train``, ``x_test``
and ``y_test`` (images ``(n, 28, 28)`` and ``(n, 32, 32, 3)`` channels-last RGB, labels ``(n,)`` class
indices). ``mnist.npz`` is the file ART itself caches, so ART's data folder works as it is; for CIFAR-10, ART
keeps the Python-pickle batches ``cifar-10-batches-py`` there. Those are read with a restricted unpickler that
admits only what the batches hold (dicts, lists, bytes, str, int and numpy arrays): a crafted batch is refused
before anything in it runs, as ``.npz`` files are read without pickle and checkpoints with
``torch.load(weights_only=True)``.

The return value has the layout of ``art.utils.load_mnist()`` / ``load_cifar10()``:
``(x_train, y_train), (x_test, y_test), min_pixel_value, max_pixel_value`` with channels-last images scaled
to [0, 1] and one-hot float32 labels. One deliberate difference: the images are float32, where ART returns
float64; float32 is what ``PyTorchClassifier`` computes in, and it halves the memory (CIFAR-10 train set:
0.6 GB instead of 1.2 GB). Pixels are divided by 255 exactly, whatever the file's own minimum and maximum.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import art.config
import art.utils
import numpy as np

from art_sgt._validation import check_non_negative_int, check_positive_int

__all__ = ["load_mnist", "load_cifar10", "random_subset", "ENV_VAR", "Dataset", "DataNotFoundError", "DataFileError"]

logger = logging.getLogger(__name__)

#: Environment variable naming a folder that holds ``mnist.npz`` / ``cifar10.npz``.
ENV_VAR = "ART_SGT_DATA"

#: ``(x_train, y_train), (x_test, y_test), min_pixel_value, max_pixel_value``, as ART's loaders return it.
Dataset = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], float, float]

_KEYS = ("x_train", "y_train", "x_test", "y_test")
_NB_CLASSES = 10
_SPECS: dict[str, dict[str, Any]] = {
    "mnist": {"file": "mnist.npz", "image_shape": (28, 28), "art_loader": "load_mnist"},
    "cifar10": {"file": "cifar10.npz", "image_shape": (32, 32, 3), "art_loader": "load_cifar10"},
}
_ART_CIFAR_FOLDER = "cifar-10-batches-py"
_ART_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"  # the URL art.utils.load_cifar10 uses
_CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")


class DataNotFoundError(FileNotFoundError):
    """No copy of a dataset was found (and ART's download, if allowed, failed).

    :param message: The whole explanation (folders tried, how to point at the data).
    :param file_name: The file looked for, e.g. ``"mnist.npz"``.
    :param tried: Each place looked in, with why it did not serve.
    :param download_error: Why ART's download failed, or ``None`` if no download was tried.
    """

    def __init__(self, message: str, file_name: str, tried: list[str], download_error: str | None = None) -> None:
        super().__init__(message)
        self.file_name, self.tried, self.download_error = file_name, list(tried), download_error


class DataFileError(ValueError):
    """A data file was found but does not hold the dataset: unreadable, missing a key, arrays of the wrong shape,
    dtype or label range, or (a CIFAR-10 batch) refused by the restricted unpickler. The message names the file."""


def _check_data_dir(data_dir: Any) -> Path | None:
    if data_dir is None:
        return None
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be None, a str or an os.PathLike, got {type(data_dir).__name__}.")
    return Path(data_dir).expanduser()


def _check_raw(name: str, source: str, x: np.ndarray, y: np.ndarray, image_shape: tuple[int, ...]) -> None:
    x_key, y_key = f"x_{name}", f"y_{name}"
    if x.dtype != np.uint8 or x.ndim != len(image_shape) + 1 or x.shape[1:] != image_shape:
        raise DataFileError(
            f"{source}: '{x_key}' must be a uint8 array of shape (n, {', '.join(map(str, image_shape))}), "
            f"got shape {x.shape} and dtype {x.dtype}."
        )
    if not np.issubdtype(y.dtype, np.integer) or y.shape not in ((len(x),), (len(x), 1)):
        raise DataFileError(
            f"{source}: '{y_key}' must be integer class indices of shape ({len(x)},) matching '{x_key}', "
            f"got shape {y.shape} and dtype {y.dtype}."
        )
    if len(y) and (y.min() < 0 or y.max() >= _NB_CLASSES):
        raise DataFileError(
            f"{source}: '{y_key}' must hold class indices in [0, {_NB_CLASSES - 1}], "
            f"got values in [{y.min()}, {y.max()}]."
        )


def _to_art_layout(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale uint8 images to float32 in [0, 1] (channels-last, with a channel axis) and one-hot the labels."""
    if x.ndim == 3:
        x = x[..., np.newaxis]
    x_float = x.astype(np.float32, order="C")
    x_float /= np.float32(255.0)
    return x_float, art.utils.to_categorical(np.asarray(y).reshape(-1), _NB_CLASSES)


def _finish(
    source: str, raw: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], image_shape: tuple[int, ...]
) -> Dataset:
    x_train, y_train, x_test, y_test = raw
    _check_raw("train", source, x_train, y_train, image_shape)
    _check_raw("test", source, x_test, y_test, image_shape)
    return _to_art_layout(x_train, y_train), _to_art_layout(x_test, y_test), 0.0, 1.0


def _read_npz(path: Path, image_shape: tuple[int, ...]) -> Dataset:
    """Read and check one ``.npz`` file (never unpickling anything) and convert it to ART's layout."""
    unreadable = f"{path} is not a readable .npz archive of plain arrays"
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise DataFileError(f"{unreadable}: {error}") from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataFileError(f"{unreadable}: it holds a single array, not the keys {', '.join(map(repr, _KEYS))}.")
    with loaded as npz:
        missing = [key for key in _KEYS if key not in npz.files]
        if missing:
            raise DataFileError(
                f"{path} is missing the key(s) {', '.join(map(repr, missing))}; "
                f"expected {', '.join(map(repr, _KEYS))}, found {', '.join(map(repr, sorted(npz.files)))}."
            )
        try:
            raw = tuple(npz[key] for key in _KEYS)
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
            raise DataFileError(f"{unreadable}: {error}") from error
    return _finish(str(path), raw, image_shape)  # type: ignore[arg-type]


#: The globals a CIFAR-10 batch may name: numpy's array reconstruction (``numpy.core`` as numpy 1 pickles it,
#: ``numpy._core`` as numpy 2 does), the array class and dtypes. Dicts, lists, bytes, str and int need no global.
_BATCH_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(0))[0],
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10 batches and nothing else: any other global (a function to call) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _BATCH_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it names the global {module}.{name}, which a CIFAR-10 batch does not hold (only numpy arrays, "
                "dicts, lists, bytes, str and int are admitted; nothing of the file was run)"
            ) from None


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch of ``cifar-10-batches-py``: images ``(n, 32, 32, 3)`` uint8 and labels ``(n,)``."""
    try:
        with open(path, "rb") as handle:
            content = _BatchUnpickler(handle, encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise DataFileError(f"{path} is refused: {error}.") from error
    except Exception as error:  # a damaged pickle fails in many ways (EOFError, TypeError, ValueError, ...)
        raise DataFileError(f"{path} is not a readable CIFAR-10 batch ({type(error).__name__}: {error}).") from error
    data = content.get(b"data") if isinstance(content, dict) else None
    labels = content.get(b"labels") if isinstance(content, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFileError(
            f"{path} is not a CIFAR-10 batch: it must be a dict whose b'data' is a uint8 array of shape (n, 3072), "
            f"got {type(content).__name__} with b'data' {type(data).__name__} {getattr(data, 'shape', '')}."
        )
    if not isinstance(labels, (list, np.ndarray)) or not all(isinstance(v, (int, np.integer)) for v in labels):
        raise DataFileError(f"{path} is not a CIFAR-10 batch: its b'labels' must be a list of class indices.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels, dtype=np.int64)


def _read_cifar_folder(folder: Path) -> Dataset:
    """Read ART's ``cifar-10-batches-py`` folder (five training batches and ``test_batch``) into ART's layout."""
    missing = [name for name in (*_CIFAR_BATCHES, "test_batch") if not (folder / name).is_file()]
    if missing:
        raise DataFileError(f"{folder} is incomplete: it misses {', '.join(missing)}.")
    train = [_read_cifar_batch(folder / name) for name in _CIFAR_BATCHES]
    x_test, y_test = _read_cifar_batch(folder / "test_batch")
    x_train, y_train = (np.concatenate(parts) for parts in zip(*train))
    return _finish(str(folder), (x_train, y_train, x_test, y_test), _SPECS["cifar10"]["image_shape"])


@contextlib.contextmanager
def _art_download_errors() -> Iterator[list[str]]:
    """Collect the errors ART's ``get_file`` logs while downloading, instead of letting them reach the console.

    ``get_file`` logs a failed URL as ``logger.error(url, exception)``, a format string without a placeholder, so
    logging prints a traceback of its own; the errors are kept, as text, for the loader's one error message.
    """
    errors: list[str] = []

    def keep(record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        errors.append(" ".join(map(str, (record.msg, *(record.args or ())))))
        return False

    art_logger = logging.getLogger("art.utils")
    art_logger.addFilter(keep)
    try:
        yield errors
    finally:
        art_logger.removeFilter(keep)


def _load_from_art(name: str, image_shape: tuple[int, ...]) -> Dataset:
    """Let ART download the data into its data folder and read it: MNIST with ART's loader (an ``.npz`` read
    without pickle), CIFAR-10 with the restricted reader of its batches."""
    if name == "cifar10":
        folder = art.utils.get_file(_ART_CIFAR_FOLDER, url=_ART_CIFAR_URL, path=art.config.ART_DATA_PATH, extract=True)
        return _read_cifar_folder(Path(folder))
    loader = getattr(art.utils, _SPECS[name]["art_loader"])
    (x_train, y_train), (x_test, y_test), _, _ = loader(raw=True)
    raw = tuple(np.asarray(a) for a in (x_train, y_train, x_test, y_test))
    return _finish(f"art.utils.{loader.__name__}", raw, image_shape)  # type: ignore[arg-type]


def _not_found_message(file_name: str, tried: list[str]) -> str:
    folders = "\n".join(f"  - {line}" for line in tried) or "  - (none)"
    return (
        f"Could not find {file_name}. Folders tried, in order:\n{folders}\n"
        f"Fix: pass data_dir='/path/to/folder' or set the environment variable {ENV_VAR} to a folder that "
        f"holds {file_name} (uint8 arrays {', '.join(_KEYS)})."
    )


def _load(name: str, data_dir: Any, download: Any) -> Dataset:
    spec = _SPECS[name]
    file_name: str = spec["file"]
    image_shape: tuple[int, ...] = spec["image_shape"]
    folder = _check_data_dir(data_dir)
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}.")

    if folder is not None:
        if not folder.is_dir():
            raise FileNotFoundError(f"data_dir {str(folder)!r} does not exist or is not a folder.")
        path = folder / file_name
        if not path.is_file():
            raise FileNotFoundError(f"data_dir {str(folder)!r} does not hold {file_name} (looked for {path}).")
        return _read_npz(path, image_shape)

    tried: list[str] = []
    env_value = os.environ.get(ENV_VAR, "")
    if env_value:
        env_folder = Path(env_value).expanduser()
        path = env_folder / file_name
        if path.is_file():
            return _read_npz(path, image_shape)
        reason = "no such folder" if not env_folder.is_dir() else f"no {file_name}"
        if not env_folder.is_dir():
            logger.warning("%s=%r is not a folder; falling back to ART's data folder.", ENV_VAR, env_value)
        tried.append(f"{env_folder} (from ${ENV_VAR}: {reason})")
    else:
        tried.append(f"${ENV_VAR} (not set)")

    art_folder = Path(art.config.ART_DATA_PATH).expanduser()
    path = art_folder / file_name
    if path.is_file():
        return _read_npz(path, image_shape)
    if name == "cifar10" and (art_folder / _ART_CIFAR_FOLDER).is_dir():
        return _read_cifar_folder(art_folder / _ART_CIFAR_FOLDER)
    extra = f" or {_ART_CIFAR_FOLDER}/" if name == "cifar10" else ""
    tried.append(f"{art_folder} (art.config.ART_DATA_PATH: no {file_name}{extra})")

    message = _not_found_message(file_name, tried)
    if not download:
        raise DataNotFoundError(message + " Or call again with download=True to let ART download it.", file_name, tried)
    logger.info("%s not found locally; trying ART's download into %s.", file_name, art_folder)
    with _art_download_errors() as logged:
        try:
            return _load_from_art(name, image_shape)
        except Exception as error:  # ART's download fails in many ways offline (URLError, OSError, tarfile...).
            reason = "; ".join([*logged, repr(error)])
            raise DataNotFoundError(
                f"{message} ART's download failed too: {reason}", file_name, tried, reason
            ) from error


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load MNIST as ``art.utils.load_mnist()`` does, from a local ``mnist.npz`` first.

    Looks in ``data_dir``, then in the folder named by ``$ART_SGT_DATA``, then in ART's data folder
    (``art.config.ART_DATA_PATH``), and only then lets ART download the file.

    :param data_dir: Folder holding ``mnist.npz``. When given, it must exist and hold the file: no other
        place is searched.
    :param download: Whether ART may download the data when no local copy is found.
    :return: ``(x_train, y_train), (x_test, y_test), min_pixel_value, max_pixel_value``: images float32 of
        shape ``(60000, 28, 28, 1)`` and ``(10000, 28, 28, 1)`` in [0, 1], labels one-hot float32 of shape
        ``(n, 10)``, ``min_pixel_value=0.0`` and ``max_pixel_value=1.0``.
    :raises TypeError: If ``data_dir`` is not ``None``, a str or a path, or ``download`` is not a bool.
    :raises FileNotFoundError: If ``data_dir`` is given but does not exist or lacks ``mnist.npz``; a
        :class:`DataNotFoundError`, listing every folder tried, if no copy is found and ``download`` is ``False``
        or ART's download fails.
    :raises DataFileError: (a ``ValueError``) If the file found is not a readable ``.npz``, misses a key, or holds
        arrays of the wrong shape, dtype or label range.

    >>> (x_train, y_train), (x_test, y_test), lo, hi = load_mnist("/path/to/data")  # doctest: +SKIP
    >>> x_train.shape, y_train.shape, x_train.dtype  # doctest: +SKIP
    ((60000, 28, 28, 1), (60000, 10), dtype('float32'))
    """
    return _load("mnist", data_dir, download)


def load_cifar10(data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load CIFAR-10 as ``art.utils.load_cifar10()`` does, from a local ``cifar10.npz`` first.

    Looks in ``data_dir``, then in the folder named by ``$ART_SGT_DATA``, then in ART's data folder
    (``art.config.ART_DATA_PATH``, where ``cifar10.npz`` or ART's own ``cifar-10-batches-py`` is accepted),
    and only then lets ART download the data.

    :param data_dir: Folder holding ``cifar10.npz``. When given, it must exist and hold the file: no other
        place is searched.
    :param download: Whether ART may download the data when no local copy is found.
    :return: ``(x_train, y_train), (x_test, y_test), min_pixel_value, max_pixel_value``: images float32 of
        shape ``(50000, 32, 32, 3)`` and ``(10000, 32, 32, 3)``, channels-last RGB in [0, 1], labels one-hot
        float32 of shape ``(n, 10)``, ``min_pixel_value=0.0`` and ``max_pixel_value=1.0``.
    :raises TypeError: If ``data_dir`` is not ``None``, a str or a path, or ``download`` is not a bool.
    :raises FileNotFoundError: If ``data_dir`` is given but does not exist or lacks ``cifar10.npz``; a
        :class:`DataNotFoundError`, listing every folder tried, if no copy is found and ``download`` is ``False``
        or ART's download fails.
    :raises DataFileError: (a ``ValueError``) If the file found is not a readable ``.npz``, misses a key, or holds
        arrays of the wrong shape, dtype or label range.

    >>> (x_train, y_train), (x_test, y_test), lo, hi = load_cifar10("/path/to/data")  # doctest: +SKIP
    >>> x_train.shape, y_train.shape, x_train.dtype  # doctest: +SKIP
    ((50000, 32, 32, 3), (50000, 10), dtype('float32'))
    """
    return _load("cifar10", data_dir, download)


def random_subset(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a seeded random subset of ``n`` of ``n_total`` samples, in increasing order.

    Evaluations draw their test images with it instead of taking the first ``n``: the first rows of a test set
    are not a random sample of it (the first half of MNIST's test set is the easier half). The draw depends only
    on ``(n_total, n, seed)``, so two models evaluated with the same arguments see the same images, and a smaller
    subset is not a prefix of a larger one. Record the returned indices beside the results.

    :param n_total: Number of samples to draw from (e.g. ``len(x_test)``).
    :param n: Number of samples drawn, ``1 <= n <= n_total``.
    :param seed: Seed of the draw (a non-negative int).
    :return: ``n`` distinct indices into ``range(n_total)``, int64, sorted.
    :raises TypeError: If ``n_total``, ``n`` or ``seed`` is not an int.
    :raises ValueError: If ``n_total`` or ``n`` is below 1, ``n > n_total``, or ``seed`` is negative.

    >>> random_subset(10, 3, seed=0).tolist()
    [2, 4, 8]
    >>> bool((random_subset(10_000, 500, seed=1) == random_subset(10_000, 500, seed=1)).all())
    True
    """
    n_total = check_positive_int("n_total", n_total)
    n = check_positive_int("n", n)
    if n > n_total:
        raise ValueError(f"n must be at most n_total={n_total}, got {n}.")
    seed = check_non_negative_int("seed", seed)
    rng = np.random.default_rng([int(seed), n_total])
    return np.sort(rng.choice(n_total, size=n, replace=False)).astype(np.int64)
