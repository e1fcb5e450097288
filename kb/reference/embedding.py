"""Dimensionality reduction and manifold geometry: PCA, exact t-SNE, UMAP/PHATE adapters, intrinsic dimension."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from ._common import generator

__all__ = ["PCAResult", "pca", "tsne", "umap", "phate", "ManifoldGeometry", "manifold_geometry",
           "participation_ratio", "two_nn_dimension"]


@dataclasses.dataclass
class PCAResult:
    """``scores (n, k)``, ``components (k, d)`` (orthonormal rows), ``explained_variance (k,)``,
    ``explained_variance_ratio (k,)``, ``mean (d,)``."""

    scores: Tensor
    components: Tensor
    explained_variance: Tensor
    explained_variance_ratio: Tensor
    mean: Tensor


def pca(X: Tensor, n_components: int = 2) -> PCAResult:
    """Principal component analysis by SVD of the centred data ``X - mean = U S V^T``.

    Scores are ``U S``; signs are fixed so each component's largest-magnitude loading is positive.

    References
    ----------
    [@pearson1901lines]
    """
    mean = X.mean(0)
    u, s, vh = torch.linalg.svd(X - mean, full_matrices=False)
    signs = vh.gather(1, vh.abs().argmax(1, keepdim=True)).sign()
    vh, u = vh * signs, u * signs.T
    var = s**2 / max(X.shape[0] - 1, 1)
    k = n_components
    return PCAResult((u * s)[:, :k], vh[:k], var[:k], (var / var.sum())[:k], mean)


def _perplexity_affinities(d2: Tensor, perplexity: float, n_iter: int = 64) -> Tensor:
    """Conditional ``p_{j|i}`` with each row's Gaussian precision found by bisection (all rows at once)."""
    n = d2.shape[0]
    target = math.log(perplexity)
    lo = torch.full((n, 1), 0.0, dtype=d2.dtype)
    hi = torch.full((n, 1), math.inf, dtype=d2.dtype)
    beta = torch.ones(n, 1, dtype=d2.dtype)
    off = ~torch.eye(n, dtype=torch.bool)
    for _ in range(n_iter):
        logits = torch.where(off, -d2 * beta, -math.inf)
        p = logits.softmax(1)
        entropy = -(torch.where(p > 0, p * p.log(), 0.0)).sum(1, keepdim=True)
        too_flat = entropy > target  # entropy too high -> increase precision
        lo = torch.where(too_flat, beta, lo)
        hi = torch.where(too_flat, hi, beta)
        beta = torch.where(torch.isinf(hi), beta * 2, (lo + hi) / 2)
    return p


def tsne(
    X: Tensor,
    n_components: int = 2,
    perplexity: float = 30.0,
    n_iter: int = 500,
    learning_rate: float | None = None,
    seed: int = 0,
) -> Tensor:
    """Exact t-SNE (O(n^2) memory; fine for a few thousand points).

    ``P`` symmetrises Gaussian affinities calibrated to ``perplexity``; ``Q`` uses a Student-t
    kernel ``(1 + ||y_i - y_j||^2)^-1``; gradient descent on ``KL(P || Q)`` with momentum
    (0.5 then 0.8), adaptive gains and early exaggeration 12 for the first 100 iterations.
    ``learning_rate=None`` uses ``max(n / 12 / 4, 50)``.

    Returns
    -------
    Tensor ``(n, n_components)``.

    References
    ----------
    [@vandermaaten2008visualizing]
    """
    x = X.double()
    n = x.shape[0]
    perplexity = min(perplexity, (n - 1) / 3)
    p = _perplexity_affinities(torch.cdist(x, x).square(), perplexity)
    p = ((p + p.T) / (2 * n)).clamp_min(1e-12)
    y = 1e-4 * torch.randn(n, n_components, generator=generator(seed), dtype=torch.float64)
    lr = learning_rate or max(n / 12 / 4, 50.0)
    velocity, gains = torch.zeros_like(y), torch.ones_like(y)
    for it in range(n_iter):
        exaggeration = 12.0 if it < 100 else 1.0
        num = 1 / (1 + torch.cdist(y, y).square())
        num.fill_diagonal_(0)
        q = (num / num.sum()).clamp_min(1e-12)
        w = (exaggeration * p - q) * num  # dKL/dy_i = 4 sum_j (p_ij - q_ij)(y_i - y_j)/(1 + d_ij^2)
        grad = 4 * (w.sum(1, keepdim=True) * y - w @ y)
        gains = torch.where((grad > 0) != (velocity > 0), gains + 0.2, gains * 0.8).clamp_min(0.01)
        velocity = (0.5 if it < 250 else 0.8) * velocity - lr * gains * grad
        y = y + velocity
        y = y - y.mean(0)
    return y.to(X.dtype)


