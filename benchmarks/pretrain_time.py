"""Time the build of the laptop pretraining trajectory and print R_before of every checkpoint.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6 (R_before along a pretraining trajectory);
``vghlib.pretrain``. Builds the default trajectory (``PretrainConfig()``) into a temp folder, then
builds it again to show the cache (no training step), and prints a table: step, R_before.

``--perturb EPS ...`` also retrains from initial weights multiplied by (1 + EPS u), u ~ U(-1, 1),
and prints ΔR_before per checkpoint: with EPS near float64 rounding (1e-13) this is how far a
different CPU's rounding can move the printed values; EPS = 1e-7 is float32-level rounding.
Each EPS costs one more full training. Measured (2-core AMD EPYC, AVX-512, 1 thread): both move
R_before by up to 0.2 around the copying transition (the training is chaotic there) and by
< 1e-5 before step ~100 and ~1e-4 at the last checkpoint.

    python benchmarks/pretrain_time.py [--threads N] [--perturb 1e-13 1e-7] [--keep DIR]

Target: the build takes at most 3 minutes on the 2-core build machine.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from vghlib import pretrain as P


def perturbed_r_before(config: P.PretrainConfig, eps: float) -> list[float]:
    tok = P.build_tokenizer(config)
    model = P.build_model(config, tok)
    g = torch.Generator().manual_seed(999)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.mul_(1.0 + eps * (2.0 * P.uniform(tuple(p.shape), g) - 1.0))
    rs = []
    P.train(config, tok, on_checkpoint=lambda s, m, r: rs.append(r), progress=False, model=model)
    return rs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--threads",
        type=int,
        default=P.PretrainConfig.threads,
        help="torch threads while training (a config field: the bits depend on it)",
    )
    ap.add_argument(
        "--perturb",
        type=float,
        nargs="*",
        default=[],
        help="relative init perturbations to retrain with (one training each)",
    )
    ap.add_argument("--keep", default=None, help="build into this folder instead of a temp one")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    config = P.PretrainConfig(seed=a.seed, threads=a.threads)
    folder = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="vgh-pretrain-"))
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"capability {torch.backends.cpu.get_cpu_capability()}, training on {config.threads} "
        f"thread(s) (process default {torch.get_num_threads()}); folder {folder}"
    )
    try:
        t0 = time.perf_counter()
        traj = P.build_trajectory(folder, config, progress=True)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = P.build_trajectory(folder, config, progress=False)
        cache_s = time.perf_counter() - t0
        print(
            f"\nbuild: {config.steps} steps (batch {config.batch_size}), {len(traj.checkpoints)} "
            f"checkpoints, {build_s:.1f} s ({traj.trained_steps} steps trained); "
            f"second build: {cache_s:.3f} s, {again.trained_steps} steps trained"
        )
        extra = {eps: perturbed_r_before(config, eps) for eps in a.perturb}
        head = f"{'step':>6}  {'R_before':>8}" + "".join(
            f"  {'Δ(eps=' + format(e, 'g') + ')':>14}" for e in extra
        )
        print(head)
        for i, c in enumerate(traj.checkpoints):
            row = f"{c.step:>6}  {c.r_before:>8.4f}"
            row += "".join(f"  {extra[e][i] - c.r_before:>14.2e}" for e in extra)
            print(row)
        for e, rs in extra.items():
            d = max(abs(x - c.r_before) for x, c in zip(rs, traj.checkpoints))
            print(f"eps={e:g}: max |ΔR_before| = {d:.2e}")
        print("R_before list:", ", ".join(f"{r:.3f}" for r in traj.r_before))
    finally:
        if not a.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
