"""vghlib.checkpoints: Hub branches listed and selected by step, offline caches, local folders.

The Hub cannot be reached here, so ``list_repo_refs`` is replaced by a fake that returns the real
branch names of allenai/OLMo-2-0425-1B (tests/fixtures/olmo2_0425_1b_branches.txt), and the
Hub-loading path is exercised offline against a Hugging Face cache laid out exactly as
``huggingface-cli download`` leaves it (refs/<branch> -> snapshots/<commit>/).
"""

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import errors, is_offline_mode
from safetensors.torch import load_file

from vghlib import checkpoints as C
from vghlib import pretrain, tasks

FIXTURE = Path(__file__).parent / "fixtures" / "olmo2_0425_1b_branches.txt"
BRANCHES = [x for x in FIXTURE.read_text().splitlines() if x and not x.startswith("#")]
REPO = "allenai/OLMo-2-0425-1B"


def fake_refs(names=BRANCHES):
    calls = []

    def list_refs(repo_id, **kw):
        calls.append(repo_id)
        return SimpleNamespace(
            branches=[SimpleNamespace(name=n) for n in names], tags=[], converts=[]
        )

    list_refs.calls = calls
    return list_refs


@pytest.fixture
def online(monkeypatch):
    """Pretend the Hub is reachable (HF_HUB_OFFLINE unset) while list_repo_refs is faked."""
    monkeypatch.setattr(C, "is_offline_mode", lambda: False)


@pytest.fixture(scope="module")
def traj(tiny_trajectory):
    return tiny_trajectory


def test_branch_names_parse_and_their_token_counts_cannot_be_built_by_rounding():
    parsed = {n: C.parse_branch(n) for n in BRANCHES}
    assert parsed["main"] is None
    s1 = {b["step"]: b["tokens_b"] for b in parsed.values() if b and b["stage"] == "stage1"}
    assert len(s1) == 27 and s1[1000000] == 2098
    # The published token counts are ceil(step * 2^21 / 1e9); rounding to nearest gets 10 of the
    # 27 wrong,
    # which is why the loader lists branches instead of building names.
    assert all(t == math.ceil(s * 2**21 / 1e9) for s, t in s1.items())
    assert sum(t != round(s * 2**21 / 1e9) for s, t in s1.items()) == 10
    assert parsed["stage2-ingredient3-step3000-tokens7B"]["part"] == "ingredient3"


def test_step_specs():
    assert C.parse_steps("50000:1000000:50000") == list(range(50000, 1000001, 50000))
    assert len(C.parse_steps("50000:1000000:50000")) == 20  # the paper's 20 checkpoints
    assert C.parse_steps("300, 0,300") == [0, 300]
    assert C.parse_steps("all") is None and C.parse_steps(None) is None
    for bad in ("50000:1000", "a,b", "5:1:1", "0:10:0", "-5"):
        with pytest.raises(C.CheckpointError, match="--steps"):
            C.parse_steps(bad)


def test_hub_steps_are_selected_from_the_listed_branches(online):
    refs = C.resolve(REPO, "100000:1000000:100000", list_refs=(lr := fake_refs()))
    assert lr.calls == [REPO]
    assert [r.step for r in refs] == list(range(100000, 1000001, 100000))
    assert refs[-1].revision == "stage1-step1000000-tokens2098B" and refs[-1].location == REPO
    assert all(r.name == r.revision for r in refs)
    last = C.resolve(REPO, [1907359], list_refs=fake_refs())
    assert last[0].revision == "stage1-step1907359-tokens4001B"
    # stage2 branches name steps too, but are not pretraining checkpoints of stage1
    assert [r.step for r in C.resolve(REPO, "all", list_refs=fake_refs())][:3] == [0, 300, 10000]
    s2 = C.resolve(REPO, "1000,3000", stage="stage2-ingredient3", list_refs=fake_refs())
    assert [r.revision for r in s2] == [
        "stage2-ingredient3-step1000-tokens3B",
        "stage2-ingredient3-step3000-tokens7B",
    ]
    with pytest.raises(C.CheckpointError, match="no branch is named like stage3"):
        C.resolve(REPO, "0", stage="stage3", list_refs=fake_refs())


def test_an_unknown_step_names_the_nearest_available_ones(online):
    with pytest.raises(C.CheckpointError) as e:
        C.resolve(REPO, "50000:1000000:50000", list_refs=fake_refs())
    msg = str(e.value)
    assert "150000" in msg and "nearest that exist: to 150000, 100000 and 200000" in msg
    assert "steps 0..1907359" in msg
    with pytest.raises(C.CheckpointError, match="to 1005000, 1000000 and 1010000"):
        C.resolve(REPO, [1005000], list_refs=fake_refs())
    assert C.resolve(REPO, [50000], list_refs=fake_refs())[0].step == 50000  # control: it exists


def test_an_unknown_or_gated_repo_gets_a_clear_error(online):
    def missing(repo_id, **kw):
        raise errors.RepositoryNotFoundError(
            "404", response=SimpleNamespace(headers={}, status_code=404, request=None, url="")
        )

    with pytest.raises(C.CheckpointError, match="check the id"):
        C.resolve("allenai/OLMo-2-0425-1b-typo", "0", list_refs=missing)
    with pytest.raises(C.CheckpointError, match="neither a folder nor a Hub model id"):
        C.resolve("not a model", "0")


