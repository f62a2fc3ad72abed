"""Time BPTT costates for a batch of rollouts in one backward pass against a per-rollout loop.

Reference: Asadulaev et al., arXiv 2605.21654, eq 5–6 (costates by BPTT). ``vghlib.control.
costates_autograd`` runs B rollouts as one batch and gets every λ_t of every rollout from one
``autograd.grad``; the baseline calls the same function once per rollout (B = 1). Workload: the
2-D LQ system of Part II (double integrator, linear Gaussian policy, process noise), horizon 100,
1,000 rollouts. Both are timed side by side in one run (interleaved, median of repeats), and the
batched costates are checked against the loop's.

    python benchmarks/costates_batched.py [--quick] [--device cpu|cuda] [--threads N]

Measured on the 2-core build machine (1 thread, torch 2.13 CPU): batched 0.034 s, loop 12.2 s,
ratio 363x (B = 1000, T = 100, median of 5).

Target: the batched pass is much faster than the loop (ratio reported); no absolute target.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from vghlib import control as C
from vghlib import systems as SY


def lq_workload(horizon: int, device: torch.device):
    t = lambda x: torch.tensor(x, dtype=torch.float64, device=device)  # noqa: E731
    sys_ = SY.double_integrator(horizon).to(device)
    pol = C.linear_gaussian_policy(
        t([[-1.0, -1.5]]), torch.tensor(0.5, dtype=torch.float64, device=device)
    )
    return sys_, pol


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 rollouts, horizon 50, 3 repeats")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (if available)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1; 0 leaves torch's default). On a shared "
        "2-core machine torch's default oversubscribes the cores and the batched "
        "median became erratic (6.7 s median vs 0.12 s min in one run)",
    )
    ap.add_argument("--repeats", type=int, default=0, help="repeats (default 5, quick 3)")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    B, T = (100, 50) if args.quick else (1_000, 100)
    repeats = args.repeats or (3 if args.quick else 5)

    sys_, pol = lq_workload(T, device)
    gen = torch.Generator().manual_seed(0)
    s1 = torch.randn(B, 2, generator=gen, dtype=torch.float64).to(device)
    xi = C.standard_normal_noise(B, T, 1, seed=1).to(device)
    w = sys_.process_noise(B, seed=2).to(device)

    def batched():
        _, lam = C.costates_autograd(
            sys_.dynamics, pol, sys_.reward, s1, xi, sys_.gamma, process_noise=w
        )
        sync(device)
        return lam

    def loop():
        out = [
            C.costates_autograd(
                sys_.dynamics,
                pol,
                sys_.reward,
                s1[b : b + 1],
                xi[b : b + 1],
                sys_.gamma,
                process_noise=w[b : b + 1],
            )[1]
            for b in range(B)
        ]
        sync(device)
        return torch.cat(out)

    lam_b, lam_l = batched(), loop()  # warm-up and check
    err = float((lam_b - lam_l).abs().max() / lam_l.abs().max())
    times = {"batched": [], "loop": []}
    for _ in range(repeats):
        for name, fn in (("batched", batched), ("loop", loop)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}

    print(
        f"costates for B = {B} rollouts of horizon T = {T} (2-D LQ, float64), device {device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"max relative difference batched vs loop: {err:.1e}")
    print(f"{'method':<34} {'median s':>10} {'min s':>8} {'per rollout ms':>15} {'repeats':>8}")
    rows = (("batched: one backward pass", "batched"), (f"loop: {B} backward passes", "loop"))
    for label, k in rows:
        print(
            f"{label:<34} {med[k]:10.4f} {min(times[k]):8.4f} {1e3 * med[k] / B:15.3f} {repeats:8d}"
        )
    print(f"ratio loop / batched (medians): {med['loop'] / med['batched']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
