"""Perturbation surrogates: KernelSHAP and LIME over features (or feature groups) replaced by a baseline."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from ._common import as_target, generator, target_scores

__all__ = ["kernel_shap", "lime", "shapley_values_exact"]


def _features(inputs: Tensor, feature_mask: Tensor | None) -> tuple[Tensor, int]:
    """Feature id of every element of one example (``feature_mask`` or one id per element), and their count."""
    shape = inputs.shape[1:]
    if feature_mask is None:
        return torch.arange(math.prod(shape)).view(shape), math.prod(shape)
    ids = torch.broadcast_to(torch.as_tensor(feature_mask, dtype=torch.long), shape)
    return ids, int(ids.max()) + 1


def _coalition_values(model, inputs, target, baselines, coalitions, ids, batch_size):
    """``v[m, i] = f_c(x_i with features outside coalition m replaced by the baseline)``, shape ``(M, N)``."""
    n, m = inputs.shape[0], coalitions.shape[0]
    base = torch.broadcast_to(torch.as_tensor(baselines, dtype=inputs.dtype), inputs.shape)
    keep = coalitions[:, ids].to(inputs.dtype).unsqueeze(1)  # (M, 1, *shape)
    mixed = (keep * inputs[None] + (1 - keep) * base[None]).reshape(m * n, *inputs.shape[1:])
    t = as_target(target, n).repeat(m)
    size = batch_size or mixed.shape[0]
    with torch.no_grad():
        v = torch.cat([target_scores(model, xb, tb) for xb, tb in zip(mixed.split(size), t.split(size))])
    return v.view(m, n).double()


def _shapley_kernel_weight(d: int, k: Tensor) -> Tensor:
    """Shapley kernel ``(d - 1) / (C(d, k) k (d - k))`` for coalition sizes ``0 < k < d``."""
    binom = torch.exp(torch.lgamma(torch.tensor(d + 1.0)) - torch.lgamma(k + 1.0) - torch.lgamma(d - k + 1.0))
    return (d - 1) / (binom * k * (d - k))


def kernel_shap(
    model: nn.Module,
    inputs: Tensor,
    target,
    baselines: Tensor | float,
    n_samples: int,
    seed: int = 0,
    feature_mask: Tensor | None = None,
    batch_size: int | None = None,
) -> Tensor:
    """KernelSHAP: Shapley values of the game ``v(S) = f_c(x_S, x'_{not S})`` by weighted regression.

    Solves ``min_phi sum_z w(z) (v(z) - v(0) - phi . z)^2`` subject to
    ``sum phi = v(1) - v(0)``. With ``n_samples >= 2**d`` every coalition is enumerated with the
    Shapley kernel weight ``w``, and the solution is exactly the Shapley values; otherwise
    ``n_samples`` coalitions are drawn with sizes ``k ~ (d - 1) / (k (d - k))`` and uniform
    members, which makes each sample's weight 1. ``feature_mask`` (integer ids shaped like one
    example) groups elements into ``d`` players. All coalitions of all rows run as one batch.

    Returns
    -------
    Tensor shaped like ``inputs`` (a group's value is written to each of its elements).

    Examples
    --------
    The game ``f(x) = x0 * x1 + x2`` at ``x = 1`` against a zero baseline splits the interaction:

    >>> import torch
    >>> class Game(torch.nn.Module):
    ...     def forward(self, x):
    ...         return (x[:, 0] * x[:, 1] + x[:, 2]).unsqueeze(1)
    >>> kernel_shap(Game(), torch.ones(1, 3), 0, baselines=0.0, n_samples=8).tolist()
    [[0.5, 0.5, 1.0]]

    References
    ----------
    [@lundberg2017unified]
    """
    ids, d = _features(inputs, feature_mask)
    if n_samples >= 2**d:  # every proper coalition, Shapley kernel weights
        z = torch.tensor(list(itertools.product([0, 1], repeat=d)), dtype=torch.bool)[1:-1]
        w = _shapley_kernel_weight(d, z.sum(1).double())
    else:
        g = generator(seed)
        sizes = torch.arange(1, d)
        k = sizes[torch.multinomial((d - 1) / (sizes * (d - sizes)).double(), n_samples, True, generator=g)]
        ranks = torch.rand(n_samples, d, generator=g).argsort(1).argsort(1)
        z, w = ranks < k[:, None], torch.ones(n_samples, dtype=torch.float64)
    ends = torch.stack([torch.zeros(d, dtype=torch.bool), torch.ones(d, dtype=torch.bool)])
    v = _coalition_values(model, inputs, target, baselines, torch.cat([ends, z]), ids, batch_size)
    v0, v1, vz = v[0], v[1], v[2:]
    if d == 1:
        phi = (v1 - v0)[:, None]
    else:
        # eliminate the last player with the efficiency constraint, then weighted least squares
        zf = z.double()
        a = zf[:, :-1] - zf[:, -1:]  # (M, d - 1)
        b = vz - v0 - zf[:, -1:] * (v1 - v0)  # (M, N)
        aw = a.T * w
        head = torch.linalg.lstsq(aw @ a, aw @ b).solution  # (d - 1, N)
        phi = torch.cat([head, (v1 - v0 - head.sum(0))[None]]).T  # (N, d)
    return phi[:, ids].to(inputs.dtype)


def shapley_values_exact(model: nn.Module, inputs: Tensor, target, baselines: Tensor | float) -> Tensor:
    """Shapley values by the textbook sum over coalitions (``2**d`` forward passes; for tests and tiny ``d``).

    ``phi_i = sum_{S not containing i} |S|! (d - |S| - 1)! / d! [v(S + i) - v(S)]``.

    References
    ----------
    [@lundberg2017unified]
    """
    ids, d = _features(inputs, None)
    z = torch.tensor(list(itertools.product([0, 1], repeat=d)), dtype=torch.bool)
    v = _coalition_values(model, inputs, target, baselines, z, ids, None)  # (2**d, N)
    index = {tuple(row.tolist()): r for r, row in enumerate(z.int())}
    phi = torch.zeros(inputs.shape[0], d, dtype=torch.float64)
    for r, row in enumerate(z.int().tolist()):
        s = sum(row)
        for i in range(d):
            if not row[i]:
                with_i = list(row)
                with_i[i] = 1
                weight = math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
                phi[:, i] += weight * (v[index[tuple(with_i)]] - v[r])
    return phi.view(inputs.shape).to(inputs.dtype)


def lime(
    model: nn.Module,
    inputs: Tensor,
    target,
    n_samples: int,
    seed: int = 0,
    baselines: Tensor | float = 0.0,
    feature_mask: Tensor | None = None,
    kernel_width: float = 0.25,
    alpha: float = 1e-3,
    batch_size: int | None = None,
) -> Tensor:
    """LIME: coefficients of a locally weighted linear surrogate on binary "feature kept" vectors.

    ``n_samples`` vectors ``z ~ Bernoulli(1/2)^d`` (the first is all ones) switch features
    between the input and ``baselines``; each sample is weighted by
    ``pi(z) = exp(-D(z, 1)^2 / kernel_width^2)`` with ``D`` the cosine distance, and the ridge
    regression ``min sum pi(z) (f_c(z) - b - w . z)^2 + alpha ||w||^2`` is solved in closed form.

    Returns
    -------
    Tensor shaped like ``inputs``: each feature's coefficient ``w``.

    References
    ----------
    [@ribeiro2016why]
    """
    ids, d = _features(inputs, feature_mask)
    z = torch.rand(n_samples, d, generator=generator(seed)) < 0.5
    z[0] = True
    y = _coalition_values(model, inputs, target, baselines, z, ids, batch_size)  # (M, N)
    zf = z.double()
    cos_dist = 1 - zf.sum(1).sqrt() / math.sqrt(d)  # cosine distance between z and the all-ones vector
    pi = torch.exp(-cos_dist**2 / kernel_width**2)
    x = torch.cat([torch.ones(n_samples, 1, dtype=torch.float64), zf], 1)
    xw = x.T * pi
    penalty = alpha * torch.eye(d + 1, dtype=torch.float64)
    penalty[0, 0] = 0  # the intercept is not shrunk
    coef = torch.linalg.solve(xw @ x + penalty, xw @ y)[1:]  # (d, N)
    return coef.T[:, ids].to(inputs.dtype)
