"""Tests of art_sgt.datasets on tiny synthetic files; nothing reads the real data or touches the network."""

from __future__ import annotations

import art.config
import art.utils
import numpy as np
import pytest

from art_sgt import datasets
from art_sgt.datasets import ENV_VAR, load_cifar10, load_mnist
from tests.conftest import write_npz

LOADERS = {"mnist": load_mnist, "cifar10": load_cifar10}


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


def test_art_cifar_batches_folder_uses_art_loader(monkeypatch, isolated):
    (isolated / "cifar-10-batches-py").mkdir()
    x = np.full((3, 32, 32, 3), 51, dtype=np.uint8)
    y = np.array([1, 2, 3], dtype=np.uint8)
    calls = []

    def fake_art_cifar(raw=False):
        calls.append(raw)
        return (x, y), (x[:2], y[:2]), 0.0, 255.0

    monkeypatch.setattr(art.utils, "load_cifar10", fake_art_cifar)
    (x_train, y_train), (x_test, _), lo, hi = load_cifar10(download=False)
    assert calls == [True]
    assert x_train.dtype == np.float32 and x_train.max() == pytest.approx(0.2)
    assert x_test.shape == (2, 32, 32, 3) and (lo, hi) == (0.0, 1.0)
    np.testing.assert_array_equal(y_train.argmax(axis=1), y)


def test_arts_cifar_test_labels_as_a_list_are_read(monkeypatch, isolated):
    """ART's CIFAR-10 reader returns the test batch's labels as the Python list its pickle holds."""
    (isolated / "cifar-10-batches-py").mkdir()
    x = np.full((3, 32, 32, 3), 51, dtype=np.uint8)
    art_output = (x, np.array([1, 2, 3])), (x[:2], [4, 5]), 0.0, 255.0
    monkeypatch.setattr(art.utils, "load_cifar10", lambda raw=False: art_output)
    _, (x_test, y_test), _, _ = load_cifar10(download=False)
    assert x_test.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(y_test.argmax(axis=1), [4, 5])


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
