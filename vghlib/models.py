"""Three kinds of discrete-token policy behind one interface: token-only, RNN, transformer.

Reference: Asadulaev et al., arXiv 2605.21654, Section 4 (eq 13, 19, 22) and its RNN-vs-attention
paragraph. The three kinds differ only in how the state at position t can depend on earlier
positions:

* :class:`TokenOnlyPolicy`: the state is the current token alone (a bigram lookup followed by a
  position-wise MLP). Every bit of temporal credit must pass through the sampled tokens.
* :class:`RNNPolicy`: h_t = tanh(W h_{t-1} + U e_t + b). The recurrence is a differentiable
  path *besides* the sampled token (Part III, "Who carries the credit").
* :class:`MiniTransformer` (the book's own pre-norm causal transformer, with ``d_head`` free of
  ``d_model``) and :class:`HFCausalLM` (a wrapper around any Hugging Face causal LM, e.g. a tiny
  ``Olmo2ForCausalLM`` from :func:`tiny_olmo2`): attention reads every earlier position.

The interface (``policy(inputs, probes=None) -> PolicyOutput``):

* ``inputs``: token ids ``(B, S)`` (long) or relaxed one-hots ``(B, S, V)`` (float, rows on the
  simplex, e.g. Gumbel-softmax samples). A relaxed row enters as ``y @ E``, the embedding matrix
  E applied to it, so one-hot rows give exactly the embedding of the token.
* ``logits[:, j]`` predicts ``inputs[:, j+1]`` (the usual causal-LM convention).
* ``hidden[l]`` for l = 0..L (L = ``n_layers``) is the residual stream h^{(l)}: l = 0 the input
  embedding, l = 1..L the output of block l; ``hidden[L]`` is the last block's output *before* any
  final norm (book notation ``hidden[l]``).
* ``probes``: ``{l: tensor broadcastable to (B, S, d)}`` added to ``hidden[l]`` where it is made,
  so everything downstream reads the perturbed state. A zero probe that requires grad turns any
  costate into one ``torch.autograd.grad`` call (see ``vghlib.token_costates``).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Olmo2Config, Olmo2ForCausalLM


@dataclass
class PolicyOutput:
    logits: torch.Tensor  # (B, S, V)
    hidden: list  # L + 1 tensors (B, S, d)


def _check_probes(probes, n_layers: int) -> dict:
    probes = dict(probes or {})
    for l in probes:
        if not isinstance(l, int) or not 0 <= l <= n_layers:
            raise ValueError(
                f"probe layer {l!r} out of range: layers are 0..{n_layers} "
                "(0 = embeddings, L = last block output)"
            )
    return probes


def _add(h: torch.Tensor, probes: dict, l: int) -> torch.Tensor:
    p = probes.get(l)
    if p is None:
        return h
    if p.dim() == 3:  # (B or 1, S_max, d): keep the first S positions (relaxed rollouts grow)
        p = p[:, : h.shape[1]]
    return h + p


class Policy(nn.Module):
    """Base class: token embedding shared by hard and relaxed inputs, and input checks."""

    vocab_size: int
    d_model: int
    n_layers: int

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """E[ids] for ids ``(B, S)``, or ``y @ E`` for relaxed one-hots ``(B, S, V)``."""
        E = self.embedding_matrix()
        if inputs.dtype in (torch.long, torch.int32, torch.int64):
            if inputs.dim() != 2:
                raise ValueError(f"token ids must have shape (B, S), got {tuple(inputs.shape)}")
            if inputs.numel() and (inputs.min() < 0 or inputs.max() >= self.vocab_size):
                raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")
            return E[inputs]  # (B, S, d)
        if inputs.dim() != 3 or inputs.shape[-1] != self.vocab_size:
            raise ValueError(
                f"relaxed inputs must have shape (B, S, V={self.vocab_size}), "
                f"got {tuple(inputs.shape)}; pass token ids as a long tensor instead"
            )
        return inputs.to(E.dtype) @ E  # (B, S, d)

    def embedding_matrix(self) -> torch.Tensor:  # (V, d)
        raise NotImplementedError


class TokenOnlyPolicy(Policy):
    """State = the current token only: logits_j = head(tanh(W E[x_j] + b)) (a bigram policy).

    hidden[0] = E[x_j], hidden[1] = tanh(W hidden[0] + b). Nothing at position j reads any other
    position, so h_j influences the future only through the token sampled from its logits.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 16,
        init_scale: float = 1.0,
        seed: int = 0,
        dtype=torch.float64,
    ):
        super().__init__()
        self.vocab_size, self.d_model, self.n_layers = vocab_size, d_model, 1
        g = torch.Generator().manual_seed(seed)
        s = init_scale
        self.emb = nn.Parameter(torch.randn(vocab_size, d_model, generator=g, dtype=dtype))
        self.W = nn.Parameter(
            s * torch.randn(d_model, d_model, generator=g, dtype=dtype) / math.sqrt(d_model)
        )
        self.b = nn.Parameter(torch.zeros(d_model, dtype=dtype))
        self.head = nn.Parameter(
            s * torch.randn(vocab_size, d_model, generator=g, dtype=dtype) / math.sqrt(d_model)
        )

    def embedding_matrix(self):
        return self.emb

    def forward(self, inputs, probes=None) -> PolicyOutput:
        probes = _check_probes(probes, self.n_layers)
        h0 = _add(self.embed(inputs), probes, 0)  # (B, S, d)
        h1 = _add(torch.tanh(h0 @ self.W.T + self.b), probes, 1)
        return PolicyOutput(h1 @ self.head.T, [h0, h1])


