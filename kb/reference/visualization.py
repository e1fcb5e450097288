"""Feature visualisation by optimisation: activation maximisation (regularised) and DeepDream."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import forward_hooks, generator, resolve_module

__all__ = ["activation_maximization", "deepdream", "gaussian_blur"]


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` images (reflect padding)."""
    radius = max(1, int(3 * sigma))
    k = torch.exp(-torch.arange(-radius, radius + 1, dtype=x.dtype) ** 2 / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.transpose(2, 3), groups=x.shape[1])


class _Stop(Exception):
    """Raised by a hook to end the forward pass once the layer of interest has run."""


def _layer_output(model: nn.Module, module: nn.Module, x: Tensor) -> Tensor:
    """``module``'s output on ``model(x)``, stopping the forward pass there.

    Later layers never run, so inputs of any size work (octaves) and no compute is wasted.
    """
    captured: list[Tensor] = []

    def stop(_m, _args, out):
        captured.append(out)
        raise _Stop

    try:
        with forward_hooks([(module, stop)]):
            model(x)
    except _Stop:
        pass
    if not captured:
        raise RuntimeError("the layer did not run in the forward pass")
    return captured[0]


def _unit_activation(acts: Tensor, unit: int | None) -> Tensor:
    """Per-example objective: the unit's activation (a channel's spatial mean), or the mean square of the layer."""
    if unit is None:
        return acts.pow(2).flatten(1).mean(1)
    a = acts[:, unit]
    return a.flatten(1).mean(1) if a.ndim > 1 else a


def activation_maximization(
    model: nn.Module,
    input_shape: Sequence[int],
    unit: int,
    layer: nn.Module | str | None = None,
    n_steps: int = 256,
    lr: float = 0.05,
    l2: float = 1e-3,
    jitter: int = 1,
    blur_sigma: float = 0.5,
    blur_every: int = 4,
    n_images: int = 1,
    seed: int = 0,
) -> Tensor:
    """Synthesise inputs that maximise one unit: gradient ascent with L2, jitter and blur regularisers.

    Maximises ``a_unit(x) - l2 ||x||^2`` from small noise, where ``a_unit`` is output ``unit``
    of ``layer`` (a channel is averaged over space; ``layer=None`` means the model's logits).
    Each step randomly shifts the image by up to ``jitter`` pixels (transformation robustness);
    every ``blur_every`` steps it is blurred (a frequency penalty). Inputs without spatial
    dimensions skip jitter and blur.

    Returns
    -------
    Tensor ``(n_images, *input_shape)``.

    References
    ----------
    [@erhan2009visualizing]; [@olah2017feature]
    """
    g = generator(seed)
    x = (0.01 * torch.randn((n_images, *input_shape), generator=g)).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    module = model if layer is None else resolve_module(model, layer)
    spatial = len(input_shape) == 3
    for step in range(n_steps):
        xin = x
        if spatial and jitter:
            dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=g).tolist()
            xin = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        acts = model(xin) if layer is None else _layer_output(model, module, xin)
        objective = _unit_activation(acts, unit).sum() - l2 * x.pow(2).sum()
        opt.zero_grad()
        (-objective).backward()
        opt.step()
        if spatial and blur_sigma > 0 and (step + 1) % blur_every == 0:
            with torch.no_grad():
                x.copy_(gaussian_blur(x, blur_sigma))
    return x.detach()


def deepdream(
    model: nn.Module,
    inputs: Tensor,
    layer: nn.Module | str,
    n_steps: int = 20,
    step_size: float = 0.01,
    n_octaves: int = 2,
    octave_scale: float = 1.4,
    jitter: int = 1,
    seed: int = 0,
) -> Tensor:
    """DeepDream: amplify whatever ``layer`` already sees in ``inputs``.

    Gradient ascent on ``mean(A_layer(x)^2)`` starting from the image itself, with steps
    normalised by the mean absolute gradient, random jitter, and octaves (start at a coarse
    scale, upsample the added detail, continue at the next scale).

    Returns
    -------
    Tensor shaped like ``inputs``.

    References
    ----------
    [@mordvintsev2015inceptionism]
    """
    module = resolve_module(model, layer)
    g = generator(seed)
    size = inputs.shape[2:]
    scales = [octave_scale ** -(n_octaves - 1 - o) for o in range(n_octaves)]
    detail = torch.zeros_like(inputs)
    for s in scales:
        shape = [max(4, int(round(d * s))) for d in size]
        base = F.interpolate(inputs, size=shape, mode="bilinear", align_corners=False)
        x = (base + F.interpolate(detail, size=shape, mode="bilinear", align_corners=False)).requires_grad_(True)
        for _ in range(n_steps):
            dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=g).tolist() if jitter else (0, 0)
            acts = _layer_output(model, module, torch.roll(x, shifts=(dy, dx), dims=(2, 3)))
            (grad,) = torch.autograd.grad(acts.pow(2).mean(), x)
            with torch.no_grad():
                x += step_size * grad / grad.abs().mean().clamp_min(1e-8)
        detail = F.interpolate((x - base).detach(), size=size, mode="bilinear", align_corners=False)
    return (inputs + detail).detach()
