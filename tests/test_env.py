"""vghlib.env: the repository root, the cache folder, the CPU numerics and the accelerator."""

from pathlib import Path

import pytest

from vghlib import env


def test_the_repository_root_holds_the_library():
    assert env.REPO_ROOT / "vghlib" / "env.py" == Path(env.__file__).resolve()


def test_the_cache_follows_vghlib_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("VGHLIB_CACHE", str(tmp_path / "c"))
    assert env.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    sweeps = env.cache_dir("sweeps")
    assert sweeps == tmp_path / "c" / "sweeps" and sweeps.is_dir()
    # control: without the variable the cache is .cache/ at the repository root
    monkeypatch.delenv("VGHLIB_CACHE")
    assert env.cache_dir() == env.REPO_ROOT / ".cache"


@pytest.mark.parametrize("aten, mkl", [("default", "COMPATIBLE"), ("", "")])
def test_numerics_records_the_pinned_settings(monkeypatch, aten, mkl):
    for k, v in (("ATEN_CPU_CAPABILITY", aten), ("MKL_CBWR", mkl)):
        if v:
            monkeypatch.setenv(k, v)
        else:
            monkeypatch.delenv(k, raising=False)
    assert env.numerics() == {"ATEN_CPU_CAPABILITY": aten, "MKL_CBWR": mkl}


def test_the_device_summary_names_cuda_or_the_cpu():
    s = env.device_summary()
    assert s == "none (CPU only)" or "CUDA device(s): " in s


def test_the_requirements_check_is_not_part_of_the_library():
    # it is the book's tooling: python -m tools.requirements
    for name in ("Requirement", "read_pins", "requirements", "problems", "report", "main"):
        assert not hasattr(env, name), name
