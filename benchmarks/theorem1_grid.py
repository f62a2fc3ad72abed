"""Theorem 1's verdicts over Jacobian readings, seeds and rollout counts (Part III, credit.ipynb).

Reference: Asadulaev et al., arXiv 2605.21654, Theorem 1 (eq 23) and A.9. The chapter's Theorem 1
cell measures both sides once (seed 0, 4,000 Gumbel-softmax rollouts, the right side read from
noise-free softmax Jacobians along hard sequences) and counts the settings where
LHS > RHS + 2 s.e. This script repeats every setting of that table (policy × β × layer) for
seeds 0–4 and 4,000 and 32,000 rollouts, and reads the right side under both Jacobian readings
of ``vghlib.sampling_gap.theorem1_sides``: ``softmax`` (the chapter's) and ``gumbel`` (the
Gumbel rollout's own Jacobians). The left side is the same for both readings. Seed 0 at 4,000
rollouts under the softmax reading is the chapter's own table, which the chapter checks.

    python benchmarks/theorem1_grid.py [--out results/theorem1/grid.json] [--threads 1]

Writes a JSON with one row per (policy, β, layer, seed, rollouts). Run time on the 2-core build
machine (1 thread, another job running): 170 s for the whole grid (``meta.runtime_s`` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from vghlib.models import (
    HFCausalLM,
    MiniTransformer,
    RNNPolicy,
    ScaledLogits,
    TokenOnlyPolicy,
    tiny_olmo2,
)
from vghlib.sampling_gap import JACOBIAN_READINGS, theorem1_sides
from vghlib.token_costates import match_reward

V, T, TAU, N_SEQUENCES, N_SE = 3, 4, 0.5, 8, 2.0
BETAS = (0.5, 1.0, 2.0, 4.0)
SEEDS = (0, 1, 2, 3, 4)
COUNTS = (4000, 32000)


def policies() -> dict:
    """The four policies of the chapter's Theorem 1 cell (credit.ipynb, same constructors)."""
    return {
        "token-only": TokenOnlyPolicy(V, 16, init_scale=2.0, seed=0),
        "RNN": RNNPolicy(V, 16, init_scale=2.0, seed=2),
        "MiniTransformer": MiniTransformer(
            V, 16, n_layers=2, n_heads=2, d_head=4, init_scale=3.0, seed=0
        ),
        "OLMo-2 (tiny)": HFCausalLM(
            tiny_olmo2(
                vocab_size=V,
                hidden_size=16,
                n_layers=2,
                n_heads=2,
                head_dim=4,
                intermediate_size=32,
                init_std=0.4,
                seed=0,
            )
        ),
    }


def setting_rows(pol0, name: str, beta: float, seed: int, n_relaxed: int) -> list:
    """One call of ``theorem1_sides`` (both readings), as rows of the grid."""
    pol = ScaledLogits(pol0, beta)
    sides = theorem1_sides(
        pol,
        torch.tensor([1]),
        T,
        match_reward(0, -1),
        [0, pol.n_layers],
        TAU,
        n_relaxed=n_relaxed,
        n_sequences=N_SEQUENCES,
        generator=torch.Generator().manual_seed(seed),
        jacobian=JACOBIAN_READINGS,
    )
    return [
        {
            "kind": name,
            "beta": beta,
            "layer": l,
            "seed": seed,
            "n_relaxed": n_relaxed,
            "lhs": sides.lhs[l],
            "se": sides.se[l],
            "rhs": {r: sides.rhs_by[r][l] for r in JACOBIAN_READINGS},
            "fails": {r: not sides.holds(l, N_SE, reading=r) for r in JACOBIAN_READINGS},
        }
        for l in (0, pol.n_layers)
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/theorem1/grid.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--counts", type=int, nargs="+", default=list(COUNTS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0, rows, times = time.perf_counter(), [], {}
    for name, pol0 in policies().items():
        for n in args.counts:
            t = time.perf_counter()
            for beta in BETAS:
                for seed in args.seeds:
                    rows += setting_rows(pol0, name, beta, seed, n)
            times[f"{name}, {n}"] = round(time.perf_counter() - t, 1)
            print(f"{name:>16} n = {n:>6}: {times[f'{name}, {n}']:.1f} s", flush=True)
    meta = {
        "tau": TAU,
        "n_sequences": N_SEQUENCES,
        "n_se": N_SE,
        "betas": list(BETAS),
        "seeds": args.seeds,
        "counts": args.counts,
        "readings": list(JACOBIAN_READINGS),
        "runtime_s": round(time.perf_counter() - t0, 1),
        "runtime_by_policy_and_count_s": times,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"{len(rows)} rows in {meta['runtime_s']} s -> {args.out}")


if __name__ == "__main__":
    main()
