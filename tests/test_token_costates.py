"""vghlib.token_costates: every costate against autograd or finite differences; no future
credit at the final layer; unbiasedness; bad input."""

import pytest
import torch
import torch.nn.functional as F

from vghlib.models import HFCausalLM, MiniTransformer, RNNPolicy, TokenOnlyPolicy, tiny_olmo2
from vghlib.token_costates import (
    capture_hidden,
    costate_hat,
    costate_hat_loop,
    costate_hat_samples,
    costate_relaxed,
    costate_split,
    match_reward,
    multilinear_reward,
    position_jacobian,
    relaxed_rollout,
    value_exact,
    value_grad_exact,
    value_grad_exact_split,
    value_grad_pathwise,
)

V, T = 3, 4


@pytest.fixture(scope="module")
def pols():
    return {
        "token": TokenOnlyPolicy(V, 6, init_scale=2.0),
        "rnn": RNNPolicy(V, 6, init_scale=2.0, seed=1),
        "mini": MiniTransformer(V, 8, n_layers=2, n_heads=2, d_head=2, init_scale=3.0),
        "olmo": HFCausalLM(
            tiny_olmo2(
                vocab_size=V,
                hidden_size=8,
                n_layers=2,
                n_heads=2,
                head_dim=2,
                intermediate_size=16,
                init_std=0.3,
            )
        ),
    }


def probe_at(p, S, l, j, vec, B=1):
    pr = torch.zeros(B, S, p.d_model, dtype=torch.float64)
    pr[:, j] = vec
    return {l: pr}


def fd(fn, eps=1e-5):
    return (fn(eps) - fn(-eps)) / (2 * eps)


def test_costate_hat_all_positions_equals_loop_and_finite_differences(pols):
    x = torch.tensor([[1, 0, 2, 1, 2], [1, 2, 2, 0, 1]])
    adv = torch.tensor([0.7, -1.3], dtype=torch.float64)
    for name, p in pols.items():
        lam = costate_hat(p, x, adv, prompt_len=1)
        loop = costate_hat_loop(p, x, adv, prompt_len=1)
        for l in lam:
            torch.testing.assert_close(lam[l], loop[l], rtol=1e-6, atol=1e-9)
        if name == "olmo":
            continue  # float32 inside HF's RMSNorm makes finite differences too coarse
        for l in lam:
            for j in (0, 2):
                u = torch.randn(p.d_model, dtype=torch.float64)

                def loss(e):
                    logits = p(x, probe_at(p, 5, l, j, e * u, B=2)).logits
                    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, x[:, 1:, None])[..., 0]
                    return (adv[:, None] * logp[:, j:]).sum()  # Σ_{k ≥ t} Â ℓ_k, eq 14 literally

                ref = fd(loss)
                assert abs(float((lam[l][:, j] * u).sum()) - ref) < 1e-6 * (1 + abs(ref)), (
                    name,
                    l,
                    j,
                )


