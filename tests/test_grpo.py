import math

import pytest
import torch

from vghlib.grpo import advantages, group_mean_scale, grpo_loss, k3_kl, token_logprobs


def test_grpo_advantage_matches_a_hand_computation():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    mean, std = 0.6, math.sqrt(sum((x - 0.6) ** 2 for x in [1, 0, 0, 1, 1]) / 4)  # unbiased
    expected = torch.tensor([(x - mean) / (std + 1e-4) for x in [1, 0, 0, 1, 1]])
    assert torch.allclose(advantages(r), expected, atol=1e-12)
    # Negative control: the biased (n) std gives a different answer.
    biased = torch.tensor(
        [(x - mean) / (r.std(unbiased=False).item() + 1e-4) for x in [1, 0, 0, 1, 1]]
    )
    assert not torch.allclose(advantages(r), biased, atol=1e-3)


def test_equal_rewards_give_zero_not_nan():
    a = advantages(torch.ones(3, 4))
    assert torch.equal(a, torch.zeros(3, 4))


def test_loo_and_mean_baselines():
    r = torch.tensor([[3.0, 1.0, 2.0]])
    assert torch.allclose(advantages(r, "loo"), torch.tensor([[1.5, -1.5, 0.0]]))
    assert torch.allclose(advantages(r, "mean"), torch.tensor([[1.0, -1.0, 0.0]]))
    # "mean" = (1 - 1/n) * "loo" exactly, the scale factor of group_mean_scale.
    assert torch.allclose(advantages(r, "mean"), (1 - 1 / 3) * advantages(r, "loo"))
    assert torch.allclose(advantages(r, "baseline", baseline=2.0), torch.tensor([[1.0, -1.0, 0.0]]))


def test_mean_baseline_shrinks_the_policy_gradient_by_one_minus_one_over_n():
    # Bernoulli policy with logit θ: E[Â ∂θ log π] over many groups of n.
    torch.manual_seed(0)
    theta, n, groups = 0.3, 4, 200_000
    p = torch.sigmoid(torch.tensor(theta))
    x = (torch.rand(groups, n) < p).double()
    score = x - p  # ∂θ log π(x) for a Bernoulli(sigmoid θ)
    true = p * (1 - p)  # d/dθ E[x]
    est = {k: (advantages(x, k, baseline=0.5) * score).mean() for k in ("loo", "mean", "baseline")}
    se = 3 * (advantages(x, "mean") * score).std() / math.sqrt(x.numel())
    assert abs(est["loo"] - true) < se
    assert abs(est["baseline"] - true) < se
    assert abs(est["mean"] - (1 - 1 / n) * true) < se
    assert abs(est["mean"] - true) > 3 * se  # the bias is detectable at this sample size


def test_bad_rewards_are_rejected_with_advice():
    with pytest.raises(ValueError, match="NaN or inf"):
        advantages(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="unknown advantage kind"):
        advantages(torch.ones(3), "gae")
    with pytest.raises(ValueError, match="needs baseline"):
        advantages(torch.ones(3), "baseline")
    with pytest.raises(ValueError, match="at least 2"):
        advantages(torch.ones(1))


def test_token_logprobs_divides_by_temperature():
    logits = torch.tensor([[[2.0, 0.0, -1.0]]])
    tok = torch.tensor([[0]])
    lp = token_logprobs(logits, tok, temperature=2.0)
    assert torch.allclose(lp, torch.log_softmax(logits / 2.0, -1)[..., 0])
    with pytest.raises(ValueError, match="disagree"):
        token_logprobs(logits, torch.tensor([[0, 1]]))


