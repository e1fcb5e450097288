"""Loss landscapes: filter-normalised slices, mode connectivity, the local learning coefficient (SGLD)."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap
from torch.nn import functional as F

from ._common import generator

__all__ = ["filter_normalized_direction", "Landscape", "loss_landscape", "ModeConnectivity", "mode_connectivity",
           "LLC", "local_learning_coefficient"]

Loss = Callable[[Tensor, Tensor], Tensor]


def _params(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach() for k, v in model.named_parameters()}


def _loss_at(model: nn.Module, params: dict[str, Tensor], inputs: Tensor, targets: Tensor, loss_fn: Loss) -> Tensor:
    return loss_fn(functional_call(model, params, (inputs,)), targets)


def filter_normalized_direction(model: nn.Module, seed: int = 0) -> dict[str, Tensor]:
    """A Gaussian direction in weight space with each filter rescaled to the norm of the model's filter.

    A filter is one output unit's weights (a row of a Linear weight, one output channel of a
    conv): ``d_f <- d_f / |d_f| * |theta_f|``. One-dimensional parameters (biases, norm scales)
    get a zero direction, as in Li et al. The rescaling removes the scale symmetry of ReLU
    networks, so that slices of differently scaled networks can be compared.

    References
    ----------
    [@li2018visualizing]
    """
    g = generator(seed)
    out = {}
    for name, p in _params(model).items():
        d = torch.randn(p.shape, generator=g, dtype=p.dtype)
        if p.ndim <= 1:
            out[name] = torch.zeros_like(p)
            continue
        norm = lambda t: t.flatten(1).norm(dim=1).view(-1, *([1] * (p.ndim - 1)))  # noqa: E731
        out[name] = d / norm(d).clamp(min=1e-12) * norm(p)
    return out


@dataclasses.dataclass
class Landscape:
    """``coords (steps,)`` the step sizes along each direction; ``losses (steps,)`` for a 1-D slice or
    ``(steps, steps)`` (rows: first direction) for a plane; ``directions`` the dicts used; ``center``
    the loss at the model's own weights."""

    coords: Tensor
    losses: Tensor
    directions: list[dict[str, Tensor]]
    center: float


def loss_landscape(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    loss_fn: Loss = F.cross_entropy,
    n_directions: int = 2,
    span: float = 1.0,
    steps: int = 21,
    directions: list[dict[str, Tensor]] | None = None,
    seed: int = 0,
) -> Landscape:
    """The loss on a line or plane through the trained weights: ``L(theta + a d1 + b d2)``.

    ``a, b`` run over ``steps`` values in ``[-span, span]``; ``d1, d2`` are
    :func:`filter_normalized_direction` draws (seeds ``seed``, ``seed + 1``) unless ``directions``
    is given (e.g. the top Hessian eigenvectors, or ``theta_final - theta_init`` for a slice through
    the initialisation). The model is never modified. What a random slice shows is a 1- or 2-D
    section of a huge space: a flat-looking basin can be sharp along directions not drawn.

    Examples
    --------
    A quadratic bowl's slice through its minimum is a parabola:

    >>> model = nn.Linear(1, 1, bias=False)
    >>> _ = model.weight.data.fill_(2.0)
    >>> x = torch.ones(4, 1); y = 2 * x
    >>> res = loss_landscape(model, x, y, F.mse_loss, n_directions=1, span=1.0, steps=3)
    >>> res.losses.tolist()  # filter-normalised: |d| = |w| = 2, so L(a) = (2a)^2
    [4.0, 0.0, 4.0]

    References
    ----------
    [@li2018visualizing]
    """
    theta = _params(model)
    dirs = directions or [filter_normalized_direction(model, seed + i) for i in range(n_directions)]
    coords = torch.linspace(-span, span, steps)
    grids = torch.meshgrid(*[coords] * len(dirs), indexing="ij")
    losses = torch.empty(grids[0].shape)
    with torch.no_grad():
        for idx in torch.cartesian_prod(*[torch.arange(steps)] * len(dirs)).view(-1, len(dirs)).tolist():
            shift = [float(coords[i]) for i in idx]
            params = {k: v + sum(s * d[k] for s, d in zip(shift, dirs)) for k, v in theta.items()}
            losses[tuple(idx)] = _loss_at(model, params, inputs, targets, loss_fn)
        center = float(_loss_at(model, theta, inputs, targets, loss_fn))
    return Landscape(coords, losses, dirs, center)


@dataclasses.dataclass
class ModeConnectivity:
    """Loss at ``t`` in ``[0, 1]`` along the straight line and along the trained quadratic Bezier curve;
    each ``barrier`` is the largest excess over the linear interpolation of the end losses;
    ``control`` the curve's middle control point (a parameter dict)."""

    t: Tensor
    line_losses: Tensor
    curve_losses: Tensor
    line_barrier: float
    curve_barrier: float
    control: dict[str, Tensor]


def _bezier(a: dict, b: dict, c: dict, t: float) -> dict:
    return {k: (1 - t) ** 2 * a[k] + 2 * t * (1 - t) * c[k] + t ** 2 * b[k] for k in a}


