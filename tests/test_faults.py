"""Faults a careful user meets: the results file never loses, mixes or destroys data.

Each test plants one fault (a file that is not ours, other weights, a short write, a full disk,
two writers, an edited row, a damaged checkpoint, a nonsense option) and checks three things:
the command exits non-zero with a message that says what to do, the file's bytes are what they
were (or its last complete row, after a failed write), and a rerun of the same command then gives
exactly the rows of an uninterrupted run.
"""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import SWEEP_ARGS, TINY
from vghlib import checkpoints, pretrain
from vghlib.results import ResultsFile, ResultsMismatch, summarise
from vghlib.sweep import build_parser, config_from_args, main

ARGS = [*SWEEP_ARGS, "--seeds", "0,1"]


@pytest.fixture(scope="module")
def traj(tiny_trajectory):
    return tiny_trajectory.folder


def sweep(traj, out, *extra) -> int:
    return main(["--checkpoints", str(traj), "--out", str(out), *ARGS, *extra])


def config(*extra):
    a = build_parser().parse_args(["--checkpoints", "x", "--out", "x", *ARGS, *extra])
    return config_from_args(a)


def values(path) -> dict:
    """key -> row without the fields that differ between two runs of one configuration."""
    rows = [json.loads(x) for x in Path(path).read_text().splitlines()]
    return {r["key"]: {k: v for k, v in r.items() if k not in ("seconds", "check")} for r in rows}


@pytest.fixture(scope="module")
def clean(traj, tmp_path_factory):
    """The rows of an uninterrupted run: what every recovered file must hold."""
    out = tmp_path_factory.mktemp("clean") / "clean.jsonl"
    assert sweep(traj, out) == 0
    return values(out)


def copy_trajectory(traj, dest) -> Path:
    shutil.copytree(traj, dest)
    return Path(dest)


# --------------------------------------------------------------------------------------------
# 1. A refused --out is left as it was
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"my": "results"}',  # someone else's file, no newline at the end
        b'{"config": {"alpha": 2.0, "budgets": [1, 3], "dty',  # a torn header
        b'{"kind": "config", "key": "config"}\n{"kind": "score", "key": "sc',  # torn row, bad head
    ],
    ids=["not-ours", "torn-header", "foreign-with-torn-row"],
)
def test_a_refused_out_is_left_byte_for_byte(traj, tmp_path, capsys, content):
    out = tmp_path / "notes.json"
    out.write_bytes(content)
    assert sweep(traj, out) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "not a sweep results file" in err
    assert out.read_bytes() == content


def test_a_results_file_of_another_configuration_with_a_torn_row_is_left_alone(traj, tmp_path):
    out = tmp_path / "r.jsonl"
    assert sweep(traj, out, "--seeds", "0") == 0
    torn = out.read_bytes() + b'{"kind": "rl", "key": "rl/step'
    out.write_bytes(torn)
    assert sweep(traj, out, "--seeds", "0", "--alpha", "5") == 2
    assert out.read_bytes() == torn  # refused first, so its torn row is not cut off


# --------------------------------------------------------------------------------------------
# 2. Rows are tied to the weights they measured
# --------------------------------------------------------------------------------------------


def test_resuming_against_another_trajectory_is_refused_naming_both(traj, tmp_path, capsys):
    other = pretrain.build_trajectory(tmp_path / "other", replace(TINY, seed=1), progress=False)
    assert [c.path.name for c in other.checkpoints] == [
        p.name for p in sorted(Path(traj).glob("step*"))
    ]  # the same step names, other weights
    out = tmp_path / "r.jsonl"
    assert sweep(traj, out, "--seeds", "0", "--budgets", "1") == 0
    lines = out.read_bytes().splitlines(keepends=True)
    half = b"".join(lines[:3])  # header and the first checkpoint's rows
    out.write_bytes(half)
    capsys.readouterr()
    assert sweep(other.folder, out, "--seeds", "0", "--budgets", "1") == 2
    err = capsys.readouterr().err
    mine = pretrain.read_manifest(traj)["checkpoints"][0]["weights_sha256"]
    theirs = pretrain.read_manifest(other.folder)["checkpoints"][0]["weights_sha256"]
    assert mine[:12] in err and theirs[:12] in err and "other weights" in err
    assert out.read_bytes() == half


