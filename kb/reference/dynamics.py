"""Dynamical-systems analysis of recurrent networks: fixed points, trajectories, attractor basins."""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import Tensor

__all__ = ["FixedPoints", "find_fixed_points", "jacobians", "Trajectory", "trajectory_analysis",
           "Basins", "attractor_basins"]


@dataclasses.dataclass
class FixedPoints:
    """Fixed points of a map ``h -> step(h)``.

    Attributes
    ----------
    points : ``(K, D)`` distinct (merged) fixed points.
    speeds : ``(K,)`` ``q(h) = 0.5 * ||step(h) - h||^2`` at each point.
    eigenvalues : ``(K, D)`` complex eigenvalues of the Jacobian of ``step``, sorted by decreasing modulus.
    is_stable : ``(K,)`` bool, every eigenvalue inside the unit circle.
    jacobians : ``(K, D, D)``.
    """

    points: Tensor
    speeds: Tensor
    eigenvalues: Tensor
    is_stable: Tensor
    jacobians: Tensor

    def __len__(self) -> int:
        return self.points.shape[0]


def jacobians(step: Callable[[Tensor], Tensor], points: Tensor) -> Tensor:
    """``(K, D, D)`` Jacobians ``d step(h) / d h`` at each row of ``points`` (rows map independently)."""
    jac = torch.autograd.functional.jacobian(lambda h: step(h).sum(0), points, vectorize=True)
    return jac.permute(1, 0, 2)  # (D_out, K, D_in) -> (K, D_out, D_in)


def _merge(points: Tensor, tol: float) -> Tensor:
    """Greedy de-duplication: keep a point unless it lies within ``tol`` of one already kept."""
    keep: list[int] = []
    for i in range(points.shape[0]):
        if not keep or torch.cdist(points[i:i + 1], points[keep]).min() > tol:
            keep.append(i)
    return points[keep]


def find_fixed_points(
    step: Callable[[Tensor], Tensor],
    initial_states: Tensor,
    n_iter: int = 2000,
    lr: float = 1e-2,
    speed_tol: float = 1e-8,
    merge_tol: float = 1e-2,
    stability_tol: float = 1e-6,
) -> FixedPoints:
    """Find fixed (and slow) points by minimising ``q(h) = 0.5 ||step(h) - h||^2`` from many starts.

    All initial states are optimised together with Adam (each row's ``q`` is independent), then
    refined by a few Newton steps ``h <- h - (J - I)^{-1} (step(h) - h)``; points with
    ``q < speed_tol`` are kept, duplicates closer than ``merge_tol`` merged, and the Jacobian's
    eigenvalues classify stability (``max |lambda| < 1 - stability_tol`` for a discrete map).
    ``step`` maps ``(K, D)`` states to ``(K, D)``, e.g. an RNN cell with its input held at zero.

    Returns
    -------
    FixedPoints

    References
    ----------
    [@sussillo2013opening]
    """
    h = initial_states.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([h], lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(1e-2) ** (1 / max(n_iter, 1)))
    for _ in range(n_iter):
        q = 0.5 * (step(h) - h).pow(2).sum(1)
        opt.zero_grad()
        q.sum().backward()
        opt.step()
        sched.step()
    h = h.detach()
    eye = torch.eye(h.shape[1], dtype=h.dtype)
    for _ in range(5):  # Newton polishing; singular (J - I) is left alone
        with torch.no_grad():
            resid = step(h) - h
        delta = torch.linalg.lstsq(jacobians(step, h) - eye, resid.unsqueeze(-1)).solution.squeeze(-1)
        h = torch.where(torch.isfinite(delta).all(1, keepdim=True), h - delta, h)
    with torch.no_grad():
        speeds = 0.5 * (step(h) - h).pow(2).sum(1)
    order = speeds.argsort()
    h, speeds = h[order], speeds[order]
    good = speeds < speed_tol
    points = _merge(h[good], merge_tol)
    with torch.no_grad():
        speeds = 0.5 * (step(points) - points).pow(2).sum(1)
    jac = jacobians(step, points) if len(points) else torch.zeros(0, h.shape[1], h.shape[1])
    eig = torch.linalg.eigvals(jac)
    eig = eig.gather(1, eig.abs().argsort(1, descending=True))
    stable = eig.abs().amax(1) < 1 - stability_tol if len(points) else torch.zeros(0, dtype=torch.bool)
    return FixedPoints(points, speeds, eig, stable, jac)


