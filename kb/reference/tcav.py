"""Testing with concept activation vectors (TCAV)."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from ._common import as_target, capture_outputs, generator, resolve_module, select_target
from .probes import train_linear_probe

__all__ = ["TCAVResult", "concept_activation_vector", "tcav"]


def _activations(model: nn.Module, inputs: Tensor, module: nn.Module) -> Tensor:
    with torch.no_grad(), capture_outputs([module], detach=True) as store:
        model(inputs)
    return store[0][-1].flatten(1)


def concept_activation_vector(concept_acts: Tensor, random_acts: Tensor, l2: float = 1e-3) -> tuple[Tensor, float]:
    """Unit normal of a logistic-regression boundary separating concept from random activations.

    Returns ``(cav (d,), training accuracy)``; the CAV points towards the concept.

    References
    ----------
    [@kim2018interpretability]
    """
    x = torch.cat([concept_acts, random_acts])
    y = torch.cat([torch.ones(len(concept_acts)), torch.zeros(len(random_acts))]).long()
    probe = train_linear_probe(x, y, l2)
    w = probe.weight[1] - probe.weight[0]
    acc = float((probe(x.float()).argmax(1) == y).float().mean())
    return w / w.norm(), acc


@dataclasses.dataclass
class TCAVResult:
    """``score``: fraction of inputs whose target logit increases along the CAV (mean over runs);
    ``scores``: one per run (a random-split CAV each); ``cav``: the first run's CAV;
    ``cav_accuracy``: its separability; ``derivatives``: directional derivatives of the first run."""

    score: float
    scores: Tensor
    cav: Tensor
    cav_accuracy: float
    derivatives: Tensor


def tcav(
    model: nn.Module,
    layer: nn.Module | str,
    concept_inputs: Tensor,
    random_inputs: Tensor,
    inputs: Tensor,
    target,
    n_runs: int = 5,
    seed: int = 0,
) -> TCAVResult:
    """TCAV score of a concept for a class at a layer.

    The CAV ``v`` is the normal of a linear classifier separating ``layer``'s activations on
    ``concept_inputs`` from those on ``random_inputs``; the directional derivative
    ``S(x) = grad_h f_c(x) . v`` measures how the target logit moves along the concept, and the
    score is the fraction of ``inputs`` with ``S(x) > 0``. Each of ``n_runs`` trains the CAV on a
    random half of the concept and random sets; a score far from the spread of runs with a
    random "concept" is meaningful (the paper's significance test).

    References
    ----------
    [@kim2018interpretability]
    """
    module = resolve_module(model, layer)
    concept_acts = _activations(model, concept_inputs, module)
    random_acts = _activations(model, random_inputs, module)
    with capture_outputs([module]) as store:
        out = model(inputs.detach().clone().requires_grad_(True))  # so a layer right at the input has a graph
    h = store[0][-1]
    (grad,) = torch.autograd.grad(select_target(out, as_target(target, inputs.shape[0])).sum(), h)
    grad = grad.flatten(1)
    g = generator(seed)
    scores, first = [], None
    for run in range(n_runs):
        ci = torch.randperm(len(concept_acts), generator=g)[: max(2, len(concept_acts) // 2)] if n_runs > 1 else slice(None)
        ri = torch.randperm(len(random_acts), generator=g)[: max(2, len(random_acts) // 2)] if n_runs > 1 else slice(None)
        cav, acc = concept_activation_vector(concept_acts[ci], random_acts[ri])
        deriv = grad @ cav
        scores.append(float((deriv > 0).float().mean()))
        if first is None:
            first = (cav, acc, deriv)
    s = torch.tensor(scores)
    return TCAVResult(float(s.mean()), s, first[0], first[1], first[2])
