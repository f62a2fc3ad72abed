"""vghlib.bounds: Prop 2 chain, measured sampling gap vs autograd, Prop 3 rank, Thm 1 right side."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vghlib.bounds import (attention_jacobian, numeric_rank, prop2_chain, prop3_bound, sampling_gap, softmax_jacobian,
                           theorem1_rhs)
from vghlib.costates import position_jacobian
from vghlib.models import HFCausalLM, MiniTransformer, RNNPolicy, tiny_olmo2


def test_softmax_jacobian_matches_autograd():
    z = torch.randn(6, dtype=torch.float64)
    for tau in (0.3, 1.0, 2.5):
        ref = torch.autograd.functional.jacobian(lambda v: torch.softmax(v / tau, -1), z)
        torch.testing.assert_close(softmax_jacobian(z, tau), ref)
    assert (softmax_jacobian(z, 1.0) - torch.diag(torch.softmax(z, -1))).abs().max() > 1e-3  # control


def test_prop2_chain_holds_and_its_controls_fail():
    g = torch.Generator().manual_seed(0)
    z = 3 * torch.randn(4000, 20, generator=g, dtype=torch.float64) * torch.rand(4000, 1, generator=g, dtype=torch.float64)
    for tau in (0.5, 1.0):
        c = prop2_chain(z, tau)
        tol = 1e-12
        assert np.all(c["jac_norm"] <= c["trace"] + tol)
        assert np.all(c["trace"] <= c["pmax_bound"] + tol)
        assert np.all(c["pmax_bound"] <= c["paper_bound"] + tol)
        assert np.all(c["pmax_bound"] <= c["linear_bound"] + tol)  # F4: 1 - p_max <= H
        # controls: dropping the factor 2, or C_V -> 1, breaks the chain somewhere
        assert np.any(c["jac_norm"] > (1 - c["p_max"]) / tau + tol)  # the factor 2 is needed
        assert np.any(c["trace"] > (1 - c["p_max"]) / tau + tol)
        assert np.any(c["pmax_bound"] > c["paper_bound"] / c["c_vocab"] + tol)


def _st_total_jacobian(p, tok, j, l, tau):
    """∂h^(l)_{j+1}/∂h^(l)_j through attention/recurrence AND a straight-through token at j+1."""
    V, d = p.vocab_size, p.d_model

    def h_next(delta):
        pr = torch.zeros(1, len(tok), d, dtype=torch.float64)
        pr[0, j] = delta
        x = F.one_hot(tok, V).to(torch.float64)[None]
        z = p(x, {l: pr}).logits[0, j]
        q = torch.softmax(z / tau, -1)
        x2 = torch.cat([x[:, :j + 1], (x[:, j + 1] + q - q.detach())[:, None], x[:, j + 2:]], 1)
        return p(x2, {l: pr}).hidden[l][0, j + 1]
    return torch.autograd.functional.jacobian(h_next, torch.zeros(d, dtype=torch.float64))


def test_sampling_gap_equals_relaxed_minus_direct_jacobian():
    tok = torch.tensor([1, 3, 4, 0, 2, 3])
    for p in (RNNPolicy(5, 8, init_scale=2.0), MiniTransformer(5, 16, 2, 2, 4, init_scale=3.0)):
        for l in range(p.n_layers + 1):
            sg = sampling_gap(p, tok, 2, l, 0.7)
            direct = position_jacobian(p, tok, (l, 2), (l, 3))
            torch.testing.assert_close(_st_total_jacobian(p, tok, 2, l, 0.7) - direct, sg["matrix"])
            assert sg["gap"] <= sg["jac_norm"] * (1 + 1e-12) and sg["jac_norm"] <= sg["paper_bound"]
            if isinstance(p, MiniTransformer):
                assert sg["direct"] == 0.0  # no same-layer path between positions in a transformer
            elif l == 1:
                assert sg["direct"] > 0.1  # the RNN's recurrence is a path besides the token
    with pytest.raises(ValueError, match="position"):
        sampling_gap(p, tok, 5, 0)


def test_numeric_rank():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(10, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 10, generator=g, dtype=torch.float64)
    assert numeric_rank(A) == 3
    assert numeric_rank(A + 1e-3 * torch.randn(10, 10, generator=g, dtype=torch.float64)) == 10  # control
    assert numeric_rank(torch.zeros(4, 4)) == 0


def test_prop3_rank_bound_holds_when_it_says_something():
    tok = torch.tensor([1, 3, 4, 0, 2, 3])
    m = MiniTransformer(5, 32, n_layers=2, n_heads=2, d_head=4, init_scale=2.0)
    bound = prop3_bound(2, 2, 4)
    assert bound == 16 < 32
    r = numeric_rank(attention_jacobian(m, tok, (0, 1), (2, 4)))
    assert r <= bound and r > 8  # more than one layer's worth: both layers contribute
    assert numeric_rank(attention_jacobian(m, tok, (1, 1), (2, 4))) <= prop3_bound(1, 2, 4)
    olmo = HFCausalLM(tiny_olmo2(vocab_size=5, hidden_size=32, n_layers=2, n_heads=2, head_dim=4, init_std=0.3))
    assert numeric_rank(attention_jacobian(olmo, tok, (0, 1), (2, 4)), rtol=1e-6) <= bound
    full = MiniTransformer(5, 16, n_layers=2, n_heads=4, d_head=4)  # d_head * n_heads = d_model
    assert prop3_bound(2, 4, 4) >= 16  # vacuous: no 16 x 16 matrix has rank above 16
    with pytest.raises(ValueError, match="earlier"):
        attention_jacobian(full, tok, (0, 3), (2, 3))


def test_theorem1_rhs_against_the_double_sum():
    rng = np.random.default_rng(0)
    J, e = rng.uniform(0, 2, 7), rng.uniform(0, 1, 7)
    for gamma in (1.0, 0.9):
        ref = [sum(gamma ** (k - t) * np.prod(J[t + 1:k]) * e[k] for k in range(t + 1, 7)) for t in range(7)]
        np.testing.assert_allclose(theorem1_rhs(J, e, gamma), ref)
    assert not np.allclose(theorem1_rhs(J, e), [sum(e[t + 1:]) for t in range(7)])  # control: J matters
    with pytest.raises(ValueError):
        theorem1_rhs(J, e[:3])
    with pytest.raises(ValueError):
        theorem1_rhs(J, e, gamma=0)


def test_crossover_self_check():
    from vghlib.bounds import c_vocab, check_crossover_entropy, crossover_entropy
    h = crossover_entropy(32)
    cv = c_vocab(32)[0]
    assert abs(h - cv * np.sqrt(h / np.log(32))) < 1e-12  # H* = C_V sqrt(H*/log|V|)
    assert check_crossover_entropy(h)
    assert not check_crossover_entropy(1.1 * h)
    fb = check_crossover_entropy(None)
    assert not fb and "no answer yet" in fb.message
