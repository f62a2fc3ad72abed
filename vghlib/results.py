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

Every row is keyed (``"score/<checkpoint>"``, ``"rl/<checkpoint>/seed<s>"``), records the weights
it measured (``"weights"``: ``sha256:<hex>`` of the checkpoint's tensors, or ``git:<commit>`` of a
Hub revision) and carries a checksum of its own content (``"check"``). What the file guarantees
(:class:`ResultsFile`):

* a file is changed only after it has been read and accepted: its header is this
  configuration's, every complete line is an intact row, and every checkpoint's weights are the
  ones it recorded. Otherwise the command stops with a message and the file is left byte for
  byte as it was. A row edited by hand or damaged is reported with its line number;
* one writer at a time: the writer holds an exclusive ``flock`` on the file, which the kernel
  releases when the process ends, even by ``kill -9``; a second writer is refused with a message;
* each row is one ``write``, checked for its length, then ``fsync``-ed. A failed or short write
  (a full disk) is undone: the file goes back to its last complete row. A write cut short by a
  crash leaves a torn last line, which the next run cuts off and recomputes.

Shard files of one sweep (``OUT.shard<i>of<n>.jsonl``) merge into OUT (:func:`merge_shards`);
:func:`summarise` reads a finished file back as per-checkpoint arrays.
"""

from __future__ import annotations

import contextlib
import fcntl
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
    "ResultsError",
    "ResultsMismatch",
    "ResultsLocked",
    "ResultsWriteError",
    "checksum",
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

RESULTS_VERSION = 3  # 3: rows carry a checksum and the weights they measured


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
        if self.n_eval < 1:
            raise ValueError(f"n_eval (--n-eval) must be at least 1, got {self.n_eval}")
        if self.n_train < self.grpo.prompts_per_step:
            raise ValueError(
                f"n_train (--n-train) = {self.n_train} is smaller than the "
                f"{self.grpo.prompts_per_step} prompts each GRPO update draws from it "
                "(--prompts-per-step): raise --n-train or lower --prompts-per-step"
            )
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
        d["task"] = self.task.to_dict()  # a one-token task keeps its old form (and hash)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SweepConfig":
        d = dict(d)
        d.pop("autocast", None)
        d["grpo"] = GRPOConfig(**d["grpo"])
        d["task"] = tasks.LabelCopyTask.from_dict(d["task"])
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


class ResultsError(ValueError):
    """A results file that cannot be used as asked; the message says what to do."""


class ResultsMismatch(ResultsError):
    """A results file that belongs to another configuration or other weights, is not a results
    file, or holds a row that is damaged or was edited by hand."""


class ResultsLocked(ResultsError):
    """Another process is writing to the results file."""


class ResultsWriteError(ResultsError):
    """A row could not be written in full (a full disk, a short write); the file was put back at
    its last complete row."""


def checksum(row: dict) -> str:
    """The first 16 hex digits of the sha256 of ``row`` (without its ``"check"`` field)."""
    body = {k: v for k, v in row.items() if k != "check"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


_ROW_KINDS = ("score", "rl", "prop2")


def _parse(path: Path, raw: bytes) -> tuple[dict, dict, int]:
    """``(header, rows by key, length of the complete lines)`` of a results file's bytes.

    Checks the header and every complete line; a torn last line (no newline yet) is left out and
    reported through the length. Raises :class:`ResultsMismatch`, naming the line, for anything
    else: the file is never changed here.
    """
    end = raw.find(b"\n")
    head = None
    if end >= 0:
        try:
            head = json.loads(raw[:end])
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    if not isinstance(head, dict) or head.get("kind") != "config" or "config_hash" not in head:
        why = (
            "it has no complete first line (if a sweep was stopped while writing its first "
            "line, the file holds no rows: delete it and rerun)"
            if end < 0
            else "its first line is not one"
        )
        raise ResultsMismatch(
            f"{path} is not a sweep results file: a results file starts with the config row of "
            f"`python -m vghlib sweep`, and {why}. The file was left unchanged; pass another "
            "--out."
        )
    if head.get("version") != RESULTS_VERSION:
        raise ResultsMismatch(
            f"{path} was written by another version of vghlib (results format "
            f"{head.get('version', 2)}, this one reads {RESULTS_VERSION}: rows carry a checksum "
            "and the weights they measured); it was left unchanged. Rerun the sweep with a new "
            "--out."
        )
    if head.get("check") != checksum(head):
        raise ResultsMismatch(
            f"{path}:1: the config row does not match its checksum (edited by hand or "
            "damaged); the file was left unchanged. Restore it, or pass a new --out."
        )
    good = raw.rfind(b"\n") + 1  # after it: a torn write, cut off once the file is accepted
    rows: dict[str, dict] = {}
    where: dict[str, int] = {}
    for n, line in enumerate(raw[end + 1 : good].split(b"\n")[:-1], start=2):
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ResultsMismatch(
                f"{path}:{n} is not valid JSON ({err}): a damaged line, or one edited by hand. "
                "The file was left unchanged; delete that line and rerun the same command "
                "to recompute the row."
            ) from None
        if (
            not isinstance(row, dict)
            or row.get("kind") not in _ROW_KINDS
            or not isinstance(row.get("key"), str)
            or "check" not in row
        ):
            raise ResultsMismatch(
                f"{path}:{n} is not a results row (a row is a JSON object with a kind of "
                f"{', '.join(_ROW_KINDS)}, a key and a checksum; this line is "
                f"{line[:60].decode(errors='replace')!r}). The file was left unchanged; delete "
                "that line and rerun the same command."
            )
        if row["check"] != checksum(row):
            raise ResultsMismatch(
                f"{path}:{n}: row {row['key']!r} does not match its checksum: it was edited by "
                "hand or damaged. The file was left unchanged; delete that line and rerun the "
                "same command to recompute the row, or restore the file from a copy."
            )
        if row["key"] in rows:
            raise ResultsMismatch(
                f"{path}:{n}: row {row['key']!r} is also on line {where[row['key']]}: two "
                "writers wrote to this file at once. Keep one of the two lines."
            )
        row.pop("check")
        rows[row["key"]], where[row["key"]] = row, n
    head.pop("check")
    return head, rows, good


class ResultsFile:
    """A JSON-lines results file: a config header, then keyed rows, each with a checksum.

    Opening it takes an exclusive lock (``fcntl.flock``; the kernel drops it when the process
    ends, even by ``kill -9``), reads the whole file and accepts it only if the header is this
    configuration's, every complete line is an intact row, and every checkpoint's weights are the
    ones ``weights`` ({checkpoint: id}) gives now. Only then is a torn last row (a write cut
    short by a crash) cut off, to be recomputed. A refused file is never changed.

    Each row is written with one ``write`` to the locked descriptor and ``fsync``-ed. A write that
    fails or comes back short (a full disk) is undone: the file is truncated to its last complete
    row, and :class:`ResultsWriteError` says so. ``readonly=True`` reads without the lock and
    without cutting anything (a torn last row is skipped), for reading a file another process
    may still be writing. Use it as a context manager, or :meth:`close` it, to release the lock.
    """

    def __init__(
        self,
        path,
        config: SweepConfig,
        source: str = "",
        numerics: dict | None = None,
        *,
        weights: dict | None = None,
        readonly: bool = False,
    ):
        self.path, self.config, self.source = Path(path), config, source
        self.numerics = numerics or current_numerics()
        self.rows: dict[str, dict] = {}
        self.repaired = 0  # bytes of a torn last row cut off on opening
        self._fd = None
        weights = {k: v for k, v in (weights or {}).items() if v}
        if self.path.is_dir():
            raise ResultsError(
                f"--out {self.path} is a folder; pass a file in it, e.g. "
                f"{self.path / 'results.jsonl'}"
            )
        if self.path.exists() and not self.path.is_file():
            raise ResultsError(
                f"--out {self.path} is not a regular file (a device or a pipe); pass a file name "
                "such as results.jsonl"
            )
        if readonly:
            self.header, self.rows, _ = _parse(self.path, self.path.read_bytes())
            self._check_header()
            self.check_weights(weights)
            return
        self._open()
        try:
            raw = self._read_all()
            if not raw:
                self.header = {
                    "kind": "config",
                    "key": "config",
                    "version": RESULTS_VERSION,
                    "config_hash": config.hash(self.numerics),
                    "config": config.to_dict(),
                    "numerics": self.numerics,
                    "source": source,
                    "weights": weights,
                }
                self._append(self.header)
                return
            self.header, self.rows, good = _parse(self.path, raw)
            self._check_header()
            self.check_weights(weights)
            if good < len(raw):  # accepted: now, and only now, cut off the torn last row
                self.repaired = len(raw) - good
                self._truncate(good)
        except BaseException:
            self.close()
            raise

    # ---- the descriptor and its lock ----

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as err:
            raise ResultsError(
                f"cannot write {self.path} ({err.strerror}): pass an --out in a folder this "
                "user can write to"
            ) from None
        if new:  # the new file's name reaches the disk too, not only its rows
            with contextlib.suppress(OSError):
                folder = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(folder)
                finally:
                    os.close(folder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ResultsLocked(
                f"{self.path} is being written by another process (another sweep holds its "
                "lock). Wait for it to end, then rerun the same command to resume the file, "
                "or pass another --out."
            ) from None
        self._fd = fd

    def _read_all(self) -> bytes:
        size, chunks, at = os.fstat(self._fd).st_size, [], 0
        while at < size:
            chunk = os.pread(self._fd, size - at, at)
            if not chunk:
                break
            chunks.append(chunk)
            at += len(chunk)
        return b"".join(chunks)

    def _truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)

    def close(self) -> None:
        """Release the lock (the rows stay readable in :attr:`rows`)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()

    # ---- checks ----

    def _check_header(self) -> None:
        head = self.header
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
                "sweep's, and the file was left unchanged. Pass a new --out, or the same "
                "settings to resume it."
            )

    def recorded_weights(self, checkpoint: str) -> str | None:
        """The weights id this file recorded for ``checkpoint`` (header or rows), if any."""
        found = self.header.get("weights", {}).get(checkpoint)
        for row in self.rows.values():
            if found is None and row.get("checkpoint") == checkpoint:
                found = row.get("weights")
        return found

    def check_weights(self, weights: dict) -> None:
        """Refuse when a checkpoint's weights id differs from the one this file recorded."""
        for name, now in weights.items():
            then = self.recorded_weights(name)
            if now and then and now != then:
                raise ResultsMismatch(
                    f"{self.path} holds rows of {name} measured on other weights: "
                    f"{_short(then)} (from {self.header.get('source') or 'its first run'}) "
                    f"there, {_short(now)} ({self.source or 'this run'}) here. Rows of different "
                    "weights are never mixed, and the file was left unchanged: pass a new "
                    "--out, or point --checkpoints at the weights the file was written from."
                )

    # ---- writing ----

    def _append(self, row: dict) -> None:
        row = {k: v for k, v in row.items() if k != "check"}
        data = (json.dumps({**row, "check": checksum(row)}, sort_keys=True) + "\n").encode()
        size = os.fstat(self._fd).st_size
        try:
            n = os.write(self._fd, data)  # one write of the whole row
            if n != len(data):
                raise OSError(
                    0, f"short write: {n} of {len(data)} bytes written (is the disk full?)"
                )
            os.fsync(self._fd)
        except OSError as err:
            why = err.strerror or str(err)
            try:
                self._truncate(size)  # back to the last complete row
                state = f"the file is back at its last complete row ({len(self.rows)} rows)"
            except OSError:
                state = "the file may end in a torn row, which the next run cuts off"
            raise ResultsWriteError(
                f"writing row {row['key']!r} to {self.path} failed ({why}); {state}. Free some "
                "space (or fix the disk), then rerun the same command: it resumes there."
            ) from None

    def add(self, row: dict) -> None:
        if row["key"] in self.rows:
            raise ValueError(f"row {row['key']!r} is already in {self.path}")
        if self._fd is None:
            raise ValueError(f"{self.path} was opened read-only, or closed: open it to write")
        self._append(row)
        self.rows[row["key"]] = {k: v for k, v in row.items() if k != "check"}

    def __contains__(self, key: str) -> bool:
        return key in self.rows


