"""Layer-wise relevance propagation over sequential Linear/Conv2d/ReLU/pooling/Flatten stacks."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import as_target

__all__ = ["lrp", "sequential_layers"]

_PASS_THROUGH = (nn.ReLU, nn.Dropout, nn.Identity, nn.Flatten, nn.Tanh)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool1d, nn.AvgPool1d)


def sequential_layers(model: nn.Module) -> list[nn.Module]:
    """The leaf layers of a (nested) ``nn.Sequential``, in execution order."""
    if isinstance(model, nn.Sequential):
        return [leaf for child in model for leaf in sequential_layers(child)]
    return [model]


def _affine(layer: nn.Module, a: Tensor, rule: str, gamma: float) -> Tensor:
    """The layer's pre-activation ``z`` with the rule's weights (gamma: ``w + gamma w^+``)."""
    if rule != "gamma" or isinstance(layer, _POOLS):
        return layer(a)
    w = layer.weight + gamma * layer.weight.clamp(min=0)
    b = layer.bias  # as Captum: the bias is kept (zennit also raises positive biases)
    return F.linear(a, w, b) if isinstance(layer, nn.Linear) else layer._conv_forward(a, w, b)


def lrp(
    model: nn.Module,
    inputs: Tensor,
    target,
    rule: str = "epsilon",
    epsilon: float = 1e-9,
    gamma: float = 0.25,
) -> Tensor:
    """Layer-wise relevance propagation.

    The target logit is the output relevance; each Linear/Conv2d/pooling layer passes it down by
    ``R_j = a_j sum_k w_jk R_k / (z_k + epsilon sign(z_k))`` (epsilon rule; ``rule="gamma"``
    uses ``w + gamma w^+``), computed as ``a * grad(z . s)`` with ``s = R / z`` held constant
    (Montavon et al.'s gradient trick); ReLU, Dropout, Tanh and Flatten pass relevance through.
    Relevance is conserved (sums to the target logit) when the layers have no biases.
    The model must be an ``nn.Sequential`` (possibly nested) of those layers.

    Returns
    -------
    Tensor shaped like ``inputs``.

    References
    ----------
    [@bach2015pixel]
    """
    if rule not in ("epsilon", "gamma"):
        raise ValueError(f"unknown rule {rule!r}")
    layers = sequential_layers(model)
    acts = [inputs.detach()]
    with torch.no_grad():
        for layer in layers:
            acts.append(layer(acts[-1]))
    t = as_target(target, inputs.shape[0])
    relevance = torch.zeros_like(acts[-1]).scatter(1, t[:, None], acts[-1].gather(1, t[:, None]))
    for layer, a in zip(reversed(layers), reversed(acts[:-1])):
        if isinstance(layer, _PASS_THROUGH):
            relevance = relevance.reshape(a.shape)
            continue
        if not isinstance(layer, (nn.Linear, nn.Conv2d, nn.Conv1d) + _POOLS):
            raise TypeError(f"LRP has no rule for {type(layer).__name__}")
        a = a.clone().requires_grad_(True)
        z = _affine(layer, a, rule, gamma)
        sign = torch.where(z >= 0, 1.0, -1.0)
        s = (relevance / (z + epsilon * sign)).detach()
        (c,) = torch.autograd.grad((z * s).sum(), a)
        relevance = (a * c).detach()
    return relevance