def test_costate_hat_per_token_advantages_and_bad_shapes(pols):
    p = pols["mini"]
    x = torch.tensor([[1, 0, 2, 1]])
    A = torch.tensor([[0.5, -2.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(costate_hat(p, x, A)[1], costate_hat_loop(p, x, A)[1])
    with pytest.raises(ValueError, match="adv must have shape"):
        costate_hat(p, x, torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="prompt_len"):
        costate_hat(p, x, torch.ones(1, dtype=torch.float64), prompt_len=4)


def test_F1_future_credit_vanishes_at_the_last_layer(pols):
    x = torch.tensor([[1, 0, 2, 1, 2, 0]])
    adv = torch.tensor([1.0], dtype=torch.float64)
    for name, p in pols.items():
        split = costate_split(p, x, adv)
        L = p.n_layers
        tot, imm, fut = split[L]
        if (
            name == "rnn"
        ):  # control: an RNN's top state is its memory, so it does carry future credit
            assert fut.norm() > 1e-3 * tot.norm()
            continue
        assert fut.norm() <= 1e-12 * tot.norm(), name  # eq 15's future term is exactly 0 at h^(L)
        torch.testing.assert_close(costate_hat(p, x, adv)[L], imm)
        for l in range(L):  # control: lower layers of models with memory carry future credit
            t, _, f = split[l]
            if name == "token":
                assert f.norm() <= 1e-12 * t.norm()  # no memory but the tokens
            else:
                assert f.norm() > 1e-3 * t.norm(), (name, l)


def test_value_grad_exact_matches_finite_differences(pols):
    R = match_reward(0, -1)
    for name, p in pols.items():
        if name == "olmo":
            continue
        for prefix in (torch.tensor([1]), torch.tensor([1, 2, 0])):
            v, G = value_grad_exact(p, prefix, T, R)
            P = prefix.numel()
            S = P + T - (P - 1) - 1
            for l in G:
                u = torch.randn(p.d_model, dtype=torch.float64)
                ref = fd(
                    lambda e: float(
                        value_exact(
                            p, prefix, T, R, probes=probe_at(p, S, l, P - 1, e * u)
                        ).detach()
                    )
                )
                assert abs(float(G[l] @ u) - ref) < 1e-6 * (1 + abs(ref)), (name, l)
            assert 0 <= v <= 1


def test_F2_empirical_costate_is_unbiased_with_a_fixed_baseline(pols):
    p, R, prefix = pols["rnn"], match_reward(0, -1), torch.tensor([1])
    _, G = value_grad_exact(p, prefix, T, R, layers=[1])
    g = torch.Generator().manual_seed(0)
    n = 8000
    _, lam = costate_hat_samples(
        p, prefix, T, R, n, layers=[1], adv_kind="baseline", baseline=0.3, generator=g
    )
    _, lam_mean = costate_hat_samples(
        p, prefix, T, R, n, layers=[1], adv_kind="mean", group_size=4, generator=g
    )
    _, lam_loo = costate_hat_samples(
        p, prefix, T, R, n, layers=[1], adv_kind="loo", group_size=4, generator=g
    )
    G = G[1]

    def proj(lmb):  # component along G, relative, and its standard error
        c = lmb @ G / (G @ G)
        return float(c.mean()), float(c.std() / n**0.5)

    for lmb in (lam[1], lam_loo[1]):
        m, se = proj(lmb)
        assert abs(m - 1) < 4 * se, (m, se)
        assert F.cosine_similarity(lmb.mean(0), G, 0) > 0.99
    m, se = proj(lam_mean[1])  # control: a mean that includes the sample shrinks by (1 - 1/4)
    assert abs(m - 0.75) < 4 * se and abs(m - 1) > 4 * se, (m, se)


def test_value_grad_pathwise_and_non_differentiable_reward(pols):
    p = pols["mini"]
    x = torch.tensor([[1, 0, 2, 1]])

    def reward(logits):
        return torch.softmax(logits[:, -1], -1)[:, 2]

    r, G = value_grad_pathwise(p, x, reward)
    u = torch.randn(p.d_model, dtype=torch.float64)
    ref = fd(lambda e: float(reward(p(x, probe_at(p, 4, 1, 1, e * u)).logits).detach()))
    assert abs(float(G[1][0, 1] @ u) - ref) < 1e-7
    assert (
        G[2][0, 1].abs().max() == 0
    )  # no future credit: the last layer at position 1 cannot reach position 3
    with pytest.raises(ValueError, match="differentiable"):
        value_grad_pathwise(p, x, lambda logits: (logits[:, -1].argmax(-1) == 2).double())


def test_costate_relaxed_matches_finite_differences_with_fixed_noise(pols):
    R, prefix = match_reward(0, -1), torch.tensor([1])
    for name in ("rnn", "mini"):
        p = pols[name]
        for kind in ("gumbel", "st"):
            r, lam = costate_relaxed(
                p, prefix, T, R, 3, 0.7, kind=kind, generator=torch.Generator().manual_seed(5)
            )
            r2 = relaxed_rollout(
                p, prefix, T, R, 3, 0.7, kind, generator=torch.Generator().manual_seed(5)
            )
            torch.testing.assert_close(r, r2.detach())
            if (
                kind == "st"
            ):  # forward pass sees hard samples; its gradient is a surrogate, not d(forward)
                assert set(r.tolist()) <= {0.0, 1.0}
                continue
            for l in lam:
                u = torch.randn(p.d_model, dtype=torch.float64)
                S = prefix.numel() + T - 1

                def rew(e):
                    return relaxed_rollout(
                        p,
                        prefix,
                        T,
                        R,
                        3,
                        0.7,
                        kind,
                        generator=torch.Generator().manual_seed(5),
                        probes=probe_at(p, S, l, 0, e * u, B=3),
                    ).detach()

                ref = fd(rew, 1e-6)
                torch.testing.assert_close(lam[l][:, 0] @ u, ref, rtol=1e-4, atol=1e-7)


def test_rewards_and_position_jacobian(pols):
    table = torch.zeros(V, V, V, V, dtype=torch.float64)
    for i in range(V):
        table[i, :, :, i] = 1.0
    ml, mr = multilinear_reward(table), match_reward(0, -1)
    y = torch.softmax(torch.randn(7, T, V, dtype=torch.float64), -1)
    torch.testing.assert_close(ml(y), mr(y))
    oh = F.one_hot(torch.randint(0, V, (7, T)), V).double()
    torch.testing.assert_close(ml(oh), (oh[:, 0].argmax(-1) == oh[:, -1].argmax(-1)).double())
    p, x = pols["mini"], torch.tensor([1, 0, 2, 1])
    J = position_jacobian(p, x, (0, 1), (2, 3))

    def f(v):
        return p(x[None], probe_at(p, 4, 0, 1, v)).hidden[2][0, 3]

    torch.testing.assert_close(
        J, torch.autograd.functional.jacobian(f, torch.zeros(p.d_model, dtype=torch.float64))
    )


def test_bad_input(pols):
    p, R = pols["rnn"], match_reward(0, -1)
    x = torch.tensor([[1, 0, 2]])
    with pytest.raises(ValueError, match="out of range"):
        costate_hat(p, x, torch.ones(1, dtype=torch.float64), layers=[2])
    with pytest.raises(TypeError):
        costate_hat(p, x, torch.ones(1, dtype=torch.float64), layers=[0.5])
    with pytest.raises(ValueError, match="max_enum"):
        value_grad_exact(p, torch.tensor([1]), 12, R)  # 3^12 > 2^16
    with pytest.raises(ValueError, match="horizon"):
        value_grad_exact(p, torch.tensor([1, 0, 1]), 2, R)
    with pytest.raises(ValueError, match="gumbel"):
        costate_relaxed(p, torch.tensor([1]), T, R, 2, 1.0, kind="soft")
    with pytest.raises(ValueError, match="reward_fn must return"):
        value_grad_exact(p, torch.tensor([1]), T, lambda rows: rows.sum(-1))


def test_value_grad_split_adds_up(pols):
    R, prefix = match_reward(0, -1), torch.tensor([1])
    for name, p in pols.items():
        _, G = value_grad_exact(p, prefix, T, R)
        split = value_grad_exact_split(p, prefix, T, R)
        for l in G:
            g, imm, fut = split[l]
            torch.testing.assert_close(g, G[l])
            torch.testing.assert_close(imm + fut, g)
            if name == "token" or l == p.n_layers and name != "rnn":
                assert fut.norm() <= 1e-12 * (1 + g.norm()), (
                    name,
                    l,
                )  # no differentiable path forward
            else:
                assert fut.norm() > 1e-4 * g.norm(), (name, l)


def test_position_jacobian_many_sources(pols):
    p, x = pols["olmo"], torch.tensor([1, 0, 2, 1, 2])
    allpos = position_jacobian(p, x, (0, None), (2, 3))
    assert allpos.shape == (5, p.d_model, p.d_model)
    a, b = position_jacobian(p, x, [(0, 1), (1, 3)], (2, 3))
    torch.testing.assert_close(a, allpos[1])
    torch.testing.assert_close(b, position_jacobian(p, x, (1, 3), (2, 3)))
    assert allpos[4].abs().max() == 0  # a later position never reaches an earlier one


def test_capture_hidden(pols):
    p, x = pols["olmo"], torch.tensor([[1, 0, 2, 1]])
    h = capture_hidden(p, x, [0, -1])
    assert set(h) == {0, 2} and h[2].shape == (1, 4, p.d_model)
    torch.testing.assert_close(h[0], p.embedding_matrix()[x])
    with pytest.raises(ValueError, match="out of range"):
        capture_hidden(p, x, [3])
