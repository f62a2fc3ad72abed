"""The label-copying task: prompts for any Hugging Face tokenizer, exact and per-sample rewards.

Reference: Asadulaev et al., arXiv 2605.21654, Section 6 ("Closed-form RL task"):
R(θ; q) = p_θ(y*|q) and R_before = E_q p_θ(y*|q); Part IV, "GRPO on a label-copying task",
section "A reward per sample" (why GRPO needs one).

A prompt hides the target label y* ∈ {A, B, C, D} after the marker word ``label``, among filler
words and *distractor* labels (other labels scattered in the filler), and ends with the marker word
``answer``. The answer is the single next token, y* itself::

    sun B tree label C dog hill A sky answer   ->   " C"

A model that only learns "the answer is some label" scores R = 1/4; one that copies any label it
sees scores about E[1/(1 + #distractors)]; only one that finds the token *after* ``label`` scores 1.

Names (book notation): ``target`` = index of y* in ``labels``, ``target_ids`` = its token id,
``label_ids`` = the 4 candidate answer tokens, ``group_size`` = n (the paper writes G, which the
book keeps for the value gradient), ``answers`` = the sampled answer tokens a_i. Everything here
works from the logits of the answer position: the exact reward is a softmax entry, never a sampled
estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

LABELS = ("A", "B", "C", "D")
# English filler words, so the same prompts are natural text for a real LLM's tokenizer. None of
# them is a label, even after lower-casing ("a" is left out for uncased tokenizers).
FILLER_WORDS = (
    "sun",
    "tree",
    "dog",
    "hill",
    "sky",
    "red",
    "blue",
    "cat",
    "sea",
    "road",
    "bird",
    "fish",
    "hat",
    "cup",
    "box",
    "car",
    "old",
    "new",
    "big",
    "small",
    "runs",
    "sees",
    "green",
    "door",
)
REWARD_KINDS = ("indicator", "prob", "centered")


@dataclass(frozen=True)
class LabelCopyTask:
    """How label-copying prompts are drawn (a text format, independent of any tokenizer).

    A prompt is ``n_filler`` filler slots with the pair ``label_word y*`` inserted at a uniform
    position (0..n_filler), then ``answer_word``. Of the filler slots,
    k ~ Uniform{0..max_distractors} are replaced by labels other than y* (uniform, with
    replacement): they make "copy any label in the prompt" score less than 1, so that copying has to
    find the label after the marker.
    """

    n_filler: int = 10  # filler slots; with the 3 marker/label words a prompt has 13 words
    max_distractors: int = 3  # up to 3 wrong labels in the prompt: "copy any label" scores ~0.52
    labels: tuple = LABELS  # the candidate answers; each must be one token in answer position
    filler_words: tuple = FILLER_WORDS
    label_word: str = "label"  # marks the target: the answer is the word right after it
    answer_word: str = "answer"  # the prompt's last word; the next token is the answer
    answer_length: int = 1  # k labels after the marker, copied in order: an answer of k tokens

    def __post_init__(self):
        if len(set(self.labels)) != len(self.labels) or len(self.labels) < 2:
            raise ValueError(f"labels must be at least 2 distinct strings, got {self.labels!r}")
        if not 0 <= self.max_distractors <= self.n_filler:
            raise ValueError(
                f"max_distractors must lie in 0..n_filler={self.n_filler}, "
                f"got {self.max_distractors}"
            )
        if (
            not isinstance(self.answer_length, int)
            or isinstance(self.answer_length, bool)
            or not 1 <= self.answer_length <= 4
        ):
            raise ValueError(
                f"answer_length must be an integer in 1..4 (labels copied after the marker), "
                f"got {self.answer_length!r}"
            )
        clash = set(self.filler_words) & (set(self.labels) | {self.label_word, self.answer_word})
        if clash:
            raise ValueError(f"filler words must not be labels or marker words: {sorted(clash)}")

    def to_dict(self) -> dict:
        """The fields as stored in a manifest or a results file (lists for tuples).
        ``answer_length`` is left out when it is 1, so one-token configs keep their old hashes."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if d["answer_length"] == 1:
            del d["answer_length"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LabelCopyTask":
        """The task stored by :meth:`to_dict`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def texts(self, n: int, generator: torch.Generator) -> tuple[list[str], torch.Tensor]:
        """Draw ``n`` prompt strings and the index of their target labels:
        ``(texts, target)``, target ``(n,)`` for one-token answers and ``(n, k)`` for
        ``answer_length`` k > 1 (each of the k labels uniform, independently; the distractors
        differ from the first)."""
        g, nf, nl, k_ans = generator, self.n_filler, len(self.labels), self.answer_length
        target = torch.randint(0, nl, (n,) if k_ans == 1 else (n, k_ans), generator=g)
        first = target if k_ans == 1 else target[:, 0]  # (n,)
        fill = torch.randint(0, len(self.filler_words), (n, nf), generator=g)  # (n, nf) word index
        n_dis = torch.randint(0, self.max_distractors + 1, (n,), generator=g)  # (n,)
        insert_at = torch.randint(0, nf + 1, (n,), generator=g)  # (n,)
        out = []
        for i in range(n):
            words = [self.filler_words[j] for j in fill[i].tolist()]
            k = int(n_dis[i])
            slots = torch.randperm(nf, generator=g)[:k].tolist()
            offsets = torch.randint(1, nl, (k,), generator=g).tolist()  # a label != y*
            for s, o in zip(slots, offsets):
                words[s] = self.labels[(int(first[i]) + o) % nl]
            j = int(insert_at[i])
            words[j:j] = [self.label_word, *self.answer_words(target[i])]
            out.append(" ".join(words + [self.answer_word]))
        return out, target

    def answer_words(self, target) -> list[str]:
        """The label words of one prompt's answer, from its ``target`` (an index, or k of them)."""
        return [self.labels[int(y)] for y in torch.as_tensor(target).reshape(-1).tolist()]

    def batch(self, tokenizer, n: int, seed: int, add_bos: bool | None = None) -> "TaskBatch":
        """``n`` tokenized prompts drawn with ``seed`` (same seed, same prompts, for any
        tokenizer)."""
        texts, target = self.texts(n, torch.Generator().manual_seed(seed))
        return make_batch(tokenizer, texts, target, self, add_bos=add_bos)


@dataclass
class TaskBatch:
    """Tokenized prompts, left-padded so that position -1 is the answer position of every row.

    Rows may have different lengths under a sub-word tokenizer: pads go on the left, with
    ``attention_mask`` 0 there and ``position_ids`` counting real tokens only, so each row's
    answer-position logits are those of the unpadded prompt (tests check this).
    """

    input_ids: torch.Tensor  # (N, S) long
    attention_mask: torch.Tensor  # (N, S) long, 0 on left pads
    position_ids: torch.Tensor  # (N, S) long, 0 at each row's first real token
    target: torch.Tensor  # (N,) index of y* in task.labels; (N, k) for an answer of k labels
    target_ids: torch.Tensor  # (N,) token id of y*; (N, k) for an answer of k labels
    label_ids: torch.Tensor  # (n_labels,) token id of each candidate label in answer position
    texts: list = field(repr=False)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def answer_length(self) -> int:
        """k, the number of answer tokens (1: the answer is the next token)."""
        return 1 if self.target_ids.dim() == 1 else self.target_ids.shape[1]

    def to(self, device) -> "TaskBatch":
        """The same prompts with every tensor on ``device``."""
        return TaskBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.position_ids.to(device),
            self.target.to(device),
            self.target_ids.to(device),
            self.label_ids.to(device),
            self.texts,
        )

    def rows(self, index: torch.Tensor) -> "TaskBatch":
        """The prompts at ``index`` (a 1-D long tensor, on any device), in that order."""
        i = torch.as_tensor(index, dtype=torch.long).to(self.input_ids.device)
        return TaskBatch(
            self.input_ids[i],
            self.attention_mask[i],
            self.position_ids[i],
            self.target[i],
            self.target_ids[i],
            self.label_ids,
            [self.texts[j] for j in i.tolist()],
        )

    def chunks(self, micro_batch: int | None) -> list[torch.Tensor]:
        """Row indices in consecutive chunks of at most ``micro_batch`` prompts (None: one
        chunk)."""
        if micro_batch is not None and (not isinstance(micro_batch, int) or micro_batch < 1):
            raise ValueError(f"micro_batch must be a positive int or None, got {micro_batch!r}")
        idx = torch.arange(len(self))
        return (
            [idx]
            if micro_batch is None or micro_batch >= len(self)
            else list(idx.split(micro_batch))
        )