class RNNPolicy(Policy):
    """Elman RNN: h_j = tanh(W h_{j-1} + U E[x_j] + b), logits_j = head(h_j); hidden[1] = h."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 16,
        init_scale: float = 1.0,
        seed: int = 0,
        dtype=torch.float64,
    ):
        super().__init__()
        self.vocab_size, self.d_model, self.n_layers = vocab_size, d_model, 1
        g = torch.Generator().manual_seed(seed)
        s, r = init_scale, 1 / math.sqrt(d_model)
        self.emb = nn.Parameter(torch.randn(vocab_size, d_model, generator=g, dtype=dtype))
        self.W = nn.Parameter(s * r * torch.randn(d_model, d_model, generator=g, dtype=dtype))
        self.U = nn.Parameter(s * r * torch.randn(d_model, d_model, generator=g, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(d_model, dtype=dtype))
        self.h_init = nn.Parameter(torch.zeros(d_model, dtype=dtype))
        self.head = nn.Parameter(s * r * torch.randn(vocab_size, d_model, generator=g, dtype=dtype))

    def embedding_matrix(self):
        return self.emb

    def forward(self, inputs, probes=None) -> PolicyOutput:
        probes = _check_probes(probes, self.n_layers)
        h0 = _add(self.embed(inputs), probes, 0)  # (B, S, d)
        B, S, d = h0.shape
        p1 = probes.get(1)
        if p1 is not None:
            p1 = (p1[:, :S] if p1.dim() == 3 else p1).expand(B, S, d)
        h = self.h_init.expand(B, d)
        states = []
        x = h0 @ self.U.T + self.b  # (B, S, d)
        for j in range(S):  # the recurrence: the only loop, over positions
            h = torch.tanh(h @ self.W.T + x[:, j])
            if p1 is not None:
                h = h + p1[:, j]
            states.append(h)
        h1 = torch.stack(states, dim=1)  # (B, S, d)
        return PolicyOutput(h1 @ self.head.T, [h0, h1])


class _Block(nn.Module):
    """Pre-norm block: h + Attn(norm(h)), then + MLP(norm(.)); heads of width d_head."""

    def __init__(self, d_model, n_heads, d_head, mlp_mult, dtype):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_head
        inner = n_heads * d_head
        self.n1 = nn.RMSNorm(d_model, eps=1e-6, dtype=dtype)
        self.n2 = nn.RMSNorm(d_model, eps=1e-6, dtype=dtype)
        self.qkv = nn.Linear(d_model, 3 * inner, bias=False, dtype=dtype)
        self.out = nn.Linear(inner, d_model, bias=False, dtype=dtype)
        self.fc = nn.Linear(d_model, mlp_mult * d_model, dtype=dtype)
        self.proj = nn.Linear(mlp_mult * d_model, d_model, dtype=dtype)

    def forward(self, h):
        B, S, _ = h.shape
        q, k, v = self.qkv(self.n1(h)).split(self.n_heads * self.d_head, dim=-1)
        q, k, v = (
            t.view(B, S, self.n_heads, self.d_head).transpose(1, 2) for t in (q, k, v)
        )  # (B, nh, S, dh)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, S, dh)
        h = h + self.out(a.transpose(1, 2).reshape(B, S, -1))  # (B, S, d)
        return h + self.proj(F.gelu(self.fc(self.n2(h))))


class MiniTransformer(Policy):
    """The book's minimal causal transformer (pre-norm, learned positions, untied head).

    ``d_head * n_heads`` may be smaller than ``d_model``: then Prop 3's rank bound
    L * d_head * n_heads can be smaller than d_model and say something.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 32,
        n_layers: int = 2,
        n_heads: int = 4,
        d_head: int | None = None,
        mlp_mult: int = 2,
        max_len: int = 64,
        seed: int = 0,
        init_scale: float = 1.0,
        dtype=torch.float64,
    ):
        super().__init__()
        d_head = d_head or d_model // n_heads
        self.vocab_size, self.d_model, self.n_layers = vocab_size, d_model, n_layers
        self.n_heads, self.d_head, self.max_len = n_heads, d_head, max_len
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # nn.Linear init uses the global generator
        self.emb = nn.Parameter(torch.randn(vocab_size, d_model, generator=g, dtype=dtype))
        self.pos = nn.Parameter(0.5 * torch.randn(max_len, d_model, generator=g, dtype=dtype))
        self.blocks = nn.ModuleList(
            _Block(d_model, n_heads, d_head, mlp_mult, dtype) for _ in range(n_layers)
        )
        self.norm = nn.RMSNorm(d_model, eps=1e-6, dtype=dtype)
        self.head = nn.Parameter(
            init_scale
            * torch.randn(vocab_size, d_model, generator=g, dtype=dtype)
            / math.sqrt(d_model)
        )

    def embedding_matrix(self):
        return self.emb

    def forward(self, inputs, probes=None) -> PolicyOutput:
        probes = _check_probes(probes, self.n_layers)
        e = self.embed(inputs)
        S = e.shape[1]
        if S > self.max_len:
            raise ValueError(
                f"sequence length {S} exceeds max_len={self.max_len}; build a larger model"
            )
        h = _add(e + self.pos[:S], probes, 0)
        hidden = [h]
        for l, blk in enumerate(self.blocks, start=1):
            h = _add(blk(h), probes, l)
            hidden.append(h)
        return PolicyOutput(self.norm(h) @ self.head.T, hidden)


