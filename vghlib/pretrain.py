"""A laptop pretraining trajectory: a tiny OLMo-2 learns label copying, checkpoint by checkpoint.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6 (GRPO from each of 20 OLMo-2 1B
pretraining checkpoints on a label-copying task), here at a scale that builds in minutes on 2 CPU
cores.

The corpus, and why it looks like this. Each training batch is a fixed mix of two kinds of
documents, drawn fresh at every step from one seeded generator (no document is seen twice):

* label-copying documents (``copy_fraction`` of a batch): a prompt of ``vghlib.tasks.LabelCopyTask``
  followed by its answer, ``sun B tree label C dog hill A sky answer C``. The task's prompts are
  these documents without their last word, so they are in distribution by construction.
* filler documents: text from a random first-order Markov chain over the filler words and the four
  labels (never the marker words ``label``/``answer``). They give the model something else to
  learn, as web text does, and make labels ordinary words, so that "a label follows ``answer``" has
  to be learned from the copying documents alone.

What makes copying learnable but not trivial is the distractors: 0 to 3 other labels sit among
the filler, so the answer is the label *right after* ``label``, not any label in sight. That takes
two attention steps (a label token must learn what precedes it; ``answer`` must look for that
feature), so the trajectory passes through stages, each visible in R_before = E_q p(y*|q):
random init (R ≈ 1/|V| ≈ 0.03, hopeless), "the answer is some label" (R ≈ 0.25), "copy a label of
the prompt" (R ≈ 0.3-0.5), then the marker is found and R saturates near 1 (≥ 0.995 at the end
for seeds 0, 1 and 3). The checkpoint steps grow as i^1.5 (``spacing_power``), since the early
stages are fast: with evenly spaced steps most of the 24 checkpoints would sit on the plateau.

Reproducibility. Training runs in float64, on ``threads`` = 1 intra-op thread (part of the
config: a different thread count changes the rounding of reductions), from weights initialised by
integer draws of a seeded ``torch.Generator`` mapped exactly to floats (a uniform law with Hugging
Face's std), so the initial weights are bit-identical on every CPU. A build is then bit-identical
on one machine and software stack (tests check it), but not across CPUs: float64 rounding of matrix
products and vectorised kernels differs between CPU types (AVX2, AVX-512, ARM) at the 1e-16 level,
and this training is chaotic. Measured (``benchmarks/pretrain_time.py --perturb``): a relative
change of 1e-13 in the initial weights stays below 1e-5 in R_before up to step ~100, moves
R_before by up to 0.2 around the copying transition (steps ~250-600, where R climbs from 0.3 to
0.9), and by <= 1e-3 at the last checkpoint. A 1e-7 change does the same. So float64 does not make
the middle of the trajectory reproducible to 2 decimals on other CPUs; what a book can print and
compare is R_before of checkpoints loaded from saved files (one float64 forward pass: no chaos),
or the stable ends of a fresh build. Each checkpoint records a sha256 of its weights, so two
builds can be compared bit for bit.

Files. ``build_trajectory(out)`` writes ``out/stepNNNNNN/`` folders (``save_pretrained`` of the
model, safetensors only, and of the tokenizer) and ``out/manifest.json`` (config, its hash, R_before
of every checkpoint). A checkpoint is written to a hidden temp folder and renamed when complete, and
the manifest says ``"complete": true`` only at the end, so an interrupted build never looks done.
A second build with the same config reads the manifest and trains nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import tokenizers
import torch
import torch.nn.functional as F
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from tqdm.auto import tqdm
from transformers import Olmo2Config, Olmo2ForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from vghlib.env import numerics
from vghlib.tasks import LabelCopyTask, TaskBatch, encode, r_before

CODE_VERSION = 1  # bump when training code changes what a config produces (invalidates caches)
MANIFEST = "manifest.json"
SPECIAL_TOKENS = ("[PAD]", "[BOS]", "[EOS]", "[UNK]")  # ids 0, 1, 2, 3
BUILD_HINT = "build one with `python -m vghlib pretrain --out {folder}`"


class TrajectoryError(ValueError):
    """A trajectory folder is missing, unfinished, or was built with another config."""


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a trajectory; its hash names the cache (``manifest.json``)."""

    seed: int = 0  # data stream and initial weights
    task: LabelCopyTask = field(default_factory=LabelCopyTask)  # the copying documents' format
    copy_fraction: float = 0.5  # half of each batch copies: fast enough to saturate in budget
    markov_sharpness: float = 8.0  # filler transitions ∝ u^8, u ~ U(0,1): a few likely successors
    tokenizer_docs: int = 2000  # documents the WordLevel tokenizer is trained on
    hidden_size: int = 48  # d=32 stalls near R = 0.96-0.98 on some seeds; 48 reaches >= 0.995
    n_layers: int = 2  # copying after a marker needs two attention steps
    n_heads: int = 4
    intermediate_size: int = 128
    init_std: float = 0.02  # Hugging Face's initializer_range
    steps: int = 2000  # R_before >= 0.99 from ~1300 steps on (seeds 0, 1, 3); ~1 CPU-minute
    batch_size: int = 64
    lr: float = 3e-3  # AdamW peak learning rate
    warmup: int = 50  # linear warmup steps, then cosine decay
    min_lr_ratio: float = 0.1  # cosine ends at 10% of the peak
    weight_decay: float = 0.0
    n_checkpoints: int = 24  # including step 0 and the last step (the paper has 20)
    spacing_power: float = 1.5  # step_i = steps * (i / (n-1))^p: denser early, where R moves
    eval_prompts: int = 512  # a fixed set: its mean is within ~0.02 of E_q p(y*|q)
    eval_seed: int = 1234  # eval prompts: the same for every seed and checkpoint
    threads: int = 1  # torch intra-op threads while training: the bits depend on it

    def __post_init__(self):
        problems = _config_problems(self)
        if problems:
            raise ValueError(
                f"PretrainConfig: {'; '.join(problems)}. Nothing was built: change these "
                "settings (the defaults build the book's trajectory)."
            )

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        """The config stored in a manifest (``read_manifest(folder)["config"]``)."""
        d = dict(d)
        t = d.pop("task")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TrajectoryError(
                f"unknown config fields {sorted(unknown)} (written by another vghlib?)"
            )
        try:
            task = LabelCopyTask.from_dict(t)
            return cls(task=task, **d)
        except ValueError as e:
            raise TrajectoryError(f"the manifest's config is refused: {e}") from e


