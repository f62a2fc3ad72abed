import sys

import pytest

from vghlib import env


def test_this_environment_matches_requirements():
    assert env.problems() == []


def test_pins_are_exact(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("torch>=2\n")
    with pytest.raises(ValueError, match="exact pin"):
        env.read_pins(req)


def test_a_missing_and_a_mismatched_requirement_are_reported(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("numpy==0.0.1\nno-such-package-vgh==1.0\n# comment\n")
    found = env.problems(req)
    assert any("numpy==0.0.1: installed" in p for p in found)
    assert any("no-such-package-vgh==1.0: MISSING" in p for p in found)


def test_check_exits_nonzero_with_advice(monkeypatch, capsys):
    monkeypatch.setattr(env, "problems", lambda: ["torch==2.13.0: MISSING"])
    assert env.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "torch==2.13.0: MISSING" in err and "make venv" in err


def test_local_version_label_matches_pin():
    assert env.Requirement("torch", "2.13.0", "2.13.0+cpu").ok
    assert not env.Requirement("torch", "2.13.0", "2.13.1+cpu").ok


def test_python_too_old_is_reported(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 0, "final", 0))
    assert "TOO OLD" in env.python_line()
