"""The RL-impact sweep: for every checkpoint, measure the score, then run GRPO and record the gain.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6 (20 OLMo-2 1B checkpoints, GRPO budgets
K ∈ {10, 20, 25, 30}, the predictors Spearman(P_gap, mean ΔR) and Spearman(z(R_before) +
z(P_gap), z(R_after))) and eq 24–31; science notes F5–F7.

``python -m vghlib sweep --checkpoints DIR --out results.jsonl`` writes one JSON object per line:

* a ``"config"`` row first: every setting that changes a number, and its hash. A results file
  written under another configuration is refused, never mixed in;
* one ``"score"`` row per checkpoint (:func:`vghlib.impact.checkpoint_score`: Σ, Λ, S, H_α,
  P_gap, R_before);
* one ``"rl"`` row per (checkpoint, seed): a single GRPO run of max(budgets) updates that
  measures the exact R after each budget, so all budgets of a seed come from one run (R_after(10)
  is the same run as R_after(30), stopped earlier). The paper does not say whether its budgets
  were separate runs; one run per seed is what fits a laptop.

Every row is keyed (``"score/<checkpoint>"``, ``"rl/<checkpoint>/seed<s>"``) and appended with a
single ``write`` to a file opened in append mode, then flushed to disk. A sweep killed at any
point (even ``kill -9``) resumes where it stopped: rows already written are skipped, and a
half-written last line is cut off and recomputed. Each row is a function of its key and the
configuration alone (its own seeds), so a resumed sweep writes exactly what an uninterrupted one
would have.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vghlib import impact, tasks
from vghlib.train import GRPOConfig, train_grpo

__all__ = ["SweepConfig", "ResultsFile", "ResultsMismatch", "SweepOOM", "run_sweep", "merge_shards",
           "shard_path", "summarise", "main"]

RESULTS_VERSION = 2


class ResultsMismatch(ValueError):
    """A results file that belongs to another configuration (or is not a results file)."""


@dataclass(frozen=True)
class SweepConfig:
    """Everything that changes a number in the results file (and so goes into its hash).

    ``budgets``: the RL budgets K (updates) at which R_after is read; ``seeds``: one GRPO run per
    seed per checkpoint; ``alpha``: the headroom temperature α of eq 28; ``layer``: the hidden
    state the score reads (book notation ``hidden[l]``; −1 = the last block's output, the
    final-layer state of Definition 2); ``n_eval`` / ``n_train``: evaluation prompts (R and the
    score are exact averages over them) and the pool GRPO draws its prompts from; ``score_seed``:
    the seed of the answers sampled for the single-sample Λ; ``grpo``: the GRPO settings
    (its ``group_size`` is also the n of the score's advantages).

    ``dtype``: ``"float64"`` or ``"float32"`` weights and arithmetic; ``"bfloat16"``: mixed
    precision, float32 weights (and Adam state) with the forward and backward passes under
    ``torch.autocast(dtype=torch.bfloat16)``, as TRL's ``bf16=True``. ``micro_batch``: at most this
    many prompts per forward pass (None: all; it changes the memory and the rounding, so it is part
    of the config). ``prop2_prompts``: when > 0, a ``"prop2"`` row per checkpoint holds both sides
    of Prop 2 at every position of that many evaluation prompts (the paper's Figure 2).
    """

    budgets: tuple = (10, 20, 25, 30)
    seeds: tuple = (0, 1, 2)
    alpha: float = 2.0
    layer: int = -1
    n_eval: int = 256
    n_train: int = 512
    eval_seed: int = 1_000_003
    train_seed: int = 2_000_003
    score_seed: int = 0
    dtype: str = "float64"
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    task: tasks.LabelCopyTask = field(default_factory=tasks.LabelCopyTask)
    micro_batch: int | None = None
    prop2_prompts: int = 0

    def __post_init__(self):
        if not self.budgets or any(int(b) != b or b < 1 for b in self.budgets):
            raise ValueError(f"budgets must be positive integers, got {self.budgets!r}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.dtype not in ("float64", "float32", "bfloat16"):
            raise ValueError(f"dtype must be float64, float32 or bfloat16, got {self.dtype!r}")
        if self.micro_batch is not None and (not isinstance(self.micro_batch, int) or self.micro_batch < 1):
            raise ValueError(f"micro_batch must be a positive integer, got {self.micro_batch!r}")
        if not 0 <= self.prop2_prompts <= self.n_eval:
            raise ValueError(f"prop2_prompts must lie in 0..n_eval={self.n_eval}, got {self.prop2_prompts}")
        impact._check_alpha(self.alpha)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, default in (("micro_batch", None), ("prop2_prompts", 0)):   # absent = default, so
            if d[k] == default:                                           # older files still match
                del d[k]
        if self.dtype == "bfloat16":      # bfloat16 files written before train_grpo cleared the
            d["autocast"] = "recast-after-each-step"   # autocast cache are refused, not mixed in
        d["budgets"], d["seeds"] = list(self.budgets), list(self.seeds)
        d["task"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["task"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SweepConfig":
        d = dict(d)
        d.pop("autocast", None)
        d["grpo"] = GRPOConfig(**d["grpo"])
        d["task"] = tasks.LabelCopyTask(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in d["task"].items()})
        d["budgets"], d["seeds"] = tuple(d["budgets"]), tuple(d["seeds"])
        return cls(**d)

    def hash(self, numerics: dict | None = None) -> str:
        """Hash of the config, the results format and the numerics (default: this process's)."""
        from vghlib.env import numerics as current

        blob = json.dumps({"version": RESULTS_VERSION, "numerics": numerics or current(),
                           **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def torch_dtype(self) -> torch.dtype:
        """The dtype of the weights (float32 under bfloat16 mixed precision)."""
        return torch.float32 if self.dtype == "bfloat16" else getattr(torch, self.dtype)

    def autocast(self, device) -> "contextlib.AbstractContextManager":
        """bfloat16 autocast on ``device`` when ``dtype == "bfloat16"``, else nothing."""
        kind = torch.device(device).type
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.dtype == "bfloat16")


class ResultsFile:
    """A JSON-lines results file with a config header, keyed rows and atomic appends."""

    def __init__(self, path, config: SweepConfig, source: str = "", numerics: dict | None = None):
        from vghlib.env import numerics as current

        self.path, self.config, self.source = Path(path), config, source
        self.numerics = numerics or current()
        self.rows: dict[str, dict] = {}
        if self.path.exists() and self.path.stat().st_size:
            self._read()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"kind": "config", "key": "config",
                          "config_hash": config.hash(self.numerics), "config": config.to_dict(),
                          "numerics": self.numerics, "source": source})

    def _read(self) -> None:
        raw = self.path.read_bytes()
        good = raw.rfind(b"\n") + 1                       # everything after it is a torn write
        if good < len(raw):
            with open(self.path, "r+b") as f:             # cut it off: that row is recomputed
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
        lines = raw[:good].decode().splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            head = {}
        if head.get("kind") != "config":
            raise ResultsMismatch(f"{self.path} is not a sweep results file (its first line is not "
                                  "a config row); pass another --out")
        if head.get("config_hash") != self.config.hash(self.numerics):
            diff = _diff(head.get("config", {}), self.config.to_dict())
            if not diff and head.get("numerics") != self.numerics:
                diff = [f"numerics ({head.get('numerics')} there, {self.numerics} here; "
                        "`python -m vghlib sweep` pins them)"]
            raise ResultsMismatch(
                f"{self.path} was written by another configuration (differs in: "
                f"{', '.join(diff) or 'the results format'}); its rows cannot be mixed with this "
                "sweep's. Pass a new --out, or the same settings to resume it.")
        for n, line in enumerate(lines[1:], start=2):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ResultsMismatch(f"{self.path}:{n} is not valid JSON ({err}); the file was "
                                      "edited by hand? Remove that line to resume.") from None
            self.rows[row["key"]] = row
        self.header = head

    def _append(self, row: dict) -> None:
        data = (json.dumps(row, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)                            # one write: the row is there or not
            os.fsync(fd)
        finally:
            os.close(fd)

    def add(self, row: dict) -> None:
        if row["key"] in self.rows:
            raise ValueError(f"row {row['key']!r} is already in {self.path}")
        self._append(row)
        self.rows[row["key"]] = row

    def __contains__(self, key: str) -> bool:
        return key in self.rows


def _diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k} ({a!r} there, {b!r} here)")
    return out


def score_key(name: str) -> str:
    return f"score/{name}"


def rl_key(name: str, seed: int) -> str:
    return f"rl/{name}/seed{seed}"


def prop2_key(name: str) -> str:
    return f"prop2/{name}"


def _batches(tokenizer, config: SweepConfig):
    ev = config.task.batch(tokenizer, config.n_eval, seed=config.eval_seed)
    tr = config.task.batch(tokenizer, config.n_train, seed=config.train_seed)
    return ev, tr


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
    return (f"out of memory on {device}{peak} while {what} checkpoint {name}. Rerun the same "
            f"command with {', or '.join(hints)}. Every row finished so far is kept in {out}; "
            "the rerun resumes there (a changed --micro-batch or --dtype needs a new --out).")


def run_sweep(checkpoints, out, config: SweepConfig, *, load, device: str = "cpu",
              progress: bool = True, source: str = "", skip=(), placed: bool = False) -> ResultsFile:
    """Score every checkpoint and run GRPO from it; append each result to ``out`` as it is made.

    ``checkpoints``: a list of (name, step, handle); ``load(handle)`` returns ``(model,
    tokenizer)``. Resumes ``out`` if it holds rows of this ``config`` (and refuses it if it holds
    rows of another). ``device``: where the model runs (``"cpu"``, ``"cuda"``); ``placed``: the
    loader has already put the model on its devices (``device_map="auto"``), so it is not moved.
    ``skip``: keys already done elsewhere (another file of the same sweep). Raises
    :class:`SweepOOM`, with what to change, when the device runs out of memory.
    """
    from tqdm.auto import tqdm

    res = ResultsFile(out, config, source)
    skip = set(skip)
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
                model, tokenizer = load(handle)             # once per checkpoint
            if not placed:
                model = model.to(device=device, dtype=config.torch_dtype)
            # GRPO changes the weights in place: every row starts from this copy of them
            # (on the CPU when the model is spread over devices, so no GPU holds it twice)
            pristine = {k: v.detach().to("cpu" if placed else v.device, copy=True)
                        for k, v in model.state_dict().items()}
            ev, tr = _batches(tokenizer, config)
            for i, key in enumerate(missing):
                what = {"score": "scoring", "rl": "running GRPO from",
                        "prop2": "checking Prop 2 on"}[key.split("/")[0]]
                if i:
                    model.load_state_dict(pristine)
                res.add(_run_key(key, name, step, model, ev, tr, config))
                bar.update(1)
        except torch.OutOfMemoryError:
            model = pristine = None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise SweepOOM(_oom_message(name, what, config, device, out)) from None
        del model, pristine
    bar.close()
    return res


@contextlib.contextmanager
def _quiet_loading(progress: bool):
    """No "Loading weights" bar per checkpoint when the sweep is quiet."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _run_key(key, name, step, model, ev, tr, config: SweepConfig) -> dict:
    dev = next(model.parameters()).device                 # the input device (device_map: the first)
    t0 = time.perf_counter()
    with config.autocast(dev):
        if key.startswith("score/"):
            s = impact.checkpoint_score(model, _to(ev, dev), alpha=config.alpha,
                                        group_size=config.grpo.group_size, layer=config.layer,
                                        adv_kind=config.grpo.adv_kind, seed=config.score_seed,
                                        checkpoint=name, micro_batch=config.micro_batch)
            row = {"kind": "score", "key": key, "checkpoint": name, "step": step, **s}
        elif key.startswith("prop2/"):
            from vghlib.sampling_gap import prop2_per_position

            sub = _to(ev, dev)
            n = config.prop2_prompts
            c = prop2_per_position(model, sub.input_ids[:n], sub.attention_mask[:n],
                                   chunk=config.micro_batch or 64)
            row = {"kind": "prop2", "key": key, "checkpoint": name, "step": step,
                   **{k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in c.items()}}
        else:
            seed = int(key.rsplit("seed", 1)[1])
            rec = train_grpo(model, tr, ev, config.grpo, max(config.budgets), seed=seed,
                             checkpoint=name, record_at=config.budgets,
                             micro_batch=config.micro_batch)
            row = {"kind": "rl", "key": key, "checkpoint": name, "step": step, "seed": seed,
                   "r_before": rec.r_exact[0],
                   "r_after": {str(b): rec.r_after(b) for b in config.budgets},
                   "r_sampled": rec.r_sampled,
                   "clip_frac": rec.clip_frac}
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def _to(batch, device):
    from vghlib.train import _to as move

    return move(batch, device)


# --------------------------------------------------------------------------------------------
# Reading a results file back: one row per checkpoint
# --------------------------------------------------------------------------------------------

@dataclass
class Summary:
    """Per-checkpoint arrays, in step order. ``r_after[K]`` and ``gain[K]`` are means over seeds;
    ``gain_sd[K]`` the sd over seeds; ``mean_gain`` is the paper's mean ΔR over budgets (and
    seeds); ``score[name]`` the score fields (e.g. ``"p_gap_single"``; ``"prompt_p"`` and
    ``"prompt_g2"`` are (checkpoints, prompts) arrays)."""

    names: list
    steps: np.ndarray
    r_before: np.ndarray
    budgets: tuple
    r_after: dict
    gain: dict
    gain_sd: dict
    mean_gain: np.ndarray
    mean_r_after: np.ndarray
    score: dict
    config: SweepConfig


def summarise(path, config: SweepConfig | None = None) -> Summary:
    """Read ``path`` into a :class:`Summary`; every checkpoint must have its score and all seeds.

    With ``config`` the file must have been written by it (else :class:`ResultsMismatch`);
    without, the file's own header is used. The numerics are read from the file's header, so a
    file written by ``python -m vghlib sweep`` reads back anywhere.
    """
    path = Path(path)
    try:
        head = json.loads(path.read_text().splitlines()[0])
        if config is None:
            config = SweepConfig.from_dict(head["config"])
    except (IndexError, KeyError, json.JSONDecodeError, TypeError):
        raise ResultsMismatch(f"{path} is not a sweep results file") from None
    rows = ResultsFile(path, config, numerics=head.get("numerics")).rows
    scores = {r["checkpoint"]: r for r in rows.values() if r["kind"] == "score"}
    rl = [r for r in rows.values() if r["kind"] == "rl"]
    names = sorted(scores, key=lambda n: scores[n]["step"])
    if not names:
        raise ValueError(f"{path} holds no score rows yet: run the sweep first")
    incomplete = [n for n in names
                  if sorted(r["seed"] for r in rl if r["checkpoint"] == n) != sorted(config.seeds)]
    if incomplete:
        raise ValueError(f"{path}: checkpoints {incomplete} lack some GRPO seeds; resume the sweep "
                         "with the same command to finish them")
    B = config.budgets
    per = {n: [r for r in rl if r["checkpoint"] == n] for n in names}
    r_after = {b: np.array([np.mean([r["r_after"][str(b)] for r in per[n]]) for n in names])
               for b in B}
    rb = np.array([scores[n]["r_before"] for n in names])
    gains = {b: np.array([[r["r_after"][str(b)] - r["r_before"] for r in per[n]] for n in names])
             for b in B}                                                  # (C, seeds)
    fields_ = [k for k, v in scores[names[0]].items()
               if isinstance(v, (int, float, list)) and k not in ("step", "seconds")]
    return Summary(
        names=names, steps=np.array([scores[n]["step"] for n in names]), r_before=rb, budgets=B,
        r_after=r_after, gain={b: g.mean(1) for b, g in gains.items()},
        gain_sd={b: g.std(1) for b, g in gains.items()},
        mean_gain=np.mean([gains[b].mean(1) for b in B], axis=0),
        mean_r_after=np.mean([r_after[b] for b in B], axis=0),
        score={k: np.array([scores[n][k] for n in names]) for k in fields_}, config=config)
    # score["prompt_p"], score["prompt_g2"]: (C, n_eval) per-prompt values


def read_prop2(path) -> list[dict]:
    """The ``"prop2"`` rows of a results file, in step order, with numpy arrays per position.

    Each dict has ``checkpoint``, ``step``, ``c_vocab`` and the arrays of
    :func:`vghlib.sampling_gap.prop2_per_position` (``jac_norm``, ``paper_bound``, ``entropy``...).
    """
    rows = [json.loads(x) for x in Path(path).read_text().splitlines()[1:] if x.strip()]
    out = []
    for r in sorted((r for r in rows if r.get("kind") == "prop2"), key=lambda r: r["step"]):
        out.append({k: (np.asarray(v) if isinstance(v, list) else v) for k, v in r.items()})
    if not out:
        raise ValueError(f"{path} holds no prop2 rows: run the sweep with --prop2-prompts N")
    return out


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _ints(s: str) -> tuple:
    try:
        return tuple(int(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


def build_parser() -> argparse.ArgumentParser:
    d, g = SweepConfig(), GRPOConfig()
    ap = argparse.ArgumentParser(
        prog="python -m vghlib sweep",
        description="Score each checkpoint (Σ, Λ, H_α, P_gap) and run GRPO from it for every budget "
                    "and seed; results are appended to a resumable JSON-lines file. Under torchrun "
                    "(or with --shard i/n) the checkpoints are split between processes.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model",
                     help="a Hub model id whose branches are checkpoints (allenai/OLMo-2-0425-1B), a "
                          "local folder of step<N>/ checkpoints, or 'laptop' (Part IV's trajectory)")
    src.add_argument("--checkpoints",
                     help="a trajectory folder (python -m vghlib pretrain --out DIR) or any folder "
                          "of step<N>/ checkpoints saved with save_pretrained (same as --model DIR)")
    ap.add_argument("--steps", default=None,
                    help="which checkpoints: START:STOP:STEP (STOP included), a,b,c, or all "
                         "(default: all of a folder; required for a Hub model)")
    ap.add_argument("--stage", default="stage1",
                    help="Hub branches of this stage only (default stage1: OLMo-2's pretraining)")
    ap.add_argument("--cache-dir", default=None, help="Hugging Face cache (default: HF_HUB_CACHE)")
    ap.add_argument("--out", required=True, help="results file (.jsonl); resumed when it exists")
    ap.add_argument("--shard", default=None, metavar="I/N",
                    help="run only shard I of N (0-based) of the checkpoints, into OUT's shard file "
                         "(for job arrays); a later run without --shard merges the shard files")
    ap.add_argument("--budgets", type=_ints, default=d.budgets,
                    help=f"GRPO budgets K, comma-separated (default {','.join(map(str, d.budgets))})")
    ap.add_argument("--seeds", type=_ints, default=d.seeds,
                    help=f"GRPO seeds, comma-separated (default {','.join(map(str, d.seeds))})")
    ap.add_argument("--alpha", type=float, default=d.alpha, help=f"headroom α (default {d.alpha})")
    ap.add_argument("--group-size", type=int, default=g.group_size,
                    help=f"GRPO group size G (default {g.group_size})")
    ap.add_argument("--layer", type=int, default=d.layer,
                    help="hidden state the score reads: 0 embeddings .. L last block (default -1 = L)")
    ap.add_argument("--lr", type=float, default=g.learning_rate,
                    help=f"GRPO learning rate (default {g.learning_rate})")
    ap.add_argument("--adv-kind", default=g.adv_kind, help="advantage: grpo, mean (Dr. GRPO), loo")
    ap.add_argument("--loss-type", default=g.loss_type, help="grpo, bnpo or dr_grpo")
    ap.add_argument("--reward-kind", default=g.reward_kind, help="indicator, prob or centered")
    ap.add_argument("--n-eval", type=int, default=d.n_eval, help=f"evaluation prompts (default {d.n_eval})")
    ap.add_argument("--n-train", type=int, default=d.n_train,
                    help=f"pool of training prompts (default {d.n_train})")
    ap.add_argument("--prompts-per-step", type=int, default=g.prompts_per_step,
                    help=f"prompts per GRPO update (default {g.prompts_per_step})")
    ap.add_argument("--prop2-prompts", type=int, default=d.prop2_prompts,
                    help="also check Prop 2 at every position of this many evaluation prompts "
                         "(the paper's Figure 2; default 0: off)")
    ap.add_argument("--dtype", default=d.dtype,
                    help="float64 (default), float32, or bfloat16 (mixed precision: float32 weights, "
                         "bf16 autocast)")
    ap.add_argument("--micro-batch", type=int, default=None,
                    help="at most this many prompts per forward pass (default: all at once); lower "
                         "it when the device runs out of memory")
    ap.add_argument("--device", default="cpu",
                    help="cpu, cuda, cuda:1, ... (under torchrun, cuda means cuda:LOCAL_RANK)")
    ap.add_argument("--device-map", default=None,
                    help="auto: spread a model larger than one GPU over all GPUs (accelerate)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: the bits of a CPU run depend on it)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def config_from_args(a) -> SweepConfig:
    g = GRPOConfig(group_size=a.group_size, learning_rate=a.lr, adv_kind=a.adv_kind,
                   loss_type=a.loss_type, reward_kind=a.reward_kind,
                   prompts_per_step=a.prompts_per_step)
    return SweepConfig(budgets=a.budgets, seeds=a.seeds, alpha=a.alpha, layer=a.layer,
                       n_eval=a.n_eval, n_train=a.n_train, dtype=a.dtype, grpo=g,
                       micro_batch=a.micro_batch, prop2_prompts=a.prop2_prompts)


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
        raise ValueError(f"--shard {spec!r}: expected I/N with 0 <= I < N, e.g. 0/4 .. 3/4") from None
    return i, n


def shard_path(out, index: int, count: int) -> Path:
    """The results file of shard ``index`` of ``count``: ``OUT.shard<i>of<n>.jsonl`` beside OUT."""
    out = Path(out)
    return out.with_name(f"{out.stem}.shard{index}of{count}{out.suffix or '.jsonl'}")


def shard_files(out) -> list[Path]:
    out = Path(out)
    return sorted(out.parent.glob(f"{out.stem}.shard*of*{out.suffix or '.jsonl'}"))


def _same(a: dict, b: dict) -> bool:
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    return strip(a) == strip(b)


def merge_rows(res: ResultsFile, rows, origin: str) -> int:
    """Append to ``res`` the ``rows`` it lacks; a key present with other numbers is an error
    (two runs of one configuration must agree). Returns the number of rows added."""
    added = 0
    for row in rows:
        if row.get("kind") == "config":
            continue
        have = res.rows.get(row["key"])
        if have is None:
            res.add(row)
            added += 1
        elif not _same(have, row):
            raise ResultsMismatch(f"{origin} and {res.path} disagree on row {row['key']!r}: two "
                                  "runs of one configuration gave different numbers (another "
                                  "software stack or CPU?). Keep one of the files.")
    return added


def merge_shards(out, config: SweepConfig, source: str = "") -> int:
    """Merge every ``OUT.shard*of*.jsonl`` of this configuration into ``out``; returns rows added.

    The shard files are left in place (a merge is idempotent: merging again adds nothing)."""
    res = ResultsFile(out, config, source)
    return sum(merge_rows(res, ResultsFile(p, config).rows.values(), str(p))
               for p in shard_files(out))


def _dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    threads_before = torch.get_num_threads()
    if a.device == "cpu" and a.threads > 0:
        torch.set_num_threads(a.threads)
    try:
        return _main(a)
    finally:
        torch.set_num_threads(threads_before)


def _say(msg: str, rank: int = 0) -> None:
    if rank == 0:
        print(msg, file=sys.stderr)


def _main(a) -> int:
    from vghlib import checkpoints as ckpts

    rank, world, local = _dist_env()
    try:
        config = config_from_args(a)
        shard = parse_shard(a.shard)
        if world > 1 and a.shard:
            raise ValueError("--shard and torchrun both split the checkpoints: use one of them")
        model_spec = a.model if a.model is not None else a.checkpoints
        if a.model is not None and not Path(a.model).expanduser().is_dir() \
                and a.model != ckpts.LAPTOP and a.steps is None:
            raise ValueError(f"--model {a.model} is a Hub model: give --steps (e.g. "
                             "50000:1000000:50000), so that a sweep never runs on every branch")
        refs = ckpts.resolve(model_spec, a.steps, stage=a.stage, cache_dir=a.cache_dir)
    except ValueError as err:                          # CheckpointError is a ValueError
        _say(f"error: {err}", rank)
        return 2
    device = a.device
    if world > 1 and device == "cuda":
        device = f"cuda:{local}"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            _say("error: --device cuda but torch sees no GPU (a CPU build of torch, or "
                 "CUDA_VISIBLE_DEVICES is empty); use --device cpu", rank)
            return 2
        torch.cuda.set_device(torch.device(device))
    if world > 1:
        import datetime

        import torch.distributed as dist

        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo",
                                timeout=datetime.timedelta(days=2))
        index, count = rank, world
    else:
        index, count = shard
    mine = refs[index::count]
    out = Path(a.out) if count == 1 else shard_path(a.out, index, count)
    _say(f"{len(refs)} checkpoints ({refs[0].location if refs[0].is_hub else 'local'}), "
         f"{count} shard(s)" + ("" if a.quiet else ":\n" + ckpts.describe(refs)), rank)

    def load(ref):
        return ckpts.load(ref, config.torch_dtype, device_map=a.device_map, cache_dir=a.cache_dir)

    items = [(r.name, r.step, r) for r in mine]
    source = ",".join(sorted({r.location for r in refs})) if refs[0].is_hub else str(
        Path(refs[0].location).parent.resolve())
    rc = 0
    try:
        done = set()
        if count > 1 and Path(a.out).exists():        # rows the merged file already holds
            done = set(ResultsFile(a.out, config, source).rows)
        elif count == 1 and shard_files(a.out):       # finished job-array shards: merge first
            n = merge_shards(a.out, config, source)
            _say(f"merged {n} rows from {len(shard_files(a.out))} shard files into {a.out}")
        res = run_sweep(items, out, config, load=load, device=device, progress=not a.quiet,
                        source=source, skip=done, placed=a.device_map is not None)
    except (ResultsMismatch, ValueError, SweepOOM) as err:
        print(f"error{f' (rank {rank})' if world > 1 else ''}: {err}", file=sys.stderr)
        rc = 3 if isinstance(err, SweepOOM) else 2
        res = None
    if world > 1:
        import torch.distributed as dist

        mine_rows = [] if res is None else [r for r in res.rows.values() if r["kind"] != "config"]
        gathered = [None] * world if rank == 0 else None
        dist.gather_object((rc, mine_rows), gathered, dst=0)
        if rank == 0:
            rcs = [g[0] for g in gathered]
            if not any(rcs):
                merged = ResultsFile(a.out, config, source)
                for r, (_, rows) in enumerate(gathered):
                    merge_rows(merged, rows, f"rank {r}")
                res = merged
            rc = max(rcs)
        dist.destroy_process_group()
        if rank != 0:
            return rc
    if rc:
        return rc
    n = sum(r["kind"] != "config" for r in res.rows.values())
    print(f"{res.path}: {n} rows for {len(items) if count == 1 else len(refs)} checkpoints "
          f"(config {config.hash()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
