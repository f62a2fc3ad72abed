"""Answers of several tokens (vghlib.sequences and what it changes elsewhere): the k-label copying
task, the teacher-forced reward p(y*|q) = Π_t p(y*_t | q, y*_<t), the value gradient at the first
answer position and its two parts, the conditional mean E[λ̂ | h_q] = c(p, n) G_q by enumeration
and by Monte Carlo, the one-token reduction, eq 1's group scale, GRPO over sampled sequences and
the sweep's ``--answer-length``.

Reference: Asadulaev et al., arXiv 2605.21654, eq 1 (GRPO over sampled completions), eq 13–14
(the empirical costate λ̂), eq 24–30 (alignment, Σ, Λ, H_α and P_gap); the book's notation page
(eq 14, "E[λ̂ | h] for an answer of several tokens") and Part IV's impact-law page.

Every numeric identity has a negative control: a nearby wrong formula that the same tolerance
rejects. The model's RMSNorm computes in float32 inside a float64 model, so identities between
two different computations hold to about 1e-7 relative, and identities between two code paths
that run the same operations hold to rounding.
"""

import copy
import dataclasses
import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_K2
from vghlib import checkpoints, impact, pretrain, scoring, sequences, tasks
from vghlib.results import SweepConfig, summarise
from vghlib.train import GRPOConfig, train_grpo

K2 = tasks.LabelCopyTask(answer_length=2)
ROOT = Path(__file__).resolve().parents[1]