def test_grpo_loss_matches_a_hand_computed_batch():
    # Two completions, lengths 2 and 1 (mask), one clipped token.
    f64 = dict(dtype=torch.float64)
    logp = torch.tensor([[math.log(0.5), math.log(0.3)], [math.log(0.9), 0.0]], **f64)
    old = torch.tensor([[math.log(0.4), math.log(0.3)], [math.log(0.6), 0.0]], **f64)
    adv = torch.tensor([1.0, -2.0], **f64)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]], **f64)
    # ratios: 1.25 (clipped to 1.2 for A>0: min(1.25, 1.2) = 1.2), 1.0,
    # 1.5 (A<0: min(-3, -2.4) = -3)
    seq0 = -(1.2 * 1.0 + 1.0 * 1.0) / 2
    seq1 = -(1.5 * -2.0) / 1
    loss, info = grpo_loss(logp, old, adv, mask, clip_eps=0.2)
    assert loss.item() == pytest.approx((seq0 + seq1) / 2, abs=1e-12)
    loss_tm, _ = grpo_loss(logp, old, adv, mask, clip_eps=0.2, loss_type="token-mean")
    assert loss_tm.item() == pytest.approx((-1.2 - 1.0 + 3.0) / 3, abs=1e-12)
    assert info["clip_frac"] == pytest.approx(2 / 3)


def test_grpo_loss_gradient_at_the_old_policy_is_the_score_function_gradient():
    torch.manual_seed(1)
    logits = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, 5, (3, 4))
    adv = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    mask = torch.ones(3, 4, dtype=torch.float64)
    lp = token_logprobs(logits, tokens)
    loss, _ = grpo_loss(lp, lp.detach(), adv, mask)
    assert loss.item() == pytest.approx(-adv.mean().item())  # ratio = 1 at the old policy
    (g,) = torch.autograd.grad(loss, logits, retain_graph=True)
    (ref,) = torch.autograd.grad(-(adv[:, None] * lp).mean(-1).mean(), logits)
    assert torch.allclose(g, ref)


def test_k3_and_the_kl_term_of_the_loss_against_hand_values():
    # k3 by hand: log pi = (log 1/2, log 1/4), log pi_ref = (log 1/4, log 1/2), so
    # d = log pi_ref - log pi = (-ln 2, ln 2) and e^d - d - 1 = (ln 2 - 1/2, 1 - ln 2), mean 1/4.
    ln2 = 0.6931471805599453
    logp = torch.tensor([[0.5, 0.25]], dtype=torch.float64).log()
    ref_logp = torch.tensor([[0.25, 0.5]], dtype=torch.float64).log()
    by_hand = torch.tensor([[ln2 - 0.5, 1 - ln2]], dtype=torch.float64)
    assert torch.allclose(k3_kl(logp, ref_logp), by_hand, rtol=0, atol=1e-15)
    # controls: the arguments swapped, and the k1 estimator log pi - log pi_ref, differ
    assert not torch.allclose(k3_kl(ref_logp, logp), by_hand, rtol=0, atol=1e-3)
    assert not torch.allclose(logp - ref_logp, by_hand, rtol=0, atol=1e-3)
    # in the loss: with advantage 0 and ratio 1 only beta * KL is left, 0.1 * 1/4 per token
    no_adv, ones = torch.zeros(1, dtype=torch.float64), torch.ones_like(logp)
    for loss_type in ("grpo", "dr_grpo"):
        loss, info = grpo_loss(
            logp,
            logp,
            no_adv,
            ones,
            kl_coef=0.1,
            ref_logp=ref_logp,
            loss_type=loss_type,
            max_completion_length=2,
        )
        assert info["kl"] == pytest.approx(0.25, abs=1e-15)
        assert float(loss) == pytest.approx(0.025, abs=1e-15)
    _, info = grpo_loss(
        logp, logp, no_adv, torch.tensor([[1.0, 0.0]], dtype=torch.float64), ref_logp=ref_logp
    )
    assert info["kl"] == pytest.approx(ln2 - 0.5, abs=1e-15)  # the masked token does not count
    assert k3_kl(torch.tensor(0.7), torch.tensor(0.7)) == 0  # zero at equality