def _describe(tokenizer) -> str:
    return f"{type(tokenizer).__name__}(name_or_path={getattr(tokenizer, 'name_or_path', '')!r})"


def encode(tokenizer, texts: list[str], add_bos: bool | None = None) -> list[list[int]]:
    """Token ids of each text without the tokenizer's own special tokens, plus BOS when asked.

    ``add_bos=None`` prepends ``tokenizer.bos_token_id`` when the tokenizer has one. The
    tokenizer's post-processor is bypassed (``add_special_tokens=False``) so that no EOS is ever
    appended after a prompt, whatever the tokenizer's template.
    """
    if add_bos is None:
        add_bos = tokenizer.bos_token_id is not None
    if add_bos and tokenizer.bos_token_id is None:
        raise ValueError(f"add_bos=True but tokenizer {_describe(tokenizer)} has no bos_token_id")
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [[tokenizer.bos_token_id] + x for x in ids] if add_bos else [list(x) for x in ids]


def label_token_ids(tokenizer, task: LabelCopyTask = LabelCopyTask()) -> torch.Tensor:
    """The token id of each label as it appears in answer position: ``(n_labels,)`` long.

    The answer position follows ``task.answer_word`` and a space, so label L must satisfy
    encode(answer_word + " " + L) == encode(answer_word) + [one id]. Raises ``ValueError``
    naming the tokenizer and the label when a label is several tokens, the unknown token, or
    shares its id with another label or a filler word.
    """
    who = _describe(tokenizer)
    fix = (
        "The label-copying reward p(y*|q) reads one answer token, so each label must be a "
        "single token: pass other labels (LabelCopyTask(labels=...)) or use a tokenizer whose "
        "vocabulary holds them (e.g. build one with vghlib.pretrain.build_tokenizer)."
    )
    ctx = encode(tokenizer, [task.answer_word], add_bos=False)[0]
    ids = []
    for lab in task.labels:
        full = encode(tokenizer, [f"{task.answer_word} {lab}"], add_bos=False)[0]
        new = full[len(ctx) :]
        if full[: len(ctx)] != ctx or len(new) != 1:
            pieces = tokenizer.convert_ids_to_tokens(new if full[: len(ctx)] == ctx else full)
            raise ValueError(
                f"tokenizer {who} encodes the label {lab!r} after "
                f"{task.answer_word!r} as {len(pieces)} tokens {pieces}, not one. {fix}"
            )
        if tokenizer.unk_token_id is not None and new[0] == tokenizer.unk_token_id:
            raise ValueError(
                f"tokenizer {who} does not know the label {lab!r}: it encodes to the "
                f"unknown token {tokenizer.unk_token!r}. {fix}"
            )
        ids.append(new[0])
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"tokenizer {who} maps different labels {task.labels} to the same token "
            f"ids {ids} (an uncased vocabulary?). {fix}"
        )
    filler_ids = {t for x in encode(tokenizer, list(task.filler_words), add_bos=False) for t in x}
    if filler_ids & set(ids):
        raise ValueError(
            f"tokenizer {who}: a filler word shares a token with a label "
            f"(ids {sorted(filler_ids & set(ids))}); the prompt would hold hidden "
            f"distractors. Pass other filler_words."
        )
    return torch.tensor(ids, dtype=torch.long)