def rel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a − b‖ / ‖b‖ per row (the last axis is the vector)."""
    return (a - b).norm(dim=-1) / b.norm(dim=-1)


def closed_form(p: torch.Tensor, g: torch.Tensor, kind: str, n: int = 8) -> torch.Tensor:
    """c(p, n) G per prompt, with c from :func:`vghlib.impact.grpo_costate_scale`."""
    return torch.as_tensor(impact.grpo_costate_scale(p.numpy(), n, kind))[:, None] * g


# --------------------------------------------------------------------------------------------
# The task (no model): fast
# --------------------------------------------------------------------------------------------


def test_the_k_labels_follow_the_marker_in_order():
    """``texts`` writes the k target labels right after the marker word, in the target's order,
    once per prompt, and every distractor label differs from the first target label."""
    texts, target = K2.texts(64, torch.Generator().manual_seed(0))
    assert target.shape == (64, 2)
    assert (target[:, 0] != target[:, 1]).any()  # some rows would catch a swapped order
    for text, y in zip(texts, target.tolist()):
        words = text.split()
        assert words.count(K2.label_word) == 1 and words[-1] == K2.answer_word
        i = words.index(K2.label_word)
        assert words[i + 1 : i + 3] == [K2.labels[j] for j in y]
        others = words[:i] + words[i + 3 :]
        assert K2.labels[y[0]] not in others  # the distractors are other labels
    # control: the reversed order is not what is written, wherever the two labels differ
    i = int((target[:, 0] != target[:, 1]).nonzero()[0, 0])
    words = texts[i].split()
    j = words.index(K2.label_word)
    assert words[j + 1 : j + 3] != [K2.labels[y] for y in target[i].flip(0).tolist()]


@pytest.mark.parametrize("k", [0, 5, 1.5, True])
def test_an_answer_length_outside_1_to_4_is_refused(k):
    """``answer_length`` must be an integer in 1..4 (a bool is not one); 1 and 4 are accepted."""
    with pytest.raises(ValueError, match="answer_length"):
        tasks.LabelCopyTask(answer_length=k)
    assert tasks.LabelCopyTask(answer_length=1).answer_length == 1  # control: the ends pass
    assert tasks.LabelCopyTask(answer_length=4).answer_length == 4


def test_one_token_tasks_keep_their_stored_form_and_their_hashes():
    """A one-token task is stored without ``answer_length``, so pretraining configs and results
    files written before the field existed keep their hashes; k = 2 is stored and round-trips."""
    one, two = tasks.LabelCopyTask().to_dict(), K2.to_dict()
    assert "answer_length" not in one and two["answer_length"] == 2
    assert tasks.LabelCopyTask.from_dict(one) == tasks.LabelCopyTask()
    assert tasks.LabelCopyTask.from_dict(two) == K2
    assert tasks.LabelCopyTask.from_dict(json.loads(json.dumps(two))) == K2  # lists -> tuples

    # config_hash(PretrainConfig()) is the hash of the config as it was stored before the field
    config = pretrain.PretrainConfig()
    assert "answer_length" not in pretrain.config_dict(config)["task"]
    old = json.loads(json.dumps(dataclasses.asdict(config)))

    def sha(d):
        blob = json.dumps(
            {"code_version": pretrain.CODE_VERSION, "numerics": pretrain.numerics(), **d},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    with_field = sha(old)
    old["task"].pop("answer_length")
    assert pretrain.config_hash(config) == sha(old)
    assert pretrain.config_hash(config) != with_field  # control: the field would change it
    assert pretrain.config_hash(TINY_K2) != pretrain.config_hash(
        dataclasses.replace(TINY_K2, task=tasks.LabelCopyTask())
    )

    # a results digest committed before the field: its sweep config reads back unchanged
    stored = json.loads((ROOT / "results" / "replicate" / "seed0-grpo-n8.json").read_text())
    assert "answer_length" not in stored["sweep_config"]["task"]
    assert SweepConfig.from_dict(stored["sweep_config"]).to_dict() == stored["sweep_config"]


def test_make_batch_refuses_a_target_of_the_wrong_shape():
    """make_batch takes targets (N,) for one token and (N, k) for k labels, and names the shape
    it got otherwise; the right shape gives a batch with ``answer_length`` k."""
    tok = pretrain.build_tokenizer(TINY_K2)
    texts, target = K2.texts(3, torch.Generator().manual_seed(1))
    batch = tasks.make_batch(tok, texts, target, K2)  # control: the right shape passes
    assert batch.answer_length == 2 and batch.target_ids.shape == (3, 2)
    assert torch.equal(batch.target_ids, batch.label_ids[target])
    with pytest.raises(ValueError, match=r"got \(3,\)"):
        tasks.make_batch(tok, texts, target[:, 0], K2)
    with pytest.raises(ValueError, match=r"got \(3, 2\)"):
        tasks.make_batch(tok, texts, target, tasks.LabelCopyTask())
    with pytest.raises(ValueError, match=r"got \(3, 3\)"):
        tasks.make_batch(tok, texts, torch.cat([target, target[:, :1]], 1), K2)


# --------------------------------------------------------------------------------------------
# The tiny k = 2 trajectory's last checkpoint
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k2(tiny_k2_trajectory):
    """(model, tokenizer) of the last checkpoint (p(y*|q) ≈ 0.06), in float64."""
    return checkpoints.load(tiny_k2_trajectory.checkpoints[-1].path, torch.float64)


@pytest.fixture(scope="module")
def eight(k2):
    """Eight k = 2 prompts of the trajectory's own length (no padding)."""
    return K2.batch(k2[1], 8, seed=3)


@pytest.fixture(scope="module")
def padded(k2):
    """Two k = 2 prompts of 15 and 11 tokens: the second is left-padded by 4."""
    g = torch.Generator().manual_seed(7)
    long_, y_long = K2.texts(1, g)
    short, y_short = tasks.LabelCopyTask(n_filler=6, answer_length=2).texts(1, g)
    return tasks.make_batch(k2[1], long_ + short, torch.cat([y_long, y_short]), K2)


@pytest.fixture(scope="module")
def measured(k2, eight):
    """sequences.measure on ``eight`` at hidden[1] with groups of 8 drawn with seed 0."""
    return sequences.measure(
        k2[0], eight, layer=1, group_size=8, generator=torch.Generator().manual_seed(0)
    )


@pytest.fixture(scope="module")
def enumerated(k2, eight):
    """E[λ̂ | h_q] by enumerating all V² answers of ``eight``, for GRPO and Dr. GRPO advantages."""
    return {
        kind: sequences.conditional_costate(k2[0], eight, layer=1, group_size=8, adv_kind=kind)
        for kind in ("grpo", "mean")
    }


