"""Time the Part V GPU sweep on an OLMo-2 1B: the RL-impact score and one GRPO update, with MFU.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6: 20 OLMo-2 1B pretraining checkpoints,
for each one RL-impact score and GRPO runs for the budgets K in {10, 20, 25, 30} with several
seeds. The Hub is not reachable, so the model is a randomly initialised ``Olmo2ForCausalLM`` with
OLMo-2-0425-1B's configuration (16 layers, d 2048, 16 heads, 16 kv heads, MLP 8192, vocab
100352, RMSNorm eps 1e-6, RoPE theta 5e5, untied embeddings), built directly on the device in
float32. Random weights cost the same FLOPs as trained ones. Prompts come from the real task:
``vghlib.pretrain.build_tokenizer()`` (a word-level tokenizer whose ids are < 100352) and
``vghlib.tasks.LabelCopyTask().batch``; every prompt is 14 tokens (BOS + 13 words).

What is measured, through the library's own code path, after one warm-up call (CUDA synchronised
around every timer; median of ``--repeats``):

* score: ``vghlib.scoring.checkpoint_score(model, batch, alpha=2.0, group_size=8, layer=-1,
  adv_kind="grpo", seed=0)`` on ``--n-eval`` prompts, in seconds per checkpoint, and its peak
  memory;
* R: one exact-R measurement on the same prompts, timed as
  ``vghlib.train.train_grpo(..., updates=0, record_at=())`` (which measures R before and returns);
* GRPO: ``train_grpo(model, train, eval, GRPOConfig(prompts_per_step=P), updates=U, seed=0,
  record_at=())``. A ``progress`` callback stamps the clock after each update; seconds per update
  is the median interval between stamps 1..U, so it leaves out the R-before measurement and the
  first update (Adam allocates its state there). For each P in ``--prompts-per-step``:
  tokens/s = P * S * 2 / (s per update) (each update runs one no-grad forward to sample and one
  forward + backward for the loss; the G = 8 one-token answers share the prompt's forward), and
  MFU = model FLOPs per update / (s per update) / peak, with model FLOPs per token and forward
  f = 2 N_nonembedding + 2 d V (the LM head) + 4 S d L (attention scores), counted once for the
  sampling forward and 3 times for forward + backward: 4 P S f per update. The row "of which
  host sampling" times the part of an update that ``train_grpo`` runs on the CPU, in float64
  (logits to the CPU, ``tasks.sample_answers``, ``per_sample_rewards``, ``grpo.advantages``,
  ``answer_logprobs``), on the same library functions alone;
* peak memory: ``torch.cuda.max_memory_allocated`` per section on a GPU (weights included; GRPO
  adds the gradients and Adam's two moments, 4x the weights in float32), warm-up included; on
  the CPU the growth of the process peak RSS (``resource.getrusage``) during the section: a lower
  bound, 0 when the section stayed below an earlier peak (e.g. the model's build).

At P = 16 prompts x 14 tokens (224 tokens per forward) a GRPO update of a 1B model is latency-
bound (kernel launches, the optimizer step over 1.5 B parameters, host round trips), not
compute-bound, so its MFU is small; the larger P rows show where the step becomes compute-bound.

``--dtype bfloat16`` runs the score and the GRPO updates under ``torch.autocast(device,
bfloat16)`` over float32 weights (mixed precision, as TRL's ``bf16=True``). float32 runs without
TF32 (PyTorch's default), so its attainable peak on an H100 is ~67 TFLOP/s, not the bf16 989.

Projection of the full sweep (excluding checkpoint download and load), from the P = 16 numbers:

    minutes = 20 * (t_score + seeds * (t_first + (K - 1) * t_update + (1 + 4) * t_R)) / 60

with K = max(budgets) = 30, seeds = ``--seeds`` (default 3), t_first the first update of a run
(it includes Adam's state allocation), and 1 + 4 exact-R measurements per run (train_grpo always
measures R before, then R after the budgets 10, 20, 25, 30). Loading a checkpoint is printed as a
separate, unmeasured item: ``vghlib.sweep.run_sweep`` loads it once per checkpoint (each GRPO run
restarts from a copy of its weights), and its cost depends on the disk or network.

    python benchmarks/olmo2_step.py --device cuda                      # 1b, float32
    python benchmarks/olmo2_step.py --device cuda --dtype bfloat16
    python benchmarks/olmo2_step.py --device cpu                       # small, one thread

Target: the projected sweep <= 30 min on one H100 (``--size 1b``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import Olmo2Config, Olmo2ForCausalLM  # noqa: E402

from vghlib import grpo, pretrain, scoring, tasks  # noqa: E402
from vghlib.results import SweepConfig  # noqa: E402
from vghlib.train import GRPOConfig, answer_logprobs, train_grpo  # noqa: E402

SIZES = {
    # OLMo-2-0425-1B's config.json (allenai/OLMo-2-0425-1B), ids of its tokenizer for pad/bos/eos
    "1b": dict(
        num_hidden_layers=16,
        hidden_size=2048,
        num_attention_heads=16,
        num_key_value_heads=16,
        intermediate_size=8192,
    ),
    # a reduced model for CPU runs in seconds; the vocabulary (the LM head) is kept
    "small": dict(
        num_hidden_layers=4,
        hidden_size=256,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=1024,
    ),
}

# dense bf16 tensor-core peak, TFLOP/s (vendor data sheets); matched on torch.cuda.get_device_name()
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("H800", 989.0),
    ("GH200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
    ("L4", 121.0),
)

BUDGETS = (10, 20, 25, 30)
N_CHECKPOINTS = 20


def build_model(size: str, device: torch.device):
    cfg = Olmo2Config(
        vocab_size=100352,
        rms_norm_eps=1e-6,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        tie_word_embeddings=False,
        pad_token_id=100277,
        bos_token_id=100257,
        eos_token_id=100257,
        attention_bias=False,
        **SIZES[size],
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Olmo2ForCausalLM(cfg)
    return model.float().eval()


def param_counts(model) -> tuple[int, int]:
    """(all parameters, non-embedding parameters: neither the input embedding nor the LM head)."""
    total = sum(p.numel() for p in model.parameters())
    emb = model.model.embed_tokens.weight.numel() + model.lm_head.weight.numel()
    return total, total - emb


class Section:
    """Times one section and records its peak memory (GPU: max allocated; CPU: peak-RSS growth)."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self):
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return self

    def __exit__(self, *exc):
        self.sync()
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.rss0) * 1024
        return False


