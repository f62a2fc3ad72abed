"""The requirements check: this environment's versions against the pins of requirements.txt.

``python -m tools.requirements`` prints one line per pin (each ending in ``ok`` when it matches),
then the interpreter, the Hub setting and the accelerator; ``--pins`` prints only the lines of the
pins and exits 1 when one does not match (the book's environment page shows them); ``--check``
prints nothing when all is well and otherwise exits 1 with a message that says what to do.
``make venv`` and the test run (``conftest.py``) use :func:`problems`.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tools import REPO_ROOT
from vghlib.env import device_summary

REQUIREMENTS = REPO_ROOT / "requirements.txt"
MIN_PYTHON = (3, 11)


@dataclass(frozen=True)
class Requirement:
    """One pinned line of requirements.txt and what is installed for it."""

    name: str
    pinned: str
    installed: str | None

    @property
    def ok(self) -> bool:
        # A local version label (torch's "+cpu" or "+cu128") still satisfies "==2.13.0".
        return self.installed is not None and self.installed.split("+")[0] == self.pinned

    def describe(self) -> str:
        if self.installed is None:
            return f"{self.name}=={self.pinned}: MISSING"
        if not self.ok:
            return f"{self.name}=={self.pinned}: installed {self.installed} (different version)"
        return f"{self.name}=={self.pinned}: ok"


def read_pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """The ``name==version`` lines of a requirements file, as {name: version}."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
        elif line:
            raise ValueError(f"{path}: expected an exact pin `name==version`, got {line!r}")
    return pins


def installed_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def requirements(path: Path = REQUIREMENTS) -> list[Requirement]:
    """Every pin of requirements.txt with the version this interpreter has installed."""
    return [Requirement(n, v, installed_version(n)) for n, v in read_pins(path).items()]


def problems(path: Path = REQUIREMENTS) -> list[str]:
    """Human-readable problems with this environment; empty when everything matches."""
    out = []
    if sys.version_info[:2] < MIN_PYTHON:
        out.append(
            f"Python {sys.version.split()[0]} is too old: vgh-book needs "
            f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer."
        )
    out += [r.describe() for r in requirements(path) if not r.ok]
    return out


def python_line() -> str:
    need = f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}"
    ok = "ok" if sys.version_info[:2] >= MIN_PYTHON else f"TOO OLD ({sys.version.split()[0]})"
    return f"Python>={need}: {ok}"


def report() -> str:
    """One line per requirement, each ending in `ok` when the environment matches."""
    return "\n".join([python_line()] + [r.describe() for r in requirements()])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.requirements", description=__doc__.splitlines()[0]
    )
    what = ap.add_mutually_exclusive_group()
    what.add_argument(
        "--check",
        action="store_true",
        help="print nothing when every pin matches, else the problems (exit 1)",
    )
    what.add_argument(
        "--pins",
        action="store_true",
        help="print only the Python line and one line per pin (exit 1 on a mismatch)",
    )
    args = ap.parse_args(argv)
    if args.pins:
        print(report())
        return 1 if problems() else 0
    if args.check:
        found = problems()
        if found:
            print("This environment does not match requirements.txt:", file=sys.stderr)
            for p in found:
                print(f"  - {p}", file=sys.stderr)
            print(
                "Fix: run `make venv` (it reinstalls .venv from requirements.txt), or\n"
                "     `.venv/bin/pip install -r requirements.txt` in an environment of your own.",
                file=sys.stderr,
            )
            return 1
        return 0
    print(report())
    print(f"Python {sys.version.split()[0]} at {sys.executable}")
    print(f"HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '(unset)')}")
    print(f"accelerator: {device_summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
