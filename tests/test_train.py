"""vghlib.train: GRPO on a causal LM for the label-copying task (tiny OLMo-2, real tokenizer)."""

import pytest
import torch

from vghlib import checkpoints, grpo, tasks
from vghlib.train import GRPOConfig, answer_logprobs, train_grpo


@pytest.fixture(scope="module")
def ckpt(tiny_trajectory):
    # the middle checkpoint has learned that a label follows "answer" (R ≈ 0.12): RL moves it fast
    return tiny_trajectory.checkpoints[1].path


@pytest.fixture()
def setup(ckpt):
    model, tok = checkpoints.load(ckpt)
    task = tasks.LabelCopyTask()
    return model, task.batch(tok, 128, seed=5), task.batch(tok, 64, seed=6)


@pytest.mark.slow
def test_first_update_equals_reinforce_with_the_same_advantages(setup):
    # At theta = theta_old the ratio is 1 and the clipped loss has the REINFORCE gradient.
    model, train, ev = setup
    z = tasks.answer_logits(model, train)
    g = torch.Generator().manual_seed(0)
    answers = tasks.sample_answers(z.detach(), train, 4, generator=g)
    adv = grpo.advantages(tasks.per_sample_rewards(answers, z.detach(), train), "grpo")
    logp = answer_logprobs(z, answers).reshape(-1, 1)
    loss, info = grpo.grpo_loss(logp, logp.detach(), adv.reshape(-1), torch.ones_like(logp))
    params = [p for p in model.parameters() if p.requires_grad]
    g1 = torch.autograd.grad(loss, params, retain_graph=True)
    g2 = torch.autograd.grad(-(adv.reshape(-1, 1) * logp).mean(), params)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(g1, g2))
    assert info["clip_frac"] == 0.0 and info["ratio_mean"] == pytest.approx(1.0)
    g3 = torch.autograd.grad(
        answer_logprobs(tasks.answer_logits(model, train), answers).mean(), params
    )
    assert not all(
        torch.allclose(a, b, atol=1e-6) for a, b in zip(g1, g3)
    )  # control: no advantages


@pytest.mark.slow
def test_a_short_run_raises_the_reward_and_its_controls_do_not(setup):
    model, train, ev = setup
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rec = train_grpo(model, train, ev, GRPOConfig(learning_rate=3e-3), 15, seed=0)
    assert len(rec.r_exact) == 16 and rec.r_after(15) > rec.r_after(0) + 0.05
    model.load_state_dict(state)
    flat = train_grpo(model, train, ev, GRPOConfig(reward_kind="prob"), 5, seed=0)
    assert flat.r_exact == [flat.r_exact[0]] * 6  # equal rewards in a group: zero advantages
    model.load_state_dict(state)
    frozen = train_grpo(model, train, ev, GRPOConfig(learning_rate=0.0), 3, seed=0)
    assert frozen.r_exact == [frozen.r_exact[0]] * 4


@pytest.mark.slow
def test_runs_are_deterministic_and_clipping_acts_with_several_iterations(setup):
    model, train, ev = setup
    state = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = GRPOConfig(num_iterations=4, learning_rate=1e-2, clip_eps=0.1, clip_eps_high=0.2)
    a = train_grpo(model, train, ev, cfg, 3, seed=7)
    model.load_state_dict(state)
    b = train_grpo(model, train, ev, cfg, 3, seed=7)
    assert a.r_exact == b.r_exact
    assert max(a.clip_frac) > 0  # later inner steps leave the trust region
    model.load_state_dict(state)
    c = train_grpo(model, train, ev, cfg, 3, seed=8)
    assert c.r_exact != a.r_exact


@pytest.mark.slow
def test_a_run_records_the_k3_kl_of_what_its_loss_saw(setup, monkeypatch):
    # (k3 and the loss against hand values: tests/test_grpo.py)
    # a run records the k3 KL of the log-probs its loss saw, against the starting policy
    seen = []

    def spy(logp, old_logp, adv, mask, **kw):
        seen.append((logp.detach().double(), kw["ref_logp"].detach().double(), mask.double()))
        return real(logp, old_logp, adv, mask, **kw)

    real = grpo.grpo_loss
    monkeypatch.setattr(grpo, "grpo_loss", spy)
    model, train, ev = setup
    config = GRPOConfig(adv_kind="mean", loss_type="dr_grpo", kl_coef=0.1)
    rec = train_grpo(model, train, ev, config, 2)
    assert len(seen) == len(rec.kl) == 2  # one inner iteration, one chunk per update
    (logp0, ref0, _), (logp1, ref1, mask1) = seen
    assert torch.allclose(logp0, ref0, rtol=0, atol=1e-6)
    assert rec.kl[0] == pytest.approx(0, abs=1e-9)
    d = ref1 - logp1
    kl1 = float(((d.exp() - d - 1) * mask1).sum() / mask1.sum())
    k1 = float((-d * mask1).sum() / mask1.sum())
    assert kl1 > 1e-5 and rec.kl[1] == pytest.approx(kl1, rel=1e-3)
    assert rec.kl[1] != pytest.approx(k1, rel=1e-1)  # control: the k1 estimate is another number


@pytest.mark.slow
def test_bad_settings_are_refused_with_the_reason(setup):
    model, train, ev = setup
    with pytest.raises(ValueError, match="a group of one has advantage 0"):
        GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="unknown loss_type"):
        GRPOConfig(loss_type="ppo")
    with pytest.raises(ValueError, match="exceeds"):
        train_grpo(model, train, ev, GRPOConfig(prompts_per_step=1000), 1)
    with pytest.raises(ValueError, match="was not run"):
        train_grpo(model, train, ev, GRPOConfig(), 1).r_after(5)


@pytest.mark.slow
def test_bfloat16_autocast_around_a_whole_run_sees_every_update(setup, monkeypatch):
    """torch.autocast caches each weight's bfloat16 copy until its outermost context exits; a run
    inside one context must still train the weights its forward passes read."""
    model, train, ev = setup
    start = {k: v.clone() for k, v in model.state_dict().items()}
    config = GRPOConfig(prompts_per_step=16, group_size=4, learning_rate=3e-3)

    def run(clear=True):
        model.load_state_dict(start)
        model.float()
        if not clear:
            monkeypatch.setattr(torch, "clear_autocast_cache", lambda: None)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rec = train_grpo(model, train, ev, config, 12, seed=0)
        monkeypatch.undo()
        with torch.no_grad():  # the float32 weights, read in float32
            r32 = float(tasks.exact_reward(tasks.answer_logits(model, ev), ev).double().mean())
        return rec, r32

    model.load_state_dict(start)
    model.float()
    ref = train_grpo(model, train, ev, config, 12, seed=0)  # float32, no autocast
    rec, r32 = run()
    assert rec.r_exact[-1] > rec.r_exact[0] + 0.03  # bfloat16 GRPO learns ...
    assert rec.r_exact[-1] == pytest.approx(ref.r_exact[-1], abs=0.02)  # ... as float32 does
    assert r32 == pytest.approx(rec.r_exact[-1], abs=0.02)  # and its weights are what it read
    stale, stale32 = run(clear=False)  # control: the cache not cleared
    assert stale32 < ref.r_exact[-1] - 0.1 and abs(stale32 - stale.r_exact[-1]) > 0.1
