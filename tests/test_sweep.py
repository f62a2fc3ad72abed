"""vghlib.sweep: the resumable results file, a sweep killed with kill -9, and refused inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vghlib import pretrain
from vghlib.sweep import ResultsFile, ResultsMismatch, SweepConfig, main, summarise

TINY = pretrain.PretrainConfig(steps=60, n_checkpoints=3, eval_prompts=32, tokenizer_docs=200)
ARGS = ["--budgets", "1,3", "--n-eval", "32", "--n-train", "64", "--prompts-per-step", "8",
        "--group-size", "4", "--quiet"]


@pytest.fixture(scope="module")
def traj(tmp_path_factory):
    return pretrain.build_trajectory(tmp_path_factory.mktemp("traj"), TINY, progress=False).folder


def _rows(path):
    lines = path.read_text().splitlines()
    return [json.loads(x) for x in lines]


def _values(rows):
    return {r["key"]: {k: v for k, v in r.items() if k != "seconds"} for r in rows}


def test_a_sweep_killed_with_sigkill_resumes_with_no_lost_and_no_duplicated_rows(traj, tmp_path):
    seeds = ["--seeds", "0,1,2,3,4,5"]
    killed = tmp_path / "killed.jsonl"
    cmd = [sys.executable, "-m", "vghlib", "sweep", "--checkpoints", str(traj), "--out",
           str(killed), *ARGS, *seeds]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if killed.exists() and killed.read_bytes().count(b"\n") >= 3:     # config + 2 rows
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = killed.read_bytes().count(b"\n")
    assert 3 <= partial < 1 + 3 * 7, "the sweep must have been stopped part-way"
    resume = subprocess.run(cmd, capture_output=True, text=True)       # the same command again
    assert resume.returncode == 0, resume.stderr
    clean = tmp_path / "clean.jsonl"
    whole = subprocess.run(cmd[:7] + [str(clean)] + cmd[8:], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    got, want = _rows(killed), _rows(clean)
    keys = [r["key"] for r in got]
    assert len(keys) == len(set(keys)) == 1 + 3 * 7                 # nothing twice, nothing lost
    assert _values(got) == _values(want)                             # and the same numbers


def test_a_torn_last_line_is_cut_off_and_recomputed(traj, tmp_path):
    out = tmp_path / "r.jsonl"
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0"]) == 0
    full = out.read_bytes()
    lines = full.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])   # a torn write
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0"]) == 0
    assert _values(_rows(out)) == _values([json.loads(x) for x in full.splitlines()])


def test_a_results_file_of_another_configuration_is_refused_and_left_alone(traj, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0"]) == 0
    before = out.read_bytes()
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0",
                 "--alpha", "5"]) == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "alpha (2.0 there, 5.0 here)" in err
    assert out.read_bytes() == before
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"kind": "rl"}\n')
    with pytest.raises(ResultsMismatch, match="not a sweep results file"):
        ResultsFile(junk, SweepConfig())


def test_bad_checkpoint_folders_get_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--checkpoints", str(empty), "--out", str(tmp_path / "r.jsonl"), *ARGS]) == 2
    assert "holds no checkpoints" in capsys.readouterr().err
    (empty / "step000010").mkdir()                                   # a folder with no model in it
    assert main(["--checkpoints", str(empty), "--out", str(tmp_path / "r.jsonl"), *ARGS]) == 2
    assert "holds no checkpoints" in capsys.readouterr().err
    assert main(["--checkpoints", str(tmp_path / "nope"), "--out", str(tmp_path / "r.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--checkpoints", str(empty), "--out", "x", "--budgets", "a,b"])


def test_group_size_one_is_rejected_with_the_reason(traj, tmp_path, capsys):
    assert main(["--checkpoints", str(traj), "--out", str(tmp_path / "r.jsonl"), "--group-size", "1",
                 "--quiet"]) == 2
    assert "a group of one has advantage 0" in capsys.readouterr().err


def test_summarise_reads_budgets_seeds_and_scores(traj, tmp_path):
    out = tmp_path / "r.jsonl"
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0,1"]) == 0
    s = summarise(out)
    assert list(s.steps) == pretrain.checkpoint_steps(TINY) and s.budgets == (1, 3)
    assert s.gain[3].shape == (3,) and s.mean_gain.shape == (3,)
    rows = [r for r in _rows(out) if r["kind"] == "rl" and r["checkpoint"] == s.names[0]]
    by_hand = sum(r["r_after"]["1"] - r["r_before"] + r["r_after"]["3"] - r["r_before"]
                  for r in rows) / 4
    assert s.mean_gain[0] == pytest.approx(by_hand)
    assert {"p_gap_single", "p_gap_cond", "headroom", "sigma_energy"} <= set(s.score)