def decoder_layers(model) -> list:
    """The modules whose outputs are ``hidden[0..L]`` of a Hugging Face decoder-only LM.

    Index 0 is the token embedding and l = 1..L block l (Llama / OLMo-2 layout:
    ``model.model.embed_tokens`` and ``model.model.layers``).
    """
    inner = getattr(model, "model", None)
    blocks = getattr(inner, "layers", None)
    if blocks is None:
        raise TypeError(
            f"{type(model).__name__} is not a decoder-only Hugging Face LM with "
            "model.model.layers (Llama / OLMo-2 layout)"
        )
    return [inner.embed_tokens, *blocks]


def layer_index(layer, n_layers: int) -> int:
    """``layer`` as an index 0..L of ``hidden`` (-1 counts from the end, so -1 means L)."""
    L = n_layers
    if not isinstance(layer, int) or not -(L + 1) <= layer <= L:
        raise ValueError(
            f"layer {layer!r} out of range for a model with L = {L} blocks: use "
            f"0..{L} (0 = embeddings, {L} = last block output, before the final norm)"
            " or -1"
        )
    return layer % (L + 1)


@dataclass
class Probe:
    """What :func:`probe_hidden` captured in one forward pass: ``hidden[l]`` (the perturbed
    state, with its graph) and ``probes[l]`` (the zero tensors it added, when asked for)."""

    hidden: dict
    probes: dict


@contextmanager
def probe_hidden(model, layers, probes=None, zero: bool = False):
    """Capture ``hidden[l]`` of a Hugging Face decoder for each l in ``layers`` during a forward.

    The one hidden-state probe of the library. A forward hook on the module of layer l
    (:func:`decoder_layers`) adds ``probes[l]`` (a tensor broadcastable to ``(B, S, d)``) to its
    output, or, with ``zero=True``, a zero tensor that requires grad and is kept in
    ``Probe.probes[l]``: then ``torch.autograd.grad(f, probe.probes[l])`` is ∂f/∂hidden[l]
    without ``output_hidden_states``. Everything downstream of layer l reads the perturbed state.
    Yields a :class:`Probe` that the forward pass fills.
    """
    modules = decoder_layers(model)
    L = len(modules) - 1
    layers = [layer_index(l, L) for l in layers]
    probes = _check_probes(probes, L)
    got = Probe({}, {})

    def make_hook(l):
        def hook(_mod, _args, out):
            h = out[0] if isinstance(out, tuple) else out
            if zero:
                got.probes[l] = torch.zeros_like(h, requires_grad=True)
                h = h + got.probes[l]
            else:
                h = _add(h, probes, l)
            got.hidden[l] = h
            return (h, *out[1:]) if isinstance(out, tuple) else h

        return hook

    handles = [modules[l].register_forward_hook(make_hook(l)) for l in layers]
    try:
        yield got
    finally:
        for hd in handles:
            hd.remove()


