"""The device tests' selection (``ART_SGT_TEST_DEVICE``) and the GPU session script's own checks, on the CPU."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import DEVICE_ENV, selected_devices

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("value", "cuda", "expected"),
    [
        (None, False, ["cpu"]),
        ("", True, ["cpu", "cuda"]),
        ("cpu", True, ["cpu"]),
        ("cuda", True, ["cuda"]),
        (" cuda , cpu ", True, ["cpu", "cuda"]),
    ],
)
def test_device_selection(value, cuda, expected):
    assert selected_devices(value, cuda) == expected


@pytest.mark.parametrize(
    ("value", "cuda", "match"),
    [("cuda", False, "torch.cuda.is_available"), ("gpu", True, "must be"), ("cpu,cpu", True, "must be")],
)
def test_device_selection_refuses_what_cannot_run(value, cuda, match):
    with pytest.raises(ValueError, match=match) as error:
        selected_devices(value, cuda)
    assert DEVICE_ENV in str(error.value)


def test_fixture_params_follow_the_variable(monkeypatch):
    import tests.conftest as conftest

    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert conftest._device_params() == ["cpu"]
    monkeypatch.setenv(DEVICE_ENV, "gpu")  # reported by each test that takes the fixture, not a crash
    (param,) = conftest._device_params()
    assert param.startswith("invalid: ") and "must be" in param


def _session_module():
    spec = importlib.util.spec_from_file_location("gpu_session", ROOT / "benchmarks" / "gpu_session.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_session_script_parses():
    result = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_session.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_session_finds_the_cuda_marked_tests():
    ids = _session_module().cuda_marked_tests()
    assert "tests/test_attacks.py::test_cuda_matches_cpu" in ids
    assert "tests/test_models.py::test_gpu_without_cuda_is_rejected" in ids


def test_session_packs_without_weights(tmp_path):
    session = _session_module()
    folder = tmp_path / "step3_reproduce"
    (folder / "report").mkdir(parents=True)
    (folder / "report" / "cifar10_gpu.json").write_text("{}")
    cache = tmp_path / "cache"
    (cache / "run").mkdir(parents=True)
    (cache / "run" / "weights.pt").write_bytes(b"w")
    (cache / "run" / "train_log.json").write_text("[]")
    target = tmp_path / "out.tar.gz"
    session._pack(folder, target, [(cache, "cache")])
    with tarfile.open(target) as tar:
        names = set(tar.getnames())
    assert "step3_reproduce/report/cifar10_gpu.json" in names and "cache/run/train_log.json" in names
    assert not any(name.endswith(".pt") for name in names)


def test_session_reads_junit(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
        '<testcase classname="tests.test_x" name="test_a"/>'
        '<testcase classname="tests.test_x" name="test_b"><failure message="boom"/></testcase>'
        '<testcase classname="tests.test_x" name="test_c"><skipped/></testcase>'
        "</testsuite></testsuites>"
    )
    summary = _session_module()._junit(xml)
    assert summary["tests"] == 3 and summary["failures"] == 1 and summary["skipped"] == 1
    assert summary["failed"] == ["tests.test_x::test_b"]