def check_known_words(tokenizer, texts: list[str]) -> None:
    """Raise ``ValueError`` if ``tokenizer`` encodes some word of ``texts`` to its unknown token.

    The model would read the unknown token in that word's place, so a prompt would silently lose
    a filler word or, worse, a marker word. The error names the whitespace-separated words that
    encode to the unknown token (each encoded on its own), the prompts that hold them, and the
    tokenizer. A tokenizer without an unknown token (byte-level BPE) passes. The texts are
    encoded without BOS: GPT-2-style tokenizers use one token as BOS and as the unknown token.
    """
    unk = tokenizer.unk_token_id
    if unk is None:
        return
    rows = [i for i, x in enumerate(encode(tokenizer, texts, add_bos=False)) if unk in x]
    if not rows:
        return
    words = list(dict.fromkeys(w for i in rows for w in texts[i].split()))
    unknown = sorted(w for w, x in zip(words, encode(tokenizer, words, add_bos=False)) if unk in x)
    what = (
        f"the words {unknown}, which encode to"
        if unknown
        else "no single word, but their words in context encode to"
    )
    first = texts[rows[0]]
    prompts = f"{len(rows)} prompt{'s' if len(rows) > 1 else ''}"
    raise ValueError(
        f"tokenizer {_describe(tokenizer)} does not know {what} its unknown token "
        f"{tokenizer.unk_token!r} (id {unk}), in {prompts} (the first: prompt {rows[0]}, "
        f"{first[:80]!r}{'...' if len(first) > 80 else ''}); the model would read "
        "that token in their place. Use the task the tokenizer was built for (for a "
        "pretraining trajectory, its own task: PretrainConfig.from_dict(read_manifest(folder)"
        "['config']).task) or filler_words and marker words from its vocabulary, or retrain "
        "the tokenizer on these words (vghlib.pretrain.build_tokenizer(PretrainConfig("
        "task=...)))."
    )


