"""The results file of a sweep: one JSON object per line, never mixed, resumable, mergeable.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6 (20 checkpoints, GRPO budgets
K ∈ {10, 20, 25, 30}, the predictors Spearman(P_gap, mean ΔR) and Spearman(z(R_before) +
z(P_gap), z(R_after))).

A results file (``python -m vghlib sweep ... --out results.jsonl``) holds:

* a ``"config"`` row first: every setting that changes a number (:class:`SweepConfig`), and its
  hash. A results file written under another configuration is refused, never mixed in;
* one ``"score"`` row per checkpoint (:func:`vghlib.scoring.checkpoint_score`: Σ, Λ, S, H_α,
  P_gap, R_before);
* one ``"rl"`` row per (checkpoint, seed): a single GRPO run of max(budgets) updates that
  measures the exact R after each budget, so all budgets of a seed come from one run (R_after(10)
  is the same run as R_after(30), stopped earlier). The paper does not say whether its budgets
  were separate runs; one run per seed is what fits a laptop;
* with ``prop2_prompts > 0``, one ``"prop2"`` row per checkpoint (both sides of Prop 2 at every
  position, the paper's Figure 2).

Every row is keyed (``"score/<checkpoint>"``, ``"rl/<checkpoint>/seed<s>"``) and appended with a
single ``write`` to a file opened in append mode, then flushed to disk (:class:`ResultsFile`). A
half-written last line is cut off on reading and recomputed. Shard files of one sweep
(``OUT.shard<i>of<n>.jsonl``) merge into OUT (:func:`merge_shards`); :func:`summarise` reads a
finished file back as per-checkpoint arrays.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vghlib import impact, tasks
from vghlib.env import numerics as current_numerics
from vghlib.train import GRPOConfig

__all__ = [
    "SweepConfig",
    "ResultsFile",
    "ResultsMismatch",
    "Summary",
    "summarise",
    "read_prop2",
    "score_key",
    "rl_key",
    "prop2_key",
    "shard_path",
    "shard_files",
    "merge_rows",
    "merge_shards",
]

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
        if self.micro_batch is not None and (
            not isinstance(self.micro_batch, int) or self.micro_batch < 1
        ):
            raise ValueError(f"micro_batch must be a positive integer, got {self.micro_batch!r}")
        if not 0 <= self.prop2_prompts <= self.n_eval:
            raise ValueError(
                f"prop2_prompts must lie in 0..n_eval={self.n_eval}, got {self.prop2_prompts}"
            )
        impact.check_alpha(self.alpha)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, default in (("micro_batch", None), ("prop2_prompts", 0)):  # absent = default, so
            if d[k] == default:  # older files still match
                del d[k]
        if self.dtype == "bfloat16":  # bfloat16 files written before train_grpo cleared the
            d["autocast"] = "recast-after-each-step"  # autocast cache are refused, not mixed in
        d["budgets"], d["seeds"] = list(self.budgets), list(self.seeds)
        d["task"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["task"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SweepConfig":
        d = dict(d)
        d.pop("autocast", None)
        d["grpo"] = GRPOConfig(**d["grpo"])
        d["task"] = tasks.LabelCopyTask(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in d["task"].items()}
        )
        d["budgets"], d["seeds"] = tuple(d["budgets"]), tuple(d["seeds"])
        return cls(**d)

    def hash(self, numerics: dict | None = None) -> str:
        """Hash of the config, the results format and the numerics (default: this process's)."""
        blob = json.dumps(
            {
                "version": RESULTS_VERSION,
                "numerics": numerics or current_numerics(),
                **self.to_dict(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def batches(self, tokenizer) -> tuple[tasks.TaskBatch, tasks.TaskBatch]:
        """The evaluation prompts (R and the score) and the pool GRPO draws from, tokenized."""
        return (
            self.task.batch(tokenizer, self.n_eval, seed=self.eval_seed),
            self.task.batch(tokenizer, self.n_train, seed=self.train_seed),
        )

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
        self.path, self.config, self.source = Path(path), config, source
        self.numerics = numerics or current_numerics()
        self.rows: dict[str, dict] = {}
        if self.path.exists() and self.path.stat().st_size:
            self._read()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append(
                {
                    "kind": "config",
                    "key": "config",
                    "config_hash": config.hash(self.numerics),
                    "config": config.to_dict(),
                    "numerics": self.numerics,
                    "source": source,
                }
            )

    def _read(self) -> None:
        raw = self.path.read_bytes()
        good = raw.rfind(b"\n") + 1  # everything after it is a torn write
        if good < len(raw):
            with open(self.path, "r+b") as f:  # cut it off: that row is recomputed
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
        lines = raw[:good].decode().splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            head = {}
        if head.get("kind") != "config":
            raise ResultsMismatch(
                f"{self.path} is not a sweep results file (its first line is not "
                "a config row); pass another --out"
            )
        if head.get("config_hash") != self.config.hash(self.numerics):
            diff = _diff(head.get("config", {}), self.config.to_dict())
            if not diff and head.get("numerics") != self.numerics:
                diff = [
                    f"numerics ({head.get('numerics')} there, {self.numerics} here; "
                    "`python -m vghlib sweep` pins them)"
                ]
            raise ResultsMismatch(
                f"{self.path} was written by another configuration (differs in: "
                f"{', '.join(diff) or 'the results format'}); its rows cannot be mixed with this "
                "sweep's. Pass a new --out, or the same settings to resume it."
            )
        for n, line in enumerate(lines[1:], start=2):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ResultsMismatch(
                    f"{self.path}:{n} is not valid JSON ({err}); the file was "
                    "edited by hand? Remove that line to resume."
                ) from None
            self.rows[row["key"]] = row
        self.header = head

    def _append(self, row: dict) -> None:
        data = (json.dumps(row, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)  # one write: the row is there or not
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


# --------------------------------------------------------------------------------------------
# Shards: one file per process of a sweep, merged into one
# --------------------------------------------------------------------------------------------


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
            raise ResultsMismatch(
                f"{origin} and {res.path} disagree on row {row['key']!r}: two "
                "runs of one configuration gave different numbers (another "
                "software stack or CPU?). Keep one of the files."
            )
    return added


def merge_shards(out, config: SweepConfig, source: str = "") -> int:
    """Merge every ``OUT.shard*of*.jsonl`` of this configuration into ``out``; returns rows added.

    The shard files are left in place (a merge is idempotent: merging again adds nothing)."""
    res = ResultsFile(out, config, source)
    return sum(
        merge_rows(res, ResultsFile(p, config).rows.values(), str(p)) for p in shard_files(out)
    )


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
    incomplete = [
        n
        for n in names
        if sorted(r["seed"] for r in rl if r["checkpoint"] == n) != sorted(config.seeds)
    ]
    if incomplete:
        raise ValueError(
            f"{path}: checkpoints {incomplete} lack some GRPO seeds; resume the sweep "
            "with the same command to finish them"
        )
    B = config.budgets
    per = {n: [r for r in rl if r["checkpoint"] == n] for n in names}
    r_after = {
        b: np.array([np.mean([r["r_after"][str(b)] for r in per[n]]) for n in names]) for b in B
    }
    rb = np.array([scores[n]["r_before"] for n in names])
    gains = {
        b: np.array([[r["r_after"][str(b)] - r["r_before"] for r in per[n]] for n in names])
        for b in B
    }  # (C, seeds)
    fields_ = [
        k
        for k, v in scores[names[0]].items()
        if isinstance(v, (int, float, list)) and k not in ("step", "seconds")
    ]
    return Summary(
        names=names,
        steps=np.array([scores[n]["step"] for n in names]),
        r_before=rb,
        budgets=B,
        r_after=r_after,
        gain={b: g.mean(1) for b, g in gains.items()},
        gain_sd={b: g.std(1) for b, g in gains.items()},
        mean_gain=np.mean([gains[b].mean(1) for b in B], axis=0),
        mean_r_after=np.mean([r_after[b] for b in B], axis=0),
        score={k: np.array([scores[n][k] for n in names]) for k in fields_},
        config=config,
    )
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
