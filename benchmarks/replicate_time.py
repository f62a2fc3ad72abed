"""Time Part IV's replication grid (``python -m vghlib replicate``) and print where the time goes.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6; ``vghlib.replicate``. Runs the grid from
scratch in a temp folder (trajectories, sweeps and digests, nothing reused from the book's cache),
then prints one row per sweep (rows written, the compute time its rows record) and the wall time of
the whole command. Seed 0 is rebuilt too, so the timing counts every pretraining run.

    python benchmarks/replicate_time.py [--jobs 2] [--seeds 0,1,2,3,4] [--variants ...] [--keep DIR]
    python benchmarks/replicate_time.py --answer-length 2     # the two-label grid

Target: the book's grid (5 seeds x 5 GRPO recipes, 24 checkpoints, 3 GRPO seeds) in at most
45 minutes on the 2-core build machine with ``--jobs 2``. The two-label grid (5 seeds, GRPO with
n = 8 only) is timed on its own with ``--answer-length 2``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vghlib.replicate import MULTI_TOKEN_PRETRAIN


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--variants", default=None, help="default: every recipe (one label), grpo-n8")
    ap.add_argument("--answer-length", default="1", help="labels per answer (default 1)")
    ap.add_argument("--keep", default=None, help="work folder to keep (default: a temp folder)")
    a = ap.parse_args()
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="replicate-"))
    # seed 0 must not come from the book's cache: give pretrain an explicit, default step count
    steps = "2000" if a.answer_length == "1" else MULTI_TOKEN_PRETRAIN[1]
    cmd = [sys.executable, "-m", "vghlib", "replicate", "--seeds", a.seeds, "--jobs",
           str(a.jobs), "--work", str(work / "work"), "--out", str(work / "digests"),
           "--pretrain-steps", steps, "--answer-length", a.answer_length]  # fmt: skip
    if a.variants:
        cmd += ["--variants", a.variants]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    wall = time.perf_counter() - t0
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, --jobs {a.jobs}")
    print(f"{'sweep':<22} {'rows':>5} {'compute s':>10}")
    total = 0.0
    for f in sorted((work / "work").glob("seed*-*.jsonl")):
        rows = [json.loads(x) for x in f.read_text().splitlines()[1:]]
        secs = sum(r.get("seconds", 0.0) for r in rows)
        total += secs
        print(f"{f.stem:<22} {len(rows):>5} {secs:>10.0f}")
    print(f"sum of sweep compute: {total / 60:.1f} min")
    print(f"wall time of the command: {wall / 60:.1f} min (target 45); exit {done.returncode}")
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
