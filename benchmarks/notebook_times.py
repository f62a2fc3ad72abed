"""Execute each notebook of the book in a fresh kernel and print its wall time against its budget.

Usage: .venv/bin/python benchmarks/notebook_times.py [NOTEBOOK ...]
With no argument it runs every notebook listed in _toc.yml, in order.
"""

import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = {"book/part3": 120.0}  # per-folder budgets; everything else: DEFAULT_BUDGET_S
DEFAULT_BUDGET_S = 90.0


def toc_notebooks() -> list[Path]:
    files = re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text())
    files.insert(0, re.search(r"root:\s*(\S+)", (ROOT / "_toc.yml").read_text()).group(1))
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def budget(path: Path) -> float:
    rel = path.relative_to(ROOT).as_posix()
    return next((b for prefix, b in BUDGET_S.items() if rel.startswith(prefix)), DEFAULT_BUDGET_S)


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    paths = [Path(a).resolve() for a in argv] or toc_notebooks()
    print(f"{'notebook':<42} {'seconds':>8} {'budget':>7}  verdict")
    worst = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(
            nb, timeout=600, resources={"metadata": {"path": str(path.parent)}}
        ).execute()
        dt = time.perf_counter() - t0
        b = budget(path)
        worst = max(worst, dt / b)
        print(
            f"{path.relative_to(ROOT).as_posix():<42} {dt:8.1f} {b:7.0f}  "
            f"{'ok' if dt < b else 'OVER'}"
        )
    print(f"worst time/budget ratio: {worst:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
