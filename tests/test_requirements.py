"""tools.requirements: the installed versions against the exact pins of requirements.txt."""

import subprocess
import sys

import pytest

from tools import REPO_ROOT
from tools import requirements as R


def test_this_environment_matches_requirements():
    assert R.problems() == []


def test_pins_are_exact(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("torch>=2\n")
    with pytest.raises(ValueError, match="exact pin"):
        R.read_pins(req)


def test_a_missing_and_a_mismatched_requirement_are_reported(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("numpy==0.0.1\nno-such-package-vgh==1.0\n# comment\n")
    found = R.problems(req)
    assert any("numpy==0.0.1: installed" in p for p in found)
    assert any("no-such-package-vgh==1.0: MISSING" in p for p in found)


def test_check_exits_nonzero_with_advice(monkeypatch, capsys):
    monkeypatch.setattr(R, "problems", lambda: ["torch==2.13.0: MISSING"])
    assert R.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "torch==2.13.0: MISSING" in err and "make venv" in err


def test_local_version_label_matches_pin():
    assert R.Requirement("torch", "2.13.0", "2.13.0+cpu").ok
    assert not R.Requirement("torch", "2.13.0", "2.13.1+cpu").ok


def test_python_too_old_is_reported(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 0, "final", 0))
    assert "TOO OLD" in R.python_line()


def test_pins_prints_only_the_pin_lines_and_fails_on_a_mismatch(monkeypatch, capsys):
    assert R.main(["--pins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == R.report().splitlines() and lines[0].startswith("Python>=")
    assert len(lines) == 1 + len(R.read_pins()) and all(line.endswith(": ok") for line in lines)
    # control: a mismatched pin makes --pins exit 1
    monkeypatch.setattr(R, "problems", lambda: ["torch==2.13.0: MISSING"])
    assert R.main(["--pins"]) == 1


@pytest.mark.slow
def test_the_tool_runs_from_the_repository_root():
    out = subprocess.run(
        [sys.executable, "-m", "tools.requirements"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "torch==" in out.stdout and "accelerator: " in out.stdout