def mode_connectivity(
    model_a: nn.Module,
    model_b: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    loss_fn: Loss = F.cross_entropy,
    n_steps: int = 300,
    lr: float = 1e-2,
    n_points: int = 21,
    seed: int = 0,
) -> ModeConnectivity:
    """Connect two trained solutions by a low-loss quadratic Bezier curve and compare it with the line.

    The curve ``phi(t) = (1-t)² w_a + 2t(1-t) c + t² w_b`` keeps the end points fixed; its control
    point ``c`` starts at the midpoint (the straight line) and is trained by Adam on
    ``E_{t ~ U(0,1)} L(phi(t))``, one random ``t`` per step (Garipov et al.). ``model_a`` and
    ``model_b`` share an architecture; neither is modified. Barrier: ``max_t L(t) - [(1-t) L(0) + t L(1)]``.

    References
    ----------
    [@garipov2018loss] [@draxler2018essentially]
    """
    a, b = _params(model_a), _params(model_b)
    control = {k: ((a[k] + b[k]) / 2).clone().requires_grad_(True) for k in a}
    opt = torch.optim.Adam(control.values(), lr=lr)
    g = generator(seed)
    for _ in range(n_steps):
        t = float(torch.rand((), generator=g))
        loss = _loss_at(model_a, _bezier(a, b, control, t), inputs, targets, loss_fn)
        opt.zero_grad()
        loss.backward()
        opt.step()
    control = {k: v.detach() for k, v in control.items()}
    ts = torch.linspace(0, 1, n_points)
    with torch.no_grad():
        line = torch.stack([_loss_at(model_a, {k: (1 - t) * a[k] + t * b[k] for k in a}, inputs, targets, loss_fn)
                            for t in ts.tolist()])
        curve = torch.stack([_loss_at(model_a, _bezier(a, b, control, t), inputs, targets, loss_fn)
                             for t in ts.tolist()])
    ends = (1 - ts) * line[0] + ts * line[-1]
    return ModeConnectivity(ts, line, curve, float((line - ends).max()), float((curve - ends).max()), control)


@dataclasses.dataclass
class LLC:
    """``llc`` the estimate (mean over chains), ``per_chain (C,)``, ``loss_trace (C, n_draws)`` the full-data
    or mini-batch loss at every kept draw, ``init_loss`` the loss at the trained weights, ``beta``."""

    llc: float
    per_chain: Tensor
    loss_trace: Tensor
    init_loss: float
    beta: float


def local_learning_coefficient(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    loss_fn: Loss = F.cross_entropy,
    n_chains: int = 8,
    n_draws: int = 500,
    n_burnin: int = 100,
    step_size: float = 1e-3,
    localization: float = 1.0,
    beta: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> LLC:
    """The local learning coefficient ``lambda(w*)``, estimated by SGLD around the trained weights ``w*``.

    ``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))``, the expectation over the tempered posterior
    localised at ``w*``: ``p(w) ~ exp(-n beta L_n(w) - gamma/2 |w - w*|²)`` with ``beta = 1/log n``
    by default. SGLD samples it: ``w <- w - eps/2 (n beta grad L_m(w) + gamma (w - w*)) + N(0, eps)``
    with ``L_m`` the mini-batch (``batch_size``) or full-data loss; the first ``n_burnin`` of
    ``n_burnin + n_draws`` steps are dropped and chains run in parallel (``vmap``). ``loss_fn``
    must be the mean negative log-likelihood per example (for Gaussian noise of variance 1,
    half the squared error). For a regular model with ``d`` parameters ``lambda = d/2``; singular
    (degenerate) directions lower it. Check ``loss_trace``: it must level off, not drift; tune
    ``step_size`` and ``localization`` until it does (Lau et al.'s advice).

    References
    ----------
    [@lau2025local] [@watanabe2009algebraic]
    """
    names = [k for k, _ in model.named_parameters()]
    star = _params(model)
    shapes = [(k, star[k].shape, star[k].numel()) for k in names]
    w_star = torch.cat([star[k].flatten() for k in names])
    n = len(inputs)
    beta = 1 / math.log(n) if beta is None else beta

    def loss(flat, x, y):
        params = {k: c.view(s) for (k, s, _), c in zip(shapes, flat.split([m for _, _, m in shapes]))}
        return _loss_at(model, params, x, y, loss_fn)

    grad_and_loss = vmap(grad_and_value(loss), in_dims=(0, None, None))
    g = generator(seed)
    w = w_star.expand(n_chains, -1).clone()
    trace = []
    for step in range(n_burnin + n_draws):
        if batch_size is None:
            x, y = inputs, targets
        else:
            rows = torch.randint(0, n, (batch_size,), generator=g)
            x, y = inputs[rows], targets[rows]
        grads, losses = grad_and_loss(w, x, y)
        if step >= n_burnin:  # the loss at the current draw, before it moves
            trace.append(losses.detach())
        drift = n * beta * grads + localization * (w - w_star)
        w = w - step_size / 2 * drift + math.sqrt(step_size) * torch.randn(w.shape, generator=g, dtype=w.dtype)
    trace = torch.stack(trace, 1)  # (chains, draws)
    init = float(loss(w_star, inputs, targets))
    per_chain = n * beta * (trace.mean(1) - init)
    return LLC(float(per_chain.mean()), per_chain, trace, init, beta)
