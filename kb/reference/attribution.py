"""Gradient and perturbation attribution: saliency, gradient x input, SmoothGrad, IG, occlusion, DeepLIFT, guided backprop."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from ._common import as_target, expand_window, forward_hooks, generator, single_or_batch, target_scores

__all__ = [
    "saliency",
    "gradient_x_input",
    "smoothgrad",
    "integrated_gradients",
    "occlusion",
    "deeplift",
    "guided_backprop",
]


def _input_gradient(model, inputs: Tensor, target: Tensor) -> Tensor:
    """d model(x)[i, target[i]] / d x, for every row at once (rows are independent)."""
    x = inputs.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target_scores(model, x, target).sum(), x)
    return grad


@single_or_batch
def saliency(model: nn.Module, inputs: Tensor, target, abs: bool = True) -> Tensor:
    """Vanilla gradient saliency map.

    ``S(x) = |d f_c(x) / d x|`` (or the signed gradient with ``abs=False``).

    Parameters
    ----------
    model : callable mapping ``(N, ...)`` inputs to ``(N, C)`` logits.
    inputs : Tensor ``(N, ...)``.
    target : int or LongTensor ``(N,)`` of class indices.
    abs : bool
        Return the absolute value of the gradient (Simonyan et al. take the maximum over
        channels afterwards; that reduction is left to the caller).

    Returns
    -------
    Tensor shaped like ``inputs``.

    References
    ----------
    [@simonyan2014deep]
    """
    grad = _input_gradient(model, inputs, as_target(target, inputs.shape[0]))
    return grad.abs() if abs else grad


@single_or_batch
def gradient_x_input(model: nn.Module, inputs: Tensor, target) -> Tensor:
    """Gradient times input, ``x * d f_c(x) / d x``.

    For a linear model (and for ReLU networks without biases) the attributions sum to ``f_c(x)``.

    Returns
    -------
    Tensor shaped like ``inputs``.

    References
    ----------
    [@shrikumar2017learning]
    """
    return inputs * _input_gradient(model, inputs, as_target(target, inputs.shape[0]))


@single_or_batch
def smoothgrad(
    model: nn.Module,
    inputs: Tensor,
    target,
    n_samples: int = 50,
    stdev: float = 0.15,
    seed: int = 0,
    abs: bool = True,
    batch_size: int | None = None,
) -> Tensor:
    """SmoothGrad: the mean saliency over Gaussian-noised copies of each input.

    ``SG(x) = 1/n sum_k S(x + eps_k)``, ``eps_k ~ N(0, stdev^2 I)``. ``stdev`` is in input units
    (Captum's ``stdevs``); for inputs scaled to ``[0, 1]`` it is the paper's noise level
    ``sigma / (x_max - x_min)``. All noisy copies are evaluated as one batch (or chunks of
    ``batch_size`` rows). Noise is drawn with a generator seeded by ``seed``, in the order
    Captum's ``NoiseTunnel`` uses (each row's copies consecutive).

    Returns
    -------
    Tensor shaped like ``inputs``.

    References
    ----------
    [@smilkov2017smoothgrad]
    """
    n = inputs.shape[0]
    t = as_target(target, n).repeat_interleave(n_samples)
    noise = torch.randn((n * n_samples, *inputs.shape[1:]), generator=generator(seed)) * stdev
    noisy = inputs.repeat_interleave(n_samples, dim=0) + noise.to(inputs.dtype)
    grads = torch.cat(
        [_input_gradient(model, xb, tb) for xb, tb in _chunks(noisy, t, batch_size)]
    )
    grads = grads.abs() if abs else grads
    return grads.view(n, n_samples, *inputs.shape[1:]).mean(1)


def _chunks(x: Tensor, t: Tensor, batch_size: int | None):
    if batch_size is None:
        return [(x, t)]
    return list(zip(x.split(batch_size), t.split(batch_size)))


def _quadrature(n_steps: int, method: str) -> tuple[Tensor, Tensor]:
    """Points ``alpha`` in [0, 1] and weights of a rule for ``int_0^1 g(alpha) d alpha`` (Captum's rules)."""
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n_steps)
        return torch.tensor(0.5 * (x + 1)), torch.tensor(0.5 * w)
    if method == "riemann_trapezoid":
        alphas = torch.linspace(0, 1, n_steps, dtype=torch.float64)
        w = torch.full((n_steps,), 1.0 / (n_steps - 1), dtype=torch.float64)
        w[0] = w[-1] = 0.5 / (n_steps - 1)
        return alphas, w
    offsets = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}
    if method not in offsets:
        raise ValueError(f"unknown quadrature method {method!r}")
    alphas = (torch.arange(n_steps, dtype=torch.float64) + offsets[method]) / n_steps
    return alphas, torch.full((n_steps,), 1.0 / n_steps, dtype=torch.float64)


