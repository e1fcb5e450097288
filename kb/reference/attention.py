"""Attention analysis: collect attention patterns, attention rollout, prefix-matching (induction) scores."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ._common import capture_outputs, resolve_module

__all__ = ["attention_patterns", "attention_rollout", "prefix_matching_score", "prefix_matching_chance",
           "previous_token_score"]


def attention_patterns(
    model: nn.Module, inputs: Tensor, modules: Sequence[nn.Module | str] | None = None
) -> Tensor:
    """Collect attention weights with forward hooks: ``(L, B, H, T, T)``, rows summing to 1.

    ``modules`` are the modules whose output is a ``(B, H, T, T)`` pattern; by default every
    submodule named ``*.pattern`` (as in the demo transformer, like TransformerLens'
    ``hook_pattern``), in registration order.

    References
    ----------
    [@vig2019multiscale]; [@olsson2022context]
    """
    if modules is None:
        found = [m for name, m in model.named_modules() if name.split(".")[-1] == "pattern"]
    else:
        found = [resolve_module(model, m) for m in modules]
    if not found:
        raise ValueError("no attention-pattern modules found; pass modules=[...]")
    with torch.no_grad(), capture_outputs(found, detach=True) as store:
        model(inputs)
    return torch.stack([s[-1] for s in store])


def attention_rollout(patterns: Tensor, head_fusion: str = "mean", residual: bool = True) -> Tensor:
    """Attention rollout: propagate attention through the layers, accounting for residual connections.

    Each layer's heads are fused (``"mean"``, ``"max"`` or ``"min"``) into ``A_l``; with
    ``residual`` it becomes ``0.5 A_l + 0.5 I``, rows renormalised. The rollout is
    ``R = A_L ... A_2 A_1``, ``(B, T, T)``: how much each output position draws on each input token.

    References
    ----------
    [@abnar2020quantifying]
    """
    fused = {"mean": patterns.mean(2), "max": patterns.amax(2), "min": patterns.amin(2)}[head_fusion]
    t = fused.shape[-1]
    rollout = torch.eye(t, dtype=fused.dtype).expand_as(fused[0])
    for a in fused:  # layer by layer, bottom to top
        if residual:
            a = 0.5 * a + 0.5 * torch.eye(t, dtype=a.dtype)
        a = a / a.sum(-1, keepdim=True)
        rollout = a @ rollout
    return rollout


def prefix_matching_score(patterns: Tensor, half: int) -> Tensor:
    """Induction (prefix-matching) score per head on sequences made of a block repeated twice.

    At a position ``i`` of the second copy, an induction head attends to ``i - half + 1``: the
    token that followed the current token's earlier occurrence. The score is that attention
    weight averaged over the second copy's positions and the batch; uniform causal attention
    scores :func:`prefix_matching_chance`.

    Parameters
    ----------
    patterns : ``(L, B, H, T, T)`` from :func:`attention_patterns`, ``T = 2 * half``.

    Returns
    -------
    Tensor ``(L, H)``.

    References
    ----------
    [@olsson2022context]
    """
    q = torch.arange(half, 2 * half)
    k = q - half + 1
    return patterns[..., q, k].mean(dim=(1, -1))


def prefix_matching_chance(half: int) -> float:
    """The prefix-matching score of uniform causal attention: ``mean_{i = half}^{2 half - 1} 1 / (i + 1)``."""
    return float((1 / torch.arange(half + 1, 2 * half + 1, dtype=torch.float64)).mean())


def previous_token_score(patterns: Tensor) -> Tensor:
    """Mean attention from each position ``i >= 1`` to ``i - 1``, per head: ``(L, H)``.

    References
    ----------
    [@olsson2022context]
    """
    t = patterns.shape[-1]
    q = torch.arange(1, t)
    return patterns[..., q, q - 1].mean(dim=(1, -1))
