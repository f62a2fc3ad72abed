"""vghlib.sampling_gap: entropy constants, Prop 2 chain, measured gap vs autograd, Prop 3 rank, Thm 1."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vghlib import sampling_gap as eb
from vghlib.models import HFCausalLM, MiniTransformer, RNNPolicy, tiny_olmo2
from vghlib.sampling_gap import (
    attention_jacobian,
    numeric_rank,
    prop2_chain,
    prop3_bound,
    sampling_path_gap,
    softmax_jacobian,
    theorem1_rhs,
)
from vghlib.token_costates import position_jacobian


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
            sg = sampling_path_gap(p, tok, 2, l, 0.7)
            direct = position_jacobian(p, tok, (l, 2), (l, 3))
            torch.testing.assert_close(_st_total_jacobian(p, tok, 2, l, 0.7) - direct, sg["matrix"])
            assert sg["gap"] <= sg["jac_norm"] * (1 + 1e-12) and sg["jac_norm"] <= sg["paper_bound"]
            if isinstance(p, MiniTransformer):
                assert sg["direct"] == 0.0  # no same-layer path between positions in a transformer
            elif l == 1:
                assert sg["direct"] > 0.1  # the RNN's recurrence is a path besides the token
    with pytest.raises(ValueError, match="position"):
        sampling_path_gap(p, tok, 5, 0)


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


def test_theorem1_sides_against_a_hand_assembly_on_a_two_step_token_policy():
    # T = 2: the right side is gamma * eps_1 = gamma * max_x ||S_1(x)|| * ||E[lambda^tau_1]||.
    from vghlib.models import TokenOnlyPolicy, sample
    from vghlib.sampling_gap import theorem1_sides
    from vghlib.token_costates import costate_relaxed, match_reward, value_grad_exact

    pol, prefix, reward = TokenOnlyPolicy(3, 8, init_scale=2.0, seed=0), torch.tensor([1]), match_reward(0, -1)
    sides = theorem1_sides(pol, prefix, 2, reward, [0], 0.5, n_relaxed=500, n_sequences=3,
                           gamma=0.9, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    _, G = value_grad_exact(pol, prefix, 2, reward, [0])
    _, lt = costate_relaxed(pol, prefix, 2, reward, 500, 0.5, [0], generator=g)
    xs = sample(pol, prefix, 2, 3, generator=g)
    s_max = max(sampling_path_gap(pol, x, 0, 0, 0.5)["gap"] for x in xs)
    assert sides.rhs[0] == pytest.approx(0.9 * s_max * float(lt[0][:, 1].mean(0).norm()), rel=1e-12)
    assert sides.lhs[0] == pytest.approx(float((lt[0][:, 0].mean(0) - G[0]).norm()), rel=1e-12)
    assert sides.value_grad_norm[0] == pytest.approx(float(G[0].norm()))
    assert len(sides.jacobian_samples) == 3
    # the verdict reads the two sides: a left side above rhs + 2 s.e. must be reported as failing
    sides.lhs[0] = sides.rhs[0] + 3 * sides.se[0]
    assert not sides.holds(0)
    sides.lhs[0] = sides.rhs[0]
    assert sides.holds(0)


def test_min_entropy_given_pmax_is_a_lower_bound():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.full(7, 0.3), size=4000)
    h = eb.entropy(p)
    hmin = np.array([eb.min_entropy_given_pmax(m) for m in p.max(1)])
    assert np.all(h >= hmin - 1e-12)
    assert eb.min_entropy_given_pmax(0.5) == pytest.approx(math.log(2))
    assert eb.min_entropy_given_pmax(1.0) == 0.0


def test_c_vocab_closed_form():
    # Independent derivation: for |V| >= 4 the supremum sits at the uniform law on 4 symbols,
    # C_V = (3/4) sqrt(log|V| / log 4); for |V| = 2, 3 at the uniform law on |V| symbols.
    assert eb.c_vocab(2)[0] == pytest.approx(0.5, abs=1e-9)
    assert eb.c_vocab(3)[0] == pytest.approx(2 / 3, abs=1e-9)
    for n in (4, 8, 50, 1000, 100_000):
        c, m = eb.c_vocab(n)
        assert c == pytest.approx(0.75 * math.sqrt(math.log(n) / math.log(4)), rel=1e-9)
        assert m == pytest.approx(0.25, abs=1e-6)
        # always between the two-point value and the sqrt(log|V|) ceiling
        assert 0.5 * math.sqrt(math.log(n) / math.log(2)) <= c <= math.sqrt(math.log(n))
    # Control: a constant that ignored |V| would be wrong by a factor > 2 between |V| = 4 and 100k.
    assert eb.c_vocab(100_000)[0] / eb.c_vocab(4)[0] > 2


def test_random_search_never_beats_c_vocab_and_comes_close():
    for n in (3, 5, 16):
        c, _ = eb.c_vocab(n)
        r = eb.random_search_ratio(n, n_draws=8000, seed=1)
        assert r <= c + 1e-9
        assert r >= 0.9 * c


def test_sup_gap_over_entropy_and_dirichlet_ratio():
    s, m = eb.sup_gap_over_entropy(10)
    assert s == pytest.approx(1 / (2 * math.log(2)), rel=1e-9) and m == pytest.approx(0.5)
    r = eb.dirichlet_gap_ratio(50, 10_000, 1.0, seed=0)
    assert 0 < r < 0.6                         # science note F4, for Dirichlet(1) draws
    assert r < s                                # and never above the supremum
    # Control: the two-point law (1/2, 1/2) exceeds 0.6, so "< 0.6" is not a property of the
    # simplex.
    assert (1 - 0.5) / eb.entropy([0.5, 0.5]) > 0.6


def test_entropy_rejects_bad_input():
    with pytest.raises(ValueError):
        eb.entropy([0.5, -0.1, 0.6])
    with pytest.raises(ValueError):
        eb.c_vocab(1)

