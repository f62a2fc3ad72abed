"""vghlib.sweep: the resumable results file, shards and torchrun, and refused inputs (a sweep
killed with kill -9 at random points: tests/test_faults.py)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import SWEEP_ARGS
from vghlib import checkpoints, sampling_gap, scoring
from vghlib.results import (
    ResultsFile,
    ResultsMismatch,
    SweepConfig,
    checksum,
    read_prop2,
    summarise,
)
from vghlib.sweep import main

ARGS = SWEEP_ARGS


@pytest.fixture(scope="module")
def traj(tiny_trajectory):
    return tiny_trajectory.folder


def _rows(path):
    lines = path.read_text().splitlines()
    return [json.loads(x) for x in lines]


def _values(rows):
    return {r["key"]: {k: v for k, v in r.items() if k not in ("seconds", "check")} for r in rows}


@pytest.mark.slow
def test_a_torn_last_line_is_cut_off_and_recomputed(traj, tmp_path):
    out = tmp_path / "r.jsonl"
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0"]) == 0
    full = out.read_bytes()
    lines = full.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a torn write
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0"]) == 0
    assert _values(_rows(out)) == _values([json.loads(x) for x in full.splitlines()])


@pytest.mark.slow
def test_a_results_file_of_another_configuration_is_refused_and_left_alone(traj, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0"]) == 0
    before = out.read_bytes()
    assert (
        main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0", "--alpha", "5"])
        == 2
    )
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
    (empty / "step000010").mkdir()  # a folder with no model in it
    assert main(["--checkpoints", str(empty), "--out", str(tmp_path / "r.jsonl"), *ARGS]) == 2
    assert "holds no checkpoints" in capsys.readouterr().err
    assert main(["--checkpoints", str(tmp_path / "nope"), "--out", str(tmp_path / "r.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--checkpoints", str(empty), "--out", "x", "--budgets", "a,b"])


@pytest.mark.slow
def test_group_size_one_is_rejected_with_the_reason(traj, tmp_path, capsys):
    assert (
        main(
            [
                "--checkpoints",
                str(traj),
                "--out",
                str(tmp_path / "r.jsonl"),
                "--group-size",
                "1",
                "--quiet",
            ]
        )
        == 2
    )
    assert "a group of one has advantage 0" in capsys.readouterr().err


@pytest.mark.slow
def test_summarise_reads_budgets_seeds_and_scores(traj, tmp_path):
    out = tmp_path / "r.jsonl"
    assert main(["--checkpoints", str(traj), "--out", str(out), *ARGS, "--seeds", "0,1"]) == 0
    s = summarise(out)
    assert list(s.steps) == [c.step for c in checkpoints.list_checkpoints(traj)] and s.budgets == (
        1,
        3,
    )
    assert s.gain[3].shape == (3,) and s.mean_gain.shape == (3,)
    rows = [r for r in _rows(out) if r["kind"] == "rl" and r["checkpoint"] == s.names[0]]
    by_hand = (
        sum(r["r_after"]["1"] - r["r_before"] + r["r_after"]["3"] - r["r_before"] for r in rows) / 4
    )
    assert s.mean_gain[0] == pytest.approx(by_hand)
    assert {"p_gap_single", "p_gap_cond", "headroom", "sigma_energy"} <= set(s.score)


# ---------------------------------------------------------------------------------------------
# Part V: the Hub code path (offline, through a local cache), sharding, torchrun, memory


REPO = "allenai/OLMo-2-0425-1B"


def kept_name(traj, i):
    return checkpoints.list_checkpoints(traj)[i].path.name


@pytest.fixture(scope="module")
def hub_cache(traj, tmp_path_factory, add_to_hub_cache):
    """The tiny trajectory's checkpoints as branches of REPO in a Hugging Face cache."""
    cache = tmp_path_factory.mktemp("hub")
    for c in checkpoints.list_checkpoints(traj):
        add_to_hub_cache(cache, REPO, f"stage1-step{c.step}-tokens{c.step}B", c.path)
    return cache


def _hub_cmd(hub_cache, out, *extra):
    return [
        "--model",
        REPO,
        "--steps",
        "all",
        "--cache-dir",
        str(hub_cache),
        "--out",
        str(out),
        *ARGS,
        "--seeds",
        "0,1",
        *extra,
    ]


