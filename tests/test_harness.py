"""The notebook harness bites: nbval must fail on a notebook whose stored output is wrong.

Each fixture is copied to a temporary folder and run under the same options as `make test`,
in a subprocess, so the deliberately wrong notebook never enters the main test session.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run_nbval(tmp_path: Path, fixture: str) -> subprocess.CompletedProcess:
    nb = tmp_path / fixture
    shutil.copy(FIXTURES / fixture, nb)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(nb),
        "--nbval",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(ROOT / "tests" / "sanitize.cfg"),
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
        "-q",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)


@pytest.mark.slow
def test_nbval_rejects_a_wrong_stored_output(tmp_path):
    res = run_nbval(tmp_path, "wrong_output.ipynb")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "sum = 5" in res.stdout and "sum = 4" in res.stdout  # the diff names both values


@pytest.mark.slow
def test_nbval_accepts_the_corrected_notebook(tmp_path):
    # Positive control: the same notebook with the right stored output passes,
    # so the failure above is about the output and not about the harness.
    res = run_nbval(tmp_path, "right_output.ipynb")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    "text, expected",
    [
        ("at 0x7f3a2b1c9d10>", "at 0xADDRESS>"),
        ("mean -0.0000", "mean 0.0000"),
        ("mean -0.0001", "mean -0.0001"),
    ],
)
def test_sanitizers(text, expected):
    # Parse the file with nbval's own reader, so this checks what nbval will apply.

    patterns = get_sanitize_patterns((ROOT / "tests" / "sanitize.cfg").read_text())
    assert len(patterns) >= 5
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    assert text == expected
