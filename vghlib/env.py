"""Where the library stands in its environment: the repository root, the cache, the CPU numerics
and the accelerator.

The check of installed versions against requirements.txt is the book's tooling, not the library's:
``python -m tools.requirements`` (``--check`` to exit 1 on a mismatch).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir(name: str = "") -> Path:
    """Where the book caches what it builds (the laptop trajectory, sweep results).

    ``$VGHLIB_CACHE`` when set, else ``.cache/`` at the repository root (git ignores it), so a
    fresh clone starts cold and a second build reuses the first one's work.
    """
    root = Path(os.environ.get("VGHLIB_CACHE") or REPO_ROOT / ".cache")
    out = root / name if name else root
    out.mkdir(parents=True, exist_ok=True)
    return out


def numerics() -> dict:
    """The settings that decide the last bits of a CPU training run (part of every cache key).

    ``python -m vghlib pretrain`` and ``sweep`` pin ``ATEN_CPU_CAPABILITY=default`` and
    ``MKL_CBWR=COMPATIBLE`` (see ``vghlib.__main__``); a run inside a notebook or a test that
    did not pin them records what it used, so its results are never mixed with pinned ones.
    """
    return {k: os.environ.get(k, "") for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}


def device_summary() -> str:
    """Which accelerator torch sees: a CUDA device name, or 'none (CPU only)'."""
    # Local: the requirements check (tools.requirements) imports this module, and it must run,
    # and report torch as missing, in an environment without torch.
    import torch  # noqa: PLC0415  (optional here: env imports without torch)

    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"{torch.cuda.device_count()} CUDA device(s): {', '.join(sorted(names))}"
    return "none (CPU only)"