@pytest.mark.slow
def test_continuation_logits_are_the_next_token_logits_after_the_written_answer(k2, padded):
    """``continuation_logits(...)[:, 0]`` is the answer position's logits and ``[:, 1]`` the
    logits of a plain forward pass over the unpadded prompt with the first token appended, on a
    padded row too: π(o_2 | q, o_1) of eq 1, with the positions continuing each row's own."""
    model, _ = k2
    assert padded.attention_mask.sum(1).tolist() == [15, 11]
    tokens = torch.tensor([[5, 9], [3, 4]])
    with torch.no_grad():
        z = tasks.continuation_logits(model, padded, tokens)
        assert z.shape == (2, 2, sequences.models_vocab(model))
        assert (z[:, 0] - tasks.answer_logits(model, padded)).abs().max() <= 1e-12
        assert (z[:, 1] - z[:, 0]).abs().max() > 1e-12  # control: the token is read
        for i in range(2):
            ids = torch.cat([padded.input_ids[i, padded.attention_mask[i].bool()], tokens[i, :1]])
            pos = torch.arange(len(ids))
            want = model(input_ids=ids[None], position_ids=pos[None]).logits[0, -1]
            assert (z[i, 1] - want).abs().max() <= 1e-12
            # control: the appended token at its predecessor's position
            pos[-1] -= 1
            wrong = model(input_ids=ids[None], position_ids=pos[None]).logits[0, -1]
            assert (z[i, 1] - wrong).abs().max() > 1e-6


@pytest.mark.slow
def test_the_exact_reward_is_the_product_of_the_teacher_forced_token_probabilities(k2, padded):
    """p(y*|q) = p(y*_1|q) p(y*_2|q, y*_1), computed by hand from plain forward passes, and the
    V² answers' probabilities from ``answer_logprobs`` sum to 1."""
    model, _ = k2
    y = padded.target_ids
    with torch.no_grad():
        p = tasks.exact_reward(tasks.continuation_logits(model, padded, y), padded)
        hand, independent = [], []
        for i in range(2):
            ids = torch.cat([padded.input_ids[i, padded.attention_mask[i].bool()], y[i, :1]])
            pi = torch.softmax(model(input_ids=ids[None]).logits[0, -2:], -1)  # (2, V)
            hand.append(pi[0, y[i, 0]] * pi[1, y[i, 1]])
            independent.append(pi[0, y[i, 0]] * pi[0, y[i, 1]])  # control: y*_2 read at q
        hand, independent = torch.stack(hand), torch.stack(independent)
        assert ((p - hand).abs() / hand).max() <= 1e-12
        assert ((independent - hand).abs() / hand).min() > 1e-12
        assert tasks.r_before(model, padded) == pytest.approx(float(hand.mean()), rel=1e-12)

        V = sequences.models_vocab(model)
        every = torch.tensor(list(itertools.product(range(V), repeat=2)))  # (V², 2)
        lp = sequences.answer_logprobs(model, padded, every[None].expand(2, -1, -1))  # (2, V², 2)
        total = lp.sum(-1).exp().sum(-1)
        assert (total - 1).abs().max() <= 1e-9
        at_y = (every[None] == y[:, None]).all(-1)  # (2, V²): the target's row
        assert torch.allclose(lp.sum(-1).exp()[at_y], p, rtol=1e-12, atol=0)
        # control: each token scored by the logits after it (a look-ahead slip) does not sum to 1
        rows = padded.rows(torch.arange(2).repeat_interleave(V * V))
        flat = every.repeat(2, 1)
        ahead = tasks.continuation_logits(model, rows, torch.cat([flat, flat[:, :1]], 1))[:, 1:]
        lp_ahead = torch.log_softmax(ahead, -1).gather(-1, flat[..., None])[..., 0]
        assert (lp_ahead.sum(-1).exp().reshape(2, -1).sum(-1) - 1).abs().min() > 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["grpo", "mean"])