# The least value of each integer setting, and the range of each real one.
_INT_AT_LEAST = {
    "tokenizer_docs": 1,
    "hidden_size": 1,
    "n_layers": 1,
    "n_heads": 1,
    "intermediate_size": 1,
    "steps": 1,
    "batch_size": 1,
    "warmup": 0,
    "n_checkpoints": 2,  # step 0 and the last step
    "eval_prompts": 1,
    "threads": 1,
}
_FLOAT_RANGE = {  # field: (low, low included, high or None, high included)
    "copy_fraction": (0.0, False, 1.0, True),
    "markov_sharpness": (0.0, True, None, False),
    "init_std": (0.0, False, None, False),
    "lr": (0.0, False, None, False),
    "min_lr_ratio": (0.0, True, 1.0, True),
    "weight_decay": (0.0, True, None, False),
    "spacing_power": (0.0, False, None, False),
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _config_problems(c: "PretrainConfig") -> list[str]:
    """What is wrong with the settings of ``c``, one phrase each (empty: nothing)."""
    out = []
    if not isinstance(c.task, LabelCopyTask):
        out.append(f"task must be a vghlib.tasks.LabelCopyTask, got {type(c.task).__name__}")
    for name in ("seed", "eval_seed"):
        if not _is_int(getattr(c, name)):
            out.append(f"{name} must be an integer, got {getattr(c, name)!r}")
    for name, least in _INT_AT_LEAST.items():
        v = getattr(c, name)
        if not _is_int(v) or v < least:
            out.append(f"{name} must be an integer >= {least}, got {v!r}")
    for name, (lo, lo_in, hi, hi_in) in _FLOAT_RANGE.items():
        v = getattr(c, name)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (v >= lo if lo_in else v > lo)
        ok = ok and (hi is None or (v <= hi if hi_in else v < hi))
        if not ok:
            rng = f"{'[' if lo_in else '('}{lo:g}, " + (
                f"{hi:g}{']' if hi_in else ')'}" if hi is not None else "inf)"
            )
            out.append(f"{name} must be a finite number in {rng}, got {v!r}")
    if out:
        return out  # the checks below need the fields above to be sane
    if c.hidden_size % c.n_heads or (c.hidden_size // c.n_heads) % 2:
        out.append(
            f"hidden_size={c.hidden_size} must be n_heads={c.n_heads} times an even head size "
            "(rotary position embeddings turn pairs of dimensions)"
        )
    if c.n_checkpoints > c.steps + 1:
        out.append(
            f"n_checkpoints={c.n_checkpoints} exceeds steps + 1 = {c.steps + 1}, the number of "
            "distinct steps (0 to steps) a checkpoint can be saved at"
        )
    else:
        at = checkpoint_steps(c)
        if len(at) < c.n_checkpoints:
            out.append(
                f"n_checkpoints={c.n_checkpoints} with steps={c.steps} and spacing_power="
                f"{c.spacing_power:g} gives only {len(at)} distinct checkpoint steps {at}: ask "
                "for fewer checkpoints, more steps, or a smaller spacing_power"
            )
    return out


def config_dict(config: PretrainConfig) -> dict:
    d = json.loads(json.dumps(asdict(config)))  # tuples -> lists, as stored in the manifest
    d["task"] = config.task.to_dict()  # a one-token task keeps its old form (and hash)
    return d


def config_hash(config: PretrainConfig) -> str:
    """sha256 of the config (and CODE_VERSION), first 16 hex digits."""
    blob = json.dumps(
        {"code_version": CODE_VERSION, "numerics": numerics(), **config_dict(config)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_steps(config: PretrainConfig) -> list[int]:
    """Steps at which checkpoints are saved: round(steps * (i/(n-1))^p), i = 0..n-1, distinct."""
    n, T, p = config.n_checkpoints, config.steps, config.spacing_power
    if n < 2:
        raise ValueError("n_checkpoints must be at least 2 (the first and the last step)")
    return sorted({int(math.floor(T * (i / (n - 1)) ** p + 0.5)) for i in range(n)})


# ---------------------------------------------------------------------------------------------
# Exact, platform-independent random numbers (integers mapped to floats without rounding error)


def uniform(shape, generator: torch.Generator) -> torch.Tensor:
    """U(0, 1) float64 from 53-bit integer draws: bit-identical on every platform."""
    k = torch.randint(0, 2**53, shape, generator=generator, dtype=torch.int64)
    return (k.double() + 0.5) / 2.0**53


# ---------------------------------------------------------------------------------------------
# Corpus


def corpus_words(config: PretrainConfig) -> tuple[str, ...]:
    """Words of the filler documents: the filler words and the labels (not the marker words)."""
    return tuple(config.task.filler_words) + tuple(config.task.labels)


def markov_transitions(config: PretrainConfig) -> torch.Tensor:
    """Row-stochastic transition matrix of the filler text, ``(W, W)`` over ``corpus_words``."""
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + 17)  # its own stream
    W = len(corpus_words(config))
    u = uniform((W, W), g) ** config.markov_sharpness  # (W, W)
    return u / u.sum(-1, keepdim=True)


def doc_words(config: PretrainConfig) -> int:
    """Words per document: a copying prompt plus its answer (n_filler + 2 + 2k for k labels)."""
    return config.task.n_filler + 2 + 2 * config.task.answer_length


def filler_texts(
    n: int, config: PretrainConfig, trans: torch.Tensor, generator: torch.Generator
) -> list[str]:
    """``n`` filler documents of ``doc_words`` words from the Markov chain ``trans``."""
    words, L = corpus_words(config), doc_words(config)
    cdf = trans.cumsum(-1)  # (W, W)
    cdf[:, -1] = 1.0
    x = torch.empty((n, L), dtype=torch.long)
    x[:, 0] = torch.randint(0, len(words), (n,), generator=generator)
    for t in range(1, L):  # inverse-CDF sampling of the next word, row by row
        u = uniform((n, 1), generator)  # (n, 1)
        x[:, t] = torch.searchsorted(cdf[x[:, t - 1]], u)[:, 0]
    return [" ".join(words[j] for j in row) for row in x.tolist()]


def copy_texts(n: int, config: PretrainConfig, generator: torch.Generator) -> list[str]:
    """``n`` label-copying documents: a task prompt and its answer label(s)."""
    prompts, target = config.task.texts(n, generator)
    return [f"{p} {' '.join(config.task.answer_words(y))}" for p, y in zip(prompts, target)]


def corpus_texts(
    n: int, config: PretrainConfig, trans: torch.Tensor, generator: torch.Generator
) -> list[str]:
    """One batch of documents: ``round(n * copy_fraction)`` copying ones, then filler ones."""
    n_copy = int(round(n * config.copy_fraction))
    return copy_texts(n_copy, config, generator) + filler_texts(
        n - n_copy, config, trans, generator
    )


def corpus_batch(
    config: PretrainConfig, tokenizer, trans: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Token ids of one training batch, ``(B, S)`` with S = 1 + doc_words (BOS first)."""
    ids = encode(tokenizer, corpus_texts(config.batch_size, config, trans, generator), add_bos=True)
    if len({len(x) for x in ids}) != 1:
        raise RuntimeError(
            "documents tokenized to different lengths: the corpus expects a "
            "word-level tokenizer (build_tokenizer)"
        )
    return torch.tensor(ids, dtype=torch.long)  # (B, S)


# ---------------------------------------------------------------------------------------------
# Tokenizer and model


def build_tokenizer(config: PretrainConfig = PretrainConfig()):
    """A WordLevel tokenizer trained on a sample of the corpus, as a ``PreTrainedTokenizerFast``.

    Ids 0..3 are [PAD], [BOS], [EOS], [UNK]; words follow by frequency in the sample. The
    tokenizer adds [BOS] when called with special tokens (the task and the corpus add it
    explicitly). Raises if some corpus word is missing from the trained vocabulary.
    """
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + 29)
    docs = corpus_texts(config.tokenizer_docs, config, markov_transitions(config), g)
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(
        docs,
        trainer=trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS), show_progress=False),
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A", special_tokens=[("[BOS]", 1)]
    )
    tok.decoder = decoders.WordPiece()  # joins words with spaces
    need = set(corpus_words(config)) | {config.task.label_word, config.task.answer_word}
    missing = need - set(tok.get_vocab())
    if missing:
        raise ValueError(
            f"tokenizer sample of {config.tokenizer_docs} documents misses {sorted(missing)}; "
            "raise tokenizer_docs"
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="[BOS]",
        eos_token="[EOS]",
        pad_token="[PAD]",
        unk_token="[UNK]",
    )


def build_model(config: PretrainConfig, tokenizer):
    """A fresh float64 ``Olmo2ForCausalLM`` sized by ``config``, with a platform-independent init.

    Matrices (embeddings and LM head included) ~ U(-√3σ, √3σ), σ = ``init_std`` (Hugging Face's
    std, a uniform law so the draws are exact); RMSNorm weights 1 (QK-norm, post-attention and
    post-MLP norms, final norm: OLMo-2's layout). Untied LM head.
    """
    cfg = Olmo2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_heads,
        head_dim=config.hidden_size // config.n_heads,
        max_position_embeddings=4 * (doc_words(config) + 1),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        initializer_range=config.init_std,
        attn_implementation="sdpa",
    )
    with torch.random.fork_rng(devices=[]):  # HF's own init draws from the global generator
        model = Olmo2ForCausalLM(cfg).to(torch.float64)
    g = torch.Generator().manual_seed(config.seed)
    a = math.sqrt(3.0) * config.init_std
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):  # sorted: a fixed draw order
            if p.dim() == 1:  # RMSNorm gains
                p.fill_(1.0)
            else:
                p.copy_((2.0 * uniform(tuple(p.shape), g) - 1.0) * a)
    model.eval()
    return model


def lr_at(step: int, config: PretrainConfig) -> float:
    """Linear warmup to ``lr`` over ``warmup`` steps, then cosine decay to ``min_lr_ratio * lr``."""
    warm = min(1.0, (step + 1) / max(1, config.warmup))
    cos = 0.5 * (1.0 + math.cos(math.pi * step / max(1, config.steps)))
    return config.lr * warm * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cos)


def eval_batch(config: PretrainConfig, tokenizer) -> TaskBatch:
    """The fixed prompts behind every R_before of a trajectory."""
    return config.task.batch(tokenizer, config.eval_prompts, config.eval_seed, add_bos=True)


def train(config: PretrainConfig, tokenizer, on_checkpoint=None, progress: bool = True, model=None):
    """Pretrain from scratch; call ``on_checkpoint(step, model, r_before)`` at each checkpoint step.

    Loss: next-token cross-entropy on every position of every document (plain LM pretraining; the
    copying answer is one token of 15 in half of the documents). AdamW, betas (0.9, 0.95).
    ``model`` replaces the initial model (e.g. a perturbed copy, to measure how rounding-level
    changes grow); by default it is ``build_model(config, tokenizer)``. Runs on ``config.threads``
    torch threads (the caller's setting is restored). Returns ``(model, n_steps_run)``.
    """
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(config, tokenizer, on_checkpoint, progress, model)
    finally:
        torch.set_num_threads(threads_before)


def _train(config, tokenizer, on_checkpoint, progress, model):
    model = build_model(config, tokenizer) if model is None else model
    trans = markov_transitions(config)
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + 41)  # the training data stream
    batch = eval_batch(config, tokenizer)
    opt = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay
    )
    save_at = set(checkpoint_steps(config))
    V = model.config.vocab_size
    n_run = 0
    bar = tqdm(total=config.steps, desc="pretrain", disable=not progress, leave=False)
    for step in range(config.steps + 1):
        if step in save_at:
            model.eval()
            r = r_before(model, batch, checkpoint=f"step {step}")
            bar.set_postfix(R_before=f"{r:.3f}")
            if on_checkpoint is not None:
                on_checkpoint(step, model, r)
        if step == config.steps:
            break
        model.train()
        x = corpus_batch(config, tokenizer, trans, g)  # (B, S)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, config)
        logits = model(input_ids=x, use_cache=False).logits  # (B, S, V)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n_run += 1
        bar.update(1)
    bar.close()
    model.eval()
    return model, n_run


# ---------------------------------------------------------------------------------------------
# The trajectory folder: manifest, atomic checkpoints, cache


@dataclass
class Checkpoint:
    step: int
    path: Path
    r_before: float | None = None  # from the manifest, when the folder has one


@dataclass
class Trajectory:
    folder: Path
    config: PretrainConfig | None
    checkpoints: list
    trained_steps: int  # optimizer steps run by this call: 0 when read from the cache
    seconds: float  # wall time of this call
    cached: bool  # True when read from the manifest without training
    model: object = field(default=None, repr=False)  # the final in-memory model, if trained now

    @property
    def steps(self) -> list[int]:
        return [c.step for c in self.checkpoints]

    @property
    def r_before(self) -> list:
        return [c.r_before for c in self.checkpoints]


def _step_dir(step: int) -> str:
    return f"step{step:06d}"


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)  # atomic: a reader sees the old or the new file, never half of one


def read_manifest(folder) -> dict | None:
    p = Path(folder) / MANIFEST
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise TrajectoryError(
            f"{p} is not valid JSON ({e}); delete it or rebuild with --force"
        ) from e
    if not isinstance(m, dict) or m.get("format") != "vghlib.pretrain":
        raise TrajectoryError(f"{p} is not a vghlib pretraining manifest")
    return m


def _config_diff(old: dict, new: dict, prefix="") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_diff(a, b, prefix + k + ".")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def _clean(folder: Path, manifest: dict | None) -> None:
    """Remove what an earlier build of ours wrote: its checkpoints, temp folders, manifest."""
    names = {c["dir"] for c in (manifest or {}).get("checkpoints", [])}
    for p in folder.iterdir():
        ours = manifest is not None and re.fullmatch(r"step\d{6}", p.name)
        if p.name in names or p.name.startswith(".tmp-step") or ours:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    (folder / MANIFEST).unlink(missing_ok=True)


def build_trajectory(
    out, config: PretrainConfig = PretrainConfig(), force: bool = False, progress: bool = True
) -> Trajectory:
    """Build (or read from the cache) the checkpoints of ``config`` in folder ``out``.

    Cache rule: ``out/manifest.json`` with the same config hash and ``complete: true`` -> nothing
    is trained (``trained_steps == 0``). A manifest of another config is refused unless ``force``
    (then its checkpoints are deleted and the trajectory rebuilt). An unfinished build of the same
    config is rebuilt from scratch. A non-empty folder without a manifest is refused unless
    ``force`` (its other files are left alone).
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    h, cdict = config_hash(config), config_dict(config)
    m = read_manifest(out)
    if m is not None and m.get("config_hash") == h and m.get("complete"):
        cps = [Checkpoint(c["step"], out / c["dir"], c["r_before"]) for c in m["checkpoints"]]
        if all((c.path / "config.json").is_file() for c in cps):
            return Trajectory(out, config, cps, 0, time.perf_counter() - t0, cached=True)
    if m is not None and m.get("config_hash") != h and not force:
        diff = "; ".join(_config_diff(m.get("config", {}), cdict))
        if not diff and m.get("numerics") != numerics():
            diff = (
                f"numerics {m.get('numerics')} there, {numerics()} here (build it with "
                "`python -m vghlib pretrain`, which pins them)"
            )
        diff = diff or "code version changed"
        raise TrajectoryError(
            f"{out} holds a trajectory built with another config (hash "
            f"{m.get('config_hash')}, this one {h}): {diff}. Use another --out "
            "folder, or pass --force (force=True) to delete it and rebuild."
        )
    if m is None and any(p.name != MANIFEST for p in out.iterdir()) and not force:
        raise TrajectoryError(
            f"{out} is not empty and holds no {MANIFEST}: refusing to write "
            "checkpoints among other files. Use an empty or new --out folder, "
            "or pass --force."
        )
    _clean(out, m)

    tokenizer = build_tokenizer(config)

    manifest = {
        "format": "vghlib.pretrain",
        "config_hash": h,
        "code_version": CODE_VERSION,
        "numerics": numerics(),
        "config": cdict,
        "complete": False,
        "checkpoints": [],
        "versions": _versions(),
    }
    _write_json(out / MANIFEST, manifest)
    cps = []

    def save(step, model, r):
        final = out / _step_dir(step)
        tmp = out / f".tmp-{_step_dir(step)}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        with _quiet_transformers():
            model.save_pretrained(tmp)  # transformers 5 writes safetensors only
            tokenizer.save_pretrained(tmp)
        if not (tmp / "model.safetensors").is_file() or any(tmp.glob("*.bin")):
            raise RuntimeError(f"save_pretrained did not write model.safetensors alone in {tmp}")
        sha = weights_sha256(model)
        _write_json(
            tmp / "checkpoint.json",
            {"step": step, "r_before": r, "config_hash": h, "weights_sha256": sha},
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)  # the checkpoint appears under its name only once complete
        cps.append(Checkpoint(step, final, r))
        manifest["checkpoints"].append(
            {"step": step, "dir": final.name, "r_before": r, "weights_sha256": sha}
        )
        _write_json(out / MANIFEST, manifest)

    model, n_run = train(config, tokenizer, on_checkpoint=save, progress=progress)
    seconds = time.perf_counter() - t0
    manifest.update(complete=True, build_seconds=round(seconds, 1))
    _write_json(out / MANIFEST, manifest)
    return Trajectory(out, config, cps, n_run, seconds, cached=False, model=model)


@contextlib.contextmanager
def _quiet_transformers():
    """No "Writing model shards" bar per checkpoint (restores the caller's setting)."""
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def weights_sha256(model) -> str:
    """sha256 of every parameter's bytes, in name order: equal iff the weights are bit-identical."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _versions() -> dict:
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "MKL_CBWR": os.environ.get("MKL_CBWR"),
        "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
    }


# ---------------------------------------------------------------------------------------------
# CLI: python -m vghlib pretrain --out DIR


def main(argv=None) -> int:
    """Build (or find cached) the laptop pretraining trajectory; print its R_before table."""
    d = PretrainConfig()
    ap = argparse.ArgumentParser(
        prog="python -m vghlib pretrain",
        description="Pretrain a tiny OLMo-2 on the label-copying corpus "
        "and save its checkpoints (cached by config).",
    )
    ap.add_argument("--out", required=True, help="trajectory folder (created; reused when cached)")
    ap.add_argument(
        "--seed", type=int, default=d.seed, help=f"data and init seed (default {d.seed})"
    )
    ap.add_argument(
        "--steps", type=int, default=d.steps, help=f"training steps (default {d.steps})"
    )
    ap.add_argument(
        "--checkpoints",
        type=int,
        default=d.n_checkpoints,
        help=f"number of checkpoints, step 0 and the last included (default {d.n_checkpoints})",
    )
    ap.add_argument(
        "--force",
        action="store_true",
        help="rebuild even if the folder holds a trajectory of another config",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help=f"torch threads while training (default {d.threads}; part of the config, "
        "since the result's bits depend on it)",
    )
    ap.add_argument(
        "--answer-length",
        type=int,
        default=d.task.answer_length,
        help="labels per answer, 1 to 4: the copying documents copy that many labels "
        f"(default {d.task.answer_length})",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    try:
        config = PretrainConfig(
            seed=a.seed,
            steps=a.steps,
            n_checkpoints=a.checkpoints,
            threads=a.threads,
            task=LabelCopyTask(answer_length=a.answer_length),
        )
    except ValueError as e:  # nothing is written to --out
        flag = " On the command line, --checkpoints sets n_checkpoints." * (
            "n_checkpoints" in str(e)
        )
        print(f"error: {e}{flag}", file=sys.stderr)
        return 2
    try:
        traj = build_trajectory(a.out, config, force=a.force, progress=not a.quiet)
    except TrajectoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    how = "read from the cache" if traj.cached else f"trained {traj.trained_steps} steps"
    print(f"{traj.folder}: {len(traj.checkpoints)} checkpoints, {how} in {traj.seconds:.1f} s")
    print(f"{'step':>6}  R_before")
    for c in traj.checkpoints:
        print(f"{c.step:>6}  {c.r_before:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
