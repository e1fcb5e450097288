"""Sparse replacements and cross-source dictionaries: transcoders, cross-layer transcoders, crosscoders."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import forward_hooks, generator, resolve_module

__all__ = ["mlp_io", "Transcoder", "train_transcoder", "CrossLayerTranscoder", "train_cross_layer_transcoder",
           "Crosscoder", "train_crosscoder", "relative_decoder_norm", "fraction_variance_explained"]


def fraction_variance_explained(target: Tensor, estimate: Tensor) -> float:
    """``1 - sum ||y - y_hat||^2 / sum ||y - mean(y)||^2`` over the rows of ``(n, d)`` (or ``(..., n, d)``) tensors.

    >>> y = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    >>> fraction_variance_explained(y, y), fraction_variance_explained(y, y.mean(0).expand(2, 2))
    (1.0, 0.0)
    """
    y, y_hat = target.reshape(-1, target.shape[-1]), estimate.reshape(-1, target.shape[-1])
    return float(1 - (y - y_hat).pow(2).sum() / (y - y.mean(0)).pow(2).sum())


def mlp_io(model: nn.Module, inputs: Tensor, mlps: Sequence[nn.Module | str]) -> tuple[Tensor, Tensor]:
    """The inputs and outputs of each module in ``mlps`` on ``inputs``, flattened to ``(L, n, d)`` rows (tokens)."""
    seen: dict[int, tuple[Tensor, Tensor]] = {}
    hooks = [(resolve_module(model, m), lambda _m, i, o, k=k: seen.__setitem__(k, (i[0].detach(), o.detach())))
             for k, m in enumerate(mlps)]
    with torch.no_grad(), forward_hooks(hooks):
        model(inputs)
    return (torch.stack([seen[k][0].reshape(-1, seen[k][0].shape[-1]) for k in range(len(mlps))]),
            torch.stack([seen[k][1].reshape(-1, seen[k][1].shape[-1]) for k in range(len(mlps))]))


def _unit_columns(w: Tensor, dim: int) -> Tensor:
    return w / w.norm(dim=dim, keepdim=True).clamp_min(1e-8)


class Transcoder(nn.Module):
    """``f = ReLU(W_enc x + b_enc)``, ``y_hat = W_dec f + b_dec (+ W_skip x)``: a sparse stand-in for an MLP.

    ``W_enc`` is ``(d_hidden, d_in)``, ``W_dec`` ``(d_out, d_hidden)`` (its columns are the
    features' output directions). ``skip=True`` adds the affine skip term of skip transcoders.

    Examples
    --------
    An MLP ``W_out ReLU(W_in x)`` is a transcoder whose latents are its neurons (dense, not sparse):

    >>> g = torch.Generator().manual_seed(0)
    >>> w_in, w_out, x = torch.randn(6, 4, generator=g), torch.randn(4, 6, generator=g), torch.randn(8, 4, generator=g)
    >>> tc = Transcoder(4, 6)
    >>> with torch.no_grad():
    ...     _ = tc.W_enc.copy_(w_in), tc.W_dec.copy_(w_out)
    >>> bool(torch.allclose(tc(x)[0], torch.relu(x @ w_in.T) @ w_out.T))
    True

    References
    ----------
    [@dunefsky2024transcoders]; [@paulo2025transcoders]
    """

    def __init__(self, d_in: int, d_hidden: int, d_out: int | None = None, skip: bool = False, seed: int = 0):
        super().__init__()
        g = generator(seed)
        d_out = d_in if d_out is None else d_out
        self.W_enc = nn.Parameter(torch.randn(d_hidden, d_in, generator=g) / d_in ** 0.5)
        self.b_enc = nn.Parameter(torch.zeros(d_hidden))
        self.W_dec = nn.Parameter(_unit_columns(torch.randn(d_out, d_hidden, generator=g), 0) * 0.1)
        self.b_dec = nn.Parameter(torch.zeros(d_out))
        self.W_skip = nn.Parameter(torch.zeros(d_out, d_in)) if skip else None

    def encode(self, x: Tensor) -> Tensor:
        return F.relu(x @ self.W_enc.T + self.b_enc)

    def decode(self, f: Tensor, x: Tensor | None = None) -> Tensor:
        y = f @ self.W_dec.T + self.b_dec
        return y if self.W_skip is None else y + x @ self.W_skip.T

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.encode(x)
        return self.decode(f, x), f


def _fit(module: nn.Module, loss_fn, n: int, n_steps: int, batch_size: int, lr: float, seed: int) -> nn.Module:
    """Adam on ``loss_fn(rows)`` over random mini-batches of ``n`` rows; returns the module frozen."""
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    g = generator(seed + 1)
    for _ in range(n_steps):
        loss = loss_fn(torch.randint(0, n, (min(batch_size, n),), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval().requires_grad_(False)


def train_transcoder(
    inputs: Tensor,
    outputs: Tensor,
    d_hidden: int,
    l1_coeff: float = 1e-2,
    n_steps: int = 1000,
    batch_size: int = 256,
    lr: float = 3e-3,
    skip: bool = False,
    seed: int = 0,
) -> Transcoder:
    """Fit a :class:`Transcoder` mapping an MLP's ``(n, d_in)`` inputs to its ``(n, d_out)`` outputs.

    Loss per batch: ``sum ||y - y_hat||^2 / V + l1_coeff * sum_i f_i ||W_dec[:, i]|| / sqrt(V)``,
    with ``V`` the total variance of ``outputs`` (so ``l1_coeff`` does not depend on their scale):
    the transcoder replaces the MLP's computation, not its output, which is what makes circuits
    through it readable from weights. ``b_dec`` starts at the mean output.

    References
    ----------
    [@dunefsky2024transcoders]
    """
    x, y = inputs.detach().float(), outputs.detach().float()
    tc = Transcoder(x.shape[1], d_hidden, y.shape[1], skip=skip, seed=seed)
    var = (y - y.mean(0)).pow(2).sum(1).mean()
    with torch.no_grad():
        tc.b_dec.copy_(y.mean(0))

    def loss(idx):
        y_hat, f = tc(x[idx])
        return ((y[idx] - y_hat).pow(2).sum(1).mean() / var
                + l1_coeff * (f * tc.W_dec.norm(dim=0)).sum(1).mean() / var.sqrt())

    return _fit(tc, loss, len(x), n_steps, batch_size, lr, seed)


class CrossLayerTranscoder(nn.Module):
    """Features read one layer's MLP input and write to that MLP's output and every later one's.

    ``f_l = ReLU(W_enc[l] x_l + b_enc[l])``; ``y_hat_k = sum_{l <= k} W_dec[l, k] f_l + b_dec[k]``.
    Shapes: ``W_enc (L, m, d_in)``, ``W_dec (L, L, d_out, m)`` (source layer, target layer), used
    only where ``reach[l, k]`` (``l <= k``; ``l == k`` alone when ``cross_layer=False``, which is a
    stack of per-layer transcoders). Inputs and outputs are ``(L, n, d)``.

    References
    ----------
    [@ameisen2025circuit]
    """

    def __init__(self, n_layers: int, d_in: int, d_hidden: int, d_out: int | None = None,
                 cross_layer: bool = True, seed: int = 0):
        super().__init__()
        g = generator(seed)
        d_out = d_in if d_out is None else d_out
        self.W_enc = nn.Parameter(torch.randn(n_layers, d_hidden, d_in, generator=g) / d_in ** 0.5)
        self.b_enc = nn.Parameter(torch.zeros(n_layers, d_hidden))
        dec = _unit_columns(torch.randn(n_layers, n_layers, d_out, d_hidden, generator=g), 2) * 0.1
        self.W_dec = nn.Parameter(dec)
        self.b_dec = nn.Parameter(torch.zeros(n_layers, d_out))
        ones = torch.ones(n_layers, n_layers, dtype=torch.bool)
        self.register_buffer("reach", ones.triu() if cross_layer else ones.triu() & ones.tril())

    @classmethod
    def from_transcoders(cls, transcoders: Sequence[Transcoder]) -> "CrossLayerTranscoder":
        """Stack per-layer transcoders (equal sizes, no skip term) into one object with ``cross_layer=False``."""
        m, d_in = transcoders[0].W_enc.shape
        clt = cls(len(transcoders), d_in, m, transcoders[0].W_dec.shape[0], cross_layer=False)
        with torch.no_grad():
            clt.W_dec.zero_()
            for l, tc in enumerate(transcoders):
                clt.W_enc[l], clt.b_enc[l], clt.W_dec[l, l], clt.b_dec[l] = tc.W_enc, tc.b_enc, tc.W_dec, tc.b_dec
        return clt.eval().requires_grad_(False)

    def encode_layer(self, layer: int, x: Tensor) -> Tensor:
        return F.relu(x @ self.W_enc[layer].T + self.b_enc[layer])

    def decode_layer(self, layer: int, features: Sequence[Tensor]) -> Tensor:
        """Output of MLP ``layer`` from the features of layers ``0 .. layer`` (a list, one ``(..., m)`` each)."""
        out = self.b_dec[layer]
        for source in range(layer + 1):
            if self.reach[source, layer]:
                out = out + features[source] @ self.W_dec[source, layer].T
        return out

    def forward(self, xs: Tensor) -> tuple[Tensor, Tensor]:
        f = torch.stack([self.encode_layer(l, x) for l, x in enumerate(xs)])
        return torch.stack([self.decode_layer(k, f) for k in range(len(xs))]), f

    def decoder_norms(self, output_scale: Tensor | None = None) -> Tensor:
        """``(L, m)``: the norm of each feature's concatenated decoder vectors over the layers it reaches
        (each target layer's block multiplied by ``output_scale[k]`` when given)."""
        sq = self.W_dec.pow(2).sum(2)
        if output_scale is not None:
            sq = sq * output_scale.view(1, -1, 1).pow(2)
        return (sq * self.reach[..., None]).sum(1).sqrt()


def train_cross_layer_transcoder(
    inputs: Tensor,
    outputs: Tensor,
    d_hidden: int,
    l1_coeff: float = 1e-2,
    n_steps: int = 1000,
    batch_size: int = 256,
    lr: float = 3e-3,
    cross_layer: bool = True,
    seed: int = 0,
) -> CrossLayerTranscoder:
    """Fit a :class:`CrossLayerTranscoder` to every MLP at once: ``inputs``, ``outputs`` are ``(L, n, d)``.

    Loss: ``sum_k ||y_k - y_hat_k||^2 / V_k + l1_coeff * sum_{l,i} f_{l,i} ||(W_dec[l, k, :, i] / sqrt(V_k))_k||``,
    ``V_k`` the total variance of MLP ``k``'s output (MLPs of very different scale count alike);
    the penalty weighs each feature by the norm of all its decoders (Ameisen et al. use a tanh of
    it and JumpReLU features). ``cross_layer=False`` trains per-layer transcoders jointly.

    References
    ----------
    [@ameisen2025circuit]; [@lindsey2024sparse]
    """
    x, y = inputs.detach().float(), outputs.detach().float()
    clt = CrossLayerTranscoder(x.shape[0], x.shape[2], d_hidden, y.shape[2], cross_layer, seed)
    var = (y - y.mean(1, keepdim=True)).pow(2).sum(2).mean(1)  # (L,)
    with torch.no_grad():
        clt.b_dec.copy_(y.mean(1))

    def loss(idx):
        y_hat, f = clt(x[:, idx])
        return ((y[:, idx] - y_hat).pow(2).sum(2).mean(1) / var).sum() + l1_coeff * (
            f * clt.decoder_norms(var.rsqrt())[:, None]).sum((0, 2)).mean()

    return _fit(clt, loss, x.shape[1], n_steps, batch_size, lr, seed)


class Crosscoder(nn.Module):
    """One dictionary for several sources (models or layers): a joint code, a decoder per source.

    ``f = ReLU(sum_s W_enc[s] a_s + b_enc)``; ``a_hat_s = W_dec[s] f + b_dec[s]``. Shapes:
    ``W_enc (S, m, d)``, ``W_dec (S, d, m)``; activations are ``(S, n, d)``.

    References
    ----------
    [@lindsey2024sparse]
    """

    def __init__(self, n_sources: int, d: int, d_hidden: int, seed: int = 0):
        super().__init__()
        g = generator(seed)
        self.W_enc = nn.Parameter(torch.randn(n_sources, d_hidden, d, generator=g) / (n_sources * d) ** 0.5)
        self.b_enc = nn.Parameter(torch.zeros(d_hidden))
        self.W_dec = nn.Parameter(_unit_columns(torch.randn(n_sources, d, d_hidden, generator=g), 1) * 0.1)
        self.b_dec = nn.Parameter(torch.zeros(n_sources, d))

    def encode(self, acts: Tensor) -> Tensor:
        return F.relu(torch.einsum("snd,smd->nm", acts, self.W_enc) + self.b_enc)

    def decode(self, f: Tensor) -> Tensor:
        return torch.einsum("nm,sdm->snd", f, self.W_dec) + self.b_dec[:, None]

    def forward(self, acts: Tensor) -> tuple[Tensor, Tensor]:
        f = self.encode(acts)
        return self.decode(f), f


def train_crosscoder(
    activations: Sequence[Tensor] | Tensor,
    d_hidden: int,
    l1_coeff: float = 1e-2,
    n_steps: int = 1000,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
) -> Crosscoder:
    """Fit a :class:`Crosscoder` to the activations of ``S`` sources on the same inputs (``S`` tensors ``(n, d)``).

    Loss: ``sum_s ||a_s - a_hat_s||^2 / V + l1_coeff * sum_j f_j sum_s ||W_dec[s][:, j]|| / sqrt(V)``
    (the original L1 penalty, weighted by the sum of the decoder norms; ``V`` the total variance).
    Model diffing reads :func:`relative_decoder_norm` of the result. Minder et al. show that this
    L1 loss can manufacture model-specific latents; check candidates before trusting them.

    References
    ----------
    [@lindsey2024sparse]; [@minder2025overcoming]
    """
    a = torch.stack(list(activations)).detach().float()
    cc = Crosscoder(a.shape[0], a.shape[2], d_hidden, seed)
    var = (a - a.mean(1, keepdim=True)).pow(2).sum((0, 2)).mean()
    with torch.no_grad():
        cc.b_dec.copy_(a.mean(1))

    def loss(idx):
        a_hat, f = cc(a[:, idx])
        return ((a[:, idx] - a_hat).pow(2).sum((0, 2)).mean() / var
                + l1_coeff * (f * cc.W_dec.norm(dim=1).sum(0)).sum(1).mean() / var.sqrt())

    return _fit(cc, loss, a.shape[1], n_steps, batch_size, lr, seed)


def relative_decoder_norm(crosscoder: Crosscoder, a: int = 0, b: int = 1) -> Tensor:
    """``||d^b_j|| / (||d^a_j|| + ||d^b_j||)`` per latent ``j``: ~0.5 shared, ~0 only in ``a``, ~1 only in ``b``.

    >>> cc = Crosscoder(2, 3, 2)
    >>> with torch.no_grad():
    ...     cc.W_dec[0, :, 1] = 0.0
    >>> relative_decoder_norm(cc)[1].item()
    1.0

    References
    ----------
    [@lindsey2024sparse]
    """
    norms = crosscoder.W_dec.detach().norm(dim=1)  # (S, m)
    return norms[b] / (norms[a] + norms[b]).clamp_min(1e-12)