def test_a_hub_branch_that_moved_to_another_commit_is_refused(traj, tmp_path, capsys):
    from conftest import put_in_hub_cache  # noqa: PLC0415  (the conftest's cache layout)

    cache, repo = tmp_path / "hub", "tiny/olmo2-trajectory"
    for c in checkpoints.list_checkpoints(traj):
        put_in_hub_cache(cache, repo, f"stage1-step{c.step}-tokens{c.step}B", c.path)
    out = tmp_path / "r.jsonl"
    hub = ["--model", repo, "--steps", "all", "--cache-dir", str(cache), "--out", str(out)]
    assert main([*hub, *ARGS, "--seeds", "0"]) == 0
    ref = next((cache / f"models--{repo.replace('/', '--')}" / "refs").rglob("*step0-*"))
    old = ref.read_text()
    new = "f" * 40  # the branch now points at another commit (a force-push, a new upload)
    shutil.copytree(ref.parents[1] / "snapshots" / old, ref.parents[1] / "snapshots" / new)
    ref.write_text(new)
    before = out.read_bytes()
    capsys.readouterr()
    assert main([*hub, *ARGS, "--seeds", "0"]) == 2  # the same command: a resume
    err = capsys.readouterr().err
    assert f"git:{old[:16]}" in err and f"git:{new[:16]}" in err and "other weights" in err
    assert out.read_bytes() == before