def test_offline_without_a_local_copy_says_how_to_download(tmp_path):
    assert is_offline_mode()  # the tests run offline
    lr = fake_refs()
    with pytest.raises(C.CheckpointError) as e:
        C.resolve(REPO, "50000", list_refs=lr, cache_dir=tmp_path)
    msg = str(e.value)
    assert "HF_HUB_OFFLINE is set" in msg and f"huggingface-cli download {REPO} --revision" in msg
    assert "--model DIR" in msg
    assert lr.calls == []  # offline: the Hub is not asked


@pytest.mark.slow
def test_the_unreachable_hub_falls_back_to_the_cache(online, tmp_path, traj, add_to_hub_cache):
    def unreachable(repo_id, **kw):
        raise ConnectionError("Name or service not known")

    add_to_hub_cache(tmp_path, REPO, "stage1-step200-tokens1B", traj.checkpoints[-1].path)
    refs = C.resolve(REPO, "200", list_refs=unreachable, cache_dir=tmp_path)
    assert [r.revision for r in refs] == ["stage1-step200-tokens1B"]
    with pytest.raises(C.CheckpointError, match="only the cached revisions"):
        C.resolve(REPO, "0,200", list_refs=unreachable, cache_dir=tmp_path)


def _logits(model, tok):
    b = tasks.LabelCopyTask().batch(tok, 8, seed=3)
    with torch.no_grad():
        return tasks.answer_logits(model, b)


@pytest.mark.slow
def test_every_source_loads_the_same_model(tmp_path, traj, add_to_hub_cache):
    """Logits through each source equal those of the same model built in memory."""

    cp = traj.checkpoints[-1]
    tok = pretrain.build_tokenizer(traj.config)
    mem = pretrain.build_model(traj.config, tok)  # the architecture, in memory
    mem.load_state_dict(load_file(cp.path / "model.safetensors"))
    want = _logits(mem, tok)
    assert pretrain.weights_sha256(mem) == pretrain.weights_sha256(traj.model)
    # 1. the trajectory folder (manifest), 2. a plain folder of step<N>/ sub-folders, 3. the Hub
    # path (revision= through the cache, offline), 4. Part IV's laptop folder layout
    plain = tmp_path / "plain"
    shutil.copytree(cp.path, plain / "stage1-step200-tokens1B")
    add_to_hub_cache(tmp_path / "hub", REPO, "stage1-step200-tokens1B", cp.path)
    sources = {
        "trajectory": C.resolve(str(traj.folder), [200]),
        "folder": C.resolve(str(plain), "200"),
        "hub": C.resolve(REPO, "200", cache_dir=tmp_path / "hub"),
    }
    assert sources["hub"][0].is_hub and not sources["folder"][0].is_hub
    for name, refs in sources.items():
        (ref,) = refs
        model, tk = C.load(ref, torch.float64, cache_dir=tmp_path / "hub")
        got = _logits(model, tk)
        assert torch.equal(got, want), name
    other = C.load(C.resolve(str(traj.folder), [0])[0], torch.float64)[0]  # negative control
    assert not torch.allclose(_logits(other, tok), want)


@pytest.mark.slow
def test_a_missing_revision_offline_says_how_to_download(tmp_path, traj, add_to_hub_cache):
    add_to_hub_cache(tmp_path, REPO, "stage1-step200-tokens1B", traj.checkpoints[-1].path)
    (ref,) = C.resolve(REPO, "200", cache_dir=tmp_path)
    gone = tmp_path / ("models--" + REPO.replace("/", "--")) / "snapshots"
    shutil.rmtree(gone)  # listed, but no files on disk
    with pytest.raises(
        C.CheckpointError, match="huggingface-cli download .* --revision stage1-step200"
    ):
        C.load(ref, torch.float64, cache_dir=tmp_path)


@pytest.mark.slow
def test_folders_without_checkpoints_or_with_pickles_are_refused(tmp_path, traj):
    with pytest.raises(C.CheckpointError, match="holds no checkpoints"):
        C.resolve(str(tmp_path))
    pick = tmp_path / "p" / "step000010"
    pick.mkdir(parents=True)
    (pick / "config.json").write_text((traj.checkpoints[0].path / "config.json").read_text())
    torch.save({}, pick / "pytorch_model.bin")
    with pytest.raises(C.CheckpointError, match="holds no checkpoints"):
        C.resolve(str(tmp_path / "p"))


@pytest.mark.slow
def test_device_map_auto_places_the_model_through_accelerate(tmp_path, traj):
    """device_map="auto" (how a 7B or 13B model is spread over GPUs) gives the same logits; on a
    machine without GPUs accelerate places every layer on the CPU. (Spreading over several GPUs
    needs GPUs: benchmarks/, not a test.)"""
    (ref,) = C.resolve(str(traj.folder), [200])
    plain, tok = C.load(ref, torch.float64)
    placed, _ = C.load(ref, torch.float64, device_map="auto")
    assert {p.device.type for p in placed.parameters()} == {"cpu"}
    assert torch.equal(_logits(placed, tok), _logits(plain, tok))


@pytest.mark.slow
def test_laptop_names_part_fours_trajectory_in_the_book_cache(tmp_path, traj, monkeypatch):
    monkeypatch.setenv("VGHLIB_CACHE", str(tmp_path))
    shutil.copytree(traj.folder, tmp_path / "laptop-trajectory")  # as `pretrain` left it
    refs = C.resolve("laptop", "all")
    assert [r.step for r in refs] == traj.steps and not refs[0].is_hub
    assert Path(refs[0].location).parent == tmp_path / "laptop-trajectory"
    with pytest.raises(C.CheckpointError, match="to 7, 0 and 71"):
        C.resolve("laptop", [7])