@single_or_batch
def integrated_gradients(
    model: nn.Module,
    inputs: Tensor,
    target,
    baselines: Tensor | float | None = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    batch_size: int | None = None,
) -> Tensor:
    """Integrated gradients along the straight path from ``baselines`` to ``inputs``.

    ``IG_i(x) = (x_i - x'_i) * int_0^1 d f_c(x' + a (x - x')) / d x_i  da``, computed by a
    quadrature rule with ``n_steps`` points (``method``: ``"gausslegendre"`` as Captum's default,
    or ``"riemann_trapezoid"``, ``"riemann_left"``, ``"riemann_right"``, ``"riemann_middle"``).
    All ``n_steps * N`` path points go through the model as one batch (or in chunks of
    ``batch_size`` rows), never in a Python loop over steps. Completeness:
    ``sum_i IG_i(x) = f_c(x) - f_c(x')`` up to the quadrature error.

    Parameters
    ----------
    baselines : Tensor broadcastable to ``inputs``, a float, or ``None`` (zeros).

    Returns
    -------
    Tensor shaped like ``inputs``.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> x = torch.tensor([[0.5, -1.0, 2.0]])
    >>> attr = integrated_gradients(model, x, target=1, n_steps=64)
    >>> gap = model(x)[0, 1] - model(torch.zeros_like(x))[0, 1]
    >>> bool(torch.isclose(attr.sum(), gap, atol=1e-4))  # completeness
    True

    References
    ----------
    [@sundararajan2017axiomatic]
    """
    n = inputs.shape[0]
    base = torch.zeros_like(inputs) if baselines is None else torch.broadcast_to(
        torch.as_tensor(baselines, dtype=inputs.dtype), inputs.shape)
    alphas, weights = _quadrature(n_steps, method)
    alphas = alphas.to(inputs.dtype).view(n_steps, 1, *[1] * (inputs.ndim - 1))
    path = (base + alphas * (inputs - base)).reshape(n_steps * n, *inputs.shape[1:])
    t = as_target(target, n).repeat(n_steps)
    grads = torch.cat([_input_gradient(model, xb, tb) for xb, tb in _chunks(path, t, batch_size)])
    w = weights.to(inputs.dtype).view(n_steps, 1, *[1] * (inputs.ndim - 1))
    avg_grad = (grads.view(n_steps, *inputs.shape) * w).sum(0)
    return (inputs - base) * avg_grad


def _window_masks(shape: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...]) -> Tensor:
    """Boolean masks ``(n_windows, *shape)``, one per window position, built as outer products of 1-D masks.

    Along each dimension windows start at ``0, s, 2s, ...`` for ``ceil((L - w) / s) + 1`` positions,
    the last clipped at the edge (Captum's placement).
    """
    per_dim = []
    for length, w, s in zip(shape, window, stride):
        if w > length:
            raise ValueError(f"window {window} larger than the examples' shape {shape}")
        starts = torch.arange(math.ceil((length - w) / s) + 1) * s
        pos = torch.arange(length)
        per_dim.append((pos >= starts[:, None]) & (pos < starts[:, None] + w))  # (n_d, L_d)
    mask = per_dim[0]
    for m in per_dim[1:]:  # outer product across dimensions, window index in row-major order
        mask = (mask[:, None, ..., None] & m.view(1, m.shape[0], *[1] * (mask.ndim - 1), m.shape[1]))
        mask = mask.reshape(-1, *mask.shape[2:])
    return mask