def make_batch(
    tokenizer,
    texts: list[str],
    target: torch.Tensor,
    task: LabelCopyTask = LabelCopyTask(),
    add_bos: bool | None = None,
) -> TaskBatch:
    """Tokenize prompt ``texts`` (ending in ``task.answer_word``) with left padding.

    Also checks, prompt by prompt, that appending " y*" to the text appends exactly the label's
    token, so the answer position of every row is exactly where the label would be written, and
    that no word of a prompt is unknown to the tokenizer (:func:`check_known_words`).
    """
    label_ids = label_token_ids(tokenizer, task)
    target = torch.as_tensor(target, dtype=torch.long)
    for i, t in enumerate(texts):
        if t.split()[-1:] != [task.answer_word]:
            raise ValueError(
                f"prompt {i} ({t!r}) must end with the answer word "
                f"{task.answer_word!r}: the next token is read as the answer"
            )
    check_known_words(tokenizer, texts)
    ids = encode(tokenizer, texts, add_bos=add_bos)
    if target.dim() != (1 if task.answer_length == 1 else 2) or (
        target.dim() == 2 and target.shape[1] != task.answer_length
    ):
        raise ValueError(
            f"target must have shape (N,) for a one-token answer or (N, k) for an answer of "
            f"k = task.answer_length = {task.answer_length} labels, got {tuple(target.shape)}"
        )
    answers = [" ".join(task.answer_words(y)) for y in target]
    answered = encode(tokenizer, [f"{t} {a}" for t, a in zip(texts, answers)], add_bos=add_bos)
    for i, (a, b, y) in enumerate(zip(ids, answered, target)):
        if b != a + label_ids[y].reshape(-1).tolist():
            raise ValueError(
                f"prompt {i}: with tokenizer {_describe(tokenizer)}, adding the answer "
                f"{answers[i]!r} to {texts[i]!r} changes the prompt's tokens; "
                "end prompts with a word boundary before the answer"
            )
    S = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0  # masked anyway
    input_ids = torch.full((len(ids), S), pad, dtype=torch.long)  # (N, S)
    mask = torch.zeros((len(ids), S), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, S - len(x) :] = torch.tensor(x)
        mask[i, S - len(x) :] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # (N, S)
    return TaskBatch(
        input_ids, mask, position_ids, target, label_ids[target], label_ids, list(texts)
    )


def answer_logits(model, batch: TaskBatch, micro_batch: int | None = None) -> torch.Tensor:
    """Logits of the answer position (the last one) of each prompt: ``(N, V)``.

    ``model`` is a Hugging Face causal LM. Runs with gradients when the caller has them on (GRPO
    needs log π(a_i|q) with grad); wrap in ``torch.no_grad()`` to only measure.
    ``micro_batch``: at most this many prompts per forward pass (None: all at once). The rows are
    independent, so only the memory changes (and the rounding).
    """
    dev = next(model.parameters()).device
    parts = []
    for rows in batch.chunks(micro_batch):
        part = batch if len(rows) == len(batch) else batch.rows(rows)
        out = model(
            input_ids=part.input_ids.to(dev),
            attention_mask=part.attention_mask.to(dev),
            position_ids=part.position_ids.to(dev),
            use_cache=False,
        )
        parts.append(out.logits[:, -1])  # (rows, V)
    return parts[0] if len(parts) == 1 else torch.cat(parts)  # (N, V)


