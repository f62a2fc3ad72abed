"""vghlib.tasks: label tokens, left padding, exact reward vs a hand softmax, per-sample GRPO
rewards."""

import math

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import Olmo2Config, Olmo2ForCausalLM, PreTrainedTokenizerFast

from vghlib.tasks import (
    LABELS,
    LabelCopyTask,
    answer_logits,
    exact_reward,
    label_token_ids,
    make_batch,
    per_sample_rewards,
    r_before,
    sample_answers,
)

TASK = LabelCopyTask()


def corpus(with_labels=True, n=300):
    texts, target = TASK.texts(n, torch.Generator().manual_seed(0))
    docs = [f"{t} {TASK.labels[int(y)]}" for t, y in zip(texts, target)]
    if not with_labels:  # the same words, every label removed
        docs = [" ".join(w for w in d.split() if w not in LABELS) for d in docs]
    return docs


def word_level(with_labels=True):
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(
        corpus(with_labels),
        trainers.WordLevelTrainer(
            special_tokens=["[PAD]", "[BOS]", "[EOS]", "[UNK]"], show_progress=False
        ),
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="[BOS]",
        eos_token="[EOS]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        name_or_path="toy-wordlevel",
    )


def byte_bpe(with_labels=True, vocab_size=300):
    """A GPT-2/OLMo-style byte-level BPE: words keep their leading space (" C" is one token
    "ĠC")."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        corpus(with_labels),
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<pad>", "<bos>"],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", pad_token="<pad>", name_or_path="toy-bpe"
    )


def tiny_lm(vocab_size, seed=0, std=0.5):
    cfg = Olmo2Config(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
        tie_word_embeddings=False,
        initializer_range=std,
    )
    torch.manual_seed(seed)
    return Olmo2ForCausalLM(cfg).double().eval()


# --- label checks ------------------------------------------------------------------------------


def test_good_tokenizers_give_one_token_per_label():
    for tok in (word_level(), byte_bpe()):
        ids = label_token_ids(tok, TASK)
        assert ids.shape == (4,) and len(set(ids.tolist())) == 4
        assert [tok.decode([i]).strip() for i in ids.tolist()] == list(LABELS)
    assert byte_bpe().convert_ids_to_tokens(label_token_ids(byte_bpe()).tolist())[2] == "ĠC"


def test_multi_token_label_raises_and_names_tokenizer_and_label():
    tok = byte_bpe(with_labels=False, vocab_size=300)  # " A" never merged: "Ġ" + "A"
    with pytest.raises(ValueError) as e:
        label_token_ids(tok, TASK)
    msg = str(e.value)
    assert "toy-bpe" in msg and type(tok).__name__ in msg and "'A'" in msg and "2 tokens" in msg
    assert "labels=" in msg  # says what to do


def test_unknown_label_raises():
    with pytest.raises(ValueError, match=r"toy-wordlevel.*does not know the label 'A'"):
        label_token_ids(word_level(with_labels=False), TASK)


def test_task_rejects_bad_formats():
    with pytest.raises(ValueError, match="filler words must not be labels"):
        LabelCopyTask(filler_words=("sun", "B"))
    with pytest.raises(ValueError, match="max_distractors"):
        LabelCopyTask(n_filler=2, max_distractors=3)


def test_prompts_hold_target_after_marker_and_distractors_elsewhere():
    texts, target = TASK.texts(200, torch.Generator().manual_seed(3))
    n_dis = []
    for t, y in zip(texts, target.tolist()):
        w = t.split()
        assert w[-1] == "answer" and len(w) == TASK.n_filler + 3
        assert w[w.index("label") + 1] == LABELS[y]
        others = [x for i, x in enumerate(w) if x in LABELS and w[i - 1] != "label"]
        assert LABELS[y] not in others
        n_dis.append(len(others))
    assert set(n_dis) == {0, 1, 2, 3}


# --- batches and the exact reward --------------------------------------------------------------


def test_left_padding_gives_the_unpadded_answer_logits():
    tok = byte_bpe()  # sub-word (300 ids): filler words split, prompts have different lengths
    b = TASK.batch(tok, 12, seed=1)
    assert len(set(b.attention_mask.sum(1).tolist())) > 1, "want prompts of several lengths"
    lm = tiny_lm(len(tok))
    with torch.no_grad():
        z = answer_logits(lm, b)  # (N, V)
        for i in range(len(b)):
            ids = b.input_ids[i][b.attention_mask[i].bool()][None]  # (1, S_i) unpadded
            torch.testing.assert_close(
                z[i], lm(input_ids=ids).logits[0, -1], rtol=1e-10, atol=1e-10
            )
            assert tok.decode(ids[0, 1:]) == b.texts[i]  # BOS, then the prompt text


def test_batches_split_into_rows_and_micro_batches_with_the_same_logits():
    tok = byte_bpe()
    b = TASK.batch(tok, 10, seed=2)
    lm = tiny_lm(len(tok))
    sub = b.rows(torch.tensor([7, 2]))
    assert sub.texts == [b.texts[7], b.texts[2]] and torch.equal(sub.target, b.target[[7, 2]])
    assert torch.equal(sub.label_ids, b.label_ids)  # the candidates belong to the task, not a row
    assert [len(c) for c in b.chunks(4)] == [4, 4, 2] and len(b.chunks(None)) == 1
    assert b.to("cpu").texts is b.texts
    with torch.no_grad():
        whole = answer_logits(lm, b)
        torch.testing.assert_close(answer_logits(lm, b, micro_batch=3), whole, rtol=0, atol=1e-12)
        torch.testing.assert_close(answer_logits(lm, sub), whole[[7, 2]], rtol=0, atol=1e-12)
        # control: rows in another order give other logits in those places
        assert not torch.allclose(answer_logits(lm, b.rows(torch.tensor([2, 7]))), whole[[7, 2]])
    with pytest.raises(ValueError, match="micro_batch must be a positive int"):
        b.chunks(0)


def test_exact_reward_is_the_softmax_entry_of_the_target():
    tok = word_level()
    b = TASK.batch(tok, 16, seed=2)
    lm = tiny_lm(len(tok))
    with torch.no_grad():
        z = lm(input_ids=b.input_ids, attention_mask=b.attention_mask).logits[:, -1]  # (N, V)
    hand = [
        math.exp(z[i, b.target_ids[i]]) / sum(math.exp(v) for v in z[i].tolist())
        for i in range(len(b))
    ]
    R = exact_reward(z, b)
    torch.testing.assert_close(R, torch.tensor(hand, dtype=torch.float64), rtol=1e-12, atol=0)
    assert abs(r_before(lm, b) - sum(hand) / len(hand)) < 1e-12
    # uniform logits: p(y*|q) = 1 / V exactly
    V = len(tok)
    torch.testing.assert_close(
        exact_reward(torch.zeros(len(b), V, dtype=torch.float64), b),
        torch.full((len(b),), 1 / V, dtype=torch.float64),
    )
    with pytest.raises(ValueError, match="vocabulary"):  # logits of a model with too few tokens
        exact_reward(torch.zeros(len(b), 5), b)


def test_make_batch_rejects_prompts_that_do_not_end_in_the_answer_word():
    tok = word_level()
    b = TASK.batch(tok, 2, seed=0)
    with pytest.raises(ValueError, match=r"prompt 1 .*must end with the answer word 'answer'"):
        make_batch(tok, [b.texts[0], b.texts[1] + " sun"], b.target)


# --- sampling and per-sample rewards -----------------------------------------------------------


def designed_logits(b, p_target):
    """Answer logits with p(y*|q) = p_target[i] and the rest spread over the other tokens."""
    V = int(b.label_ids.max()) + 3
    z = torch.full((len(b), V), -math.inf, dtype=torch.float64)
    for i, p in enumerate(p_target):
        others = [v for v in range(V) if v != int(b.target_ids[i])]
        z[i, others] = math.log((1 - p) / (V - 1))
        z[i, b.target_ids[i]] = math.log(p)
    return z


def test_indicator_rewards_average_to_exact_reward():
    tok = word_level()
    b = TASK.batch(tok, 6, seed=5)
    p = [0.05, 0.25, 0.5, 0.7, 0.9, 0.99]
    z = designed_logits(b, p)
    R = exact_reward(z, b)
    torch.testing.assert_close(R, torch.tensor(p, dtype=torch.float64))
    G = 20_000
    a = sample_answers(z, b, G, generator=torch.Generator().manual_seed(0))  # (N, G)
    r = per_sample_rewards(a, z, b, "indicator")
    mean = r.mean(1)
    se = torch.sqrt(R * (1 - R) / G)
    assert ((mean - R).abs() < 4 * se).all(), (mean, R)
    # a wrong sampler (argmax) fails the same check
    wrong = z.argmax(-1, keepdim=True).expand(-1, G)
    assert not ((per_sample_rewards(wrong, z, b).mean(1) - R).abs() < 4 * se).all()


def grpo_advantages(r):  # by hand: (r - mean) / (std + 1e-4), unbiased std, per group
    return (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)


def test_prob_reward_gives_zero_grpo_advantages_indicator_does_not():
    tok = word_level()
    b = TASK.batch(tok, 8, seed=6)
    lm = tiny_lm(len(tok), std=1.0)
    with torch.no_grad():
        z = answer_logits(lm, b)
    a = sample_answers(z, b, 8, generator=torch.Generator().manual_seed(1))
    a[:, 0] = b.target_ids  # make sure some group mixes hits and misses
    A_prob = grpo_advantages(per_sample_rewards(a, z, b, "prob"))
    assert torch.equal(A_prob, torch.zeros_like(A_prob))
    A_ind = grpo_advantages(per_sample_rewards(a, z, b, "indicator"))
    assert A_ind.abs().max() > 0.5
    A_cen = grpo_advantages(per_sample_rewards(a, z, b, "centered"))
    torch.testing.assert_close(A_cen, A_ind, rtol=1e-9, atol=1e-9)  # the constant cancels
    r_cen = per_sample_rewards(a, z, b, "centered")
    torch.testing.assert_close(r_cen + exact_reward(z, b)[:, None], per_sample_rewards(a, z, b))


def test_unknown_kind_and_group_size_one_are_rejected():
    tok = word_level()
    b = TASK.batch(tok, 3, seed=0)
    z = torch.zeros(3, len(tok), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"unknown reward kind 'logits'.*indicator"):
        per_sample_rewards(torch.zeros(3, 2, dtype=torch.long), z, b, kind="logits")
    for G in (1, 0):
        with pytest.raises(ValueError, match="group_size must be an integer >= 2.*advantage"):
            sample_answers(z, b, G)
    assert sample_answers(z, b, 2).shape == (3, 2)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_reward_names_checkpoint_and_prompt(bad):
    tok = word_level()
    b = TASK.batch(tok, 4, seed=0)
    z = torch.zeros(4, len(tok), dtype=torch.float64)
    z[2, 1] = bad
    a = torch.zeros(4, 2, dtype=torch.long)
    for kind in ("indicator", "prob", "centered"):
        with pytest.raises(ValueError, match=r"checkpoint 'step000120'.*prompt 2"):
            per_sample_rewards(a, z, b, kind, checkpoint="step000120")
    with pytest.raises(ValueError, match=r"checkpoint 'step000120'.*prompt 2"):
        sample_answers(z, b, 4, checkpoint="step000120")
    with pytest.raises(ValueError, match=r"checkpoint 'ck'.*prompt 2"):
        exact_reward(z, b, checkpoint="ck")
    z = torch.zeros(4, len(tok), dtype=torch.float64)
    z[3] = -math.inf  # a row with no finite logit: p(y*|q) = nan
    with pytest.raises(ValueError, match=r"checkpoint 'ck'.*prompt 3"):
        exact_reward(z, b, checkpoint="ck")
