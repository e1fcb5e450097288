"""Sparse autoencoders for dictionary learning on activations."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import generator

__all__ = ["SparseAutoencoder", "sae_loss", "train_sae"]


class SparseAutoencoder(nn.Module):
    """``f = ReLU(W_enc (x - b_dec) + b_enc)``, ``x_hat = W_dec f + b_dec``, unit-norm decoder columns.

    ``W_dec`` is ``(d_in, d_hidden)``; its columns are the dictionary directions.

    References
    ----------
    [@bricken2023monosemanticity]
    """

    def __init__(self, d_in: int, d_hidden: int, seed: int = 0):
        super().__init__()
        g = generator(seed)
        w = torch.randn(d_in, d_hidden, generator=g)
        w = w / w.norm(dim=0, keepdim=True)
        self.W_dec = nn.Parameter(w)
        self.W_enc = nn.Parameter(w.T.clone())  # tied initialisation
        self.b_enc = nn.Parameter(torch.zeros(d_hidden))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def encode(self, x: Tensor) -> Tensor:
        return F.relu((x - self.b_dec) @ self.W_enc.T + self.b_enc)

    def decode(self, f: Tensor) -> Tensor:
        return f @ self.W_dec.T + self.b_dec

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.encode(x)
        return self.decode(f), f

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder columns to unit norm (so the L1 penalty cannot be dodged by shrinking codes)."""
        self.W_dec.div_(self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-8))


def sae_loss(sae: SparseAutoencoder, x: Tensor, l1_coeff: float) -> tuple[Tensor, Tensor, Tensor]:
    """``L = ||x - x_hat||^2 + l1_coeff * sum_i |f_i| ||W_dec[:, i]||`` averaged over the batch.

    Returns ``(total, reconstruction, sparsity)``.

    References
    ----------
    [@bricken2023monosemanticity]
    """
    x_hat, f = sae(x)
    recon = (x - x_hat).pow(2).sum(-1).mean()
    sparsity = (f * sae.W_dec.norm(dim=0)).sum(-1).mean()
    return recon + l1_coeff * sparsity, recon, sparsity


def train_sae(
    activations: Tensor,
    d_hidden: int,
    l1_coeff: float = 1e-2,
    n_steps: int = 2000,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
) -> SparseAutoencoder:
    """Fit a :class:`SparseAutoencoder` to ``(n, d_in)`` activations with Adam on :func:`sae_loss`.

    ``b_dec`` starts at the data mean (the geometric median in the paper); decoder columns are
    renormalised after every step.

    References
    ----------
    [@bricken2023monosemanticity]
    """
    x = activations.detach().float()
    sae = SparseAutoencoder(x.shape[1], d_hidden, seed)
    with torch.no_grad():
        sae.b_dec.copy_(x.mean(0))
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    g = generator(seed + 1)
    for _ in range(n_steps):
        batch = x[torch.randint(0, len(x), (batch_size,), generator=g)]
        loss, _, _ = sae_loss(sae, batch, l1_coeff)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sae.normalize_decoder()
    return sae.eval().requires_grad_(False)