def continuation_logits(
    model, batch: TaskBatch, tokens: torch.Tensor, micro_batch: int | None = None
) -> torch.Tensor:
    """Logits of the k answer positions with the answer ``tokens`` written after each prompt:
    ``(N, k, V)`` for ``tokens`` ``(N, k)`` (teacher forcing).

    Entry ``[:, t]`` is the next-token distribution after the prompt and ``tokens[:, :t]``, so
    ``[:, 0]`` is :func:`answer_logits`. The tokens continue each row's positions after its last
    real token (left padding stays on the left). Runs with gradients when the caller has them on.
    """
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    if tokens.dim() != 2 or tokens.shape[0] != len(batch) or tokens.shape[1] < 1:
        raise ValueError(
            f"tokens must have shape (N={len(batch)}, k >= 1), got {tuple(tokens.shape)}"
        )
    k = tokens.shape[1]
    dev = next(model.parameters()).device
    parts = []
    for rows in batch.chunks(micro_batch):
        r = rows.to(batch.input_ids.device)
        ids, mask, pos = batch.input_ids[r], batch.attention_mask[r], batch.position_ids[r]
        more = tokens[rows, :-1].to(ids.device)  # (rows, k - 1): what is read, not predicted
        step = torch.arange(1, k, device=ids.device)
        out = model(
            input_ids=torch.cat([ids, more], 1).to(dev),
            attention_mask=torch.cat([mask, torch.ones_like(more)], 1).to(dev),
            position_ids=torch.cat([pos, pos[:, -1:] + step], 1).to(dev),
            use_cache=False,
        )
        parts.append(out.logits[:, -k:])  # (rows, k, V)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _check_logits(logits: torch.Tensor, batch: TaskBatch, checkpoint) -> torch.Tensor:
    k = batch.answer_length
    if k > 1:  # teacher-forced logits of the k answer positions
        if logits.dim() != 3 or logits.shape[:2] != (len(batch), k):
            raise ValueError(
                f"an answer of k = {k} tokens needs the logits of its k positions, shape "
                f"(N={len(batch)}, {k}, V) (tasks.continuation_logits with the targets), "
                f"got {tuple(logits.shape)}"
            )
    elif logits.dim() == 3:  # full (N, S, V) logits of a left-padded batch: keep the last
        logits = logits[:, -1]
    if k == 1 and (logits.dim() != 2 or logits.shape[0] != len(batch)):
        raise ValueError(
            f"expected answer-position logits of shape (N={len(batch)}, V), got "
            f"{tuple(logits.shape)}"
        )
    if logits.shape[-1] <= int(batch.label_ids.max()):
        raise ValueError(
            f"logits cover a vocabulary of {logits.shape[-1]} tokens, but the label ids "
            f"are {batch.label_ids.tolist()}: were the prompts made with this model's tokenizer?"
        )
    # NaN or +inf make p(y*|q) undefined; -inf (a masked token) is fine while a row keeps a
    # finite entry, which exact_reward checks through p itself.
    bad_entry = torch.isnan(logits) | torch.isposinf(logits)  # (N, V) or (N, k, V)
    bad = bad_entry.reshape(len(batch), -1).any(-1).nonzero().flatten()
    if bad.numel():
        i = int(bad[0])
        raise ValueError(
            f"checkpoint {checkpoint!r}: non-finite answer logits at prompt {i} "
            f"({bad.numel()} prompts in all; e.g. {logits[i][bad_entry[i]][:3].tolist()}), "
            "so its reward p(y*|q) is undefined; check the checkpoint's weights and dtype"
        )
    return logits


def exact_reward(logits: torch.Tensor, batch: TaskBatch, checkpoint=None) -> torch.Tensor:
    """R(θ; q) = p_θ(y* | q) = softmax(z)[y*] for each prompt: ``(N,)``.

    Let z be ``logits`` (answer position, ``(N, V)``, or the full ``(N, S, V)``). For an answer
    of k > 1 tokens, z is ``(N, k, V)`` from :func:`continuation_logits` with the targets, and
    p(y*|q) = Π_t softmax(z_t)[y*_t], the probability of writing the whole answer. Differentiable
    in z; no sampling. ``checkpoint`` only labels error messages.
    """
    z = _check_logits(logits, batch, checkpoint)
    if batch.answer_length > 1:  # p(y*|q) = Π_t p(y*_t | q, y*_<t)
        logp = torch.log_softmax(z, dim=-1).gather(-1, batch.target_ids[..., None].to(z.device))
        p = logp[..., 0].sum(-1).exp()  # (N,)
    else:
        p = torch.softmax(z, dim=-1).gather(-1, batch.target_ids[:, None].to(z.device))[:, 0]
    _check_finite(p, checkpoint, "p(y*|q)")
    return p