@dataclasses.dataclass
class Trajectory:
    """Summary of a trajectory of snapshots (weights over training, or hidden states over time).

    Attributes
    ----------
    coords : ``(T, k)`` (or ``(B, T, k)``) projections on the top principal components.
    explained_variance_ratio : ``(k,)``.
    step_lengths : ``(T - 1,)`` (or ``(B, T - 1)``) Euclidean distance between consecutive snapshots.
    path_length, displacement : total distance travelled and distance from first to last snapshot.
    straightness : ``displacement / path_length`` (1 for a straight line).
    """

    coords: Tensor
    explained_variance_ratio: Tensor
    step_lengths: Tensor
    path_length: Tensor
    displacement: Tensor
    straightness: Tensor


def trajectory_analysis(snapshots: Tensor, n_components: int = 2) -> Trajectory:
    """PCA of a trajectory plus its speed profile and geometry.

    ``snapshots`` is ``(T, ...)`` (one trajectory; trailing dims are flattened, e.g. weight
    tensors saved during training) or ``(B, T, D)`` hidden-state trajectories sharing one PCA.
    Speed per step is ``||s_{t+1} - s_t||``; the principal components are fitted on all snapshots.

    References
    ----------
    [@sussillo2013opening]
    """
    single = snapshots.ndim == 2 or snapshots.ndim > 3
    s = snapshots.reshape(1, snapshots.shape[0], -1) if single else snapshots
    flat = s.reshape(-1, s.shape[-1])
    centred = flat - flat.mean(0)
    _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
    coords = (centred @ vh[:n_components].T).view(s.shape[0], s.shape[1], -1)
    ratio = (sv**2 / (sv**2).sum())[:n_components]
    steps = (s[:, 1:] - s[:, :-1]).norm(dim=-1)
    path = steps.sum(-1)
    disp = (s[:, -1] - s[:, 0]).norm(dim=-1)
    out = Trajectory(coords, ratio, steps, path, disp, disp / path.clamp_min(1e-12))
    if single:
        out = Trajectory(coords[0], ratio, steps[0], path[0], disp[0], out.straightness[0])
    return out


@dataclasses.dataclass
class Basins:
    """Which attractor each sampled initial state converges to.

    Attributes
    ----------
    attractors : ``(A, D)`` the stable fixed points.
    labels : ``(M,)`` index into ``attractors`` for each initial state, ``-1`` if none was reached.
    fractions : ``(A,)`` share of initial states in each basin.
    final_states : ``(M, D)`` states after ``n_iter`` iterations.
    fixed_points : the full :class:`FixedPoints` (stable and unstable).
    """

    attractors: Tensor
    labels: Tensor
    fractions: Tensor
    final_states: Tensor
    fixed_points: FixedPoints


def attractor_basins(
    step: Callable[[Tensor], Tensor],
    initial_states: Tensor,
    fixed_points: FixedPoints | None = None,
    n_iter: int = 1000,
    tol: float = 5e-2,
    **fixed_point_options,
) -> Basins:
    """Attractor landscape: stable fixed points plus the basin each sampled state flows into.

    A composition of :func:`find_fixed_points` (run from ``initial_states`` when
    ``fixed_points`` is not given) and forward iteration: every initial state is iterated
    ``n_iter`` times and labelled with the stable fixed point within ``tol`` of where it ends.

    References
    ----------
    [@sussillo2013opening]
    """
    if fixed_points is None:
        fixed_points = find_fixed_points(step, initial_states, **fixed_point_options)
    attractors = fixed_points.points[fixed_points.is_stable]
    h = initial_states.detach()
    with torch.no_grad():
        for _ in range(n_iter):
            h = step(h)
    if len(attractors):
        dist = torch.cdist(h, attractors)
        d, nearest = dist.min(1)
        labels = torch.where(d < tol, nearest, -1)
    else:
        labels = torch.full((h.shape[0],), -1)
    fractions = torch.stack([(labels == a).float().mean() for a in range(len(attractors))]) \
        if len(attractors) else torch.zeros(0)
    return Basins(attractors, labels, fractions, h, fixed_points)