@single_or_batch
def occlusion(
    model: nn.Module,
    inputs: Tensor,
    target,
    window: int | tuple[int, ...],
    stride: int | tuple[int, ...],
    baseline: float | Tensor = 0.0,
    batch_size: int | None = 1024,
) -> Tensor:
    """Occlusion: slide a patch of ``baseline`` over the input and record the target's drop.

    Feature ``i`` receives ``mean_{windows W containing i} [f_c(x) - f_c(x with W set to baseline)]``.
    ``window`` and ``stride`` are given per example dimension, or as an int or a tuple over the
    spatial dimensions only: on ``(N, C, H, W)`` images ``window=8`` means ``(C, 8, 8)``, a patch
    through all channels, whatever ``C`` is. All occluded copies (``n_windows * N``) run in
    batches of ``batch_size`` rows. A single example without its batch dimension is accepted.

    Returns
    -------
    Tensor shaped like ``inputs``.

    References
    ----------
    [@zeiler2014visualizing]
    """
    shape = tuple(inputs.shape[1:])
    window, stride = expand_window(window, shape), expand_window(stride, shape, "stride")
    masks = _window_masks(shape, window, stride).to(inputs.dtype)  # (W, *shape)
    n, n_win = inputs.shape[0], masks.shape[0]
    t = as_target(target, n)
    base = torch.broadcast_to(torch.as_tensor(baseline, dtype=inputs.dtype), inputs.shape)
    with torch.no_grad():
        full = target_scores(model, inputs, t)
        occluded = inputs[None] * (1 - masks[:, None]) + base[None] * masks[:, None]  # (W, N, ...)
        flat, t_all = occluded.reshape(n_win * n, *shape), t.repeat(n_win)
        scores = torch.cat([target_scores(model, xb, tb) for xb, tb in _chunks(flat, t_all, batch_size)])
    drops = full[None] - scores.view(n_win, n)  # (W, N)
    total = torch.einsum("wn,w...->n...", drops, masks)
    return total / masks.sum(0)


@single_or_batch
def deeplift(
    model: nn.Module,
    inputs: Tensor,
    target,
    baselines: Tensor | float | None = None,
    eps: float = 1e-10,
) -> Tensor:
    """DeepLIFT with the rescale rule.

    Every elementwise nonlinearity module (ReLU, Sigmoid, Tanh, Softplus, ELU, LeakyReLU, GELU)
    back-propagates the multiplier ``Delta y / Delta x`` between the input and the reference
    run instead of its local gradient (the local gradient where ``|Delta x| < eps``); linear
    layers keep their gradients. Attributions are ``(x - x') * multiplier`` and sum exactly to
    ``f_c(x) - f_c(x')`` (summation-to-delta). The input and reference run as one batch; the
    swap is a forward hook returning ``y.detach() + m * (x - x.detach())``, whose value is ``y``
    and whose gradient is ``m``. Nonlinearities called functionally (``F.relu``) are not seen.

    Returns
    -------
    Tensor shaped like ``inputs``.

    References
    ----------
    [@shrikumar2017learning]
    """
    n = inputs.shape[0]
    base = torch.zeros_like(inputs) if baselines is None else torch.broadcast_to(
        torch.as_tensor(baselines, dtype=inputs.dtype), inputs.shape)
    kinds = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.ELU, nn.LeakyReLU, nn.GELU)

    def rescale(module, args, y):
        x = args[0]
        dx, dy = (x[:n] - x[n:]).detach(), (y[:n] - y[n:]).detach()
        with torch.enable_grad():  # local gradient, used where the difference vanishes
            xl = x.detach()[:n].clone().requires_grad_(True)
            (local,) = torch.autograd.grad(module.forward(xl).sum(), xl)  # .forward: no hook recursion
        m = torch.where(dx.abs() > eps, dy / torch.where(dx.abs() > eps, dx, 1.0), local)
        m = torch.cat([m, m])
        return y.detach() + m * (x - x.detach())

    modules = [m for m in model.modules() if isinstance(m, kinds)]
    x = torch.cat([inputs, base]).detach().requires_grad_(True)
    with forward_hooks((m, rescale) for m in modules):
        out = target_scores(model, x, as_target(target, n).repeat(2))
        (grad,) = torch.autograd.grad(out[:n].sum(), x)
    return (inputs - base) * grad[:n]


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward pass lets through only positive gradients at positive inputs."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out.clamp(min=0) * (x > 0).to(grad_out.dtype)


@single_or_batch
def guided_backprop(model: nn.Module, inputs: Tensor, target) -> Tensor:
    """Guided backpropagation: the gradient with negative signals zeroed at every ReLU module.

    At each ``nn.ReLU`` the backward signal is ``relu(grad_out) * 1[x > 0]``.

    Returns
    -------
    Tensor shaped like ``inputs``.

    References
    ----------
    [@springenberg2015striving]
    """
    modules = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    guided = lambda _m, args, _y: _GuidedReLU.apply(args[0])  # noqa: E731
    with forward_hooks((m, guided) for m in modules):
        return _input_gradient(model, inputs, as_target(target, inputs.shape[0]))