class HFCausalLM(Policy):
    """Wrap a Hugging Face decoder-only causal LM (Llama/OLMo-2 layout) in the policy interface.

    ``hidden[l]`` is captured by :func:`probe_hidden` on ``model.model.layers[l-1]``: the residual
    stream after block l, *before* the final norm also for l = L. (Hugging Face's own
    ``output_hidden_states[-1]`` is after the final norm in transformers 5.x; tests check both.)
    Probes are added inside the same hooks.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        cfg = model.config
        self.vocab_size, self.d_model = cfg.vocab_size, cfg.hidden_size
        self.n_layers = cfg.num_hidden_layers
        self.layers = model.model.layers

    def embedding_matrix(self):
        return self.model.get_input_embeddings().weight

    def forward(self, inputs, probes=None) -> PolicyOutput:
        probes = _check_probes(probes, self.n_layers)
        h0 = _add(self.embed(inputs), probes, 0)  # relaxed inputs enter here, not by token id
        blocks = range(1, self.n_layers + 1)
        with probe_hidden(self.model, blocks, {l: p for l, p in probes.items() if l}) as got:
            logits = self.model(inputs_embeds=h0, use_cache=False).logits
        return PolicyOutput(logits, [h0, *(got.hidden[l] for l in blocks)])


class ScaledLogits(Policy):
    """The policy softmax(β z): ``scale`` β multiplies another policy's logits (β > 1 sharpens).

    Same hidden states, same probes; used to sweep the policy's entropy without retraining.
    """

    def __init__(self, policy: Policy, scale: float):
        super().__init__()
        if not scale > 0:
            raise ValueError("scale must be positive")
        self.policy, self.scale = policy, float(scale)
        self.vocab_size, self.d_model, self.n_layers = (
            policy.vocab_size,
            policy.d_model,
            policy.n_layers,
        )

    def embedding_matrix(self):
        return self.policy.embedding_matrix()

    def forward(self, inputs, probes=None) -> PolicyOutput:
        out = self.policy(inputs, probes)
        return PolicyOutput(self.scale * out.logits, out.hidden)


def tiny_olmo2(
    vocab_size: int = 16,
    hidden_size: int = 32,
    n_layers: int = 2,
    n_heads: int = 4,
    head_dim: int | None = None,
    intermediate_size: int = 64,
    max_len: int = 1024,
    init_std: float = 0.02,
    seed: int = 0,
    dtype=torch.float64,
):
    """A random ``Olmo2ForCausalLM`` from a tiny ``Olmo2Config``, built locally (never the Hub).

    pad/bos/eos ids are 0/1/2, inside the small vocabulary; the pad row of the embedding is
    re-drawn like the others (Hugging Face zeroes it, and a zero embedding makes the first RMSNorm
    singular, which the relaxed costates of the book would hit whenever token 0 is sampled).
    ``head_dim`` may be set so that n_heads * head_dim < hidden_size (Olmo2Attention reads
    ``config.head_dim``). Untied head, QK-norm and post-attention/post-MLP norms as in OLMo-2.
    ``init_std`` is the weight init std (Hugging Face default 0.02; larger values give sharper,
    lower-entropy next-token laws).
    """
    if vocab_size < 3:
        raise ValueError("vocab_size must be at least 3 (pad, bos and eos ids are 0, 1, 2)")
    cfg = Olmo2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_heads,
        head_dim=head_dim or hidden_size // n_heads,
        max_position_embeddings=max_len,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        initializer_range=init_std,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    model = Olmo2ForCausalLM(cfg).to(dtype)
    with torch.no_grad():  # HF zeroes the pad row at init; a zero input makes the first RMSNorm
        emb = model.get_input_embeddings().weight  # singular (gradients of order 1/sqrt(eps))
        emb[cfg.pad_token_id].normal_(0.0, init_std)
    model.eval()
    return model


@torch.no_grad()
def sample(
    policy: Policy,
    prefix: torch.Tensor,
    n_new: int,
    n: int = 1,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample ``n`` continuations of ``n_new`` tokens after ``prefix`` ``(P,)``: returns
    ``(n, P+n_new)``.

    Recomputes the full forward at each step (no cache): meant for the short horizons of the book.
    """
    prefix = torch.as_tensor(prefix, dtype=torch.long)
    if prefix.dim() != 1 or prefix.numel() == 0:
        raise ValueError(
            "prefix must be a non-empty 1-D tensor of token ids (start with a BOS token)"
        )
    x = prefix.expand(n, -1).clone()
    for _ in range(n_new):
        logits = policy(x).logits[:, -1] / temperature  # (n, V)
        nxt = torch.multinomial(torch.softmax(logits, -1).float(), 1, generator=generator)
        x = torch.cat([x, nxt], dim=1)
    return x
