"""python -m vghlib dispatches to each command's main(argv)."""

import subprocess
import sys

from vghlib.__main__ import COMMANDS, main


def test_usage_lists_every_command(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_unknown_command_is_refused(capsys):
    assert main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


def test_env_runs_through_the_dispatcher():
    out = subprocess.run([sys.executable, "-m", "vghlib", "env"], capture_output=True, text=True)
    assert out.returncode == 0 and "torch" in out.stdout