def timed(fn, device, repeats: int) -> tuple[float, int]:
    """(median seconds of ``repeats`` calls after one warm-up call, peak memory of all the calls).

    The memory section opens before the warm-up: on the CPU the peak RSS only grows, so a section
    opened after it would not see the warm-up's peak again.
    """
    ts = []
    with Section(device) as s:
        fn()  # warm-up
        for _ in range(repeats):
            s.sync()
            t0 = time.perf_counter()
            fn()
            s.sync()
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts), s.peak


def grpo_times(model, tr, ev, config, updates: int, device, amp) -> tuple[float, float, int]:
    """(median s per update over updates 2..U, s of the first update, peak memory) of one run."""
    stamps = []
    with Section(device) as sec, amp():
        train_grpo(model, tr, ev, config, 1, seed=0, record_at=())  # warm-up: kernels, allocator
        sec.sync()

        def stamp(k):
            sec.sync()
            stamps.append(time.perf_counter())

        t0 = time.perf_counter()
        train_grpo(model, tr, ev, config, updates, seed=0, record_at=(), progress=stamp)
    d = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.median(d), stamps[0] - t0, sec.peak


def host_sampling_time(P: int, V: int, tr, config, device, logits_dtype, repeats: int) -> float:
    """Seconds of the CPU float64 part of one update (train_grpo's sampling block), alone."""
    sub = tr.rows(torch.arange(P))
    z = torch.randn(P, V, device=device, dtype=logits_dtype)
    g = torch.Generator().manual_seed(0)

    def once():
        z_old = z.double().cpu()
        answers = tasks.sample_answers(
            z_old, sub, config.group_size, generator=g, temperature=config.temperature
        )
        r = tasks.per_sample_rewards(answers, z_old, sub, config.reward_kind)
        grpo.advantages(r, config.adv_kind)
        answer_logprobs(z_old, answers, config.temperature)

    return timed(once, device, repeats)[0]


def peak_tflops(device: torch.device, override):
    if override:
        return float(override), "--peak-tflops"
    if device.type != "cuda":
        return None, "pass --peak-tflops"
    name = torch.cuda.get_device_name(device)
    for key, v in PEAK_BF16_TFLOPS:
        if key in name:
            return v, f"{key} bf16 dense"
    return None, f"unknown GPU {name!r}: pass --peak-tflops"