def umap(X: Tensor, n_components: int = 2, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0) -> Tensor:
    """UMAP embedding through the maintained ``umap-learn`` package (imported lazily).

    Raises ``ImportError`` with the install command when the package is missing.

    References
    ----------
    [@mcinnes2018umap]
    """
    try:
        import umap as umap_learn
    except ImportError as err:
        raise ImportError("kb.reference.umap needs the umap-learn package: pip install umap-learn") from err
    reducer = umap_learn.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                              random_state=seed)
    return torch.as_tensor(reducer.fit_transform(X.detach().cpu().numpy()))


def phate(X: Tensor, n_components: int = 2, knn: int = 5, seed: int = 0) -> Tensor:
    """PHATE embedding through the maintained ``phate`` package (imported lazily).

    Raises ``ImportError`` with the install command when the package is missing.

    References
    ----------
    [@moon2019visualizing]
    """
    try:
        import phate as phate_lib
    except ImportError as err:
        raise ImportError("kb.reference.phate needs the phate package: pip install phate") from err
    op = phate_lib.PHATE(n_components=n_components, knn=knn, random_state=seed, verbose=0)
    return torch.as_tensor(op.fit_transform(X.detach().cpu().numpy()))


def participation_ratio(X: Tensor) -> float:
    """``PR = (sum lambda)^2 / sum lambda^2`` of the covariance eigenvalues: the linear dimensionality.

    References
    ----------
    [@gao2017theory]
    """
    s = torch.linalg.svdvals(X.double() - X.double().mean(0))
    lam = s**2
    return float(lam.sum() ** 2 / lam.square().sum())


def two_nn_dimension(X: Tensor) -> float:
    """TwoNN intrinsic dimension: ``d = n / sum_i log(r2_i / r1_i)`` from each point's two nearest neighbours.

    The maximum-likelihood form of Facco et al.'s estimator; robust to curvature, unlike PCA.

    References
    ----------
    [@facco2017estimating]
    """
    dist = torch.cdist(X.double(), X.double()).fill_diagonal_(math.inf)
    r = dist.topk(2, dim=1, largest=False).values
    mu = r[:, 1] / r[:, 0].clamp_min(1e-12)
    mu = mu[torch.isfinite(mu) & (mu > 1)]
    return float(len(mu) / mu.log().sum())


@dataclasses.dataclass
class ManifoldGeometry:
    """Linear dimension (participation ratio, components for 90% variance) and intrinsic (TwoNN) dimension."""

    participation_ratio: float
    n_components_90: int
    intrinsic_dimension: float
    explained_variance_ratio: Tensor


def manifold_geometry(X: Tensor) -> ManifoldGeometry:
    """Geometry of a representation manifold ``(n, d)``: how many dimensions it uses, linearly and intrinsically.

    A curved low-dimensional manifold has a small TwoNN dimension but a larger participation ratio.

    References
    ----------
    [@facco2017estimating]
    """
    s = torch.linalg.svdvals(X.double() - X.double().mean(0))
    ratio = s**2 / (s**2).sum()
    k90 = int((ratio.cumsum(0) < 0.9).sum()) + 1
    return ManifoldGeometry(participation_ratio(X), k90, two_nn_dimension(X), ratio)