@pytest.mark.slow
def test_torchrun_with_two_processes_equals_one_process(traj, hub_cache, tmp_path):
    """The full CLI path: Hub branches (offline cache) -> torchrun, 2 CPU ranks over gloo."""
    one = tmp_path / "one.jsonl"  # both through `python -m vghlib`, which pins
    cli = [sys.executable, "-m", "vghlib", "sweep"]  # the CPU numerics before importing torch
    run = subprocess.run([*cli, *_hub_cmd(hub_cache, one)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    two = tmp_path / "two.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "vghlib",
        "sweep",
        *_hub_cmd(hub_cache, two),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    got, want = _values(_rows(two)), _values(_rows(one))
    assert len(want) == 1 + 3 * 3 and got == want  # every row, the same numbers
    ranks = [_rows(p) for p in sorted(tmp_path.glob("two.shard*of2.jsonl"))]
    assert len(ranks) == 2 and all(len(r) > 1 for r in ranks)  # both ranks did work
    names = [{r["checkpoint"] for r in rows[1:]} for rows in ranks]
    assert not names[0] & names[1]  # each checkpoint on one rank
    assert {r["checkpoint"] for r in _rows(one)[1:]} == {
        f"stage1-step{s}-tokens{s}B" for s in [c.step for c in checkpoints.list_checkpoints(traj)]
    }


@pytest.mark.slow
def test_job_array_shards_merge_into_the_unsharded_results(hub_cache, tmp_path, capsys):
    one = tmp_path / "one.jsonl"
    assert main(_hub_cmd(hub_cache, one)) == 0
    out = tmp_path / "arr.jsonl"
    for i in range(3):
        assert main(_hub_cmd(hub_cache, out, "--shard", f"{i}/3")) == 0
    assert not out.exists() and len(list(tmp_path.glob("arr.shard*of3.jsonl"))) == 3
    assert main(_hub_cmd(hub_cache, out)) == 0  # merges; computes nothing
    assert "merged 9 rows from 3 shard files" in capsys.readouterr().err
    assert _values(_rows(out)) == _values(_rows(one))
    assert all(
        r.get("seconds", 0) == s.get("seconds", 0)  # copied, not recomputed
        for r, s in zip(
            sorted(_rows(out)[1:], key=lambda r: r["key"]),
            sorted(
                [x for p in tmp_path.glob("arr.shard*") for x in _rows(p)[1:]],
                key=lambda r: r["key"],
            ),
        )
    )
    bad = tmp_path / "arr.shard0of3.jsonl"  # a shard that disagrees
    rows = _rows(bad)
    rows[1]["r_before"] = 0.5 if rows[1]["kind"] == "rl" else rows[1]["r_before"] + 0.1
    rows[1]["check"] = checksum(rows[1])  # an intact row: another run's numbers, not an edit
    bad.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    assert main(_hub_cmd(hub_cache, out)) == 2
    assert "disagree on row" in capsys.readouterr().err
    assert main(_hub_cmd(hub_cache, out, "--shard", "3/3")) == 2
    assert "0 <= I < N" in capsys.readouterr().err


@pytest.mark.slow
def test_a_hub_model_needs_explicit_steps_and_unknown_steps_name_the_nearest(
    hub_cache, tmp_path, capsys
):
    assert (
        main(
            [
                "--model",
                REPO,
                "--cache-dir",
                str(hub_cache),
                "--out",
                str(tmp_path / "r.jsonl"),
                *ARGS,
            ]
        )
        == 2
    )
    assert "give --steps" in capsys.readouterr().err
    assert (
        main(
            [
                "--model",
                REPO,
                "--steps",
                "0,30",
                "--cache-dir",
                str(hub_cache),
                "--out",
                str(tmp_path / "r.jsonl"),
                *ARGS,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no checkpoint at step(s) 30" in err and "to 30, 0 and 71" in err
    assert "huggingface-cli download" in err  # offline: how to get it
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.slow
def test_micro_batches_change_memory_not_results(traj, tmp_path):
    """Scores and GRPO with 3 prompts per pass equal one pass over all prompts (to rounding)."""
    whole, parts = tmp_path / "whole.jsonl", tmp_path / "parts.jsonl"
    assert main(["--model", str(traj), "--out", str(whole), *ARGS, "--seeds", "0"]) == 0
    assert (
        main(
            ["--model", str(traj), "--out", str(parts), *ARGS, "--seeds", "0", "--micro-batch", "3"]
        )
        == 0
    )
    a, b = _values(_rows(whole)), _values(_rows(parts))
    assert a.keys() == b.keys()
    for k in a:
        if k == "config":
            assert b[k]["config"]["micro_batch"] == 3 and "micro_batch" not in a[k]["config"]
            continue
        for field in ("r_before", "sigma_energy", "lam_cond", "p_gap_cond", "lam_single"):
            if field in a[k]:
                assert b[k][field] == pytest.approx(a[k][field], rel=1e-9, abs=1e-15), (k, field)
        if "r_after" in a[k]:
            for budget in a[k]["r_after"]:
                assert b[k]["r_after"][budget] == pytest.approx(a[k]["r_after"][budget], rel=1e-9)
            assert b[k]["r_after"] != {kk: v + 1e-3 for kk, v in a[k]["r_after"].items()}


@pytest.mark.slow
def test_bfloat16_mixed_precision_runs_and_stays_close_to_float64(traj, tmp_path):
    f64, bf = tmp_path / "f64.jsonl", tmp_path / "bf16.jsonl"
    assert main(["--model", str(traj), "--out", str(f64), *ARGS, "--seeds", "0"]) == 0
    assert (
        main(["--model", str(traj), "--out", str(bf), *ARGS, "--seeds", "0", "--dtype", "bfloat16"])
        == 0
    )
    a, b = _values(_rows(f64)), _values(_rows(bf))
    score = [k for k in a if k.startswith("score/")]
    assert all(b[k]["r_before"] == pytest.approx(a[k]["r_before"], rel=0.05) for k in score)
    assert any(b[k]["r_before"] != a[k]["r_before"] for k in score)  # it did run in bf16
    assert all(b[k]["sigma_energy"] == pytest.approx(a[k]["sigma_energy"], rel=0.1) for k in score)


@pytest.mark.slow
def test_out_of_memory_gets_a_message_and_keeps_the_finished_rows(
    traj, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "r.jsonl"
    real, calls = scoring.checkpoint_score, []

    def second_oom(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*a, **kw)

    monkeypatch.setattr(scoring, "checkpoint_score", second_oom)
    assert main(["--model", str(traj), "--out", str(out), *ARGS, "--seeds", "0"]) == 3
    err = capsys.readouterr().err
    assert f"out of memory on cpu while scoring checkpoint {kept_name(traj, 1)}" in err
    assert "--micro-batch 16" in err and "--dtype bfloat16" in err and "resumes" in err
    assert "Traceback" not in err
    kept = _rows(out)
    assert [r["key"] for r in kept[1:]] == [
        f"score/{kept_name(traj, 0)}",
        f"rl/{kept_name(traj, 0)}/seed0",
    ]
    monkeypatch.setattr(scoring, "checkpoint_score", real)
    assert main(["--model", str(traj), "--out", str(out), *ARGS, "--seeds", "0"]) == 0
    assert len(_rows(out)) == 1 + 3 * 2


@pytest.mark.slow
def test_prop2_rows_hold_both_sides_of_the_bound_at_every_position(traj, tmp_path):
    out = tmp_path / "r.jsonl"
    assert (
        main(
            ["--model", str(traj), "--out", str(out), *ARGS, "--seeds", "0", "--prop2-prompts", "4"]
        )
        == 0
    )
    rows = read_prop2(out)
    assert [r["step"] for r in rows] == [c.step for c in checkpoints.list_checkpoints(traj)]
    for r in rows:
        assert len(r["jac_norm"]) == len(r["entropy"]) == len(r["position"]) > 4  # all positions
        assert set(r["row"].tolist()) == {0, 1, 2, 3}
        assert np.all(r["jac_norm"] <= r["paper_bound"] + 1e-12)
        assert np.all(r["jac_norm"] <= r["linear_bound"] + 1e-12)
    # the row holds the model's own numbers: recompute one position by hand (and a wrong one)
    last = checkpoints.list_checkpoints(traj)[-1]
    model, tok = checkpoints.load(last)
    ev, _ = SweepConfig(n_eval=32, n_train=64).batches(tok)
    r = rows[-1]
    i, t = int(r["row"][0]), int(r["position"][0])
    with torch.no_grad():
        z = model(
            input_ids=ev.input_ids[:4],
            attention_mask=ev.attention_mask[:4],
            position_ids=ev.position_ids[:4],
        ).logits
    assert sampling_gap.prop2_chain(z[i, t])["jac_norm"] == pytest.approx(
        r["jac_norm"][0], rel=1e-12
    )
    assert sampling_gap.prop2_chain(z[i, t + 1])["jac_norm"] != pytest.approx(
        r["jac_norm"][0], rel=1e-6
    )
    plain = tmp_path / "plain.jsonl"
    assert main(["--model", str(traj), "--out", str(plain), *ARGS, "--seeds", "0"]) == 0
    with pytest.raises(ValueError, match="--prop2-prompts"):
        read_prop2(plain)
    # the new settings stay out of the config (and its hash) at their defaults, so results files
    # written before they existed still resume
    assert {"micro_batch", "prop2_prompts"}.isdisjoint(SweepConfig().to_dict())
    assert SweepConfig(prop2_prompts=4).to_dict()["prop2_prompts"] == 4