def test_k3_expected_gradient_is_the_forward_kl_gradient():
    # Categorical π_θ = softmax(θ), π_ref fixed. E_{o~π_θ}[∇θ k3(o)] (k3 differentiated through
    # log π only, samples held fixed, as a loss does) = ∇θ KL(π_ref‖π_θ), not ∇θ KL(π_θ‖π_ref).
    theta = torch.tensor([0.2, -0.5, 1.0], dtype=torch.float64, requires_grad=True)
    ref = torch.log_softmax(torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64), -1)
    logp = torch.log_softmax(theta, -1)
    p = logp.exp().detach()
    expected_k3 = (p * k3_kl(logp, ref)).sum()  # exact expectation, weights not differentiated
    (g,) = torch.autograd.grad(expected_k3, theta, retain_graph=True)
    fwd = (ref.exp() * (ref - logp)).sum()
    rev = (logp.exp() * (logp - ref)).sum()
    (g_fwd,) = torch.autograd.grad(fwd, theta, retain_graph=True)
    (g_rev,) = torch.autograd.grad(rev, theta)
    assert torch.allclose(g, g_fwd)
    assert not torch.allclose(g, g_rev, atol=1e-3)


def test_group_mean_scale_is_one_minus_one_over_n_and_matches_the_mean_advantage():
    assert group_mean_scale(8) == 0.875
    with pytest.raises(ValueError, match="at least 2"):
        group_mean_scale(1)
    # Â_i = r_i − mean(r) = (1 − 1/n) r_i − (1/n) Σ_{j≠i} r_j: the coefficient of r_i is the factor
    r = torch.zeros(5, dtype=torch.float64)
    r[2] = 1.0
    assert advantages(r, "mean")[2].item() == pytest.approx(group_mean_scale(5))
    assert advantages(r, "mean")[2].item() != pytest.approx(1.0)


def test_two_sided_clipping_and_the_loss_types_on_a_hand_computed_batch():
    # The batch of the test above with eps_low = 0.2, eps_high = 0.3: the first token's ratio
    # 1.25 is no longer clipped (1.25 < 1.3), and a fourth token of ratio 0.7 (A < 0) is clipped
    # at 1 - eps_low = 0.8: min(0.7 * -2, 0.8 * -2) = -1.6.
    f64 = dict(dtype=torch.float64)
    logp = torch.tensor([[math.log(0.5), math.log(0.3)], [math.log(0.9), math.log(0.07)]], **f64)
    old = torch.tensor([[math.log(0.4), math.log(0.3)], [math.log(0.6), math.log(0.1)]], **f64)
    adv = torch.tensor([1.0, -2.0], **f64)
    mask = torch.ones(2, 2, **f64)
    tok = torch.tensor([[-1.25, -1.0], [3.0, 1.6]], **f64)  # -min(ρA, clip(ρ)A), by hand
    loss, info = grpo_loss(logp, old, adv, mask, clip_eps=0.2, clip_eps_high=0.3)
    assert loss.item() == pytest.approx(tok.mean(-1).mean().item(), abs=1e-12)
    assert info["clip_frac"] == pytest.approx(2 / 4)  # ratios 1.5 and 0.7 lie outside
    sym, sym_info = grpo_loss(logp, old, adv, mask, clip_eps=0.2)  # negative control: symmetric
    assert sym.item() != pytest.approx(loss.item()) and sym_info["clip_frac"] == pytest.approx(
        3 / 4
    )
    bnpo, _ = grpo_loss(logp, old, adv, mask, 0.2, clip_eps_high=0.3, loss_type="bnpo")
    assert bnpo.item() == pytest.approx(tok.sum().item() / 4, abs=1e-12)
    # Dr. GRPO: sum over tokens / (B * max_completion_length), with a shorter second completion
    short = torch.tensor([[1.0, 1.0], [1.0, 0.0]], **f64)
    dr, _ = grpo_loss(
        logp, old, adv, short, 0.2, clip_eps_high=0.3, loss_type="dr_grpo", max_completion_length=4
    )
    assert dr.item() == pytest.approx((-1.25 - 1.0 + 3.0) / (2 * 4), abs=1e-12)
    with pytest.raises(ValueError, match="max_completion_length"):
        grpo_loss(logp, old, adv, mask, loss_type="dr_grpo")
    with pytest.raises(ValueError, match="unknown loss_type"):
        grpo_loss(logp, old, adv, mask, loss_type="dapo2")
