"""Bad input is refused with one paragraph (what was wrong, what to do), not a traceback, a NaN
or a silent substitution: non-finite GRPO inputs (vghlib.grpo), words a tokenizer lacks
(vghlib.tasks), nonsense pretraining settings (vghlib.pretrain), and a JupyterLab server that
anyone on the machine could use (tools.browser)."""

import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from tools import browser
from vghlib import pretrain as P
from vghlib.grpo import grpo_loss, k3_kl, token_logprobs
from vghlib.tasks import LabelCopyTask, make_batch

NAN, INF = float("nan"), float("inf")

# ---------------------------------------------------------------------------------------------
# vghlib.grpo: NaN and inf are refused where they enter


def grpo_inputs():
    """Two completions of 4 tokens; the second has 2 padding positions (mask 0)."""
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(2, 4, generator=g, dtype=torch.float64) - 0.1
    old_logp = logp - 0.3 * torch.rand(2, 4, generator=g, dtype=torch.float64)
    ref_logp = logp + 0.2 * torch.rand(2, 4, generator=g, dtype=torch.float64)
    adv = torch.tensor([0.7, -0.7], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.float64)
    return dict(logp=logp, old_logp=old_logp, adv=adv, mask=mask, ref_logp=ref_logp)


def test_grpo_loss_refuses_nan_advantages():
    x = grpo_inputs()
    x["adv"][1] = NAN
    with pytest.raises(ValueError, match=r"adv.* 1 .*NaN.*advantages") as e:
        grpo_loss(**x, kl_coef=0.1)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize("name", ["logp", "old_logp", "ref_logp"])
def test_grpo_loss_refuses_non_finite_log_probs_where_the_mask_counts(name, bad):
    x = grpo_inputs()
    x[name][0, 1] = bad
    x[name][1, 0] = bad
    with pytest.raises(ValueError, match=rf"\b{name}\b.* 2 .*(NaN|inf).*mask") as e:
        grpo_loss(**x, kl_coef=0.1)
    assert "\n" not in str(e.value)


def test_grpo_loss_accepts_anything_at_padding_positions():
    clean = grpo_inputs()
    want, want_info = grpo_loss(**clean, kl_coef=0.1)
    assert torch.isfinite(want)
    for loss_type in ("seq-mean-token-mean", "token-mean", "dr_grpo"):
        ref, ref_info = grpo_loss(
            **grpo_inputs(), kl_coef=0.1, loss_type=loss_type, max_completion_length=4
        )
        x = grpo_inputs()
        x["logp"].requires_grad_(True)
        with torch.no_grad():
            x["logp"][1, 2], x["logp"][1, 3] = NAN, -INF  # padding: mask is 0 there
            x["old_logp"][1, 2], x["old_logp"][1, 3] = INF, NAN
            x["ref_logp"][1, 2], x["ref_logp"][1, 3] = -INF, INF
        loss, info = grpo_loss(**x, kl_coef=0.1, loss_type=loss_type, max_completion_length=4)
        assert torch.isfinite(loss) and torch.allclose(loss, ref, rtol=0, atol=1e-15)
        assert info == pytest.approx(ref_info)
        loss.backward()
        assert torch.isfinite(x["logp"].grad).all()
        assert (x["logp"].grad[1, 2:] == 0).all()
    # control: the same values where the mask counts are refused
    x = grpo_inputs()
    x["logp"][1, 1] = NAN
    with pytest.raises(ValueError):
        grpo_loss(**x, kl_coef=0.1)


def test_token_logprobs_refuses_nan_logits():
    logits = torch.zeros(2, 3, 5, dtype=torch.float64)
    tokens = torch.zeros(2, 3, dtype=torch.long)
    logits[0, 1, 4] = -INF  # a masked vocabulary entry: allowed
    assert torch.isfinite(token_logprobs(logits, tokens)).all()
    logits[1, 2, 3] = NAN
    logits[0, 0, 0] = NAN
    with pytest.raises(ValueError, match=r"logits.* 2 .*NaN.*model") as e:
        token_logprobs(logits, tokens)
    assert "\n" not in str(e.value)
    logits = torch.zeros(2, 3, 5)
    logits[1, 1, 1] = INF
    with pytest.raises(ValueError, match=r"logits.* 1 .*inf"):
        token_logprobs(logits, tokens)


