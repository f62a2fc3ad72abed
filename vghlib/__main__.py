"""``python -m vghlib COMMAND``: the library's experiment commands: ``pretrain``, ``sweep`` and
``replicate``.

Each command is a module of its own with a ``main(argv)`` function; this file only dispatches,
so ``python -m vghlib sweep`` and ``python -m vghlib.sweep`` take the same options. The book's
tooling (browser check, notebook head cells, student copies, requirements check) is not part of
the library: it lives in the repository's ``tools/`` folder and runs as ``python -m tools.NAME``.
"""

from __future__ import annotations

import importlib
import os
import sys

# Commands that train set the numerics before torch is imported, so that their results are the
# same on every x86 CPU: ATen's portable (non-vectorised) kernels and MKL's conditional
# numerical reproducibility. Without them the kernels chosen for the CPU (AVX2, AVX-512) change
# the last bits of every step, and a pretraining run amplifies that into visibly different
# checkpoints (benchmarks/pretrain_time.py --perturb measures how much).
PORTABLE_NUMERICS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
TRAINING_COMMANDS = ("pretrain", "sweep", "replicate")

COMMANDS = {
    "pretrain": ("vghlib.pretrain", "build the laptop pretraining trajectory of Part IV"),
    "sweep": (
        "vghlib.sweep",
        "score every checkpoint and run GRPO from it (resumable results file)",
    ),
    "replicate": (
        "vghlib.replicate",
        "Part IV over pretraining seeds and GRPO variants (resumable; writes digests)",
    ),
}

# Names of the book's tooling, which is not a vghlib command, and the module that runs each one.
MOVED = {
    "env": "tools.requirements",
    "student": "tools.student",
    "notebooks": "tools.notebooks",
    "browser": "tools.browser",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items())
    return (
        f"usage: python -m vghlib COMMAND [options]\n\ncommands:\n{rows}\n\n"
        "`python -m vghlib COMMAND --help` describes the options of a command."
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name in MOVED:
        print(
            f"`python -m vghlib {name}` is now `python -m {MOVED[name]}`, run from the "
            "repository root",
            file=sys.stderr,
        )
        return 2
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if name in TRAINING_COMMANDS:
        for k, v in PORTABLE_NUMERICS.items():
            os.environ.setdefault(k, v)
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
