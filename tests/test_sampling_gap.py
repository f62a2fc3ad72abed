"""vghlib.sampling_gap: entropy constants, Prop 2 chain, measured gap vs autograd, Prop 3 rank,
Theorem 1."""

import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import Olmo2Config, Olmo2ForCausalLM

from vghlib import sampling_gap as eb
from vghlib.models import (
    HFCausalLM,
    MiniTransformer,
    RNNPolicy,
    TokenOnlyPolicy,
    sample,
    tiny_olmo2,
)
from vghlib.sampling_gap import (
    attention_jacobian,
    numeric_rank,
    prop2_chain,
    prop2_per_position,
    prop3_bound,
    rmsnorm_setting,
    sampling_path_gap,
    softmax_jacobian,
    softmax_jacobian_top_eigenvalue,
    theorem1_rhs,
    theorem1_sides,
)
from vghlib.token_costates import (
    costate_relaxed,
    match_reward,
    multilinear_reward,
    position_jacobian,
    relaxed_rollout,
    value_grad_exact,
)


def test_softmax_jacobian_matches_autograd():
    z = torch.randn(6, dtype=torch.float64)
    for tau in (0.3, 1.0, 2.5):
        ref = torch.autograd.functional.jacobian(lambda v: torch.softmax(v / tau, -1), z)
        torch.testing.assert_close(softmax_jacobian(z, tau), ref)
    assert (
        softmax_jacobian(z, 1.0) - torch.diag(torch.softmax(z, -1))
    ).abs().max() > 1e-3  # control


def test_prop2_chain_holds_and_its_controls_fail():
    g = torch.Generator().manual_seed(0)
    z = (
        3
        * torch.randn(4000, 20, generator=g, dtype=torch.float64)
        * torch.rand(4000, 1, generator=g, dtype=torch.float64)
    )
    for tau in (0.5, 1.0):
        c = prop2_chain(z, tau)
        tol = 1e-12
        assert np.all(c["jac_norm"] <= c["trace"] + tol)
        assert np.all(c["trace"] <= c["pmax_bound"] + tol)
        assert np.all(c["pmax_bound"] <= c["paper_bound"] + tol)
        assert np.all(c["pmax_bound"] <= c["linear_bound"] + tol)  # 1 - p_max <= -log p_max <= H
        # controls: dropping the factor 2, or C_V -> 1, breaks the chain somewhere
        assert np.any(c["jac_norm"] > (1 - c["p_max"]) / tau + tol)  # the factor 2 is needed
        assert np.any(c["trace"] > (1 - c["p_max"]) / tau + tol)
        assert np.any(c["pmax_bound"] > c["paper_bound"] / c["c_vocab"] + tol)


def _eigvalsh_top(p):
    """Reference: top eigenvalue of the materialised diag(p) − ppᵀ (rows of p, small V only)."""
    return torch.linalg.eigvalsh(torch.diag_embed(p) - p[..., :, None] * p[..., None, :])[..., -1]


