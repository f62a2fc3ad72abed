"""The book's commands run from a notebook exactly as a reader types them in a terminal.

``run("sweep", "--checkpoints", folder, "--out", results)`` runs ``python -m vghlib sweep ...
--quiet`` in a new process, so the command pins its CPU-independent numerics before torch is
imported (:mod:`vghlib.__main__`), which a notebook whose kernel already imported torch cannot do.
"""

from __future__ import annotations

import subprocess
import sys

__all__ = ["CommandFailed", "run"]


class CommandFailed(RuntimeError):
    """A command exited with an error; the message ends with what it printed to stderr."""


def run(*args, launcher=(sys.executable, "-m"), quiet: bool = True) -> str:
    """Run ``<launcher> vghlib ARGS [--quiet]`` and return what it printed to stdout.

    ``launcher``: how to start the module, ``(python, "-m")`` by default; pass
    ``(python, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m")`` for
    torchrun. Raises :class:`CommandFailed` with the last lines of stderr when it fails.
    """
    cmd = [*map(str, launcher), "vghlib", *map(str, args), *(["--quiet"] if quiet else [])]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise CommandFailed(
            f"`{' '.join(cmd[len(launcher) :])}` exited with code {done.returncode}:\n{tail}"
        )
    return done.stdout
