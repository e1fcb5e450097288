"""Automated circuit discovery: attribution patching (a linearised sweep) and ACDC-style greedy pruning."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ._common import capture_outputs, forward_hooks, patch_output, replace_output, resolve_module
from .patching import Index

__all__ = ["attribution_patching", "ACDCResult", "acdc", "kl_to_clean"]



def attribution_patching(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    layers: Sequence[nn.Module | str],
    metric: Callable[[Tensor], Tensor],
) -> list[Tensor]:
    """Attribution patching: the first-order estimate of activation patching for every element at once.

    ``A_l = (a_l(clean) - a_l(corrupted)) * d metric / d a_l``, the gradient taken on the corrupted
    run: two forward passes and one backward pass for all layers and elements. Summing ``A_l`` over
    the elements one would patch (a position, a head, the whole layer) estimates
    ``activation_patching(..., layer, metric) - metric(model(corrupted))``; exact when the metric
    is linear in that activation. The gradient is read by adding a zero tensor to each
    activation, so paths through several listed layers stay connected.

    Returns
    -------
    list of Tensors, one per layer, shaped like that layer's output.

    References
    ----------
    [@syed2024attribution]
    """
    modules = [resolve_module(model, layer) for layer in layers]
    with torch.no_grad(), capture_outputs(modules, detach=True) as clean_store:
        model(clean)
    zeros: dict[int, Tensor] = {}
    acts: dict[int, Tensor] = {}

    def probe(i: int) -> Callable[[Tensor], Tensor]:
        def add_zero(out: Tensor) -> Tensor:  # out + 0, the 0 a leaf whose gradient is d metric / d out
            zeros[i] = torch.zeros_like(out, requires_grad=True)
            acts[i] = out.detach()
            return out + zeros[i]
        return add_zero

    with torch.enable_grad(), forward_hooks([(m, replace_output(probe(i))) for i, m in enumerate(modules)]):
        value = metric(model(corrupted))
    order = range(len(modules))
    grads = torch.autograd.grad(value, [zeros[i] for i in order], allow_unused=True)
    return [(clean_store[i][-1] - acts[i]) * (torch.zeros_like(acts[i]) if g is None else g)
            for i, g in zip(order, grads)]


@dataclasses.dataclass
class ACDCResult:
    """``kept``: the components of the circuit; ``removed``: the others, in the order they were pruned;
    ``metric``: the metric of the final circuit (everything removed patched to corrupted); ``trace``:
    ``(component, metric if removed, removed?)`` for every step."""

    kept: list
    removed: list
    metric: float
    trace: list


def kl_to_clean(clean_logits: Tensor) -> Callable[[Tensor], Tensor]:
    """ACDC's default metric: ``KL(p_clean || p)`` of the next-token distributions, averaged over positions."""
    log_p = clean_logits.log_softmax(-1)

    def metric(logits: Tensor) -> Tensor:
        return (log_p.exp() * (log_p - logits.log_softmax(-1))).sum(-1).mean()

    return metric


def acdc(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    components: Sequence[tuple[nn.Module | str, Index | None]],
    metric: Callable[[Tensor], Tensor] | None = None,
    threshold: float = 0.05,
) -> ACDCResult:
    """ACDC-style pruning: from the output backwards, drop every component the metric does not need.

    ``components`` are ``(module, index)`` pairs listed from input to output (e.g. each head's
    slice of ``blocks.l.attn.head_out``). Visiting them in reverse, each is tentatively replaced
    by its value on the ``corrupted`` run (on top of the components already removed); it is
    removed for good when the metric (a divergence from the clean behaviour, lower is better;
    default :func:`kl_to_clean`) grows by less than ``threshold``. Node-level pruning: each
    component's corrupted value is the same for every receiver (edge-level ACDC patches each
    sender -> receiver edge separately, which needs path patching).

    References
    ----------
    [@conmy2023towards]
    """
    modules = [resolve_module(model, m) for m, _ in components]
    with torch.no_grad():
        if metric is None:
            metric = kl_to_clean(model(clean))
        with capture_outputs(modules, detach=True) as store:
            model(corrupted)
    corrupt_values = [s[-1] for s in store]

    def run(removed: list[int]) -> float:
        hooks = [(modules[i], replace_output(patch_output(corrupt_values[i], components[i][1]))) for i in removed]
        with torch.no_grad(), forward_hooks(hooks):
            return float(metric(model(clean)))

    removed: list[int] = []
    current = run(removed)
    trace = []
    for i in reversed(range(len(components))):
        candidate = run(removed + [i])
        drop = candidate - current < threshold
        trace.append((components[i], candidate, drop))
        if drop:
            removed.append(i)
            current = candidate
    kept = [c for i, c in enumerate(components) if i not in removed]
    return ACDCResult(kept, [components[i] for i in removed], current, trace)
