"""What this environment has: versions against requirements.txt, devices, and the Hub setting.

Run ``python -m vghlib.env`` for a report, or ``python -m vghlib.env --check`` to exit with a
message that says what to do when a pinned requirement is missing or at another version.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
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


def cache_dir(name: str = "") -> Path:
    """Where the book caches what it builds (the laptop trajectory, sweep results).

    ``$VGHLIB_CACHE`` when set, else ``.cache/`` at the repository root (git ignores it), so a
    fresh clone starts cold and a second build reuses the first one's work.
    """
    root = Path(os.environ.get("VGHLIB_CACHE") or REPO_ROOT / ".cache")
    out = root / name if name else root
    out.mkdir(parents=True, exist_ok=True)
    return out


def numerics() -> dict:
    """The settings that decide the last bits of a CPU training run (part of every cache key).

    ``python -m vghlib pretrain`` and ``sweep`` pin ``ATEN_CPU_CAPABILITY=default`` and
    ``MKL_CBWR=COMPATIBLE`` (see ``vghlib.__main__``); a run inside a notebook or a test that
    did not pin them records what it used, so its results are never mixed with pinned ones.
    """
    return {k: os.environ.get(k, "") for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}


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


def device_summary() -> str:
    """Which accelerator torch sees: a CUDA device name, or 'none (CPU only)'."""
    import torch

    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"{torch.cuda.device_count()} CUDA device(s): {', '.join(sorted(names))}"
    return "none (CPU only)"


def python_line() -> str:
    need = f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}"
    ok = "ok" if sys.version_info[:2] >= MIN_PYTHON else f"TOO OLD ({sys.version.split()[0]})"
    return f"Python>={need}: {ok}"


def report() -> str:
    """One line per requirement, each ending in `ok` when the environment matches."""
    return "\n".join([python_line()] + [r.describe() for r in requirements()])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--check" in argv:
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
