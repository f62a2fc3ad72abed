"""Test-wide setup: the environment check, offline Hub, and what nbval must not collect."""

import os

import pytest

from tools import requirements

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Notebooks under tests/fixtures are deliberately wrong; tests run them in a subprocess.
collect_ignore_glob = ["tests/fixtures/*", "_build/*", ".venv/*"]


def pytest_configure(config):
    # A missing or mismatched requirement should stop the run with one clear message,
    # not with a traceback deep inside a notebook kernel.
    found = requirements.problems()
    if found:
        lines = "\n  - ".join(found)
        pytest.exit(
            f"This environment does not match requirements.txt:\n  - {lines}\n"
            "Fix: run `make test` (it rebuilds .venv), or `pip install -r requirements.txt`.",
            returncode=4,
        )