@torch.no_grad()
def r_before(model, batch: TaskBatch, checkpoint=None) -> float:
    """R_before = E_q p_θ(y* | q), the mean exact reward over the batch's prompts."""
    z = (
        answer_logits(model, batch)
        if batch.answer_length == 1
        else continuation_logits(model, batch, batch.target_ids)
    )
    return float(exact_reward(z, batch, checkpoint).mean())


def _check_finite(r: torch.Tensor, checkpoint, what: str):
    bad = (~torch.isfinite(r)).nonzero()
    if bad.numel():
        i = int(bad[0, 0])
        raise ValueError(
            f"checkpoint {checkpoint!r}: non-finite reward {what} = {r[i].tolist()} at "
            f"prompt {i} ({bad.shape[0]} entries in all)"
        )


def sample_answers(
    logits: torch.Tensor,
    batch: TaskBatch,
    group_size: int,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    checkpoint=None,
) -> torch.Tensor:
    """Sample n = ``group_size`` answer tokens a_i ~ softmax(z / temperature) per prompt:
    ``(N, n)``.

    The policy is the whole next-token distribution (any vocabulary token may be sampled, which is
    how a model at R ≈ 0 gets no reward). n >= 2 is required: the GRPO advantage
    (r_i - mean(r)) / std(r) of a group of one is 0 (or 0/0 with the unbiased std), so a group of
    one carries no learning signal.
    """
    if not isinstance(group_size, int) or group_size < 2:
        raise ValueError(
            f"group_size must be an integer >= 2, got {group_size!r}: GRPO compares "
            "the samples of a group with each other, and a group of 1 has advantage 0 "
            "(its reward minus its own mean)"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = _check_logits(logits, batch, checkpoint).detach()
    p = torch.softmax(z.double() / temperature, dim=-1)  # (N, V)
    return torch.multinomial(p, group_size, replacement=True, generator=generator)  # (N, n)


def per_sample_rewards(
    answers: torch.Tensor,
    logits: torch.Tensor,
    batch: TaskBatch,
    kind: str = "indicator",
    checkpoint=None,
) -> torch.Tensor:
    """Per-sample rewards r_i of the sampled ``answers`` ``(N, n)`` for GRPO: ``(N, n)`` float64.

    Kinds (Section 6 does not say how per-sample rewards are formed):

    * ``"indicator"`` (default): r_i = 1[a_i = y*]. E[r_i | q] = p(y*|q) = R(θ; q), so it is an
      unbiased sample of the paper's reward, and it differs within a group, so GRPO advantages are
      not all zero.
    * ``"prob"``: r_i = p(y*|q) for every member of the group, the paper's R taken literally. The
      group has equal rewards, so every GRPO advantage (r_i - mean)/(std + ξ) is exactly 0: GRPO
      with this reward does not move the policy. Offered to show that, not to train with.
    * ``"centered"``: r_i = 1[a_i = y*] - p(y*|q), the indicator with its exact expectation
      subtracted (a sample-independent baseline: unbiased costates, Part III). Inside a
      group the constant cancels, so GRPO advantages equal those of ``"indicator"``.

    ``logits`` are the answer-position logits the answers were sampled from; ``checkpoint`` labels
    error messages (a non-finite reward names it and the prompt index).
    """
    if kind not in REWARD_KINDS:
        raise ValueError(f"unknown reward kind {kind!r}; choose one of {REWARD_KINDS}")
    if answers.dim() != 2 or answers.shape[0] != len(batch):
        raise ValueError(f"answers must have shape (N={len(batch)}, n), got {tuple(answers.shape)}")
    p = exact_reward(logits, batch, checkpoint).detach().double()  # (N,)
    hit = (answers == batch.target_ids[:, None].to(answers.device)).double()  # (N, n)
    if kind == "indicator":
        r = hit
    elif kind == "prob":
        r = p[:, None].expand_as(hit).clone()
    else:  # centered
        r = hit - p[:, None]
    _check_finite(r, checkpoint, f"({kind})")
    return r