def test_the_enumerated_conditional_mean_is_c_times_the_value_gradient(
    k2, eight, measured, enumerated, kind
):
    """Σ_o π(o|q) A_r(o) ∇ log π(o|q) over all V² answers equals c(p, n) G_q (eq 14 in
    expectation; the closed form of a one-token answer holds for two), per prompt to 1e-5
    relative (about 1e-7 is float32 rounding). Controls: the first token's credit alone in place
    of G, and the c of another advantage, miss by far more."""
    p, g = measured["p"], measured["g"]
    got = enumerated[kind]
    assert got.shape == g.shape and (got.norm(dim=1) > 0).all()
    assert rel(got, closed_form(p, g, kind)).max() < 1e-5
    assert rel(got, closed_form(p, measured["g_now"], kind)).min() > 1e-5
    other = {"grpo": "mean", "mean": "loo"}[kind]
    assert rel(got, closed_form(p, g, other)).min() > 1e-5


@pytest.mark.slow
def test_the_enumerated_conditional_mean_with_loo_advantages_on_padded_rows(k2, padded):
    """The same identity with RLOO advantages (c = 1) on a batch whose second row is left-padded:
    the enumeration continues each row's own positions, as ``measure`` does."""
    model, _ = k2
    m = sequences.measure(
        model, padded, layer=1, group_size=8, generator=torch.Generator().manual_seed(0)
    )
    got = sequences.conditional_costate(model, padded, layer=1, group_size=8, adv_kind="loo")
    assert rel(got, closed_form(m["p"], m["g"], "loo")).max() < 1e-5
    assert rel(got, closed_form(m["p"], m["g_now"], "loo")).min() > 1e-5
    assert rel(got, closed_form(m["p"], m["g"], "grpo")).min() > 1e-5


@pytest.mark.slow
def test_a_one_token_answer_reduces_to_the_closed_form_and_the_one_token_score(k2):
    """With k = 1 the enumeration is c(p, n) G with G from the one-token code path (cotangent
    ∂p/∂z = p(e_y − π), :func:`vghlib.scoring.answer_state_vjp`), and ``measure`` gives the
    one-token score's p, ‖G‖², sampled answers (draw for draw from the same seed) and the
    single-sample alignment and Λ (Section 6's recipe, eq 24–26)."""
    model, tok = k2
    b1 = tasks.LabelCopyTask().batch(tok, 4, seed=3)  # the tokenizer knows the same words
    assert b1.answer_length == 1
    y = b1.target_ids

    def dp_dz(z):  # ∂p(y*|q)/∂z = p (e_y − π)
        pi = torch.softmax(z.double(), -1)
        return [pi.gather(-1, y[:, None]) * (F.one_hot(y, pi.shape[-1]).double() - pi)]

    (G,) = scoring.answer_state_vjp(model, b1, 1, dp_dz)
    with torch.no_grad():
        z = tasks.answer_logits(model, b1).double()
    p = tasks.exact_reward(z, b1)
    got = sequences.conditional_costate(model, b1, layer=1, group_size=8)
    assert rel(got, closed_form(p, G, "grpo")).max() < 1e-5
    assert rel(got, closed_form(p, G / p[:, None], "grpo")).min() > 1e-5  # control: ∇log p

    m = sequences.measure(
        model, b1, layer=1, group_size=8, generator=torch.Generator().manual_seed(0)
    )
    s = scoring.checkpoint_score(model, b1, alpha=2.0, group_size=8, layer=1, seed=0)
    P = torch.tensor(s["prompt_p"], dtype=torch.float64)
    G2 = torch.tensor(s["prompt_g2"], dtype=torch.float64)
    assert (m["p"] - P).abs().max() <= 1e-12
    assert ((m["g"] ** 2).sum(-1) / G2 - 1).abs().max() <= 1e-9
    assert rel(m["g"], G).max() <= 1e-9 and (m["g_future"] == 0).all()
    drawn = tasks.sample_answers(z, b1, 8, torch.Generator().manual_seed(0))
    assert m["answers"].shape == (4, 8, 1) and torch.equal(m["answers"][..., 0], drawn)
    lam = m["lam"].numpy().reshape(-1, G.shape[1])
    align, sigma, lam_single = impact.usable_terms(lam, np.repeat(m["g"].numpy(), 8, axis=0))
    assert align == pytest.approx(s["alignment_single"], rel=1e-9)
    assert lam_single == pytest.approx(s["lam_single"], rel=1e-9)
    assert sigma == pytest.approx(s["sigma_energy"], rel=1e-9)
    # controls: p renormalised over the four labels; ‖G‖² at the last layer; another seed's draws
    on_labels = torch.softmax(z[:, b1.label_ids], -1).gather(-1, b1.target[:, None])[:, 0]
    assert (on_labels - P).abs().min() > 1e-12
    last = scoring.checkpoint_score(model, b1, alpha=2.0, group_size=8, layer=-1, seed=0)
    g2_last = torch.tensor(last["prompt_g2"], dtype=torch.float64)
    assert ((m["g"] ** 2).sum(-1) / g2_last - 1).abs().min() > 1e-9
    other = scoring.checkpoint_score(model, b1, alpha=2.0, group_size=8, layer=1, seed=1)
    assert align != pytest.approx(other["alignment_single"], rel=1e-9)
    assert not torch.equal(drawn, tasks.sample_answers(z, b1, 8, torch.Generator().manual_seed(1)))