@pytest.mark.parametrize("name", ["logp", "ref_logp"])
def test_k3_kl_refuses_nan(name):
    x = {"logp": torch.full((2, 3), -1.0), "ref_logp": torch.full((2, 3), -1.5)}
    assert torch.isfinite(k3_kl(**x)).all()  # control
    x[name][1, 2] = NAN
    with pytest.raises(ValueError, match=rf"k3_kl: {name}\b.* 1 .*NaN") as e:
        k3_kl(**x)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------
# vghlib.tasks: a word the tokenizer lacks is not silently the unknown token


@pytest.fixture(scope="module")
def book_tokenizer():
    return P.build_tokenizer(P.PretrainConfig(tokenizer_docs=200))


def test_prompt_words_the_tokenizer_lacks_are_named(book_tokenizer):
    tok = book_tokenizer
    ok = LabelCopyTask().batch(tok, 64, seed=0)  # control: the book's task encodes
    assert (ok.input_ids != tok.unk_token_id).all() and len(ok) == 64
    task = LabelCopyTask(filler_words=("sun", "zebra", "quokka"))
    with pytest.raises(ValueError) as e:
        task.batch(tok, 16, seed=0)
    msg = str(e.value)
    assert "'quokka'" in msg and "'zebra'" in msg and "'sun'" not in msg
    assert f"{type(tok).__name__}(" in msg and "unknown token" in msg  # names the tokenizer
    assert "filler_words" in msg and "retrain" in msg and "\n" not in msg


def test_an_unknown_marker_word_is_named_too(book_tokenizer):
    tok = book_tokenizer
    texts = ["sun label C dog answer", "sun C label A reply"]
    target = torch.tensor([2, 0])
    assert len(make_batch(tok, texts[:1], target[:1])) == 1  # control: known words encode
    # control: a GPT-2-style tokenizer whose BOS is its unknown token still encodes the prompts
    bos_is_unk = PreTrainedTokenizerFast(
        tokenizer_object=tok.backend_tokenizer, bos_token="[UNK]", unk_token="[UNK]"
    )
    assert make_batch(bos_is_unk, texts[:1], target[:1]).input_ids[0, 0] == tok.unk_token_id
    task = LabelCopyTask(answer_word="reply")
    with pytest.raises(ValueError, match=r"'reply'.*unknown token.*2 prompts"):
        make_batch(tok, ["sun label C dog reply", "sun C label A reply"], target, task)


# ---------------------------------------------------------------------------------------------
# vghlib.pretrain: nonsense settings are refused before anything is written or trained

