"""Tests of art_sgt.datasets on tiny synthetic files; nothing reads the real data or touches the network."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import art.config
import art.utils
import numpy as np
import pytest

from art_sgt import datasets
from art_sgt.datasets import ENV_VAR, load_cifar10, load_mnist
from tests.conftest import write_npz

LOADERS = {"mnist": load_mnist, "cifar10": load_cifar10}
ART_LOAD_CIFAR10 = art.utils.load_cifar10  # ART's own reader (it unpickles the batches with pickle.load)
ART_GET_FILE = art.utils.get_file


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty ART data folder, no $ART_SGT_DATA, and ART's downloads replaced by failures."""
    art_dir = tmp_path / "art_data"
    art_dir.mkdir()
    monkeypatch.setattr(art.config, "ART_DATA_PATH", str(art_dir))
    monkeypatch.delenv(ENV_VAR, raising=False)

    def offline(*args, **kwargs):
        raise OSError("no internet in tests")

    monkeypatch.setattr(art.utils, "load_mnist", offline)
    monkeypatch.setattr(art.utils, "load_cifar10", offline)
    monkeypatch.setattr(art.utils, "get_file", offline)
    return art_dir


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_layout_matches_art(tmp_path, name):
    raw = write_npz(tmp_path / "d", name)
    (x_train, y_train), (x_test, y_test), lo, hi = LOADERS[name](data_dir=tmp_path / "d")
    image = (28, 28, 1) if name == "mnist" else (32, 32, 3)
    assert x_train.shape == (6, *image) and x_test.shape == (4, *image)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert x_train.flags["C_CONTIGUOUS"]
    assert y_train.shape == (6, 10) and y_test.shape == (4, 10)
    assert y_train.dtype == np.float32 and y_test.dtype == np.float32
    assert (lo, hi) == (0.0, 1.0) and isinstance(lo, float)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    np.testing.assert_allclose(x_train.reshape(raw["x_train"].shape), raw["x_train"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_train.sum(axis=1), 1.0)
    np.testing.assert_array_equal(y_test.argmax(axis=1), raw["y_test"])


def test_same_values_as_art_preprocess(tmp_path):
    raw = write_npz(tmp_path, "mnist")
    (x_train, y_train), _, _, _ = load_mnist(data_dir=tmp_path)
    x_art, y_art = art.utils.preprocess(raw["x_train"][..., np.newaxis], raw["y_train"])
    np.testing.assert_array_equal(x_train, x_art.astype(np.float32))
    np.testing.assert_array_equal(y_train, y_art)
    assert y_art.dtype == y_train.dtype


def test_lookup_order(tmp_path, monkeypatch, isolated):
    write_npz(isolated, "mnist", fill=10)
    assert load_mnist()[0][0].max() == pytest.approx(10 / 255)
    write_npz(tmp_path / "env", "mnist", fill=20)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert load_mnist()[0][0].max() == pytest.approx(20 / 255)
    write_npz(tmp_path / "arg", "mnist", fill=30)
    assert load_mnist(data_dir=str(tmp_path / "arg"))[0][0].max() == pytest.approx(30 / 255)


def test_env_folder_without_the_file_falls_back_to_art_folder(tmp_path, monkeypatch, isolated):
    write_npz(tmp_path / "env", "mnist")
    write_npz(isolated, "cifar10", fill=40)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert load_cifar10()[0][0].max() == pytest.approx(40 / 255)


def _write_batches(folder, n=(3, 3, 3, 3, 3), n_test=2, fill=51, protocol=3):
    """ART's ``cifar-10-batches-py`` layout: pickled dicts with bytes keys, flat uint8 rows, a list of labels."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = {}
    for name, size in [*((f"data_batch_{i + 1}", k) for i, k in enumerate(n)), ("test_batch", n_test)]:
        labels[name] = [int(v) for v in np.arange(size) % 10]
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels[name],
            b"data": np.full((size, 3 * 32 * 32), fill, dtype=np.uint8),
            b"filenames": [f"{k}.png".encode() for k in range(size)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    return labels


@pytest.mark.parametrize("numpy_module", ["numpy._core.multiarray", "numpy.core.multiarray"])
def test_art_cifar_batches_folder_is_read_without_arts_unpickler(isolated, numpy_module):
    labels = _write_batches(isolated / "cifar-10-batches-py")
    if numpy_module == "numpy.core.multiarray":  # the name numpy 1 (and so the files as distributed) pickle
        for path in (isolated / "cifar-10-batches-py").iterdir():
            path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    (x_train, y_train), (x_test, y_test), lo, hi = load_cifar10(download=False)
    assert x_train.shape == (15, 32, 32, 3) and x_test.shape == (2, 32, 32, 3) and (lo, hi) == (0.0, 1.0)
    assert x_train.dtype == np.float32 and x_train.max() == pytest.approx(0.2)
    np.testing.assert_array_equal(y_train.argmax(axis=1), sum((labels[f"data_batch_{i}"] for i in range(1, 6)), []))
    np.testing.assert_array_equal(y_test.argmax(axis=1), labels["test_batch"])


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_cifar_batch_is_refused_and_runs_nothing(isolated, tmp_path, monkeypatch):
    # ART's own reader, as it is: the folder exists, so it downloads nothing and unpickles the batches.
    monkeypatch.setattr(art.utils, "load_cifar10", ART_LOAD_CIFAR10)
    monkeypatch.setattr(art.utils, "get_file", ART_GET_FILE)
    _write_batches(isolated / "cifar-10-batches-py")
    marker = tmp_path / "code-ran"
    batch = isolated / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": _Payload(marker), b"labels": [0]}, protocol=3))
    with pytest.raises(datasets.DataFileError, match=r"data_batch_1.*(posix|os|nt)\.system") as info:
        load_cifar10(download=False)
    assert str(batch) in str(info.value)
    assert not marker.exists()


def test_a_cifar_batch_of_another_layout_is_refused_naming_the_file(isolated):
    _write_batches(isolated / "cifar-10-batches-py")
    (isolated / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": [1, 2, 3]}, protocol=3))
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar10(download=False)


def test_download_used_as_last_resort(monkeypatch):
    def fake_art_mnist(raw=False):
        assert raw is True
        x = np.full((2, 28, 28), 255, dtype=np.uint8)
        return (x, np.array([3, 4])), (x, np.array([5, 6])), 0.0, 255.0

    monkeypatch.setattr(art.utils, "load_mnist", fake_art_mnist)
    (x_train, y_train), _, _, _ = load_mnist()
    assert x_train.shape == (2, 28, 28, 1) and x_train.max() == 1.0
    np.testing.assert_array_equal(y_train.argmax(axis=1), [3, 4])


def test_no_download_error_lists_every_folder(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(download=False)
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message and str(isolated) in message
    assert "cifar10.npz" in message and "data_dir" in message and ENV_VAR in message


def test_failed_download_raises_clear_chained_error(isolated):
    with pytest.raises(FileNotFoundError, match="ART's download failed") as info:
        load_mnist()
    assert isinstance(info.value.__cause__, OSError)
    assert str(isolated) in str(info.value) and f"${ENV_VAR} (not set)" in str(info.value)


def test_explicit_data_dir_must_exist_and_hold_the_file(tmp_path, isolated):
    write_npz(isolated, "mnist")  # would be found if the loader fell through
    with pytest.raises(FileNotFoundError, match="data_dir") as info:
        load_mnist(data_dir=tmp_path / "missing")
    assert str(tmp_path / "missing") in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="data_dir") as info:
        load_mnist(data_dir=tmp_path / "empty")
    assert str(tmp_path / "empty" / "mnist.npz") in str(info.value)


@pytest.mark.parametrize("bad", [3, ["/tmp"], b"/tmp"])
def test_data_dir_type_error(bad):
    with pytest.raises(TypeError, match="data_dir"):
        load_mnist(data_dir=bad)


def test_download_type_error(tmp_path):
    with pytest.raises(TypeError, match="download"):
        load_mnist(data_dir=tmp_path, download="no")


def test_corrupted_file(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="mnist.npz"):
        load_mnist(data_dir=tmp_path)


def test_single_array_file(tmp_path):
    with open(tmp_path / "cifar10.npz", "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(ValueError, match="cifar10.npz.*single array"):
        load_cifar10(data_dir=tmp_path)


def test_pickled_arrays_are_refused(tmp_path):
    write_npz(tmp_path, "mnist", y_test=np.array([{"label": 1}] * 4, dtype=object))
    with pytest.raises(ValueError, match="mnist.npz"):
        load_mnist(data_dir=tmp_path)


def test_missing_key(tmp_path):
    raw = write_npz(tmp_path, "mnist")
    del raw["y_test"]
    np.savez(tmp_path / "mnist.npz", **raw)
    with pytest.raises(ValueError, match=r"mnist\.npz is missing the key\(s\) 'y_test'"):
        load_mnist(data_dir=tmp_path)


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ({"x_train": np.zeros((6, 28, 28, 3), dtype=np.uint8)}, "'x_train' must be a uint8 array"),
        ({"x_test": np.zeros((4, 28, 28), dtype=np.float32)}, "'x_test' must be a uint8 array"),
        ({"y_train": np.zeros(5, dtype=np.uint8)}, "'y_train' must be integer class indices of shape \\(6,\\)"),
        ({"y_test": np.array([0, 1, 2, 10], dtype=np.int64)}, "'y_test' must hold class indices in \\[0, 9\\]"),
    ],
)
def test_wrong_arrays(tmp_path, override, pattern):
    write_npz(tmp_path, "mnist", **override)
    with pytest.raises(ValueError, match=pattern):
        load_mnist(data_dir=tmp_path)


def test_file_is_not_modified(tmp_path):
    folder = tmp_path / "data"
    write_npz(folder, "cifar10")
    before = (folder / "cifar10.npz").read_bytes()
    load_cifar10(data_dir=folder)
    assert (folder / "cifar10.npz").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["cifar10.npz"]


def test_public_names():
    assert set(datasets.__all__) >= {"load_mnist", "load_cifar10"}
    assert all(hasattr(datasets, name) for name in datasets.__all__)


def test_random_subset_is_seeded_sorted_distinct_and_not_a_prefix():
    a = datasets.random_subset(10_000, 500, seed=3)
    assert a.dtype == np.int64 and a.shape == (500,)
    assert np.array_equal(a, datasets.random_subset(10_000, 500, seed=3))
    assert np.all(np.diff(a) > 0) and a[0] >= 0 and a[-1] < 10_000
    assert not np.array_equal(a, datasets.random_subset(10_000, 500, seed=4))
    assert not np.array_equal(a, np.arange(500))
    assert np.array_equal(datasets.random_subset(5, 5), np.arange(5))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_total": 10, "n": 11}, ValueError, "n must"),
        ({"n_total": 10, "n": 0}, ValueError, "n must"),
        ({"n_total": 0, "n": 1}, ValueError, "n_total"),
        ({"n_total": 10, "n": 2.0}, TypeError, "n must"),
        ({"n_total": 10, "n": 2, "seed": -1}, ValueError, "seed"),
        ({"n_total": 10, "n": 2, "seed": 1.5}, TypeError, "seed"),
        ({"n_total": 10, "n": 2, "seed": True}, TypeError, "seed"),
    ],
)
def test_random_subset_refuses_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        datasets.random_subset(**kwargs)


def test_arts_failed_download_log_is_kept_for_the_message_not_printed(monkeypatch, capsys):
    from urllib.error import URLError

    def art_offline(raw=False):  # what art.utils.get_file does offline: a log call logging cannot format
        logging.getLogger("art.utils").error("https://example.org/mnist.npz", URLError("Name or service not known"))
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(art.utils, "load_mnist", art_offline)
    with pytest.raises(datasets.DataNotFoundError) as info:
        load_mnist()
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err, err
    assert "https://example.org/mnist.npz" in info.value.download_error and "Name or service" in str(info.value)
    assert info.value.file_name == "mnist.npz" and info.value.tried[0] == f"${ENV_VAR} (not set)"


def test_cifar10_download_is_read_with_the_restricted_reader(monkeypatch, isolated):
    def fake_get_file(filename, url, path=None, extract=False, verbose=False):
        assert filename == "cifar-10-batches-py" and extract and "cifar-10-python" in url
        _write_batches(Path(path) / filename, fill=102)
        return str(Path(path) / filename)

    monkeypatch.setattr(art.utils, "get_file", fake_get_file)
    (x_train, _), _, _, _ = load_cifar10()
    assert x_train.shape == (15, 32, 32, 3) and x_train.max() == pytest.approx(0.4)