@pytest.mark.slow
def test_the_monte_carlo_conditional_mean_converges_to_the_enumeration(k2, eight, enumerated):
    """``conditional_costate_mc`` is unbiased with an honest standard error: with M = 300 groups
    per prompt the squared z-scores against the enumeration average between 0.5 and 2, and the
    error is smaller than with M = 20. Control: against the enumeration with Dr. GRPO advantages
    (another c) the z-scores are far larger."""
    model, _ = k2
    mean, se = [], []
    for q in range(len(eight)):  # one call per prompt: the same law, smaller passes
        m, s = sequences.conditional_costate_mc(
            model,
            eight.rows(torch.tensor([q])),
            layer=1,
            group_size=8,
            n_groups=300,
            generator=torch.Generator().manual_seed(q),
        )
        mean.append(m)
        se.append(s)
    mean, se = torch.cat(mean), torch.cat(se)
    assert mean.shape == se.shape == enumerated["grpo"].shape and (se > 0).all()
    z2 = ((mean - enumerated["grpo"]) / se) ** 2
    assert 0.5 <= float(z2.mean()) <= 2.0
    few, _ = sequences.conditional_costate_mc(
        model,
        eight,
        layer=1,
        group_size=8,
        n_groups=20,
        generator=torch.Generator().manual_seed(100),
    )
    err = lambda x: float((x - enumerated["grpo"]).norm())  # noqa: E731
    assert err(mean) < err(few)
    assert float((((mean - enumerated["mean"]) / se) ** 2).mean()) > 10.0  # control


@pytest.mark.slow
def test_the_value_gradient_is_the_first_tokens_credit_plus_what_attention_carries_back(
    k2, eight, measured
):
    """G_q = g_now + g_future (the product rule on p = p(y*_1|q) p(y*_2|q, y*_1)); below the
    last layer attention carries credit from the second token back to h_q, while at the last
    layer h_q feeds only the first answer position's logits, so g_future is 0."""
    g, now, fut = measured["g"], measured["g_now"], measured["g_future"]
    # three backward passes, each rounded to float32 where RMSNorm casts: about 1e-8 apart
    assert rel(now + fut, g).max() <= 1e-6
    assert rel(now, g).min() > 1e-6 and rel(now - fut, g).min() > 1e-6  # controls
    assert (fut.norm(dim=1) / g.norm(dim=1)).min() > 1e-12  # hidden[1]: credit carried back
    last = sequences.measure(
        k2[0], eight, layer=-1, group_size=2, generator=torch.Generator().manual_seed(0)
    )
    assert (last["g_future"].norm(dim=1) / last["g"].norm(dim=1)).max() <= 1e-12
    assert rel(last["g_now"], last["g"]).max() <= 1e-12


