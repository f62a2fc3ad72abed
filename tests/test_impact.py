import numpy as np
import pytest
import torch

from vghlib import tasks
from vghlib.grpo import advantages, group_mean_scale
from vghlib.impact import (
    COSTATE_SCALES,
    bernoulli_headroom,
    best_checkpoint,
    cosine,
    costate_scale_factor,
    grpo_costate_scale,
    headroom,
    score_from_prompts,
    usable_terms,
)
from vghlib.scoring import checkpoint_score


def test_bernoulli_headroom_vanishes_at_the_ends_and_is_positive_between():
    p = np.linspace(0, 1, 101)
    h = bernoulli_headroom(p, 3.0)
    assert h[0] == 0 and abs(h[-1]) < 1e-12
    assert np.all(h[1:-1] > 0)


def test_bernoulli_headroom_matches_the_two_point_expectation():
    # Reference computed directly from the definition, no logaddexp.
    for p, a in [(0.2, 1.0), (0.7, 4.0), (0.05, 10.0)]:
        ref = np.log((1 - p) + p * np.exp(a)) / a - p
        assert bernoulli_headroom(p, a) == pytest.approx(ref, rel=1e-12)


def test_bernoulli_headroom_limits_in_alpha():
    p = 0.3
    assert bernoulli_headroom(p, 1e-4) == pytest.approx(1e-4 * p * (1 - p) / 2, rel=1e-3)
    assert bernoulli_headroom(p, 500.0) == pytest.approx(1 - p, abs=5e-3)


def test_sampled_headroom_converges_to_the_closed_form():
    rng = np.random.default_rng(1)
    r = (rng.random(400_000) < 0.4).astype(float)
    assert headroom(r, 2.0) == pytest.approx(bernoulli_headroom(0.4, 2.0), abs=2e-3)
    # Negative control: the wrong success probability is clearly rejected.
    assert abs(headroom(r, 2.0) - bernoulli_headroom(0.6, 2.0)) > 1e-2


def test_sampled_headroom_is_zero_for_a_constant_reward_and_stable_for_large_alpha():
    assert headroom(np.full(10, 0.7), 5.0) == pytest.approx(0.0, abs=1e-12)
    r = np.array([0.0, 1.0, 1.0, 0.0])
    assert np.isfinite(headroom(r * 1000, 50.0))


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="non-finite reward"):
        headroom([0.0, np.nan, 1.0], 1.0)
    with pytest.raises(ValueError, match="alpha must be a positive"):
        bernoulli_headroom(0.5, 0.0)
    with pytest.raises(ValueError, match="probabilities in"):
        bernoulli_headroom(1.5, 1.0)


def test_usable_terms_shapes_and_values():
    g = np.array([[1.0, 0.0], [0.0, 2.0]])
    align, sigma, lam = usable_terms(g, g)
    assert (align, sigma, lam) == (2.5, 2.5, 0.0)
    with pytest.raises(ValueError):
        usable_terms(g, g[:, :1])


def test_grpo_costate_scale_matches_monte_carlo_groups_and_known_cases():
    # E[Â_i (r_i − p)] / (p(1 − p)) is the factor c of E[λ̂|h] = c·G (the score of a 0/1 outcome
    # is proportional to r − p): a Monte Carlo estimate over many groups must match the closed form.
    g = torch.Generator().manual_seed(0)
    for p, n in ((0.3, 8), (0.8, 4), (0.05, 16)):
        r = (torch.rand(200_000, n, generator=g, dtype=torch.float64) < p).double()
        mc = float((advantages(r, "grpo") * (r - p)).mean() / (p * (1 - p)))
        assert grpo_costate_scale(p, n, "grpo") == pytest.approx(mc, rel=0.02)
        assert grpo_costate_scale(p, n, "grpo") != pytest.approx(1.0, rel=0.05)  # GRPO rescales
    assert grpo_costate_scale(0.4, 6, "mean") == pytest.approx(group_mean_scale(6))
    assert grpo_costate_scale(np.array([0.2, 0.9]), 5, "loo") == pytest.approx([1.0, 1.0])
    # p → 0: the only groups that matter hold one success, whose advantage is (1 − 1/n)/sqrt(1/n)
    assert grpo_costate_scale(0.0, 8, "grpo") == pytest.approx(
        (1 - 1 / 8) / (np.sqrt(1 / 8) + 1e-4)
    )
    with pytest.raises(ValueError, match="group_size"):
        grpo_costate_scale(0.5, 1)


