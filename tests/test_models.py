"""vghlib.models: one interface for token-only, RNN and transformer policies; tiny OLMo-2 I/O."""

import pytest
import torch
import torch.nn.functional as F

from vghlib.checkpoints import load_model
from vghlib.models import (
    HFCausalLM,
    MiniTransformer,
    RNNPolicy,
    ScaledLogits,
    TokenOnlyPolicy,
    sample,
    tiny_olmo2,
)

V = 5


def policies():
    return {
        "token": TokenOnlyPolicy(V, 8, init_scale=2.0),
        "rnn": RNNPolicy(V, 8, init_scale=2.0),
        "mini": MiniTransformer(V, 16, n_layers=2, n_heads=2, d_head=4),
        "olmo": HFCausalLM(
            tiny_olmo2(
                vocab_size=V, hidden_size=16, n_layers=2, n_heads=2, head_dim=4, init_std=0.3
            )
        ),
    }


@pytest.fixture(scope="module")
def pols():
    return policies()


def test_one_interface_and_relaxed_inputs(pols):
    x = torch.tensor([[1, 3, 4, 0, 2], [1, 2, 2, 3, 4]])
    for name, p in pols.items():
        out = p(x)
        assert out.logits.shape == (2, 5, V), name
        assert len(out.hidden) == p.n_layers + 1
        assert all(h.shape == (2, 5, p.d_model) for h in out.hidden)
        soft = p(F.one_hot(x, V).double())  # one-hot rows = the hard tokens
        torch.testing.assert_close(soft.logits, out.logits, rtol=1e-6, atol=1e-6)
        y = torch.softmax(
            torch.randn(2, 5, V, dtype=torch.float64), -1
        )  # a genuinely relaxed input differs
        assert (p(y).logits - out.logits).abs().max() > 1e-3, name


def test_probes_respect_causality(pols):
    x = torch.tensor([[1, 3, 4, 0, 2, 3]])
    for name, p in pols.items():
        base = p(x).logits
        for l in range(p.n_layers + 1):
            probe = torch.zeros(1, 6, p.d_model, dtype=torch.float64)
            probe[0, 2] = 0.5 * torch.randn(p.d_model, dtype=torch.float64)
            d = (p(x, {l: probe}).logits - base).abs().amax(-1)[0]
            assert d[:2].max() < 1e-6, (name, l)  # earlier positions never see a later state
            assert d[2] > 1e-6, (name, l)  # the perturbed position's own logits move
            if name == "token":  # state = tokens only: nothing downstream moves
                assert d[3:].max() < 1e-12
            if name in ("rnn", "mini", "olmo") and l < p.n_layers:
                assert d[3:].max() > 1e-6, (name, l)  # recurrence / attention carries it forward
        zero = {l: torch.zeros(1, 6, p.d_model, dtype=torch.float64) for l in range(p.n_layers + 1)}
        torch.testing.assert_close(p(x, zero).logits, base)


def test_hf_hidden_states_convention():
    """transformers 5.x: hidden_states[l] (l < L) = residual stream after block l; [-1] is after
    the final norm."""
    m = tiny_olmo2(vocab_size=V, hidden_size=16, n_layers=3, n_heads=2, init_std=0.3)
    p = HFCausalLM(m)
    x = torch.tensor([[1, 3, 4, 0, 2]])
    ours = p(x).hidden
    hf = m(x, output_hidden_states=True).hidden_states
    assert len(hf) == len(ours) == 4
    for l in range(3):
        torch.testing.assert_close(hf[l], ours[l])
    torch.testing.assert_close(hf[3], m.model.norm(ours[3]))  # HF's last entry is normed ...
    assert (hf[3] - ours[3]).abs().max() > 1e-2  # ... and so differs from the residual stream


def test_tiny_olmo2_config_and_errors():
    m = tiny_olmo2(vocab_size=7, hidden_size=32, n_layers=2, n_heads=2, head_dim=4)
    assert m.config.pad_token_id == 0 and m.config.eos_token_id == 2 and m.config.bos_token_id == 1
    assert m.model.layers[0].self_attn.q_proj.out_features == 8  # n_heads * head_dim < hidden_size
    with pytest.raises(ValueError, match="at least 3"):
        tiny_olmo2(vocab_size=2)
    p = HFCausalLM(m)
    with pytest.raises(ValueError, match="0..6"):
        p(torch.tensor([[1, 9]]))
    with pytest.raises(ValueError, match="relaxed inputs"):
        p(torch.rand(1, 3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="out of range"):
        p(torch.tensor([[1, 2]]), {5: torch.zeros(32)})


def test_save_load_roundtrip_safetensors_only(tmp_path):
    m = tiny_olmo2(vocab_size=V, hidden_size=16, n_layers=2, n_heads=2, init_std=0.3, seed=3)
    m.save_pretrained(tmp_path / "tiny")
    assert list((tmp_path / "tiny").glob("*.safetensors"))
    m2 = load_model(tmp_path / "tiny")
    x = torch.tensor([[1, 3, 4, 0, 2]])
    with torch.no_grad():
        torch.testing.assert_close(m2(x).logits, m(x).logits, rtol=0, atol=0)
        other = tiny_olmo2(
            vocab_size=V, hidden_size=16, n_layers=2, n_heads=2, init_std=0.3, seed=4
        )
        assert (other(x).logits - m(x).logits).abs().max() > 1e-3  # control: another seed differs
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tmp_path / "tiny" / "config.json").read_text())
    torch.save(m.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match="safetensors"):
        load_model(pickled)
    with pytest.raises(ValueError, match="not a folder"):
        load_model(tmp_path / "missing")


def test_sample_shapes_and_determinism(pols):
    p = pols["rnn"]
    a = sample(p, torch.tensor([1]), 4, n=6, generator=torch.Generator().manual_seed(0))
    b = sample(p, torch.tensor([1]), 4, n=6, generator=torch.Generator().manual_seed(0))
    assert a.shape == (6, 5) and torch.equal(a, b) and (a[:, 0] == 1).all()
    with pytest.raises(ValueError, match="prefix"):
        sample(p, torch.tensor([]), 3)


def test_scaled_logits_and_pad_row():
    p = RNNPolicy(V, 8, init_scale=2.0)
    x = torch.tensor([[1, 3, 4]])
    torch.testing.assert_close(ScaledLogits(p, 2.5)(x).logits, 2.5 * p(x).logits)
    with pytest.raises(ValueError):
        ScaledLogits(p, 0.0)
    m = tiny_olmo2(vocab_size=V, hidden_size=16, n_layers=1, n_heads=2)
    assert m.get_input_embeddings().weight[0].abs().max() > 0  # pad row is not the zero vector
