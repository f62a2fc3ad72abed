"""vghlib.pretrain: a reduced trajectory is deterministic, cached, refused under another config,
written atomically, and loads back by path with its tokenizer and the same logits."""

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from vghlib import checkpoints as C
from vghlib import pretrain as P
from vghlib.tasks import answer_logits, label_token_ids, r_before

SMALL = P.PretrainConfig(
    steps=12, n_checkpoints=3, batch_size=8, eval_prompts=32, tokenizer_docs=400
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("traj_a")
    return P.build_trajectory(out, SMALL, progress=False)


def test_build_writes_safetensors_checkpoints_and_a_complete_manifest(built):
    assert built.trained_steps == SMALL.steps and not built.cached
    assert built.steps == P.checkpoint_steps(SMALL) == [0, 4, 12]  # 12 * (1/2)^1.5 = 4.2
    m = json.loads((built.folder / "manifest.json").read_text())
    assert m["complete"] and m["config_hash"] == P.config_hash(SMALL)
    assert P.PretrainConfig.from_dict(m["config"]) == SMALL  # the manifest's config reads back
    assert [c["step"] for c in m["checkpoints"]] == built.steps
    for c in built.checkpoints:
        names = {p.name for p in c.path.iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
        assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
        assert 0 < c.r_before < 1
    assert not [p for p in built.folder.iterdir() if p.name.startswith(".")]  # no temp left


def test_same_config_in_another_folder_gives_equal_weights(built, tmp_path):
    torch_threads = torch.get_num_threads()
    other = P.build_trajectory(tmp_path, SMALL, progress=False)
    assert torch.get_num_threads() == torch_threads  # train() restores the caller's threads
    assert other.r_before == built.r_before
    sha = [
        json.loads((t.folder / "manifest.json").read_text())["checkpoints"] for t in (built, other)
    ]
    assert [c["weights_sha256"] for c in sha[0]] == [c["weights_sha256"] for c in sha[1]]
    assert len({c["weights_sha256"] for c in sha[0]}) == len(sha[0])  # the weights change per step
    for a, b in zip(built.checkpoints, other.checkpoints):
        wa, wb = load_file(a.path / "model.safetensors"), load_file(b.path / "model.safetensors")
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        assert (a.path / "tokenizer.json").read_bytes() == (b.path / "tokenizer.json").read_bytes()
    # training moved the weights (the equality above is not that of two untouched inits)
    w0 = load_file(built.checkpoints[0].path / "model.safetensors")
    w1 = load_file(built.checkpoints[-1].path / "model.safetensors")
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)


def test_second_build_reads_the_cache_and_trains_nothing(built):
    again = P.build_trajectory(built.folder, SMALL, progress=False)
    assert again.trained_steps == 0 and again.cached and again.model is None
    assert again.steps == built.steps and again.r_before == built.r_before


def test_another_config_is_refused_unless_forced(built, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(built.folder, folder)
    other = dataclasses.replace(SMALL, seed=1)
    with pytest.raises(P.TrajectoryError, match=r"another config.*seed: 0 -> 1.*--force"):
        P.build_trajectory(folder, other, progress=False)
    rebuilt = P.build_trajectory(folder, other, force=True, progress=False)
    assert rebuilt.trained_steps == SMALL.steps
    assert json.loads((folder / "manifest.json").read_text())["config_hash"] == P.config_hash(other)
    assert rebuilt.r_before != built.r_before


def test_non_empty_folder_without_manifest_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(P.TrajectoryError, match="not empty and holds no manifest.json"):
        P.build_trajectory(tmp_path, SMALL, progress=False)


def test_interrupted_build_never_looks_complete_and_is_rebuilt(tmp_path, monkeypatch):
    real_train = P.train

    def crashing_train(config, tokenizer, on_checkpoint=None, **kw):
        def save(step, model, r):
            if step > 0:
                raise KeyboardInterrupt  # killed after the first checkpoint
            on_checkpoint(step, model, r)

        return real_train(config, tokenizer, on_checkpoint=save, **kw)

    monkeypatch.setattr(P, "train", crashing_train)
    with pytest.raises(KeyboardInterrupt):
        P.build_trajectory(tmp_path, SMALL, progress=False)
    assert json.loads((tmp_path / "manifest.json").read_text())["complete"] is False
    with pytest.raises(
        C.CheckpointError, match="unfinished build.*python -m vghlib pretrain --out"
    ):
        C.list_checkpoints(tmp_path)
    monkeypatch.setattr(P, "train", real_train)
    done = P.build_trajectory(tmp_path, SMALL, progress=False)  # same config: rebuilt, no --force
    assert (
        done.trained_steps == SMALL.steps
        and [c.step for c in C.list_checkpoints(tmp_path)] == done.steps
    )


def test_half_written_checkpoint_is_not_listed(built, tmp_path):
    folder = tmp_path / "t"
    shutil.copytree(built.folder, folder)
    (folder / "manifest.json").unlink()  # list by scanning sub-folders instead
    shutil.copytree(folder / "step000012", folder / ".tmp-step000020-999")  # a save killed mid-way
    assert [c.step for c in C.list_checkpoints(folder)] == built.steps


def test_empty_or_model_less_folders_say_what_was_expected(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        with pytest.raises(
            C.CheckpointError, match=r"step000000/.*python -m vghlib pretrain --out"
        ):
            C.list_checkpoints(folder)
    (tmp_path / "step000010").mkdir()
    (tmp_path / "step000010" / "config.json").write_text("{}")  # no weights
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(C.CheckpointError, match="holds no checkpoints.*model.safetensors"):
        C.list_checkpoints(tmp_path)
    with pytest.raises(C.CheckpointError, match="holds no saved model.*python -m vghlib pretrain"):
        C.load(tmp_path / "step000010")


def test_checkpoint_loads_by_path_with_its_tokenizer_and_same_logits(built):
    last = C.list_checkpoints(built.folder)[-1]
    assert last.step == SMALL.steps and last.r_before == built.r_before[-1]
    model, tok = C.load(last.path)
    assert model.dtype == torch.float64 and type(model).__name__ == "Olmo2ForCausalLM"
    assert tok.get_vocab() == P.build_tokenizer(SMALL).get_vocab()
    batch = P.eval_batch(SMALL, tok)
    with torch.no_grad():
        z_loaded, z_memory = answer_logits(model, batch), answer_logits(built.model, batch)
    assert torch.equal(z_loaded, z_memory)
    assert r_before(model, batch) == last.r_before
    assert label_token_ids(tok).tolist() == batch.label_ids.tolist()


def test_init_is_seeded_and_ignores_the_global_generator():
    tok = P.build_tokenizer(SMALL)
    torch.manual_seed(123)
    a = P.build_model(SMALL, tok).state_dict()
    torch.manual_seed(456)
    b = P.build_model(SMALL, tok).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = P.build_model(P.PretrainConfig(seed=1), tok).state_dict()
    assert not torch.equal(a["lm_head.weight"], c["lm_head.weight"])


def test_task_prompts_are_in_distribution_for_the_corpus():
    tok = P.build_tokenizer(SMALL)
    g = torch.Generator().manual_seed(0)
    x = P.corpus_batch(
        P.PretrainConfig(batch_size=40), tok, P.markov_transitions(SMALL), g
    )  # (B, S)
    assert (x != tok.unk_token_id).all()
    vocab = tok.get_vocab()
    copy = x[:20]  # copying documents come first
    assert (copy[:, -2] == vocab["answer"]).all()
    after_marker = copy[torch.arange(20), (copy == vocab["label"]).int().argmax(1) + 1]
    assert torch.equal(copy[:, -1], after_marker)  # the answer is the label after the marker
    batch = P.eval_batch(SMALL, tok)
    assert batch.input_ids.shape[1] == x.shape[1] - 1  # a prompt is a document minus its answer
    assert (batch.attention_mask == 1).all()  # word-level: no padding needed
    assert not (x[20:] == vocab["label"]).any() and not (x[20:] == vocab["answer"]).any()


def test_checkpoint_steps_follow_the_power_law_and_default_has_24():
    c = P.PretrainConfig()
    s = P.checkpoint_steps(c)
    assert len(s) == 24 and s[0] == 0 and s[-1] == c.steps
    assert s[1] == round(c.steps * (1 / 23) ** c.spacing_power)
    gaps = [b - a for a, b in zip(s, s[1:])]
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1] / 5  # dense early, sparse late


def test_cli_builds_reads_cache_and_refuses_another_config(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--steps", "4", "--checkpoints", "2", "--quiet"]
    assert P.main(args) == 0
    assert "trained 4 steps" in capsys.readouterr().out
    assert P.main(args) == 0
    out = capsys.readouterr().out
    assert "read from the cache" in out and "R_before" in out
    assert P.main(args + ["--seed", "3"]) == 2
    assert "--force" in capsys.readouterr().err
