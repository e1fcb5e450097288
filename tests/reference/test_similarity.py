"""CKA, SVCCA, RSA: invariances and known values."""

import pytest
import torch

from kb.reference import linear_cka, rbf_cka, rdm, rsa, spearman, svcca


def _data(seed, n=200, d=12):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), g


def _orthogonal(d, g):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q


def test_linear_cka_invariances(seed):
    x, g = _data(seed)
    y = torch.tanh(x @ torch.randn(12, 8, generator=g, dtype=torch.float64))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.7 * x @ _orthogonal(12, g)) == pytest.approx(1.0)
    assert linear_cka(x, y) == pytest.approx(linear_cka(2.0 * x @ _orthogonal(12, g), y @ _orthogonal(8, g)))
    assert linear_cka(x, y + 5.0) == pytest.approx(linear_cka(x, y))  # centring


def test_linear_cka_independent_data_is_small(seed):
    x, g = _data(seed, n=2000, d=4)
    y = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    assert linear_cka(x, y) < 0.05


def test_linear_cka_is_not_invariant_to_arbitrary_linear_maps():
    x, g = _data(0)
    stretch = torch.diag(torch.logspace(0, 2, 12, dtype=torch.float64))
    assert linear_cka(x, x @ stretch) < 0.9


def test_rbf_cka_invariances(seed):
    x, g = _data(seed, n=100)
    assert rbf_cka(x, x) == pytest.approx(1.0)
    assert rbf_cka(x, 5.0 * x @ _orthogonal(12, g)) == pytest.approx(1.0)  # median bandwidth scales along
    assert rbf_cka(x, x @ _orthogonal(12, g), sigma=2.0) == pytest.approx(1.0)


def test_svcca_is_invariant_to_invertible_linear_maps(seed):
    x, g = _data(seed)
    a = torch.randn(12, 12, generator=g, dtype=torch.float64) + 3 * torch.eye(12, dtype=torch.float64)
    assert svcca(x, x @ a, keep=1.0) == pytest.approx(1.0, abs=1e-6)
    noise = torch.randn(200, 12, generator=g, dtype=torch.float64)
    assert svcca(x, noise) < 0.5


def test_svcca_finds_a_shared_subspace():
    x, g = _data(0, n=500, d=3)
    y = torch.cat([x @ torch.randn(3, 3, generator=g, dtype=torch.float64), 0.01 * torch.randn(500, 5, generator=g, dtype=torch.float64)], 1)
    assert svcca(x, y, keep=0.99) == pytest.approx(1.0, abs=1e-3)  # SVD keeps the 3 shared directions


def test_rsa_known_values(seed):
    x, g = _data(seed, n=40)
    assert rsa(x, x) == pytest.approx(1.0)
    assert rsa(x, x @ _orthogonal(12, g), metric="euclidean") == pytest.approx(1.0)
    assert rsa(x, torch.randn(40, 12, generator=g, dtype=torch.float64)) < 0.3
    assert rdm(x).diagonal().abs().max() < 1e-9


def test_spearman_handles_ties_like_scipy():
    stats = pytest.importorskip("scipy.stats")
    a = torch.tensor([1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 0.0])
    b = torch.tensor([2.0, 1.0, 4.0, 4.0, 3.0, 6.0, 6.0, 1.0])
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a.numpy(), b.numpy()).statistic)
