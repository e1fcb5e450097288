"""PCA, t-SNE, UMAP/PHATE adapters, manifold geometry."""

import importlib.util
import math

import pytest
import torch

from kb.reference import manifold_geometry, participation_ratio, pca, phate, tsne, two_nn_dimension, umap


def _clusters(seed=0, n=150):
    g = torch.Generator().manual_seed(seed)
    centres = 6 * torch.randn(3, 10, generator=g)
    labels = torch.arange(n) % 3
    return centres[labels] + torch.randn(n, 10, generator=g), labels


def test_pca_matches_eigendecomposition_of_the_covariance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    result = pca(x, n_components=5)
    evals, evecs = torch.linalg.eigh(torch.cov(x.T))
    torch.testing.assert_close(result.explained_variance, evals.flip(0))
    torch.testing.assert_close((result.components @ evecs[:, -1]).abs()[0], torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(result.scores @ result.components + result.mean, x)
    assert float(result.explained_variance_ratio.sum()) == pytest.approx(1.0)


def test_tsne_keeps_clusters_apart():
    x, labels = _clusters()
    y = tsne(x, perplexity=20, n_iter=300)
    d = torch.cdist(y, y).fill_diagonal_(float("inf"))
    nearest = labels[d.argmin(1)]
    assert (nearest == labels).float().mean() > 0.95
    assert torch.equal(y, tsne(x, perplexity=20, n_iter=300))  # deterministic under its seed


@pytest.mark.parametrize("fn,package,install", [(umap, "umap", "pip install umap-learn"),
                                                (phate, "phate", "pip install phate")])
def test_lazy_adapters_explain_how_to_install(fn, package, install):
    if importlib.util.find_spec(package) is not None:
        x, _ = _clusters()
        assert fn(x).shape == (150, 2)
    else:
        with pytest.raises(ImportError, match=install):
            fn(torch.randn(20, 3))


def test_manifold_geometry_of_a_circle_and_a_blob():
    g = torch.Generator().manual_seed(0)
    theta = 2 * math.pi * torch.rand(1500, generator=g, dtype=torch.float64)
    embed = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))[0][:, :2]
    circle = torch.stack([theta.cos(), theta.sin()], 1) @ embed.T
    geo = manifold_geometry(circle)
    assert geo.participation_ratio == pytest.approx(2.0, abs=0.1)
    assert geo.intrinsic_dimension == pytest.approx(1.0, abs=0.15)
    assert geo.n_components_90 == 2
    blob = torch.randn(1500, 5, generator=g, dtype=torch.float64)
    assert two_nn_dimension(blob) == pytest.approx(5.0, rel=0.2)
    assert participation_ratio(blob) == pytest.approx(5.0, rel=0.1)
