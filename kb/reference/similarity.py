"""Representation similarity: linear and RBF CKA, SVCCA, RSA."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["linear_cka", "rbf_cka", "svcca", "rsa", "rdm", "spearman"]


def _centre(x: Tensor) -> Tensor:
    x = x.double()
    return x - x.mean(0, keepdim=True)


def linear_cka(X: Tensor, Y: Tensor) -> float:
    """Linear centred kernel alignment of ``(n, d1)`` and ``(n, d2)`` activations.

    ``CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on column-centred ``X, Y``; invariant to
    orthogonal transforms and isotropic scaling, 1 for identical representations.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
    >>> q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))
    >>> round(linear_cka(x, 3.0 * x @ q), 6)
    1.0

    References
    ----------
    [@kornblith2019similarity]
    """
    x, y = _centre(X), _centre(Y)
    return float((y.T @ x).square().sum() / ((x.T @ x).norm() * (y.T @ y).norm()))


def _hsic(k: Tensor, l: Tensor) -> Tensor:
    n = k.shape[0]
    h = torch.eye(n, dtype=k.dtype) - 1.0 / n
    return ((h @ k @ h) * (h @ l @ h)).sum()


def _rbf_gram(x: Tensor, sigma: float | None) -> Tensor:
    d2 = torch.cdist(x, x).square()
    if sigma is None:  # the median pairwise distance, as in Kornblith et al.
        sigma = float(d2[~torch.eye(len(x), dtype=torch.bool)].sqrt().median())
    return torch.exp(-d2 / (2 * sigma**2))


def rbf_cka(X: Tensor, Y: Tensor, sigma: float | None = None) -> float:
    """CKA with Gaussian kernels ``k(x, x') = exp(-||x - x'||^2 / (2 sigma^2))``.

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``HSIC(K, L) = tr(HKHL)``;
    ``sigma=None`` uses the median pairwise distance of each representation, which makes the
    result invariant to isotropic scaling.

    References
    ----------
    [@kornblith2019similarity]
    """
    k, l = _rbf_gram(X.double(), sigma), _rbf_gram(Y.double(), sigma)
    return float(_hsic(k, l) / (_hsic(k, k) * _hsic(l, l)).sqrt())


def _top_directions(x: Tensor, keep: float) -> Tensor:
    """Project centred ``x`` on its fewest singular directions explaining ``keep`` of the variance."""
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    frac = (s**2).cumsum(0) / (s**2).sum()
    k = int((frac < keep).sum()) + 1
    return u[:, :k] * s[:k]


def svcca(X: Tensor, Y: Tensor, keep: float = 0.99) -> float:
    """SVCCA: SVD-reduce each representation, then the mean canonical correlation between them.

    Each ``(n, d)`` matrix is centred and cut to the singular directions explaining ``keep`` of
    its variance; the canonical correlations are the singular values of ``Q_x^T Q_y`` for
    orthonormal bases ``Q`` (QR) of the reduced matrices.

    References
    ----------
    [@raghu2017svcca]
    """
    qx, _ = torch.linalg.qr(_top_directions(_centre(X), keep))
    qy, _ = torch.linalg.qr(_top_directions(_centre(Y), keep))
    rho = torch.linalg.svdvals(qx.T @ qy).clamp(max=1.0)
    return float(rho.mean())


def rdm(X: Tensor, metric: str = "correlation") -> Tensor:
    """Representational dissimilarity matrix ``(n, n)``: ``1 - Pearson r`` between rows, or Euclidean distance."""
    x = X.double()
    if metric == "correlation":
        z = x - x.mean(1, keepdim=True)
        z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return 1 - z @ z.T
    if metric == "euclidean":
        return torch.cdist(x, x)
    raise ValueError(f"unknown metric {metric!r}")


def _ranks(v: Tensor) -> Tensor:
    """Ranks with ties averaged (as scipy.stats.rankdata)."""
    sorted_v, order = v.sort()
    _, inverse, counts = torch.unique_consecutive(sorted_v, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    avg = ends - (counts.double() - 1) / 2  # 1-based average rank of each tie group
    ranks = torch.empty_like(v, dtype=torch.float64)
    ranks[order] = avg[inverse]
    return ranks


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two vectors."""
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def rsa(X: Tensor, Y: Tensor, metric: str = "correlation") -> float:
    """Representational similarity analysis: Spearman correlation of the two RDMs' upper triangles.

    References
    ----------
    [@kriegeskorte2008representational]
    """
    i, j = torch.triu_indices(X.shape[0], X.shape[0], offset=1)
    return spearman(rdm(X, metric)[i, j], rdm(Y, metric)[i, j])
