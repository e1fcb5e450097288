"""Demo models that train in seconds on a CPU (seeded, shipped as code) and toy models with analytic answers."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import generator

__all__ = [
    "Demo",
    "make_tabular_data",
    "tabular_mlp",
    "train_tabular_mlp",
    "make_shapes",
    "shapes_cnn",
    "train_shapes_cnn",
    "make_flipflop",
    "FlipFlopGRU",
    "train_flipflop_gru",
    "make_repeated_sequences",
    "make_induction_batch",
    "association_prompts",
    "contrast_pairs",
    "fit_logistic_subsets",
    "AttentionOnlyTransformer",
    "train_induction_transformer",
    "LayerNorm",
    "MLPTransformer",
    "train_induction_mlp_transformer",
    "make_sparse_features",
    "SuperpositionModel",
    "train_superposition_pair",
    "LinearModel",
    "saturating_model",
    "tanh_rnn_step",
]


@dataclasses.dataclass
class Demo:
    """A trained demo model with its data: ``inputs``, ``labels`` and ``info`` (accuracy, loss, ...)."""

    model: nn.Module
    inputs: Tensor
    labels: Tensor
    info: dict


def _seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module under ``torch.manual_seed(seed)`` without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _fit(model: nn.Module, batches: Callable[[int], tuple[Tensor, Tensor]], n_steps: int,
         lr: float, seed: int, loss_fn=F.cross_entropy) -> float:
    """Adam on ``loss_fn(model(x), y)`` for ``n_steps`` batches; returns the last loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(n_steps):
        x, y = batches(step)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)  # hand back a model without stale gradients
    model.eval()
    return float(loss.detach())


# --- tabular -------------------------------------------------------------------------------------

def make_tabular_data(n: int = 1024, n_features: int = 8, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Gaussian features; 3 classes decided by the first four features only (the rest is noise).

    ``y = argmax([x0 + x1, x2 - x0, 1.5 * x3])``.
    """
    x = torch.randn(n, n_features, generator=generator(seed))
    scores = torch.stack([x[:, 0] + x[:, 1], x[:, 2] - x[:, 0], 1.5 * x[:, 3]], 1)
    return x, scores.argmax(1)


def tabular_mlp(n_features: int = 8, hidden: int = 32, n_classes: int = 3, seed: int = 0) -> nn.Sequential:
    """Linear-ReLU-Linear-ReLU-Linear, built from modules so every method (LRP, DeepLIFT) sees them."""
    return _seeded(seed, lambda: nn.Sequential(
        nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, n_classes)))


def train_tabular_mlp(seed: int = 0, n_steps: int = 300) -> Demo:
    """Train the MLP full-batch on :func:`make_tabular_data` (about a second)."""
    x, y = make_tabular_data(seed=seed)
    model = tabular_mlp(n_features=x.shape[1], seed=seed)
    loss = _fit(model, lambda _: (x, y), n_steps, 1e-2, seed)
    xt, yt = make_tabular_data(512, seed=seed + 1)
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).float().mean())
    return Demo(model, xt, yt, {"loss": loss, "test_accuracy": acc})


# --- images ----------------------------------------------------------------------------------------

SHAPE_CLASSES = ("horizontal bar", "vertical bar", "square")


def make_shapes(n: int = 1024, size: int = 16, noise: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(n, 1, size, size)`` images of one shape at a random place: a horizontal bar, a vertical bar or a square."""
    g = generator(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    r0 = torch.randint(1, size - 6, (n,), generator=g)
    c0 = torch.randint(1, size - 6, (n,), generator=g)
    rows = torch.arange(size).view(1, size, 1)
    cols = torch.arange(size).view(1, 1, size)
    r, c = r0.view(n, 1, 1), c0.view(n, 1, 1)
    h = torch.where(y == 0, 2, torch.where(y == 1, 6, 4)).view(n, 1, 1)
    w = torch.where(y == 0, 6, torch.where(y == 1, 2, 4)).view(n, 1, 1)
    img = ((rows >= r) & (rows < r + h) & (cols >= c) & (cols < c + w)).float()
    img = img + noise * torch.randn(img.shape, generator=g)
    return img.unsqueeze(1), y


def shapes_cnn(seed: int = 0, n_classes: int = 3) -> nn.Sequential:
    """Conv-ReLU-Pool-Conv-ReLU-Pool-Flatten-Linear for 16x16 images; ``model[4]`` is the last conv ReLU (8x8)."""
    return _seeded(seed, lambda: nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, n_classes),
    ))