def gib(b) -> str:
    return f"{b / 2**30:.2f} GiB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu or cuda (default: cuda when available)",
    )
    ap.add_argument(
        "--size",
        choices=sorted(SIZES),
        default=None,
        help="1b: OLMo-2-0425-1B's config; small: 4 layers, d 256 "
        "(default: 1b on cuda, small on cpu)",
    )
    ap.add_argument(
        "--n-eval",
        type=int,
        default=None,
        help="prompts of the score and of each R measurement (default 256; 32 for small on cpu)",
    )
    ap.add_argument(
        "--updates",
        type=int,
        default=None,
        help="GRPO updates per timed run, >= 2 (default 6 on cuda, 3 on cpu)",
    )
    ap.add_argument(
        "--prompts-per-step",
        default=None,
        help="comma-separated P values; the first is the sweep's (GRPOConfig default 16) "
        "(default: 16,64,256 on cuda, 16,64 on cpu)",
    )
    ap.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="bfloat16: torch.autocast over float32 weights",
    )
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak for MFU (default: looked up from the GPU's name; none on cpu)",
    )
    ap.add_argument(
        "--seeds", type=int, default=3, help="GRPO seeds per checkpoint in the projection"
    )
    ap.add_argument(
        "--repeats", type=int, default=None, help="timed repeats (default 3 on cuda, 1 on cpu)"
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default 1 on cpu)"
    )
    ap.add_argument(
        "--out", default=None, help="also write the header and table to this markdown file"
    )
    a = ap.parse_args(argv)

    transformers.utils.logging.set_verbosity_error()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch.cuda.is_available() is False")
    device = torch.device(a.device)
    cpu = device.type == "cpu"
    size = a.size or ("small" if cpu else "1b")
    n_eval = a.n_eval or (32 if cpu and size == "small" else 256)
    updates = a.updates or (3 if cpu else 6)
    if updates < 2:
        raise SystemExit("--updates must be >= 2 (the first update is timed apart)")
    repeats = a.repeats or (1 if cpu else 3)
    Ps = [int(x) for x in (a.prompts_per_step or ("16,64" if cpu else "16,64,256")).split(",")]
    threads = a.threads or (1 if cpu else torch.get_num_threads())
    torch.set_num_threads(threads)
    amp = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if a.dtype == "bfloat16"
        else contextlib.nullcontext
    )
    dev_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU {platform.processor() or platform.machine()}, {threads} thread(s)"
    )
    peak, peak_src = peak_tflops(device, a.peak_tflops)

    tok = pretrain.build_tokenizer()
    task, sc = tasks.LabelCopyTask(), SweepConfig()
    ev = task.batch(tok, n_eval, seed=sc.eval_seed)
    tr = task.batch(tok, max(sc.n_train, max(Ps)), seed=sc.train_seed)
    S = tr.input_ids.shape[1]

    t0 = time.perf_counter()
    try:
        with Section(device):
            model = build_model(size, device)
    except torch.OutOfMemoryError:
        raise SystemExit(
            f"out of memory building the {size} model in float32 on {dev_name}: "
            "use --size small or a larger device"
        ) from None
    build_s = time.perf_counter() - t0
    cfg = model.config
    n_all, n_ne = param_counts(model)
    d, V, L = cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers
    f_tok = 2 * n_ne + 2 * d * V + 4 * S * d * L  # model FLOPs per token, one forward

    header = (
        f"OLMo-2 ({size}): {L} layers, d {d}, {cfg.num_attention_heads} heads, MLP "
        f"{cfg.intermediate_size}, vocab {V}, {n_all / 1e9:.3f} B params ({n_ne / 1e9:.3f} B "
        f"non-embedding), random init; {a.dtype}"
        f"{' autocast over float32 weights' if a.dtype == 'bfloat16' else ''}; {dev_name}; "
        f"torch {torch.__version__}, transformers {transformers.__version__}, attention "
        f"{cfg._attn_implementation}; prompts {S} tokens, n_eval {n_eval}, {updates} updates "
        f"per timed run, median of {repeats}; model built on device in {build_s:.1f} s"
    )
    print(header, flush=True)
    rows = []  # (quantity, value, note)

    def oom(what, knob):
        line = f"out of memory in {what} on {dev_name}: lower {knob}"
        print(line, flush=True)
        return line

    def free():  # after an OOM, once the exception (and the frames it holds) is gone
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    ev_d = ev.to(device)
    t_score = t_r = None
    try:

        def score_once():
            with amp():
                scoring.checkpoint_score(
                    model, ev_d, alpha=2.0, group_size=8, layer=-1, adv_kind="grpo", seed=0
                )

        t_score, m_score = timed(score_once, device, repeats)
        rows.append(
            (
                "score measurement, s/checkpoint",
                f"{t_score:.3f}",
                f"scoring.checkpoint_score on {n_eval} prompts, group 8, layer -1",
            )
        )
        rows.append(
            (
                "score peak memory",
                gib(m_score),
                "weights included" if not cpu else "peak RSS growth",
            )
        )
    except torch.OutOfMemoryError:
        rows.append(
            (
                "score measurement, s/checkpoint",
                "OOM",
                oom("checkpoint_score", f"--n-eval ({n_eval})"),
            )
        )
    free()
    base = GRPOConfig()
    try:

        def r_once():
            with amp():
                train_grpo(model, tr, ev, base, 0, seed=0, record_at=())

        t_r, _ = timed(r_once, device, repeats)
        rows.append(
            (
                "exact-R measurement, s",
                f"{t_r:.4f}",
                f"train_grpo(updates=0): R on {n_eval} prompts",
            )
        )
    except torch.OutOfMemoryError:
        rows.append(
            ("exact-R measurement, s", "OOM", oom("the R measurement", f"--n-eval ({n_eval})"))
        )
    free()

    first = None
    for i, P in enumerate(Ps):
        config = GRPOConfig(prompts_per_step=P)
        res = None
        try:
            res = grpo_times(model, tr, ev, config, updates, device, amp)
        except torch.OutOfMemoryError:
            rows.append(
                (
                    f"GRPO s/update, P={P}",
                    "OOM",
                    oom(f"the GRPO update at P={P}", "--prompts-per-step"),
                )
            )
        if res is None:
            free()
            continue
        t_up, t_first, m_up = res
        if i == 0:
            first = (t_up, t_first)
        logits_dtype = torch.bfloat16 if a.dtype == "bfloat16" else torch.float32
        t_host = host_sampling_time(P, V, tr, config, device, logits_dtype, repeats)
        toks = P * S * 2 / t_up
        flops = 4 * P * S * f_tok / t_up
        mfu = f"{100 * flops / (peak * 1e12):.2f} %" if peak else "n/a"
        tag = " (sweep setting)" if i == 0 else ""
        rows += [
            (
                f"GRPO s/update, P={P}{tag}",
                f"{t_up:.4f}",
                f"median of {updates - 1}; first update {t_first:.3f} s incl. R before + Adam init",
            ),
            (
                f"  of which host sampling, P={P}",
                f"{t_host:.4f}",
                "logits -> CPU float64, sample, rewards, advantages, old log-probs",
            ),
            (f"  tokens/s, P={P}", f"{toks:,.0f}", f"{P} x {S} tokens x 2 forwards per update"),
            (
                f"  MFU, P={P}",
                mfu,
                f"{flops / 1e12:.3f} TFLOP/s achieved; peak "
                f"{peak if peak else '?'} TFLOP/s ({peak_src})",
            ),
            (
                f"  peak memory, P={P}",
                gib(m_up),
                "weights + grads + Adam moments" if not cpu else "peak RSS growth",
            ),
        ]

    K, n_r = max(BUDGETS), 1 + len(BUDGETS)
    if t_score is not None and t_r is not None and first is not None:
        t_up, t_first = first
        per_run = t_first + (K - 1) * t_up + n_r * t_r
        sweep_s = N_CHECKPOINTS * (t_score + a.seeds * per_run)
        verdict = (
            ("met" if sweep_s <= 1800 else "not met")
            if size == "1b"
            else "n/a: the target is for --size 1b"
        )
        rows.append(
            (
                "projected full sweep, minutes",
                f"{sweep_s / 60:.1f}",
                f"{N_CHECKPOINTS} x (score + {a.seeds} x ({K} updates + {n_r} R)), P={Ps[0]}; "
                f"no load; target <= 30 min on one H100: {verdict}",
            )
        )
    gb = n_all * 4 / 1e9
    n_loads = N_CHECKPOINTS
    rows.append(
        (
            "checkpoint load (not measured)",
            "-",
            f"{gb:.1f} GB in float32; run_sweep loads once per checkpoint: {n_loads} loads = "
            f"{n_loads * gb:.0f} GB read (e.g. {n_loads * gb / 60:.1f} min at 1 GB/s)",
        )
    )

    w = max(len(r[0]) for r in rows)
    lines = [f"| {'quantity':<{w}} | value | note |", f"|{'-' * (w + 2)}|---:|---|"]
    lines += [f"| {q:<{w}} | {v} | {n} |" for q, v, n in rows]
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "w") as fh:
            cmd = " ".join(sys.argv[1:] if argv is None else argv)
            fh.write(
                f"```text\n$ python benchmarks/olmo2_step.py {cmd}\n{header}\n```\n\n{table}\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
