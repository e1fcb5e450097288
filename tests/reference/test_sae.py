"""Sparse autoencoders: recovery of planted sparse directions from superposed data."""

import pytest
import torch

from kb.reference import SparseAutoencoder, sae_loss, train_sae


def _superposed(seed, n=8192, n_features=20, d=10, p=0.05):
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n_features, d, generator=g)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    codes = (torch.rand(n, n_features, generator=g) < p).float() * torch.rand(n, n_features, generator=g) * 2
    return codes @ dirs, dirs


@pytest.mark.parametrize("seed", [0, 1], ids=["data0", "data1"])
def test_sae_recovers_planted_sparse_directions(seed):
    x, dirs = _superposed(seed)
    sae = train_sae(x, d_hidden=40, l1_coeff=0.3, n_steps=2000, seed=seed)
    atoms = sae.W_dec / sae.W_dec.norm(dim=0, keepdim=True)
    best = (dirs @ atoms).max(1).values  # each planted direction's best-matching atom
    assert float(best.mean()) > 0.9
    with torch.no_grad():
        recon, codes = sae(x)
    assert float((codes > 0).float().sum(1).mean()) < 5  # sparse codes: ~1 of 20 features active


def test_sae_loss_terms():
    sae = SparseAutoencoder(4, 8, seed=0)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    total, recon, sparsity = sae_loss(sae, x, l1_coeff=0.5)
    x_hat, f = sae(x)
    torch.testing.assert_close(recon, (x - x_hat).pow(2).sum(1).mean())
    torch.testing.assert_close(total, recon + 0.5 * sparsity)
    assert (f >= 0).all()
    torch.testing.assert_close(sae.W_dec.norm(dim=0), torch.ones(8))


def test_sae_training_is_deterministic():
    x, _ = _superposed(0, n=512)
    a = train_sae(x, 16, n_steps=20, seed=3)
    b = train_sae(x, 16, n_steps=20, seed=3)
    assert torch.equal(a.W_dec, b.W_dec)