def _test_rows(V, n, g):
    """(rows, kinds): Dirichlet and peaked softmax rows, an exact tie at the top, one-hot, a row
    with many exact zeros (-inf logits), the uniform law and a two-point law."""
    rows, kinds = [], []
    for alpha in (0.1, 1.0):
        alphas = torch.full((V,), alpha, dtype=torch.float64)
        rows.append(torch.distributions.Dirichlet(alphas).sample((n,)))
        kinds += ["generic"] * n
    for s in (3.0, 30.0):
        rows.append(torch.softmax(s * torch.randn(n, V, generator=g, dtype=torch.float64), -1))
        kinds += ["generic"] * n
    z = torch.randn(V, generator=g, dtype=torch.float64)
    z[V // 3] = z[V // 2] = z.max() + 1.0  # exact tie at the top
    zeros = torch.randn(V, generator=g, dtype=torch.float64)
    zeros[torch.randperm(V, generator=g)[: V - 7]] = -math.inf  # only 7 non-zero p_i
    two = torch.zeros(V, dtype=torch.float64)
    two[[1, V - 1]] = torch.tensor([0.7, 0.3], dtype=torch.float64)
    one_hot = F.one_hot(torch.tensor([V // 2]), V).to(torch.float64)
    uniform = torch.full((1, V), 1.0 / V, dtype=torch.float64)
    rows += [
        torch.softmax(z, -1)[None],
        torch.softmax(zeros, -1)[None],
        one_hot,
        uniform,
        two[None],
    ]
    kinds += ["tie", "zeros", "one-hot", "uniform", "two-point"]
    return torch.cat(rows), kinds


@pytest.mark.parametrize(
    "V, n",
    [(50, 20), (500, 10), pytest.param(3000, 1, marks=pytest.mark.slow)],  # 3000: 5 s
)
def test_softmax_jacobian_top_eigenvalue_matches_eigvalsh(V, n):
    g = torch.Generator().manual_seed(V)
    torch.manual_seed(V)
    p, kinds = _test_rows(V, n, g)
    if V == 3000:  # eigvalsh on 3000 x 3000 takes about a second a row: keep four rows
        keep = [1, 3, kinds.index("tie"), kinds.index("zeros")]
        p, kinds = p[keep], [kinds[i] for i in keep]
    evals = torch.linalg.eigvalsh(torch.diag_embed(p) - p[:, :, None] * p[:, None, :])  # (n, V)
    lam, ref, second = softmax_jacobian_top_eigenvalue(p), evals[:, -1], evals[:, -2]
    tol = 1e-12
    assert lam.shape == (len(kinds),) and lam.dtype == torch.float64
    assert (lam - ref).abs().max() <= tol
    pm = p.max(-1).values
    i = kinds.index("tie")
    assert lam[i] == pm[i]  # a tied maximum is an eigenvalue
    if "one-hot" in kinds:
        assert lam[kinds.index("one-hot")] == 0.0
        assert lam[kinds.index("two-point")] == pytest.approx(2 * 0.7 * 0.3, rel=1e-15)  # 2 p1 p2
    # Negative controls: two wrong "roots" differ from eigvalsh by far more than the tolerance,
    # so agreement to 1e-12 is a real check: p_(1) itself (the far end of the bracket), and the
    # second-largest eigenvalue (the root of the same secular equation in [p_(3), p_(2)]).
    # (On very peaked rows both eigenvalues are tiny, so the controls use the others.)
    gen = torch.tensor([k == "generic" for k in kinds]) & (ref > 1e-3)
    assert gen.sum() >= 1
    assert ((pm - ref)[gen].abs() > 1e3 * tol).all()
    assert ((second - ref)[gen].abs() > 1e3 * tol).all()
    if V > 500:
        return
    # prop2_chain: the secular path against the eigvalsh path at a temperature != 1
    z = torch.log(p.clamp_min(1e-300))
    a, b = prop2_chain(z, 0.7, method="secular"), prop2_chain(z, 0.7, method="eigvalsh")
    np.testing.assert_allclose(a["jac_norm"], b["jac_norm"], rtol=0, atol=tol / 0.7)
    for k in ("trace", "pmax_bound", "paper_bound", "linear_bound", "entropy", "p_max"):
        np.testing.assert_array_equal(a[k], b[k])


def test_softmax_jacobian_top_eigenvalue_edge_cases():
    # Exact zeros deflate: at OLMo-2's |V| = 100,352 a row with 40 non-zero entries has the top
    # eigenvalue of its 40 x 40 block, which eigvalsh can take.
    g = torch.Generator().manual_seed(1)
    V = 100_352
    support = torch.randperm(V, generator=g)[:40]
    q = torch.distributions.Dirichlet(torch.full((40,), 0.5, dtype=torch.float64)).sample()
    p = torch.zeros(V, dtype=torch.float64)
    p[support] = q
    assert abs(float(softmax_jacobian_top_eigenvalue(p) - _eigvalsh_top(q))) <= 1e-15
    # shapes, V = 1 and V = 2, uniform laws (a tie of all V entries), peaked and subnormal rows
    rows = torch.softmax(torch.randn(2, 3, 20, generator=g, dtype=torch.float64), -1)
    out = softmax_jacobian_top_eigenvalue(rows)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, _eigvalsh_top(rows), rtol=0, atol=1e-15)

    def top(*p):
        return float(softmax_jacobian_top_eigenvalue(torch.tensor(p, dtype=torch.float64)))

    assert top(1.0) == 0.0
    assert top(0.25, 0.75) == pytest.approx(2 * 0.25 * 0.75, rel=1e-15)
    for n in (7, 4096):
        assert top(*[1.0 / n] * n) == 1.0 / n
    # p = (1, e): a = 1 exactly, lambda = e (1 + sqrt 5)/2 to first order; kept to full relative
    # precision for e = 1e-30 (no cancellation in a^2/(a - lambda) - 1) and finite for subnormal e
    for e in (1e-30, 1e-200):
        assert top(1.0, e, 0.0) == pytest.approx(e * (1 + math.sqrt(5)) / 2, rel=1e-14)
    assert 0 < top(1.0, 2e-321) < 1e-320
    # every row converges in a few safeguarded rational steps, never in a long bisection
    stats = []
    P, _ = _test_rows(300, 30, g)
    for i in range(len(P)):
        eb._secular_top_root(P[i : i + 1], torch.empty(2, 1, 300, dtype=torch.float64), 200, stats)
    assert max(stats) <= 10
    with pytest.raises(ValueError):
        softmax_jacobian_top_eigenvalue(torch.tensor([0.5, -0.1, 0.6]))
    with pytest.raises(ValueError):
        softmax_jacobian_top_eigenvalue(torch.tensor([0.5, math.nan]))


def _olmo2_vocab_logits(n_extra=0):
    """(8, 100352) float64 logits at OLMo-2's vocabulary: flat to sharp rows, a row with masked
    (-inf) entries, and a near-one-hot row with a single competitor (where ||J|| ~ 2(1 − p_max))."""
    g = torch.Generator().manual_seed(7)
    V = 100_352
    scale = torch.tensor([0.3, 1.0, 2.0, 4.0, 8.0, 3.0, 1.0, 1.0], dtype=torch.float64)[:, None]
    z = scale * torch.randn(8, V, generator=g, dtype=torch.float64)
    z[5, torch.randperm(V, generator=g)[:50_000]] = -math.inf
    z[6, 11] += 40.0  # one dominant token
    z[7, 11] += 40.0
    z[7, 12] += 34.0  # ... and one competitor
    return z


def test_prop2_chain_holds_at_the_olmo2_vocabulary():
    z = _olmo2_vocab_logits()
    for tau in (0.5, 1.0, 2.0):
        c = prop2_chain(z, tau)
        tol = 1e-12
        assert np.all(c["jac_norm"] > 0)
        assert np.all(c["jac_norm"] <= c["trace"] + tol)
        assert np.all(c["trace"] <= c["pmax_bound"] + tol)
        assert np.all(c["pmax_bound"] <= np.minimum(c["paper_bound"], c["linear_bound"]) + tol)
        assert c["c_vocab"] == eb.c_vocab(100_352)[0]
        # control, as at small |V|: the factor 2 of pmax_bound is needed (the two-token row)
        assert np.any(c["jac_norm"] > (1 - c["p_max"]) / tau + tol)


def test_prop2_chain_large_vocab_path_is_O_V(monkeypatch):
    z = _olmo2_vocab_logits()
    expected = prop2_chain(z, 1.0)

    def forbidden(*a, **k):
        raise AssertionError("a V x V matrix was built")

    monkeypatch.setattr(eb, "softmax_jacobian", forbidden)
    monkeypatch.setattr(torch.linalg, "eigvalsh", forbidden)
    monkeypatch.setattr(torch, "diag_embed", forbidden)
    t0 = time.perf_counter()
    c = prop2_chain(z, 1.0)  # (8, 100352): a V x V float64 matrix would be 80 GB a row
    assert time.perf_counter() - t0 < 30
    for k in expected:
        np.testing.assert_array_equal(c[k], expected[k])
    # at |V| <= 2048 "auto" is the eigvalsh path (the book's printed results): here it is blocked
    with pytest.raises(AssertionError, match="V x V"):
        prop2_chain(z[:1, :2048], 1.0)
    prop2_chain(z[:1, :2049], 1.0)
    with pytest.raises(ValueError, match="method"):
        prop2_chain(z[:1, :10], 1.0, method="eig")


def test_prop2_chain_small_vocab_is_bit_for_bit_eigvalsh():
    # the book's input (part3/sampling_gap): the jac_norm it prints is eigvalsh's, to the bit
    g = torch.Generator().manual_seed(0)
    scale = torch.exp(torch.linspace(math.log(0.1), math.log(20.0), 5000, dtype=torch.float64))
    z = scale[:, None] * torch.randn(5000, 32, generator=g, dtype=torch.float64)
    c = prop2_chain(z, 1.0)
    ref = torch.linalg.eigvalsh(softmax_jacobian(z, 1.0))[..., -1].numpy()
    np.testing.assert_array_equal(c["jac_norm"], ref)
    assert np.abs(c["jac_norm"] - prop2_chain(z, 1.0, method="secular")["jac_norm"]).max() <= 1e-12


def _tiny_olmo2(vocab_size):
    cfg = Olmo2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        initializer_range=0.5,
    )
    torch.manual_seed(0)
    return Olmo2ForCausalLM(cfg).to(torch.float64).eval()


@pytest.mark.parametrize("vocab_size", [50, 3000])
def test_prop2_per_position_on_a_left_padded_batch(vocab_size):
    model = _tiny_olmo2(vocab_size)
    ids = torch.tensor([[0, 0, 0, 5, 6, 7, 8], [1, 9, 10, 11, 12, 13, 14]])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    res = prop2_per_position(model, ids, mask, temperature=0.7, chunk=3)  # chunks cross rows
    keys = ("jac_norm", "trace", "pmax_bound", "paper_bound", "linear_bound", "entropy", "p_max")
    assert len(res["row"]) == 11
    assert all(res[k].shape == (11,) and res[k].dtype == np.float64 for k in keys)
    np.testing.assert_array_equal(res["row"], [0] * 4 + [1] * 7)
    np.testing.assert_array_equal(res["position"], [3, 4, 5, 6] + list(range(7)))  # pads left out
    # by hand: one forward pass, prop2_chain at the real positions
    with torch.no_grad():
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp_min(0)
        ).logits  # (2, 7, V)
    ref = prop2_chain(logits[mask.bool()], 0.7)
    for k in keys:
        np.testing.assert_allclose(res[k], ref[k], rtol=1e-13, atol=1e-16)
    assert res["c_vocab"] == ref["c_vocab"]
    assert np.all(res["jac_norm"] <= res["trace"] + 1e-12)
    assert np.all(res["pmax_bound"] <= np.minimum(res["paper_bound"], res["linear_bound"]) + 1e-12)
    # the left-padded row is the unpadded sequence; the chunk size changes nothing
    alone = prop2_per_position(model, ids[:1, 3:], temperature=0.7)
    for k in keys:
        np.testing.assert_allclose(res[k][:4], alone[k], rtol=1e-9, atol=1e-15)
    big_chunk = prop2_per_position(model, ids, mask, 0.7, chunk=64)
    for k in keys:
        np.testing.assert_array_equal(big_chunk[k], res[k])
    # control: without the mask the pads are attended to and counted, and row 0 changes
    unmasked = prop2_per_position(model, ids, temperature=0.7)
    assert len(unmasked["row"]) == 14
    assert np.abs(unmasked["entropy"][3:7] - res["entropy"][:4]).min() > 1e-6
    with pytest.raises(ValueError, match="chunk"):
        prop2_per_position(model, ids, mask, chunk=0)


def test_prop2_per_position_in_bfloat16_and_on_cuda():
    model = _tiny_olmo2(3000)
    ids = torch.tensor([[0, 5, 6, 7], [1, 9, 10, 11]])
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    ref = prop2_per_position(model, ids, mask)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        m16 = _tiny_olmo2(3000).to(device=dev, dtype=torch.bfloat16)
        res = prop2_per_position(m16, ids, mask, chunk=2)
        assert res["jac_norm"].dtype == np.float64 and len(res["jac_norm"]) == 7
        assert np.all(res["jac_norm"] <= res["trace"] + 1e-12)
        bound = np.minimum(res["paper_bound"], res["linear_bound"])
        assert np.all(res["pmax_bound"] <= bound + 1e-12)
        np.testing.assert_allclose(res["entropy"], ref["entropy"], rtol=0.05)  # bf16 rounding
        with torch.no_grad():
            z = m16(
                input_ids=ids.to(dev),
                attention_mask=mask.to(dev),
                position_ids=(mask.cumsum(-1) - 1).clamp_min(0).to(dev),
            ).logits
        by_hand = prop2_chain(z[mask.bool().to(dev)].cpu().double())
        np.testing.assert_allclose(res["jac_norm"], by_hand["jac_norm"], rtol=1e-13)


def _st_total_jacobian(p, tok, j, l, tau):
    """∂h^(l)_{j+1}/∂h^(l)_j through attention/recurrence AND a straight-through token at j+1."""
    V, d = p.vocab_size, p.d_model

    def h_next(delta):
        pr = torch.zeros(1, len(tok), d, dtype=torch.float64)
        pr[0, j] = delta
        x = F.one_hot(tok, V).to(torch.float64)[None]
        z = p(x, {l: pr}).logits[0, j]
        q = torch.softmax(z / tau, -1)
        x2 = torch.cat([x[:, : j + 1], (x[:, j + 1] + q - q.detach())[:, None], x[:, j + 2 :]], 1)
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


def _gumbel_total_jacobian(p, rows, g, j, l, tau):
    """∂h^(l)_{j+1}/∂h^(l)_j along a Gumbel-softmax rollout: row j + 1 is recomputed as
    softmax((z_j + g)/τ) from the perturbed state, every other row is held."""
    d = p.d_model

    def h_next(delta):
        pr = torch.zeros(1, rows.shape[0], d, dtype=torch.float64)
        pr[0, j] = delta
        z = p(rows[None], {l: pr}).logits[0, j]
        y = torch.softmax((z + g) / tau, -1)
        x2 = torch.cat([rows[None, : j + 1], y[None, None], rows[None, j + 2 :]], 1)
        return p(x2, {l: pr}).hidden[l][0, j + 1]

    return torch.autograd.functional.jacobian(h_next, torch.zeros(d, dtype=torch.float64))


def test_gumbel_reading_is_the_rollouts_own_jacobian_and_the_softmax_one_without_noise():
    tok, tau = torch.tensor([1, 3, 4, 0, 2, 3]), 0.7
    gen = torch.Generator().manual_seed(0)
    for p in (RNNPolicy(5, 8, init_scale=2.0), MiniTransformer(5, 16, 2, 2, 4, init_scale=3.0)):
        rows, noise = eb.gumbel_rollout_rows(p, tok[:1], 5, 1, tau, gen)
        rows, noise = rows[0], noise[0]
        onehot = F.one_hot(tok, 5).to(torch.float64)
        for l in range(p.n_layers + 1):
            # no noise and one-hot rows: the Gumbel reading is the book's (softmax) reading
            ref = sampling_path_gap(p, tok, 2, l, tau)
            zero = sampling_path_gap(p, onehot, 2, l, tau, noise=torch.zeros(5))
            torch.testing.assert_close(zero["matrix"], ref["matrix"])
            assert zero["direct"] == pytest.approx(ref["direct"], rel=1e-12)
            # along the relaxed rollout: the autograd Jacobian of the rollout's own step
            sg = sampling_path_gap(p, rows, 2, l, tau, noise=noise[2])
            direct = position_jacobian(p, rows, (l, 2), (l, 3))
            torch.testing.assert_close(
                _gumbel_total_jacobian(p, rows, noise[2], 2, l, tau) - direct, sg["matrix"]
            )
            # negative control: the noise moves the Jacobian, so the two readings differ
            noisy = sampling_path_gap(p, onehot, 2, l, tau, noise=noise[2])
            assert abs(noisy["gap"] - ref["gap"]) > 1e-3 * ref["gap"]
    with pytest.raises(ValueError, match="rows"):
        sampling_path_gap(p, torch.zeros(2, 3, 5), 0, 0)


def test_gumbel_rollout_rows_are_the_relaxed_rollouts():
    pol = MiniTransformer(3, 16, 2, 2, 4, init_scale=3.0, seed=0)
    table = torch.rand(3, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    prefix, R = torch.tensor([1]), multilinear_reward(table)
    ref = relaxed_rollout(pol, prefix, 3, R, 7, 0.5, generator=torch.Generator().manual_seed(2))
    rows, noise = eb.gumbel_rollout_rows(pol, prefix, 3, 7, 0.5, torch.Generator().manual_seed(2))
    assert rows.shape == (7, 4, 3) and noise.shape == (7, 3, 3)
    torch.testing.assert_close(R(rows[:, 1:]), ref.detach())


def test_theorem1_sides_under_both_readings():
    pol = MiniTransformer(3, 16, 2, 2, 4, init_scale=3.0, seed=0)
    args = (pol, torch.tensor([1]), 3, match_reward(0, -1), [0, 2], 0.5)
    kw = dict(n_relaxed=300, n_sequences=3)
    one = theorem1_sides(*args, **kw, generator=torch.Generator().manual_seed(0))
    both = theorem1_sides(
        *args, **kw, generator=torch.Generator().manual_seed(0), jacobian=("softmax", "gumbel")
    )
    # the book's reading is unchanged by asking for the second one (drawn after it)
    assert both.rhs == one.rhs == both.rhs_by["softmax"] and both.lhs == one.lhs
    assert both.jacobian_samples == one.jacobian_samples
    for l in (0, 2):
        assert both.rhs_by["gumbel"][l] > 0
        assert abs(both.rhs_by["gumbel"][l] - both.rhs[l]) > 1e-6 * both.rhs[l]  # control
        assert both.holds(l, reading="gumbel") == (
            both.lhs[l] <= both.rhs_by["gumbel"][l] + 2 * both.se[l]
        )
    g = theorem1_sides(*args, **kw, generator=torch.Generator().manual_seed(0), jacobian="gumbel")
    assert g.rhs == g.rhs_by["gumbel"] and g.jacobian_samples == []
    with pytest.raises(ValueError, match="jacobian"):
        theorem1_sides(*args, **kw, jacobian="hard")
    with pytest.raises(ValueError, match="one token"):
        theorem1_sides(pol, torch.tensor([1, 2]), *args[2:], **kw)


def test_numeric_rank():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(10, 3, generator=g, dtype=torch.float64) @ torch.randn(
        3, 10, generator=g, dtype=torch.float64
    )
    assert numeric_rank(A) == 3
    assert (
        numeric_rank(A + 1e-3 * torch.randn(10, 10, generator=g, dtype=torch.float64)) == 10
    )  # control
    assert numeric_rank(torch.zeros(4, 4)) == 0


def test_prop3_rank_bound_holds_when_it_says_something():
    tok = torch.tensor([1, 3, 4, 0, 2, 3])
    m = MiniTransformer(5, 32, n_layers=2, n_heads=2, d_head=4, init_scale=2.0)
    bound = prop3_bound(2, 2, 4)
    assert bound == 16 < 32
    r = numeric_rank(attention_jacobian(m, tok, (0, 1), (2, 4)))
    assert r <= bound and r > 8  # more than one layer's worth: both layers contribute
    assert numeric_rank(attention_jacobian(m, tok, (1, 1), (2, 4))) <= prop3_bound(1, 2, 4)
    olmo = HFCausalLM(
        tiny_olmo2(vocab_size=5, hidden_size=32, n_layers=2, n_heads=2, head_dim=4, init_std=0.3)
    )
    assert numeric_rank(attention_jacobian(olmo, tok, (0, 1), (2, 4)), rtol=1e-6) <= bound
    full = MiniTransformer(5, 16, n_layers=2, n_heads=4, d_head=4)  # d_head * n_heads = d_model
    assert prop3_bound(2, 4, 4) >= 16  # vacuous: no 16 x 16 matrix has rank above 16
    with pytest.raises(ValueError, match="earlier"):
        attention_jacobian(full, tok, (0, 3), (2, 3))


def test_rmsnorm_setting_eps_and_float64_are_scoped():
    m = tiny_olmo2(vocab_size=5, hidden_size=16, n_layers=1, n_heads=2, head_dim=4, init_std=0.3)
    norm = m.model.layers[0].post_attention_layernorm
    eps0 = norm.variance_epsilon
    x = torch.randn(3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[0] *= 1e-3  # a small row: eps matters there
    ref = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-2) * norm.weight.detach()
    with rmsnorm_setting(m, eps=1e-2, float64=True):
        assert norm.variance_epsilon == 1e-2 and m.model.norm.variance_epsilon == 1e-2
        assert torch.allclose(norm(x), ref, rtol=1e-14, atol=0)  # float64: exact to rounding
    with rmsnorm_setting(m, eps=1e-2):  # Hugging Face's float32: only float32 accuracy
        err = float(((norm(x).detach() - ref).abs() / ref.abs()).max())
        assert 1e-12 < err < 1e-5
    assert norm.variance_epsilon == eps0 and "forward" not in norm.__dict__  # restored
    with pytest.raises(ValueError, match="positive"):
        with rmsnorm_setting(m, eps=0.0):
            pass
    with pytest.raises(ValueError, match="RMSNorm"):
        with rmsnorm_setting(torch.nn.Linear(2, 2)):
            pass


def test_prop3_olmo2_exact_rank_and_eps_suppressed_directions():
    """With the norms in float64 the tiny OLMo-2 reaches the bound (8 after one layer); the 8th
    singular value is suppressed by the post-attention norm, in proportion to eps."""
    tok = torch.tensor([1, 3, 4, 0, 2, 3])
    olmo = HFCausalLM(
        tiny_olmo2(vocab_size=5, hidden_size=32, n_layers=1, n_heads=2, head_dim=4, init_std=0.3)
    )
    s8 = {}
    for eps in (1e-6, 1e-5):
        with rmsnorm_setting(olmo.model, eps=eps, float64=True):
            J = attention_jacobian(olmo, tok, (0, 1), (1, 4))
        s = torch.linalg.svdvals(J) / torch.linalg.svdvals(J)[0]
        assert numeric_rank(J, rtol=1e-12) == prop3_bound(1, 2, 4) == 8
        assert s[8] < 1e-14  # true zeros
        s8[eps] = float(s[7])
    assert 1e-12 < s8[1e-6] < 1e-3
    assert s8[1e-5] / s8[1e-6] == pytest.approx(10, rel=0.05)  # linear in eps


def test_theorem1_rhs_against_the_double_sum():
    rng = np.random.default_rng(0)
    J, e = rng.uniform(0, 2, 7), rng.uniform(0, 1, 7)
    for gamma in (1.0, 0.9):
        ref = [
            sum(gamma ** (k - t) * np.prod(J[t + 1 : k]) * e[k] for k in range(t + 1, 7))
            for t in range(7)
        ]
        np.testing.assert_allclose(theorem1_rhs(J, e, gamma), ref)
    assert not np.allclose(
        theorem1_rhs(J, e), [sum(e[t + 1 :]) for t in range(7)]
    )  # control: J matters
    with pytest.raises(ValueError):
        theorem1_rhs(J, e[:3])
    with pytest.raises(ValueError):
        theorem1_rhs(J, e, gamma=0)


def test_theorem1_sides_against_a_hand_assembly_on_a_two_step_token_policy():
    # T = 2: the right side is gamma * eps_1 = gamma * max_x ||S_1(x)|| * ||E[lambda^tau_1]||.

    pol, prefix, reward = (
        TokenOnlyPolicy(3, 8, init_scale=2.0, seed=0),
        torch.tensor([1]),
        match_reward(0, -1),
    )
    sides = theorem1_sides(
        pol,
        prefix,
        2,
        reward,
        [0],
        0.5,
        n_relaxed=500,
        n_sequences=3,
        gamma=0.9,
        generator=torch.Generator().manual_seed(0),
    )
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
    assert 0 < r < 0.6  # the linear bound (findings, Prop 2), Dirichlet(1) draws
    assert r < s  # and never above the supremum
    # Control: the two-point law (1/2, 1/2) exceeds 0.6, so "< 0.6" is not a property of the
    # simplex.
    assert (1 - 0.5) / eb.entropy([0.5, 0.5]) > 0.6


def test_entropy_rejects_bad_input():
    with pytest.raises(ValueError):
        eb.entropy([0.5, -0.1, 0.6])
    with pytest.raises(ValueError):
        eb.c_vocab(1)