def train_shapes_cnn(seed: int = 0, n_steps: int = 150) -> Demo:
    """Train the CNN on :func:`make_shapes` in mini-batches of 128 (a few seconds)."""
    x, y = make_shapes(2048, seed=seed)
    model = shapes_cnn(seed)
    loss = _fit(model, lambda s: (x[(s * 128) % 2048:][:128], y[(s * 128) % 2048:][:128]), n_steps, 1e-2, seed)
    xt, yt = make_shapes(256, seed=seed + 1)
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).float().mean())
    return Demo(model, xt, yt, {"loss": loss, "test_accuracy": acc})


# --- 3-bit flip-flop -------------------------------------------------------------------------------

def make_flipflop(n: int = 128, n_steps: int = 50, n_bits: int = 3, p_pulse: float = 0.06,
                  seed: int = 0) -> tuple[Tensor, Tensor]:
    """The flip-flop task: inputs are sparse +-1 pulses per bit; the target holds each bit's last pulse.

    Every bit is pulsed at ``t = 0`` so the target is always a corner of ``{-1, 1}^n_bits``.
    Returns ``inputs, targets`` of shape ``(n, n_steps, n_bits)``.
    """
    g = generator(seed)
    pulse = torch.rand(n, n_steps, n_bits, generator=g) < p_pulse
    pulse[:, 0] = True
    sign = torch.randint(0, 2, (n, n_steps, n_bits), generator=g).float() * 2 - 1
    inputs = pulse.float() * sign
    # the target is the sign of the most recent pulse: carry the last non-zero input forward
    idx = torch.where(pulse, torch.arange(n_steps).view(1, -1, 1), 0).cummax(1).values
    targets = inputs.gather(1, idx)
    return inputs, targets


class FlipFlopGRU(nn.Module):
    """A GRU with a linear readout; :meth:`step` is the autonomous map ``h -> GRU(0, h)`` (no input)."""

    def __init__(self, n_bits: int = 3, hidden: int = 24, seed: int = 0):
        super().__init__()
        self.gru = _seeded(seed, lambda: nn.GRU(n_bits, hidden, batch_first=True))
        self.readout = _seeded(seed + 1, lambda: nn.Linear(hidden, n_bits))

    def forward(self, inputs: Tensor) -> Tensor:
        return self.readout(self.hidden_states(inputs))

    def hidden_states(self, inputs: Tensor) -> Tensor:
        """``(N, T, hidden)`` hidden states for ``(N, T, n_bits)`` inputs."""
        return self.gru(inputs)[0]

    def step(self, h: Tensor, x: Tensor | None = None) -> Tensor:
        """One GRU update ``h_t = (1 - z) * n + z * h_{t-1}`` written out from the GRU's weights."""
        w_ih, w_hh = self.gru.weight_ih_l0, self.gru.weight_hh_l0
        b_ih, b_hh = self.gru.bias_ih_l0, self.gru.bias_hh_l0
        gi = b_ih if x is None else x @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h


def train_flipflop_gru(seed: int = 0, hidden: int = 24, n_steps: int = 500, n_bits: int = 3) -> Demo:
    """Train :class:`FlipFlopGRU` on fresh flip-flop batches (mean squared error, a few seconds)."""
    model = FlipFlopGRU(n_bits, hidden, seed)
    batches = lambda s: make_flipflop(128, seed=seed * 100003 + s, n_bits=n_bits)  # noqa: E731
    loss = _fit(model, batches, n_steps, 1e-2, seed, loss_fn=F.mse_loss)
    x, y = make_flipflop(64, seed=seed + 999, n_bits=n_bits)
    with torch.no_grad():
        acc = float((model(x).sign() == y).float().mean())
    return Demo(model, x, y, {"loss": loss, "bit_accuracy": acc})


