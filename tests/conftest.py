"""Fixtures shared by the tests of the experiment pipeline: one tiny trajectory, one Hub cache."""

import hashlib
import shutil
from pathlib import Path

import pytest

from vghlib import pretrain
from vghlib.tasks import LabelCopyTask

# 200 steps, 3 checkpoints (steps 0, 70 and 200): the middle one has learned that a label
# follows "answer" (R ≈ 0.12) but not yet which one, so a few GRPO updates move it.
TINY = pretrain.PretrainConfig(steps=200, n_checkpoints=3, eval_prompts=64, tokenizer_docs=200)

# The same corpus with answers of two labels ("... label C A ... answer C A"), 150 steps: its last
# checkpoint writes the whole answer with p ≈ 0.06, so groups of 8 are often mixed.
TINY_K2 = pretrain.PretrainConfig(
    steps=150,
    n_checkpoints=3,
    eval_prompts=32,
    tokenizer_docs=200,
    task=LabelCopyTask(answer_length=2),
)

# A sweep small enough for a test: 32 evaluation prompts, GRPO budgets 1 and 3, groups of 4.
SWEEP_ARGS = [
    *("--budgets", "1,3", "--n-eval", "32", "--n-train", "64"),
    *("--prompts-per-step", "8", "--group-size", "4", "--quiet"),
]


@pytest.fixture(scope="session")
def tiny_trajectory(tmp_path_factory) -> pretrain.Trajectory:
    """A tiny OLMo-2 pretrained on the label-copying corpus, saved as Part IV's trajectory is
    (``step<N>/`` folders with safetensors, tokenizer and manifest), built once per test run."""
    return pretrain.build_trajectory(
        tmp_path_factory.mktemp("tiny-trajectory"), TINY, progress=False
    )


@pytest.fixture(scope="session")
def tiny_k2_trajectory(tmp_path_factory) -> pretrain.Trajectory:
    """:func:`tiny_trajectory` for answers of two tokens (``TINY_K2``), built once per test run."""
    return pretrain.build_trajectory(
        tmp_path_factory.mktemp("tiny-k2-trajectory"), TINY_K2, progress=False
    )


def put_in_hub_cache(cache: Path, repo_id: str, revision: str, folder: Path) -> None:
    """Put a saved model folder into a Hugging Face cache as revision ``revision`` of ``repo_id``,
    laid out as ``huggingface-cli download`` leaves it (refs/<branch> -> snapshots/<commit>/)."""
    root = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(revision.encode()).hexdigest()
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if f.is_file() and f.name != "checkpoint.json":
            shutil.copy2(f, snap / f.name)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / revision).write_text(commit)


@pytest.fixture(scope="session")
def add_to_hub_cache():
    """:func:`put_in_hub_cache`, for tests that build a Hugging Face cache of their own."""
    return put_in_hub_cache