def _zero_4k(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(raw[:8], "little")  # after the safetensors header
    raw[start + 512 : start + 512 + 4096] = bytes(4096)
    path.write_bytes(bytes(raw))


def test_changed_weights_are_caught_on_loading(traj, tmp_path, capsys):
    bad = copy_trajectory(traj, tmp_path / "traj")
    step = sorted(bad.glob("step*"))[1]
    _zero_4k(step / "model.safetensors")
    tensors = load_file(step / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in tensors.values())  # finite: only a hash sees it
    with pytest.raises(checkpoints.CheckpointError, match="weights_sha256"):
        checkpoints.load_model(step)
    out = tmp_path / "r.jsonl"
    assert sweep(bad, out, "--seeds", "0") == 2
    err = capsys.readouterr().err
    assert step.name in err and "do not match" in err
    kept = values(out).values() if out.exists() else []
    assert step.name not in {r.get("checkpoint") for r in kept}  # nothing measured on it


# --------------------------------------------------------------------------------------------
# 3. Short writes and a full disk: the file goes back to its last complete row
# --------------------------------------------------------------------------------------------


def _fail_writes_to(monkeypatch, out: Path, nth: int, how: str):
    """Make the ``nth`` os.write to ``out`` (1-based) write half its bytes, or raise ENOSPC."""
    real, seen = os.write, {"n": 0}

    def fake(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target == str(out):
            seen["n"] += 1
            if seen["n"] == nth:
                if how == "short":
                    return real(fd, bytes(data)[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", fake)


@pytest.mark.parametrize("how", ["short", "enospc"])
def test_a_failed_write_restores_the_last_row_and_the_rerun_completes(
    traj, tmp_path, monkeypatch, capsys, clean, how
):
    out = tmp_path / "r.jsonl"
    with monkeypatch.context() as m:
        _fail_writes_to(m, out, nth=4, how=how)  # header and 2 rows, then the 3rd row fails
        rc = sweep(traj, out)
    assert rc != 0
    err = capsys.readouterr().err
    assert ("short write" if how == "short" else "No space left") in err
    raw = out.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 3  # header + the 2 complete rows
    for line in raw.splitlines():
        json.loads(line)
    assert sweep(traj, out) == 0  # space again: the same command finishes the file
    assert values(out) == clean


# --------------------------------------------------------------------------------------------
# 4. One writer at a time
# --------------------------------------------------------------------------------------------


def test_a_second_writer_is_refused_while_the_first_holds_the_file(traj, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    with ResultsFile(out, config(), str(traj)):
        before = out.read_bytes()
        assert sweep(traj, out) == 2
        err = capsys.readouterr().err
        assert "another process" in err and str(out) in err
        assert out.read_bytes() == before
    assert sweep(traj, out) == 0  # the lock goes with its holder


def _cmd(traj, out, *extra):
    return [
        sys.executable,
        "-m",
        "vghlib",
        "sweep",
        "--checkpoints",
        str(traj),
        "--out",
        str(out),
        *ARGS,
        *extra,
    ]


SEEDS = ["--seeds", "0,1,2,3,4,5"]


@pytest.mark.slow
def test_two_sweeps_started_at_once_write_every_row_once(traj, tmp_path):
    out = tmp_path / "r.jsonl"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    procs = [
        subprocess.Popen(_cmd(traj, out, *SEEDS), env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    done = [(p.wait(300), p.stderr.read()) for p in procs]
    for rc, err in done:
        assert rc == 0 or (rc == 2 and "another process" in err), err
    assert subprocess.run(_cmd(traj, out, *SEEDS), env=env).returncode == 0
    keys = [json.loads(x)["key"] for x in out.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 1 + 3 * 7


# --------------------------------------------------------------------------------------------
# 5. Rows that are damaged, edited by hand, or not rows at all
# --------------------------------------------------------------------------------------------


def test_a_number_edited_by_hand_is_reported_with_its_line(traj, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert sweep(traj, out, "--seeds", "0") == 0
    lines = out.read_text().splitlines(keepends=True)
    row = json.loads(lines[2])
    row["r_before"] = round(row["r_before"] + 0.25, 6)
    lines[2] = json.dumps(row, sort_keys=True) + "\n"
    out.write_text("".join(lines))
    edited = out.read_bytes()
    capsys.readouterr()
    assert sweep(traj, out, "--seeds", "0") == 2
    err = capsys.readouterr().err
    assert f"{out}:3" in err and "checksum" in err
    assert out.read_bytes() == edited
    with pytest.raises(ResultsMismatch, match=":3"):
        summarise(out)


@pytest.mark.parametrize("line", ["{}", "[1, 2]", "null", "42", '"text"'])
def test_valid_json_that_is_not_a_row_is_reported_with_its_line(traj, tmp_path, capsys, line):
    out = tmp_path / "r.jsonl"
    assert sweep(traj, out, "--seeds", "0") == 0
    damaged = out.read_bytes() + line.encode() + b"\n"
    out.write_bytes(damaged)
    capsys.readouterr()
    assert sweep(traj, out, "--seeds", "0") == 2
    err = capsys.readouterr().err
    n = damaged.count(b"\n")
    assert f"{out}:{n}" in err and "not a results row" in err
    assert out.read_bytes() == damaged


# --------------------------------------------------------------------------------------------
# 6. Damaged checkpoints and nonsense options: a message, never a traceback
# --------------------------------------------------------------------------------------------


def _plain_folder(traj, dest) -> Path:
    """One checkpoint of ``traj`` in a folder with no manifest and no recorded hash."""
    step = dest / "step000010"
    shutil.copytree(sorted(Path(traj).glob("step*"))[1], step)
    (step / "checkpoint.json").unlink()
    return step


@pytest.mark.parametrize("damage", ["truncated", "random", "pickle-beside-empty"])
def test_a_damaged_safetensors_file_gets_a_message(traj, tmp_path, capsys, damage):
    step = _plain_folder(traj, tmp_path / "plain")
    f = step / "model.safetensors"
    if damage == "truncated":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif damage == "random":
        f.write_bytes(random.Random(0).randbytes(f.stat().st_size))
    else:
        torch.save(load_file(f), step / "pytorch_model.bin")
        f.write_bytes(b"")
    with pytest.raises(checkpoints.CheckpointError, match="model.safetensors"):
        checkpoints.load_model(step)
    capsys.readouterr()
    assert sweep(tmp_path / "plain", tmp_path / "r.jsonl") == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "Traceback" not in err


def test_a_resaved_checkpoint_without_a_recorded_hash_still_loads(traj, tmp_path):
    step = _plain_folder(traj, tmp_path / "plain")  # the control: an intact file is accepted
    save_file(load_file(step / "model.safetensors"), step / "model.safetensors", {"format": "pt"})
    assert checkpoints.load_model(step) is not None


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--device", "tpu"], "--device"),
        (["--n-eval", "0"], "n_eval"),
        (["--n-train", "0"], "n_train"),
        (["--threads", "0"], "--threads"),
        (["--threads", "-3"], "--threads"),
    ],
)
def test_nonsense_options_are_refused_before_anything_is_written(
    traj, tmp_path, capsys, extra, says
):
    out = tmp_path / "r.jsonl"
    assert sweep(traj, out, *extra) == 2
    assert says in capsys.readouterr().err
    assert not out.exists()


def test_an_out_that_is_a_folder_or_a_device_is_refused(traj, tmp_path, capsys):
    assert sweep(traj, tmp_path) == 2
    assert "is a folder" in capsys.readouterr().err
    assert sweep(traj, "/dev/full") == 2
    assert "not a regular file" in capsys.readouterr().err


def test_a_read_only_folder_gets_a_message(traj, tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.open

    def refuse(path, flags, *a, **k):  # root ignores permission bits: refuse as the kernel would
        if str(path).startswith(str(ro)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", refuse)
    assert sweep(traj, ro / "r.jsonl") == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and str(ro / "r.jsonl") in err


# --------------------------------------------------------------------------------------------
# Kill it anywhere: nothing lost, nothing twice, nothing changed
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_rows(traj, tmp_path):
    rng = random.Random(17)
    out = tmp_path / "killed.jsonl"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(
            _cmd(traj, out, *SEEDS), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        have = out.read_bytes().count(b"\n") if out.exists() else 0
        target = have + rng.randint(1, 4)  # a few more rows, then a random delay on top
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= target:
                time.sleep(rng.uniform(0, 0.05))
                break
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 3, "the sweep must have been killed part-way"
    whole = tmp_path / "clean.jsonl"
    assert subprocess.run(_cmd(traj, out, *SEEDS), env=env).returncode == 0
    assert subprocess.run(_cmd(traj, whole, *SEEDS), env=env).returncode == 0
    got, want = values(out), values(whole)
    keys = [json.loads(x)["key"] for x in out.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 1 + 3 * 7  # nothing lost, nothing twice
    assert got == want  # nothing changed