@pytest.mark.slow
def test_eq1s_group_scale_averages_over_the_tokens_of_an_answer(k2, eight, measured):
    """Eq 1 averages a group's n answers and each answer's k tokens, so its costate scale is
    1/(n k) = 1/16 for groups of 8 two-token answers (1/8 for one token). ``checkpoint_score``
    on a k = 2 batch is ``measure`` with the same seed: its Λ at eq 1's scale is Λ of λ̂/16,
    and it reports the two parts of G as ``sigma_now`` and ``sigma_future``."""
    assert impact.costate_scale_factor("group", 8, 2) == 1 / 16
    assert impact.costate_scale_factor("trajectory", 8, 2) == 1.0
    assert impact.costate_scale_factor("group", 8) == 1 / 8  # control: one token unchanged
    s = scoring.checkpoint_score(k2[0], eight, alpha=2.0, group_size=8, layer=1, seed=0)
    g = measured["g"]
    assert s["sigma_now"] == pytest.approx(float((measured["g_now"] ** 2).sum(-1).mean()), rel=1e-9)
    sigma_future = float((measured["g_future"] ** 2).sum(-1).mean())
    assert s["sigma_future"] == pytest.approx(sigma_future, rel=1e-9) and sigma_future > 0
    assert s["r_before"] == pytest.approx(float(measured["p"].mean()), rel=1e-12)
    flat = measured["lam"].numpy().reshape(-1, g.shape[1])
    paired = np.repeat(g.numpy(), 8, axis=0)
    assert s["lam_single_group"] == pytest.approx(
        impact.usable_terms(flat / 16, paired)[2], rel=1e-9
    )
    assert s["lam_single_group"] != pytest.approx(
        impact.usable_terms(flat / 8, paired)[2], rel=1e-9
    )

    P, G2 = s["prompt_p"], s["prompt_g2"]
    kw = dict(alpha=2.0, group_size=8)
    per_answer = impact.score_from_prompts(P, G2, **kw, answer_length=2)
    group = impact.score_from_prompts(P, G2, **kw, scale="group", answer_length=2)
    one_token = impact.score_from_prompts(P, G2, **kw, scale="group")
    assert s["alignment"] == pytest.approx(per_answer["alignment"], rel=1e-12)
    assert 16 * group["alignment"] == pytest.approx(per_answer["alignment"], rel=1e-12)
    assert 16 * one_token["alignment"] != pytest.approx(per_answer["alignment"], rel=1e-12)


@pytest.mark.slow
def test_grpo_over_sequences_is_seeded_micro_batchable_and_still_without_a_learning_rate(k2):
    """GRPO with two-token answers (eq 1 over sampled sequences, a 0/1 reward for the whole
    answer): R before the first update is r_before; a run is a function of the weights, config
    and seed; micro-batches change only the rounding; a zero learning rate moves nothing.
    Controls: another seed, and the default learning rate, do change the record."""
    model, tok = k2
    train_b, eval_b = K2.batch(tok, 32, seed=5), K2.batch(tok, 16, seed=6)

    def run(config=None, **kw):
        config = GRPOConfig() if config is None else config
        return train_grpo(copy.deepcopy(model), train_b, eval_b, config, 3, **kw)

    a = run(seed=0)
    assert len(a.r_exact) == 4 and len(a.r_sampled) == 3
    assert a.r_exact[0] == pytest.approx(tasks.r_before(model, eval_b), rel=1e-12)
    assert run(seed=0) == a
    parts = run(seed=0, micro_batch=5)
    assert parts.r_exact == pytest.approx(a.r_exact, rel=1e-9)
    assert parts.r_sampled == a.r_sampled
    b = run(seed=1)
    assert b.r_sampled != a.r_sampled or b.r_exact != pytest.approx(a.r_exact, rel=1e-9)
    frozen = run(GRPOConfig(learning_rate=0.0), seed=0)
    assert frozen.r_exact == [a.r_exact[0]] * 4
    assert a.r_exact[1:] != pytest.approx([a.r_exact[0]] * 3, rel=1e-9)  # control
    assert tasks.r_before(model, eval_b) == a.r_exact[0]  # the runs trained copies


