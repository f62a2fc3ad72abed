"""The RL-impact sweep: for every checkpoint, measure the score, then run GRPO and record the gain.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6 (20 OLMo-2 1B checkpoints, GRPO budgets
K ∈ {10, 20, 25, 30}) and eq 24–31.

``python -m vghlib sweep --checkpoints DIR --out results.jsonl`` scores each checkpoint
(:func:`vghlib.scoring.checkpoint_score`), runs GRPO from it for every seed
(:func:`vghlib.train.train_grpo`) and appends each result to a results file
(:mod:`vghlib.results`, which also holds :class:`SweepConfig`) as soon as it is made. A sweep
killed at any point (even ``kill -9``) resumes where it stopped: rows already written are
skipped. Each row is a function of its key and the configuration alone (its own seeds), so a
resumed sweep writes exactly what an uninterrupted one would have. Under torchrun, or with
``--shard i/n``, the checkpoints are split between processes, each with its own file, merged at
the end.

Every row records the weights it measured (:func:`vghlib.checkpoints.weights_id`), and a resume
against other weights is refused; see :mod:`vghlib.results` for what the results file guarantees.
Exit codes: 0 done, 2 refused (bad options, another configuration or other weights, a damaged
file or checkpoint, another writer), 3 out of memory, 4 a row could not be written (a full disk);
in every case the rows finished so far are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm
from transformers.utils import logging as hf_logging

from vghlib import checkpoints as ckpts
from vghlib import pretrain, scoring, tasks
from vghlib.results import (
    ResultsError,
    ResultsFile,
    ResultsWriteError,
    SweepConfig,
    merge_rows,
    merge_shards,
    prop2_key,
    rl_key,
    score_key,
    shard_files,
    shard_path,
)
from vghlib.sampling_gap import prop2_per_position
from vghlib.train import GRPOConfig, train_grpo

__all__ = [
    "SweepConfig",
    "SweepOOM",
    "run_sweep",
    "build_parser",
    "config_from_args",
    "parse_shard",
    "int_list",
    "main",
]


class SweepOOM(RuntimeError):
    """Out of memory in a sweep: the message says which setting to lower; finished rows are kept."""


def _oom_message(name: str, what: str, config: "SweepConfig", device, out) -> str:
    peak = ""
    if torch.cuda.is_available() and torch.device(device).type == "cuda":
        peak = f" (peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB allocated)"
    mb = config.micro_batch
    smaller = max(1, (mb or max(config.n_eval, config.grpo.prompts_per_step)) // 2)
    hints = [f"--micro-batch {smaller} (prompts per forward pass; now {mb or 'all at once'})"]
    if config.dtype != "bfloat16":
        hints.append("--dtype bfloat16 (mixed precision)")
    hints.append("--device-map auto (spread the model over all GPUs)")
    return (
        f"out of memory on {device}{peak} while {what} checkpoint {name}. Rerun the same "
        f"command with {', or '.join(hints)}. Every row finished so far is kept in {out}; "
        "the rerun resumes there (a changed --micro-batch or --dtype needs a new --out)."
    )


def run_sweep(
    checkpoints,
    out,
    config: SweepConfig,
    *,
    load,
    device: str = "cpu",
    progress: bool = True,
    source: str = "",
    skip=(),
    placed: bool = False,
    weights_id=None,
) -> ResultsFile:
    """Score every checkpoint and run GRPO from it; append each result to ``out`` as it is made.

    ``checkpoints``: a list of (name, step, handle); ``load(handle)`` returns ``(model,
    tokenizer)``. Resumes ``out`` if it holds rows of this ``config`` (and refuses it if it holds
    rows of another). ``device``: where the model runs (``"cpu"``, ``"cuda"``); ``placed``: the
    loader has already put the model on its devices (``device_map="auto"``), so it is not moved.
    ``skip``: keys already done elsewhere (another file of the same sweep). ``weights_id(handle)``:
    what names a checkpoint's weights (:func:`vghlib.checkpoints.weights_id`; None: nothing is
    recorded); each row records it, and a file whose rows measured other weights is refused
    (:class:`vghlib.results.ResultsMismatch`). Raises :class:`SweepOOM`, with what to change, when
    the device runs out of memory. The file is locked while the sweep runs; the returned
    :class:`~vghlib.results.ResultsFile` is closed, its rows still readable.
    """
    ids = {name: weights_id(handle) for name, _, handle in checkpoints} if weights_id else {}
    with ResultsFile(out, config, source, weights=ids) as res:
        if res.repaired:
            print(f"{out}: cut off a torn last row ({res.repaired} bytes); it is recomputed")
        _run(res, checkpoints, config, load, device, progress, set(skip), placed, weights_id)
    return res


def _run(res, checkpoints, config, load, device, progress, skip, placed, weights_id) -> None:
    todo = []
    for name, step, handle in checkpoints:
        keys = [score_key(name)] + [rl_key(name, s) for s in config.seeds]
        if config.prop2_prompts:
            keys.append(prop2_key(name))
        missing = [k for k in keys if k not in res and k not in skip]
        if missing:
            todo.append((name, step, handle, missing))
    total = sum(len(m) for *_, m in todo)
    bar = tqdm(total=total, desc="sweep", unit="run", disable=not progress)
    for name, step, handle, missing in todo:
        what = "loading"
        try:
            with _quiet_loading(progress):
                model, tokenizer = load(handle)  # once per checkpoint
            wid = weights_id(handle) if weights_id else None  # a Hub revision: known once loaded
            res.check_weights({name: wid})
            if not placed:
                model = model.to(device=device, dtype=config.torch_dtype)
            # GRPO changes the weights in place: every row starts from this copy of them
            # (on the CPU when the model is spread over devices, so no GPU holds it twice)
            pristine = {
                k: v.detach().to("cpu" if placed else v.device, copy=True)
                for k, v in model.state_dict().items()
            }
            ev, tr = config.batches(tokenizer)
            for i, key in enumerate(missing):
                what = {
                    "score": "scoring",
                    "rl": "running GRPO from",
                    "prop2": "checking Prop 2 on",
                }[key.split("/")[0]]
                if i:
                    model.load_state_dict(pristine)
                row = _run_key(key, name, step, model, ev, tr, config)
                res.add(row if wid is None else {**row, "weights": wid})
                bar.update(1)
        except torch.OutOfMemoryError:
            model = pristine = None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise SweepOOM(_oom_message(name, what, config, device, res.path)) from None
        del model, pristine
    bar.close()


@contextlib.contextmanager
def _quiet_loading(progress: bool):
    """No "Loading weights" bar per checkpoint when the sweep is quiet."""
    was = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _run_key(key, name, step, model, ev, tr, config: SweepConfig) -> dict:
    dev = next(model.parameters()).device  # the input device (device_map: the first)
    t0 = time.perf_counter()
    with config.autocast(dev):
        if key.startswith("score/"):
            s = scoring.checkpoint_score(
                model,
                ev.to(dev),
                alpha=config.alpha,
                group_size=config.grpo.group_size,
                layer=config.layer,
                adv_kind=config.grpo.adv_kind,
                seed=config.score_seed,
                checkpoint=name,
                micro_batch=config.micro_batch,
            )
            row = {"kind": "score", "key": key, "checkpoint": name, "step": step, **s}
        elif key.startswith("prop2/"):
            sub = ev.to(dev)
            n = config.prop2_prompts
            c = prop2_per_position(
                model, sub.input_ids[:n], sub.attention_mask[:n], chunk=config.micro_batch or 64
            )
            row = {
                "kind": "prop2",
                "key": key,
                "checkpoint": name,
                "step": step,
                **{k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in c.items()},
            }
        else:
            seed = int(key.rsplit("seed", 1)[1])
            rec = train_grpo(
                model,
                tr,
                ev,
                config.grpo,
                max(config.budgets),
                seed=seed,
                checkpoint=name,
                record_at=config.budgets,
                micro_batch=config.micro_batch,
            )
            row = {
                "kind": "rl",
                "key": key,
                "checkpoint": name,
                "step": step,
                "seed": seed,
                "r_before": rec.r_exact[0],
                "r_after": {str(b): rec.r_after(b) for b in config.budgets},
                "r_sampled": rec.r_sampled,
                "clip_frac": rec.clip_frac,
            }
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def int_list(s: str) -> tuple:
    """``"1,2,3"`` -> (1, 2, 3): an argparse ``type`` for comma-separated integers."""
    try:
        return tuple(int(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


def build_parser() -> argparse.ArgumentParser:
    d, g = SweepConfig(), GRPOConfig()
    ap = argparse.ArgumentParser(
        prog="python -m vghlib sweep",
        description="Score each checkpoint (Σ, Λ, H_α, P_gap) and run GRPO from it for every "
        "budget and seed; results are appended to a resumable JSON-lines file. Under torchrun "
        "(or with --shard i/n) the checkpoints are split between processes.",
    )
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--model",
        help="a Hub model id whose branches are checkpoints (allenai/OLMo-2-0425-1B), a "
        "local folder of step<N>/ checkpoints, or 'laptop' (Part IV's trajectory)",
    )
    src.add_argument(
        "--checkpoints",
        help="a trajectory folder (python -m vghlib pretrain --out DIR) or any folder "
        "of step<N>/ checkpoints saved with save_pretrained (same as --model DIR)",
    )
    ap.add_argument(
        "--steps",
        default=None,
        help="which checkpoints: START:STOP:STEP (STOP included), a,b,c, or all "
        "(default: all of a folder; required for a Hub model)",
    )
    ap.add_argument(
        "--stage",
        default="stage1",
        help="Hub branches of this stage only (default stage1: OLMo-2's pretraining)",
    )
    ap.add_argument("--cache-dir", default=None, help="Hugging Face cache (default: HF_HUB_CACHE)")
    ap.add_argument("--out", required=True, help="results file (.jsonl); resumed when it exists")
    ap.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only shard I of N (0-based) of the checkpoints, into OUT's shard file "
        "(for job arrays); a later run without --shard merges the shard files",
    )
    ap.add_argument(
        "--budgets",
        type=int_list,
        default=d.budgets,
        help=f"GRPO budgets K, comma-separated (default {','.join(map(str, d.budgets))})",
    )
    ap.add_argument(
        "--seeds",
        type=int_list,
        default=d.seeds,
        help=f"GRPO seeds, comma-separated (default {','.join(map(str, d.seeds))})",
    )
    ap.add_argument("--alpha", type=float, default=d.alpha, help=f"headroom α (default {d.alpha})")
    ap.add_argument(
        "--group-size",
        type=int,
        default=g.group_size,
        help=f"GRPO group size n (default {g.group_size})",
    )
    ap.add_argument(
        "--layer",
        type=int,
        default=d.layer,
        help="hidden state the score reads: 0 embeddings .. L last block (default -1 = L)",
    )
    ap.add_argument(
        "--answer-length",
        type=int,
        default=d.task.answer_length,
        help="labels per answer, 1 to 4 (default 1): k > 1 samples answers of k tokens, rewards "
        "the whole answer, and scores the state of the first answer position (give --layer "
        "below the last, where attention carries the later tokens' credit)",
    )
    ap.add_argument(
        "--lr",
        type=float,
        default=g.learning_rate,
        help=f"GRPO learning rate (default {g.learning_rate})",
    )
    ap.add_argument("--adv-kind", default=g.adv_kind, help="advantage: grpo, mean (Dr. GRPO), loo")
    ap.add_argument("--loss-type", default=g.loss_type, help="grpo, bnpo or dr_grpo")
    ap.add_argument("--reward-kind", default=g.reward_kind, help="indicator, prob or centered")
    ap.add_argument(
        "--n-eval", type=int, default=d.n_eval, help=f"evaluation prompts (default {d.n_eval})"
    )
    ap.add_argument(
        "--n-train",
        type=int,
        default=d.n_train,
        help=f"pool of training prompts (default {d.n_train})",
    )
    ap.add_argument(
        "--prompts-per-step",
        type=int,
        default=g.prompts_per_step,
        help=f"prompts per GRPO update (default {g.prompts_per_step})",
    )
    ap.add_argument(
        "--prop2-prompts",
        type=int,
        default=d.prop2_prompts,
        help="also check Prop 2 at every position of this many evaluation prompts "
        "(the paper's Figure 2; default 0: off)",
    )
    ap.add_argument(
        "--dtype",
        default=d.dtype,
        help="float64 (default), float32, or bfloat16 (mixed precision: float32 weights, "
        "bf16 autocast)",
    )
    ap.add_argument(
        "--micro-batch",
        type=int,
        default=None,
        help="at most this many prompts per forward pass (default: all at once); lower "
        "it when the device runs out of memory",
    )
    ap.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda, cuda:1, ... (under torchrun, cuda means cuda:LOCAL_RANK)",
    )
    ap.add_argument(
        "--device-map",
        default=None,
        help="auto: spread a model larger than one GPU over all GPUs (accelerate)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the bits of a CPU run depend on it)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def config_from_args(a) -> SweepConfig:
    g = GRPOConfig(
        group_size=a.group_size,
        learning_rate=a.lr,
        adv_kind=a.adv_kind,
        loss_type=a.loss_type,
        reward_kind=a.reward_kind,
        prompts_per_step=a.prompts_per_step,
    )
    return SweepConfig(
        budgets=a.budgets,
        seeds=a.seeds,
        alpha=a.alpha,
        layer=a.layer,
        n_eval=a.n_eval,
        n_train=a.n_train,
        dtype=a.dtype,
        grpo=g,
        task=tasks.LabelCopyTask(answer_length=a.answer_length),
        micro_batch=a.micro_batch,
        prop2_prompts=a.prop2_prompts,
    )


# --------------------------------------------------------------------------------------------
# Sharding: torchrun ranks, or --shard i/n job arrays; each shard has its own resumable file
# --------------------------------------------------------------------------------------------


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if spec is None:
        return 0, 1
    try:
        i, n = (int(x) for x in spec.split("/"))
        if not 0 <= i < n:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--shard {spec!r}: expected I/N with 0 <= I < N, e.g. 0/4 .. 3/4"
        ) from None
    return i, n


def _dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


# --------------------------------------------------------------------------------------------
# The command: one process, torchrun ranks or job-array shards
# --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    problem = _check_options(a)
    if problem:
        _say(f"error: {problem}", int(os.environ.get("RANK", "0")))
        return 2
    threads_before = torch.get_num_threads()
    if a.device == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        return _main(a)
    finally:
        torch.set_num_threads(threads_before)


def _check_options(a) -> str | None:
    """What is wrong with options argparse cannot check alone, or None."""
    if a.threads < 1:
        return f"--threads {a.threads}: give a number of CPU threads >= 1 (default 1)"
    try:
        kind = torch.device(a.device).type
    except (RuntimeError, ValueError):
        kind = None
    if kind not in ("cpu", "cuda", "mps"):
        return (
            f"--device {a.device}: expected cpu, cuda, cuda:N or mps (a torch device this runs on)"
        )
    return None


def _check_answer_length(refs, config: SweepConfig) -> None:
    """Refuse a sweep whose answers are not those the trajectory was pretrained to write (a laptop
    trajectory's manifest records its task); Hub checkpoints and bare folders are not checked."""
    if not refs or refs[0].is_hub:
        return
    folder = Path(refs[0].location).parent
    m = pretrain.read_manifest(folder)
    if m is None:
        return
    k = int(m["config"]["task"].get("answer_length", 1))
    if k != config.task.answer_length:
        raise ValueError(
            f"{folder} was pretrained on answers of {k} label(s), but this sweep asks for "
            f"{config.task.answer_length}: pass --answer-length {k}"
        )


def _say(msg: str, rank: int = 0) -> None:
    if rank == 0:
        print(msg, file=sys.stderr)


def _main(a) -> int:
    rank, world, local = _dist_env()
    try:
        config = config_from_args(a)
        shard = parse_shard(a.shard)
        if world > 1 and a.shard:
            raise ValueError("--shard and torchrun both split the checkpoints: use one of them")
        model_spec = a.model if a.model is not None else a.checkpoints
        if (
            a.model is not None
            and not Path(a.model).expanduser().is_dir()
            and a.model != ckpts.LAPTOP
            and a.steps is None
        ):
            raise ValueError(
                f"--model {a.model} is a Hub model: give --steps (e.g. "
                "50000:1000000:50000), so that a sweep never runs on every branch"
            )
        refs = ckpts.resolve(model_spec, a.steps, stage=a.stage, cache_dir=a.cache_dir)
        _check_answer_length(refs, config)
        ids = {r.name: ckpts.weights_id(r, a.cache_dir) for r in refs}
    except ValueError as err:  # CheckpointError is a ValueError
        _say(f"error: {err}", rank)
        return 2
    device = a.device
    if world > 1 and device == "cuda":
        device = f"cuda:{local}"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            _say(
                "error: --device cuda but torch sees no GPU (a CPU build of torch, or "
                "CUDA_VISIBLE_DEVICES is empty); use --device cpu",
                rank,
            )
            return 2
        torch.cuda.set_device(torch.device(device))
    if world > 1:
        dist.init_process_group(
            "nccl" if device.startswith("cuda") else "gloo", timeout=datetime.timedelta(days=2)
        )
        index, count = rank, world
    else:
        index, count = shard
    mine = refs[index::count]
    out = Path(a.out) if count == 1 else shard_path(a.out, index, count)
    _say(
        f"{len(refs)} checkpoints ({refs[0].location if refs[0].is_hub else 'local'}), "
        f"{count} shard(s)" + ("" if a.quiet else ":\n" + ckpts.describe(refs)),
        rank,
    )

    def load(ref):
        return ckpts.load(ref, config.torch_dtype, device_map=a.device_map, cache_dir=a.cache_dir)

    def weights_id(ref):
        return ckpts.weights_id(ref, a.cache_dir)

    items = [(r.name, r.step, r) for r in mine]
    source = (
        ",".join(sorted({r.location for r in refs}))
        if refs[0].is_hub
        else str(Path(refs[0].location).parent.resolve())
    )
    rc = 0
    try:
        done = set()
        if count > 1 and Path(a.out).exists():  # rows the merged file already holds
            done = set(ResultsFile(a.out, config, source, weights=ids, readonly=True).rows)
        elif count == 1 and shard_files(a.out):  # finished job-array shards: merge first
            n = merge_shards(a.out, config, source, weights=ids)
            _say(f"merged {n} rows from {len(shard_files(a.out))} shard files into {a.out}")
        res = run_sweep(
            items,
            out,
            config,
            load=load,
            device=device,
            progress=not a.quiet,
            source=source,
            skip=done,
            placed=a.device_map is not None,
            weights_id=weights_id,
        )
    except (ResultsError, ValueError, SweepOOM) as err:  # CheckpointError is a ValueError
        print(f"error{f' (rank {rank})' if world > 1 else ''}: {err}", file=sys.stderr)
        rc = 3 if isinstance(err, SweepOOM) else 4 if isinstance(err, ResultsWriteError) else 2
        res = None
    if world > 1:
        mine_rows = [] if res is None else [r for r in res.rows.values() if r["kind"] != "config"]
        gathered = [None] * world if rank == 0 else None
        dist.gather_object((rc, mine_rows), gathered, dst=0)
        if rank == 0:
            rcs = [g[0] for g in gathered]
            if not any(rcs):
                try:
                    with ResultsFile(a.out, config, source, weights=ids) as merged:
                        for r, (_, rows) in enumerate(gathered):
                            merge_rows(merged, rows, f"rank {r}")
                    res = merged
                except ResultsError as err:
                    print(f"error: {err}", file=sys.stderr)
                    rcs.append(4 if isinstance(err, ResultsWriteError) else 2)
            rc = max(rcs)
        dist.destroy_process_group()
        if rank != 0:
            return rc
    if rc:
        return rc
    n = sum(r["kind"] != "config" for r in res.rows.values())
    print(
        f"{res.path}: {n} rows for {len(items) if count == 1 else len(refs)} checkpoints "
        f"(config {config.hash()})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