def _short(weights_id: str) -> str:
    kind, _, digest = weights_id.partition(":")
    return f"{kind}:{digest[:16]}" if digest else weights_id[:24]


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
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "check")}  # noqa: E731
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


def merge_shards(out, config: SweepConfig, source: str = "", weights: dict | None = None) -> int:
    """Merge every ``OUT.shard*of*.jsonl`` of this configuration into ``out``; returns rows added.

    ``weights``: {checkpoint: weights id}; a shard measured on other weights is refused. The
    shard files are left in place (a merge is idempotent: merging again adds nothing)."""
    with ResultsFile(out, config, source, weights=weights) as res:
        return sum(
            merge_rows(
                res, ResultsFile(p, config, weights=weights, readonly=True).rows.values(), str(p)
            )
            for p in shard_files(out)
        )


# --------------------------------------------------------------------------------------------
# Reading a results file back: one row per checkpoint
# --------------------------------------------------------------------------------------------


@dataclass
class Summary:
    """Per-checkpoint arrays, in step order. ``r_after[K]`` and ``gain[K]`` are means over seeds;
    ``gain_sd[K]`` the sd over seeds and ``gain_by_seed[K]`` each seed's, (checkpoints, seeds);
    ``mean_gain`` is the paper's mean ΔR over budgets (and
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
    gain_by_seed: dict = field(default_factory=dict)  # K -> (checkpoints, seeds) ΔR


def summarise(path, config: SweepConfig | None = None) -> Summary:
    """Read ``path`` into a :class:`Summary`; every checkpoint must have its score and all seeds.

    With ``config`` the file must have been written by it (else :class:`ResultsMismatch`);
    without, the file's own header is used. The numerics are read from the file's header, so a
    file written by ``python -m vghlib sweep`` reads back anywhere.
    """
    path = Path(path)
    head, rows = _read(path)
    if config is None:
        config = SweepConfig.from_dict(head["config"])
    ResultsFile(path, config, numerics=head.get("numerics"), readonly=True)  # its header checks
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
        gain_by_seed=gains,
    )
    # score["prompt_p"], score["prompt_g2"]: (C, n_eval) per-prompt values


def _read(path: Path) -> tuple[dict, dict]:
    """The header and the rows of a results file, read without a lock (a torn last row is
    skipped), every line checked; :class:`ResultsError` when it is not one."""
    if not path.is_file():
        raise ResultsError(f"{path} does not exist (or is not a file): run the sweep first")
    head, rows, _ = _parse(path, path.read_bytes())
    return head, rows


def read_prop2(path) -> list[dict]:
    """The ``"prop2"`` rows of a results file, in step order, with numpy arrays per position.

    Each dict has ``checkpoint``, ``step``, ``c_vocab`` and the arrays of
    :func:`vghlib.sampling_gap.prop2_per_position` (``jac_norm``, ``paper_bound``, ``entropy``...).
    """
    _, rows = _read(Path(path))
    out = []
    for r in sorted((r for r in rows.values() if r["kind"] == "prop2"), key=lambda r: r["step"]):
        out.append({k: (np.asarray(v) if isinstance(v, list) else v) for k, v in r.items()})
    if not out:
        raise ValueError(f"{path} holds no prop2 rows: run the sweep with --prop2-prompts N")
    return out
