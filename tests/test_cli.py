"""vghlib.cli: a notebook runs the commands as a reader types them, and a failure says why."""

import pytest

from vghlib import cli


@pytest.mark.slow
def test_a_command_runs_in_a_new_process_and_returns_what_it_printed():
    assert cli.run("pretrain", "--help", quiet=False).startswith("usage: python -m vghlib pretrain")


@pytest.mark.slow
def test_a_failing_command_raises_with_its_stderr():
    # control for the test above: a command that fails is an error that shows its message
    with pytest.raises(
        cli.CommandFailed,
        match=r"(?s)`vghlib sweep --quiet` exited with code 2"
        r".*required.*--out",
    ):
        cli.run("sweep")
