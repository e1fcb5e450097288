"""Distributed alignment search: a learned rotation whose first k dimensions carry a causal variable."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import orthogonal

from ._common import capture_outputs, forward_hooks, replace_output, resolve_module

__all__ = ["DASResult", "interchange_intervention", "distributed_alignment_search"]


@dataclasses.dataclass
class DASResult:
    """``rotation`` ``(D, D)`` orthogonal, rows = the new basis; ``subspace`` its first ``k`` rows;
    ``accuracy`` interchange-intervention accuracy on the evaluation pairs; ``losses`` per step."""

    rotation: Tensor
    subspace: Tensor
    accuracy: float
    losses: list


def interchange_intervention(
    model: nn.Module, layer: nn.Module | str, base: Tensor, source: Tensor, subspace: Tensor
) -> Tensor:
    """Run ``base`` with the ``subspace`` component of ``layer``'s activation taken from ``source``.

    ``h <- h_base + R_k^T (R_k h_source - R_k h_base)`` for ``R_k = subspace`` ``(k, D)`` with orthonormal
    rows, applied along the last dimension. Differentiable in ``subspace``.

    References
    ----------
    [@geiger2024finding]
    """
    module = resolve_module(model, layer)
    with torch.no_grad(), capture_outputs([module], detach=True) as store:
        model(source)
    h_source = store[0][-1]

    def swap(h_base: Tensor) -> Tensor:
        return h_base + (h_source - h_base) @ subspace.T @ subspace

    with forward_hooks([(module, replace_output(swap))]):
        return model(base)


def distributed_alignment_search(
    model: nn.Module,
    layer: nn.Module | str,
    base: Tensor,
    source: Tensor,
    labels: Tensor,
    k: int,
    n_steps: int = 300,
    lr: float = 1e-2,
    batch_size: int = 256,
    seed: int = 0,
    test: tuple[Tensor, Tensor, Tensor] | None = None,
) -> DASResult:
    """DAS: learn an orthogonal ``R`` so that swapping ``R``'s first ``k`` coordinates of ``layer`` between a
    base and a source input makes the model output the high-level model's counterfactual.

    ``labels[i]`` is the class the high-level causal model predicts for ``base[i]`` with its
    variable set to its value on ``source[i]``. ``R`` is an ``nn.Linear`` made orthogonal by
    ``torch.nn.utils.parametrizations.orthogonal``; it is trained with Adam on
    ``CE(model(base | swap_R,k(source)), label)`` (:func:`interchange_intervention`) while the
    model stays frozen. The score is interchange-intervention accuracy (IIA): the share of
    ``test`` pairs (default: the training pairs) where the intervened model's argmax is the label.

    References
    ----------
    [@geiger2024finding]
    """
    module = resolve_module(model, layer)
    with torch.no_grad(), capture_outputs([module], detach=True) as store:
        model(base[:1])
    d = store[0][-1].shape[-1]
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the parametrization's init draws from the global RNG
        torch.manual_seed(seed)
        rotation = orthogonal(nn.Linear(d, d, bias=False))
    opt = torch.optim.Adam(rotation.parameters(), lr=lr)
    frozen = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    losses = []
    try:
        for _ in range(n_steps):
            idx = torch.randint(0, len(base), (min(batch_size, len(base)),), generator=gen)
            out = interchange_intervention(model, module, base[idx], source[idx], rotation.weight[:k])
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), labels[idx].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    finally:
        for p, flag in zip(model.parameters(), frozen):
            p.requires_grad_(flag)
    r = rotation.weight.detach()
    tb, ts, tl = test if test is not None else (base, source, labels)
    with torch.no_grad():
        pred = interchange_intervention(model, module, tb, ts, r[:k]).argmax(-1)
    return DASResult(r, r[:k], float((pred == tl).float().mean()), losses)