@pytest.mark.slow
def test_grpo_over_sequences_honours_the_reward_kind(k2):
    """With ``reward_kind="prob"`` every member of a group gets p(y*|q), so GRPO's advantages are
    0 and R does not move (as for one token). ``"centered"`` subtracts the same p from every
    member, so its advantages, and the run, equal the indicator's; the indicator's own run moves R
    (the control)."""
    model, tok = k2
    train_b, eval_b = K2.batch(tok, 32, seed=5), K2.batch(tok, 16, seed=6)

    def run(kind):
        return train_grpo(copy.deepcopy(model), train_b, eval_b, GRPOConfig(reward_kind=kind), 2)

    flat, hit, centred = run("prob"), run("indicator"), run("centered")
    assert flat.r_exact == [flat.r_exact[0]] * 3
    assert hit.r_exact[1:] != pytest.approx([hit.r_exact[0]] * 2, rel=1e-9)
    assert centred.r_exact == pytest.approx(hit.r_exact, rel=1e-9)
    assert flat.r_sampled == hit.r_sampled[:1] + flat.r_sampled[1:]  # the same first samples


@pytest.mark.slow
def test_the_sweep_command_runs_on_a_two_token_trajectory(tiny_k2_trajectory, tmp_path):
    """``python -m vghlib sweep --answer-length 2`` scores and trains every checkpoint of the
    k = 2 trajectory; the file reads back with the task's answer length and the two parts of G.
    ``--answer-length 5`` is refused (exit 2) before anything is written."""
    out = tmp_path / "r.jsonl"
    cli = [sys.executable, "-m", "vghlib", "sweep", "--checkpoints", str(tiny_k2_trajectory.folder)]
    small = [
        *("--layer", "1", "--budgets", "2", "--seeds", "0,1", "--n-eval", "16"),
        *("--n-train", "32", "--prompts-per-step", "8", "--quiet"),
    ]
    run = subprocess.run(
        [*cli, "--out", str(out), "--answer-length", "2", *small],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary = summarise(out)
    assert summary.config.task.answer_length == 2 and summary.config.layer == 1
    assert len(summary.names) == 3 and summary.budgets == (2,)
    assert {"sigma_now", "sigma_future"} <= summary.score.keys()
    assert (summary.score["sigma_future"] > 0).all()
    assert np.asarray(summary.score["prompt_p"]).shape == (3, 16)
    # the group-scale predictors read the answer length from the file's config
    pg = scoring.predictors(summary, scale="group", lam="cond")["P_gap"]
    want = [
        impact.score_from_prompts(
            p, g2, alpha=summary.config.alpha, group_size=8, scale="group", answer_length=2
        )["p_gap_cond"]
        for p, g2 in zip(summary.score["prompt_p"], summary.score["prompt_g2"])
    ]
    assert pg == pytest.approx(want, rel=1e-12)
    one_token = [
        impact.score_from_prompts(p, g2, alpha=summary.config.alpha, group_size=8, scale="group")[
            "p_gap_cond"
        ]
        for p, g2 in zip(summary.score["prompt_p"], summary.score["prompt_g2"])
    ]
    assert pg != pytest.approx(one_token, rel=1e-12)  # control: the scale of a one-token answer

    bad = tmp_path / "bad.jsonl"
    run = subprocess.run(
        [*cli, "--out", str(bad), "--answer-length", "5", *small],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 2 and "answer_length" in run.stderr
    assert not bad.exists() and not list(tmp_path.glob("bad*"))
    run = subprocess.run(  # the trajectory was pretrained on two labels: one is refused
        [*cli, "--out", str(bad), *small], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 2 and "pass --answer-length 2" in run.stderr, run.stderr[-2000:]
    assert not bad.exists()