# (bad settings, the same at the nearest sensible value, a word the message must hold)
CONFIG_CASES = [
    (dict(steps=0, n_checkpoints=2), dict(steps=1, n_checkpoints=2), "steps"),
    (dict(steps=-5), dict(steps=200), "steps"),
    (dict(n_checkpoints=1), dict(n_checkpoints=2), "n_checkpoints"),
    (dict(steps=3, n_checkpoints=5), dict(steps=3, n_checkpoints=4), "n_checkpoints"),
    (dict(steps=4, n_checkpoints=5), dict(steps=4, n_checkpoints=4), "distinct"),
    (dict(threads=0), dict(threads=1), "threads"),
    (dict(threads=-3), dict(threads=2), "threads"),
    (dict(batch_size=0), dict(batch_size=1), "batch_size"),
    (dict(lr=0.0), dict(lr=1e-9), "lr"),
    (dict(lr=NAN), dict(lr=1.0), "lr"),
    (dict(copy_fraction=0.0), dict(copy_fraction=0.01), "copy_fraction"),
    (dict(copy_fraction=1.5), dict(copy_fraction=1.0), "copy_fraction"),
    (dict(eval_prompts=0), dict(eval_prompts=1), "eval_prompts"),
    (dict(tokenizer_docs=0), dict(tokenizer_docs=1), "tokenizer_docs"),
    (dict(warmup=-1), dict(warmup=0), "warmup"),
    (dict(min_lr_ratio=1.5), dict(min_lr_ratio=1.0), "min_lr_ratio"),
    (dict(weight_decay=-0.1), dict(weight_decay=0.0), "weight_decay"),
    (dict(spacing_power=0.0), dict(spacing_power=0.5), "spacing_power"),
    (dict(init_std=0.0), dict(init_std=1e-3), "init_std"),
    (dict(hidden_size=36, n_heads=4), dict(hidden_size=32, n_heads=4), "n_heads"),
    (dict(n_layers=0), dict(n_layers=1), "n_layers"),
    (dict(steps=2.5, n_checkpoints=2), dict(steps=2, n_checkpoints=2), "steps"),
]


@pytest.mark.parametrize("bad, good, word", CONFIG_CASES)
def test_pretrain_config_refuses_nonsense(bad, good, word):
    P.PretrainConfig(**good)  # control: the nearest sensible value is accepted
    with pytest.raises(ValueError, match=rf"\b{word}\b") as e:
        P.PretrainConfig(**bad)
    assert "\n" not in str(e.value)


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kw):
        raise AssertionError("training started on a config that should have been refused")

    monkeypatch.setattr(P, "train", refuse)


@pytest.mark.parametrize(
    "args, word",
    [
        (["--checkpoints", "1"], "n_checkpoints"),
        (["--threads", "0"], "threads"),
        (["--threads", "-3"], "threads"),
        (["--steps", "-5"], "steps"),
        (["--steps", "2", "--checkpoints", "10"], "n_checkpoints"),
    ],
)
def test_pretrain_cli_refuses_nonsense_without_writing(args, word, tmp_path, capsys, no_training):
    out = tmp_path / "traj"
    assert P.main(["--out", str(out), "--quiet", *args]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.startswith("error: ") and word in cap.err
    assert "Traceback" not in cap.err and cap.err.count("\n") == 1
    assert not out.exists()
    # an existing empty folder stays empty
    out.mkdir()
    assert P.main(["--out", str(out), "--quiet", *args]) == 2
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# tools.browser: JupyterLab runs with a random token that the command line does not show


def _get(url: str, headers: dict | None = None) -> int | None:
    """The HTTP status of GET ``url``, or None when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for 127.0.0.1
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError:
        return None


def _command_lines() -> list[bytes]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                out.append((p / "cmdline").read_bytes())
            except OSError:
                pass
    return out


@pytest.mark.slow  # starts a JupyterLab server (~10 s)
def test_jupyter_lab_needs_its_token_and_keeps_it_off_the_command_line(tmp_path):
    if not (Path(sys.executable).parent / "jupyter-lab").is_file():
        pytest.skip("jupyter-lab is not installed next to this Python")
    (tmp_path / "note.txt").write_text("x")
    with browser.jupyter_lab(tmp_path) as (base_url, token):
        assert base_url.startswith("http://127.0.0.1:") and len(token) >= 32
        api = base_url.rstrip("/") + "/api/contents"
        assert _get(api) in (401, 403)
        assert _get(api, {"Authorization": "token wrong"}) in (401, 403)
        assert _get(api, {"Authorization": f"token {token}"}) == 200
        port = base_url.rstrip("/").rsplit(":", 1)[1]
        lines = _command_lines()
        assert any(f"--port={port}".encode() in c for c in lines)  # the scan sees the server
        assert not [c for c in lines if token.encode() in c]
    assert _get(api) is None  # the server stopped with the context
