"""Time empirical costates at all positions against one forward+backward pass and a
per-position loop.

Reference: Asadulaev et al., arXiv 2605.21654, eq 14 (Definition 2). Because the model is causal,
λ̂ at every position and every layer is one gradient of Σ_k Â_k ℓ_k
(vghlib.token_costates.costate_hat); eq 14 read literally is one backward pass per position
(costate_hat_loop). This script measures both against a plain training step (forward + backward into
the parameters) on a tiny OLMo-2, for T = 64 and T = 512, median of several repeats, all three side
by side in one run.

    python benchmarks/costates_all_positions.py [--quick] [--device cuda] [--size tiny|small]

Targets: all-position costates <= 1.5x one fwd+bwd; the loop grows like T x.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vghlib.models import HFCausalLM, tiny_olmo2
from vghlib.token_costates import completion_logp, costate_hat, costate_hat_loop

CPU = torch.device("cpu")

SIZES = {
    "tiny": dict(vocab_size=128, hidden_size=64, n_layers=4, n_heads=4, intermediate_size=256),
    "small": dict(vocab_size=4096, hidden_size=512, n_layers=8, n_heads=8, intermediate_size=2048),
}


def median_times(fns, repeats: int, device=CPU) -> list:
    """Median wall time of each function, the calls interleaved so that load changes hit all
    alike."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fn in fns:
        fn()  # warm-up
    sync()
    ts = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            sync()
            ts[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in ts]


def loop_subset(policy, x, adv, layers, positions):
    """eq 14 literally for the given positions only (one backward each); costate_hat_loop does
    all."""
    B, S = x.shape
    probes = {
        l: torch.zeros(B, S, policy.d_model, device=x.device, requires_grad=True) for l in layers
    }
    logp = completion_logp(policy(x, probes).logits, x, 1)  # (B, T)
    plist = [probes[l] for l in layers]
    for i, t in enumerate(positions):
        torch.autograd.grad(
            (adv[:, None] * logp[:, t:]).sum(), plist, retain_graph=i < len(positions) - 1
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])  # the first paragraph
    ap.add_argument("--quick", action="store_true", help="T=64 only, fewer repeats (a smoke run)")
    ap.add_argument("--batch", type=int, default=4, help="completions per batch (a GRPO group)")
    ap.add_argument(
        "--repeats", type=int, default=5, help="timed repeats per row (median reported)"
    )
    ap.add_argument(
        "--loop-positions",
        type=int,
        default=64,
        help="for T above this, time the per-position loop on this many evenly spaced positions "
        "and scale by T / k (marked *); every backward pass of the loop costs the same",
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="tiny",
        help="tiny: d_model 64, 4 layers (the laptop case); small: d_model 512, 8 layers",
    )
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lengths = [64] if args.quick else [64, 512]
    repeats = 2 if args.quick else args.repeats
    cfg = SIZES[args.size]
    model = tiny_olmo2(max_len=1024, init_std=0.1, dtype=torch.float32, **cfg).to(device)
    policy = HFCausalLM(model)
    layers = list(range(policy.n_layers + 1))
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"OLMo-2 ({args.size}): vocab {cfg['vocab_size']}, d_model {cfg['hidden_size']}, "
        f"{cfg['n_layers']} layers, batch {args.batch}, float32, {where}, "
        f"torch {torch.__version__}, median of {repeats}"
    )
    print(
        f"{'T':>5} {'fwd+bwd (s)':>12} {'all-pos (s)':>12} {'loop (s)':>10} {'all/fwdbwd':>11} "
        f"{'loop/fwdbwd':>12} {'loop/all':>9}"
    )
    for T in lengths:
        x = torch.randint(3, cfg["vocab_size"], (args.batch, T + 1), device=device)
        x[:, 0] = 1  # BOS
        adv = torch.randn(args.batch, device=device)

        def train_step():
            model.zero_grad(set_to_none=True)
            logp = completion_logp(policy(x).logits, x, 1)
            (adv[:, None] * logp).sum().backward()

        def all_positions():
            costate_hat(policy, x, adv, layers)

        k = min(T, args.loop_positions)
        positions = list(range(0, T, T // k))[:k]

        def loop():
            if k == T:
                costate_hat_loop(policy, x, adv, layers)
            else:
                loop_subset(policy, x, adv, layers, positions)

        t_fb, t_all, t_loop = median_times([train_step, all_positions, loop], repeats, device)
        t_loop *= T / k
        mark = "*" if k < T else " "
        print(
            f"{T:5d} {t_fb:12.4f} {t_all:12.4f} {t_loop:9.3f}{mark} {t_all / t_fb:11.2f} "
            f"{t_loop / t_fb:12.1f} {t_loop / t_all:9.1f}"
        )
    print("* loop time extrapolated from --loop-positions evenly spaced positions")
    # the two methods agree (checked in tests/test_costates.py too)
    a = costate_hat(policy, x[:1, :17], adv[:1], layers)
    b = costate_hat_loop(policy, x[:1, :17], adv[:1], layers)
    err = max(float((a[l] - b[l]).abs().max() / (b[l].abs().max() + 1e-30)) for l in layers)
    print(f"max relative difference all-positions vs loop (T=16): {err:.1e}")


if __name__ == "__main__":
    main()
