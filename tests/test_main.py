"""python -m vghlib: the experiment commands (pretrain, sweep), each dispatched to its main()."""

import importlib.util
import subprocess
import sys

import pytest

from vghlib.__main__ import COMMANDS, MOVED, main


def test_usage_lists_every_command(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_only_the_experiment_commands_are_library_commands():
    assert set(COMMANDS) == {"pretrain", "sweep", "replicate"}
    assert all(module.startswith("vghlib.") for module, _ in COMMANDS.values())


def test_unknown_command_is_refused(capsys):
    assert main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(MOVED))
def test_a_tooling_command_says_where_it_runs_now(name, capsys):
    assert main([name, "--check"]) == 2
    err = capsys.readouterr().err
    assert f"python -m {MOVED[name]}" in err
    assert importlib.util.find_spec(MOVED[name]) is not None  # and that module is there


@pytest.mark.slow
def test_pretrain_runs_through_the_dispatcher():
    out = subprocess.run(
        [sys.executable, "-m", "vghlib", "pretrain", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "usage: python -m vghlib pretrain" in out.stdout, out.stderr