def test_checkpoint_score_against_a_hand_computed_model():
    # A one-layer "model" whose answer logits are W h with h the embedding of the last token:
    # G = Wᵀ ∂p/∂z can be written by hand, so Σ is checked exactly.

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.model = torch.nn.Module()
            self.model.embed_tokens = torch.nn.Embedding(12, 5, dtype=torch.float64)
            self.model.layers = torch.nn.ModuleList()
            with torch.no_grad():
                self.model.embed_tokens.weight.copy_(
                    torch.randn(12, 5, generator=g, dtype=torch.float64)
                )
            self.W = torch.nn.Parameter(torch.randn(12, 5, generator=g, dtype=torch.float64))

        def forward(self, input_ids, **kw):
            h = self.model.embed_tokens(input_ids)
            return type("Out", (), {"logits": h @ self.W.T})()

    m = Tiny()
    ids = torch.tensor([[3, 4], [5, 6], [7, 3]])
    batch = tasks.TaskBatch(
        ids,
        torch.ones_like(ids),
        torch.zeros_like(ids),
        torch.tensor([0, 1, 2]),
        torch.tensor([0, 1, 2]),
        torch.tensor([0, 1, 2, 8]),
        ["", "", ""],
    )
    s = checkpoint_score(m, batch, alpha=2.0, group_size=4, layer=0)
    with torch.no_grad():
        z = m(ids).logits[:, -1]
        pi = torch.softmax(z, -1)
        p = pi[torch.arange(3), torch.tensor([0, 1, 2])]
        dp = p[:, None] * (torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 12) - pi)
        G = dp @ m.W  # (3, 5)
    assert s["sigma_energy"] == pytest.approx(float((G**2).sum(-1).mean()), rel=1e-10)
    assert s["r_before"] == pytest.approx(float(p.mean()))
    assert s["headroom"] == pytest.approx(float(np.mean(bernoulli_headroom(p.numpy(), 2.0))))
    assert s["lam_single"] > s["lam_cond"] >= 0  # Jensen: single samples overstate Λ
    assert s["p_gap_cond"] == pytest.approx(s["usable_cond"] * s["headroom"])
    with pytest.raises(ValueError, match="out of range"):
        checkpoint_score(m, batch, alpha=2.0, group_size=4, layer=3)


def test_best_checkpoint_is_the_argmax():
    assert best_checkpoint([0.1, 0.5, 0.2], [10, 20, 30]) == 20
    with pytest.raises(ValueError, match="NaN"):
        best_checkpoint([0.1, float("nan")], [1, 2])


def _prompts(lo, hi, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(lo, hi, 64)
    return p, rng.uniform(0.5, 1.5, 64) * p * (1 - p)  # ‖G‖² ∝ p(1 − p), as for one token


@pytest.mark.parametrize("lo, hi", [(0.02, 0.2), (0.9, 0.999)])
def test_the_costate_scale_can_flip_the_sign_of_s_but_not_of_the_alignment(lo, hi):
    p, g2 = _prompts(lo, hi)
    per_traj, per_group = (
        score_from_prompts(p, g2, alpha=2.0, group_size=8, scale=s) for s in COSTATE_SCALES
    )
    assert per_traj["usable_cond"] < 0 < per_group["usable_cond"]  # S: a convention's sign
    assert per_traj["alignment"] > 0 and per_group["alignment"] > 0  # eq 24 keeps its sign
    assert per_group["alignment"] == pytest.approx(per_traj["alignment"] / 8)  # it only scales
    assert per_group["cosine"] == pytest.approx(per_traj["cosine"])  # the cosine not even that
    assert per_group["cosine_headroom"] == pytest.approx(per_traj["cosine_headroom"])
    # with s·c <= 1 on every prompt, |s c − 1| = 1 − s c and S is exactly the alignment
    c = grpo_costate_scale(p, 8) / 8
    assert c.max() <= 1 and per_group["usable_cond"] == pytest.approx(per_group["alignment"])


def test_in_the_middle_both_scales_agree_on_the_sign():
    p, g2 = _prompts(0.2, 0.8)  # the control: not every set of prompts flips
    for s in COSTATE_SCALES:
        assert score_from_prompts(p, g2, alpha=2.0, group_size=8, scale=s)["usable_cond"] > 0


def test_costate_scale_factor_names_and_errors():
    assert costate_scale_factor("trajectory", 8) == 1.0
    assert costate_scale_factor("group", 8) == 1 / 8
    with pytest.raises(ValueError, match="costate scale"):
        costate_scale_factor("token", 8)
    assert cosine(1.0, 4.0, 0.25) == pytest.approx(1.0) and cosine(1.0, 0.0, 1.0) == 0.0