# --- attention-only transformer (induction) --------------------------------------------------------

def make_repeated_sequences(n: int = 64, half: int = 10, vocab: int = 32, seed: int = 0) -> Tensor:
    """``(n, 2 * half)`` tokens: a random sequence of distinct tokens followed by itself."""
    g = generator(seed)
    first = torch.rand(n, vocab, generator=g).argsort(1)[:, :half]
    return torch.cat([first, first], 1)


def make_induction_batch(n: int = 64, length: int = 24, vocab: int = 32, seed: int = 0) -> Tensor:
    """Random tokens with one segment repeated at a random offset and period (3 to ``length // 2``).

    Because the period varies, copying needs content-based attention (induction heads), not a
    fixed positional offset.
    """
    g = generator(seed)
    tokens = torch.randint(0, vocab, (n, length), generator=g)
    period = torch.randint(3, length // 2 + 1, (n, 1), generator=g)
    start = (torch.rand(n, 1, generator=g) * (length - 2 * period + 1)).long()
    j = torch.arange(length).view(1, -1)
    copy = (j >= start + period) & (j < start + 2 * period)
    return tokens.gather(1, torch.where(copy, j - period, j))


class Attention(nn.Module):
    """Causal multi-head attention. ``pattern`` (weights ``(B, H, T, T)``) and ``head_out``
    (each head's write to the residual stream, ``(B, T, H, D)``) are identity modules to hook."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.pattern = nn.Identity()
        self.head_out = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        pattern = self.pattern(scores.masked_fill(~causal, float("-inf")).softmax(-1))
        z = pattern @ v  # (B, H, T, d_head)
        w_o = self.out.weight.T.view(self.n_heads, self.d_head, d)
        per_head = self.head_out(torch.einsum("bhtk,hkd->bthd", z, w_o))
        return per_head.sum(2) + self.out.bias


class Block(nn.Module):
    """Attention-only residual block ``x + attn(x)``; its output is the residual stream after the layer."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.attn = Attention(d_model, n_heads)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.attn(x)


class AttentionOnlyTransformer(nn.Module):
    """Token + learned position embedding, ``n_layers`` attention-only blocks, linear unembedding.

    ``embed`` (an identity module) carries the input embedding, for causal tracing.
    """

    def __init__(self, vocab: int = 32, d_model: int = 32, n_heads: int = 2, n_layers: int = 2,
                 max_len: int = 64, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.tok = nn.Embedding(vocab, d_model)
            self.pos = nn.Embedding(max_len, d_model)
            self.embed = nn.Identity()
            self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
            self.unembed = nn.Linear(d_model, vocab)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(self.tok(tokens) + self.pos(torch.arange(tokens.shape[1])))
        for block in self.blocks:
            x = block(x)
        return self.unembed(x)


def _next_token_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def train_induction_transformer(seed: int = 0, n_steps: int = 600, half: int = 10, vocab: int = 32) -> Demo:
    """Train a 2-layer attention-only transformer on repeated random sequences (seconds on a CPU).

    The second half is predictable only by copying, and the model forms induction heads in layer 2
    (prefix-matching score far above chance) [@olsson2022context]. With seed 0 its layer-1 helper is
    not a textbook previous-token head: one layer-1 head attends from each token back to that
    token's earlier copy instead (see the attention-patterns tutorial), a reminder to score
    candidate roles rather than assume the circuit.
    """
    model = AttentionOnlyTransformer(vocab=vocab, seed=seed)
    batches = lambda s: (make_induction_batch(64, 2 * half + 4, vocab, seed * 100003 + s),) * 2  # noqa: E731
    loss = _fit(model, batches, n_steps, 3e-3, seed, loss_fn=_next_token_loss)
    tokens = make_repeated_sequences(64, half, vocab, seed + 999)
    with torch.no_grad():
        pred = model(tokens)[:, half - 1:-1].argmax(-1)
        acc = float((pred == tokens[:, half:]).float().mean())
    return Demo(model, tokens, tokens, {"loss": loss, "second_half_accuracy": acc, "half": half})


# --- transformer with MLPs (for transcoders and attribution graphs) ---------------------------------

class LayerNorm(nn.Module):
    """LayerNorm whose denominator passes through ``scale`` (an identity module, TransformerLens's
    ``hook_scale``), so it can be read or frozen: ``(x - mean) / scale(sigma) * weight + bias``."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))
        self.scale = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x - x.mean(-1, keepdim=True)
        return x / self.scale((x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt()) * self.weight + self.bias


class MLPBlock(nn.Module):
    """``x + attn(x)``, then ``+ mlp(.)`` with ``mlp`` = Linear-ReLU-Linear (its input: the residual stream mid-block)."""

    def __init__(self, d_model: int, n_heads: int, d_mlp: int):
        super().__init__()
        self.attn = Attention(d_model, n_heads)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d_model))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class MLPTransformer(nn.Module):
    """The demo transformer with an MLP in every block and a final LayerNorm ``ln_f`` before the unembedding."""

    def __init__(self, vocab: int = 32, d_model: int = 32, n_heads: int = 2, n_layers: int = 2,
                 d_mlp: int = 64, max_len: int = 64, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.tok = nn.Embedding(vocab, d_model)
            self.pos = nn.Embedding(max_len, d_model)
            self.embed = nn.Identity()
            self.blocks = nn.ModuleList(MLPBlock(d_model, n_heads, d_mlp) for _ in range(n_layers))
            self.ln_f = LayerNorm(d_model)
            self.unembed = nn.Linear(d_model, vocab)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(self.tok(tokens) + self.pos(torch.arange(tokens.shape[1])))
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_f(x))


def association_prompts(n: int, a: int, x: int, with_pair: bool, seed: int) -> Tensor:
    """``(n, 11)`` prompts for the induction models: ten random tokens of the 32-token vocabulary, then
    ``a``; with ``with_pair`` the pair ``(a, x)`` appears once in the context (an in-context "a -> x").

    >>> p = association_prompts(4, 3, 7, True, 0)
    >>> p.shape, bool((p[:, -1] == 3).all()), bool(((p[:, :-2] == 3) & (p[:, 1:-1] == 7)).any(1).all())
    (torch.Size([4, 11]), True, True)
    """
    g = torch.Generator().manual_seed(seed)
    others = torch.tensor([t for t in range(32) if t not in (a, x)])
    ctx = others[torch.randint(0, len(others), (n, 10), generator=g)]
    if with_pair:
        at = torch.randint(0, 8, (n,), generator=g)
        ctx[torch.arange(n), at], ctx[torch.arange(n), at + 1] = a, x
    return torch.cat([ctx, torch.full((n, 1), a)], 1)


def contrast_pairs(n: int = 512, d: int = 16, seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Synthetic hidden states of ``n`` yes/no contrast pairs for CCS: ``(h_pos, h_neg, truth, v)``.

    A planted unit truth direction ``v`` (+v on the true answer), a large per-question nuisance (std 2),
    and a constant 'which answer was appended' offset ``3 w`` that CCS's per-set normalisation removes.

    >>> h_pos, h_neg, truth, v = contrast_pairs(8, 4)
    >>> h_pos.shape, truth.shape, round(float(v.norm()), 6)
    (torch.Size([8, 4]), torch.Size([8]), 1.0)
    """
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d, generator=g)
    v /= v.norm()
    w = torch.randn(d, generator=g)
    truth = torch.randint(0, 2, (n,), generator=g)
    sign = (2 * truth - 1).float()[:, None]
    content = 2.0 * torch.randn(n, d, generator=g)
    h_pos = content + sign * v + 3 * w + 0.3 * torch.randn(n, d, generator=g)
    h_neg = content - sign * v - 3 * w + 0.3 * torch.randn(n, d, generator=g)
    return h_pos, h_neg, truth, v


def fit_logistic_subsets(x: Tensor, y: Tensor, masks: Tensor, lam: float = 1.0) -> Tensor:
    """L2-regularised logistic regressions on many training subsets at once, the ground truth of the
    data-attribution demos: ``min_theta sum_i m_i CE_i + lam/2 |theta|²`` for each row ``m`` of ``masks``
    (``(M, n)``), by batched Newton steps (converged to machine precision). Returns ``(M, d + 1)``:
    weights, then bias.

    >>> x = torch.randn(20, 2, dtype=torch.float64); y = (x[:, 0] > 0).double()
    >>> fit_logistic_subsets(x, y, torch.ones(3, 20, dtype=torch.bool)).shape
    torch.Size([3, 3])
    """
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    m = masks.double()
    theta = torch.zeros(len(m), design.shape[1], dtype=x.dtype)
    eye = torch.eye(design.shape[1], dtype=x.dtype)
    for _ in range(12):
        p = torch.sigmoid(theta @ design.T)
        grad = (m * (p - y)) @ design + lam * theta
        hess = torch.einsum("mn,ni,nj->mij", m * p * (1 - p), design, design) + lam * eye
        theta = theta - torch.linalg.solve(hess, grad)
    return theta


def train_induction_mlp_transformer(base: Demo | None = None, seed: int = 0, n_steps: int = 200,
                                    d_mlp: int = 64) -> Demo:
    """The induction demo transformer with MLPs and a final LayerNorm added, fine-tuned on the same task.

    Starts from ``base`` (a :func:`train_induction_transformer` run; trained here when ``None``):
    its embeddings, attention and unembedding are copied, each MLP's output layer starts at zero
    and ``ln_f``'s gain at the typical residual norm, so the new model starts close to the old one
    and keeps its induction heads; then ``n_steps`` of Adam on all weights (a second or two).
    """
    base = base or train_induction_transformer(seed)
    old, half = base.model, base.info["half"]
    vocab, d_model = old.unembed.out_features, old.unembed.in_features
    model = MLPTransformer(vocab, d_model, old.blocks[0].attn.n_heads, len(old.blocks), d_mlp, seed=seed + 1)
    model.load_state_dict(old.state_dict(), strict=False)  # tok, pos, blocks.*.attn, unembed
    with torch.no_grad():
        for block in model.blocks:
            nn.init.zeros_(block.mlp[2].weight), nn.init.zeros_(block.mlp[2].bias)
        tokens = make_induction_batch(256, 2 * half + 4, vocab, seed + 77)
        x = old.embed(old.tok(tokens) + old.pos(torch.arange(tokens.shape[1])))
        for block in old.blocks:
            x = block(x)
        model.ln_f.weight.fill_(float((x - x.mean(-1, keepdim=True)).pow(2).mean().sqrt()))
        model.ln_f.bias.copy_(x.mean((0, 1)) - x.mean())  # approximately the mean removed by the norm
    model.train()
    batches = lambda s: (make_induction_batch(64, 2 * half + 4, vocab, seed * 100003 + 50000 + s),) * 2  # noqa: E731
    loss = _fit(model, batches, n_steps, 1e-3, seed, loss_fn=_next_token_loss)
    tokens = base.inputs
    with torch.no_grad():
        pred = model(tokens)[:, half - 1:-1].argmax(-1)
        acc = float((pred == tokens[:, half:]).float().mean())
    return Demo(model, tokens, tokens, {"loss": loss, "second_half_accuracy": acc, "half": half})


def make_sparse_features(n: int, n_features: int = 12, p: float = 0.05, seed: int = 0) -> Tensor:
    """``(n, n_features)`` sparse non-negative features: each present with probability ``p``, uniform in [0, 1]."""
    g = generator(seed)
    return (torch.rand(n, n_features, generator=g) < p).float() * torch.rand(n, n_features, generator=g)


class SuperpositionModel(nn.Module):
    """Toy model of superposition: ``h = W (x * mask)``, ``x_hat = ReLU(W^T h + b)``; ``mask`` marks the features it reads."""

    def __init__(self, n_features: int = 12, d_hidden: int = 6, mask: Tensor | None = None, seed: int = 0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(d_hidden, n_features, generator=generator(seed)) * 0.3)
        self.b = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("mask", torch.ones(n_features) if mask is None else mask.float())

    def hidden(self, x: Tensor) -> Tensor:
        return (x * self.mask) @ self.W.T

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.hidden(x) @ self.W + self.b)


def train_superposition_pair(seed: int = 0, n_features: int = 12, d_hidden: int = 6, n_steps: int = 1000,
                             only_a: tuple[int, ...] = (9,), only_b: tuple[int, ...] = (10, 11)) -> Demo:
    """Two toy models with a planted difference, for model diffing [@elhage2022toy].

    Model A reads every feature except ``only_b``; model B starts as a copy of A (fresh random
    weights for ``only_b``) and is fine-tuned to read every feature except ``only_a``. Both
    reconstruct their features through a ``d_hidden`` bottleneck. Returns a :class:`Demo` whose
    ``model`` is ``nn.ModuleList([A, B])``, ``inputs`` the features of a held-out sample and
    ``info`` the planted sets.
    """
    mask_a, mask_b = torch.ones(n_features), torch.ones(n_features)
    mask_a[list(only_b)], mask_b[list(only_a)] = 0, 0
    a = SuperpositionModel(n_features, d_hidden, mask_a, seed)
    batches = lambda s: (make_sparse_features(256, n_features, seed=seed * 100003 + s),) * 2  # noqa: E731
    mse = lambda out, x, m: (out - x * m).pow(2).sum(1).mean()  # noqa: E731
    loss_a = _fit(a, batches, n_steps, 1e-2, seed, loss_fn=lambda out, x: mse(out, x, mask_a))
    b = SuperpositionModel(n_features, d_hidden, mask_b, seed + 1)
    with torch.no_grad():  # A's weights, except fresh random ones for the features only B reads
        keep = mask_a.bool()
        b.W[:, keep], b.b[keep] = a.W[:, keep], a.b[keep]
    batches_b = lambda s: (make_sparse_features(256, n_features, seed=seed * 100003 + 50000 + s),) * 2  # noqa: E731
    loss_b = _fit(b, batches_b, n_steps, 1e-2, seed, loss_fn=lambda out, x: mse(out, x, mask_b))
    x = make_sparse_features(4096, n_features, seed=seed + 999)
    return Demo(nn.ModuleList([a, b]), x, x, {"loss_a": loss_a, "loss_b": loss_b, "only_a": list(only_a),
                                              "only_b": list(only_b)})


# --- toy models with analytic answers --------------------------------------------------------------

class LinearModel(nn.Module):
    """``f(x) = x W^T + b``; every attribution method has a closed form on it."""

    def __init__(self, weight: Tensor, bias: Tensor | None = None):
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            if bias is not None:
                self.linear.bias.copy_(bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


def saturating_model() -> nn.Sequential:
    """``f(x) = 1 - relu(1 - x)`` (Sundararajan et al.'s example): zero gradient past ``x = 1``, so
    saliency is 0 at ``x = 2`` while integrated gradients gives ``f(2) - f(0) = 1``."""
    lin1 = nn.Linear(1, 1)
    lin2 = nn.Linear(1, 1)
    with torch.no_grad():
        lin1.weight.fill_(-1.0), lin1.bias.fill_(1.0)
        lin2.weight.fill_(-1.0), lin2.bias.fill_(1.0)
    return nn.Sequential(lin1, nn.ReLU(), lin2)


def tanh_rnn_step(weight: Tensor) -> Callable[[Tensor], Tensor]:
    """The autonomous map ``h -> tanh(W h)`` (rows of ``h`` are states)."""
    return lambda h: torch.tanh(h @ weight.T)
