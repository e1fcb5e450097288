"""Editing a model's computation: steering vectors (activation addition), function vectors, ROME's rank-one weight edit."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor, nn

from ._common import capture_outputs, forward_hooks, replace_output, resolve_module

__all__ = ["steering_vector", "add_steering", "steering_vectors", "key_covariance", "rome_edit", "FunctionVector",
           "function_vector"]


def steering_vector(
    model: nn.Module,
    positive: Tensor,
    negative: Tensor,
    layer: nn.Module | str,
    position: Any = None,
) -> Tensor:
    """``mean h(positive) - mean h(negative)`` of ``layer``'s output: ``(D,)`` (the last dimension).

    The means run over the batch and every position, or only over ``position`` (an index into
    dimension 1 of a ``(B, T, D)`` activation, e.g. ``-1`` for the last token).

    References
    ----------
    [@turner2023steering]
    """
    module = resolve_module(model, layer)
    means = []
    for prompts in (positive, negative):
        with torch.no_grad(), capture_outputs([module], detach=True) as store:
            model(prompts)
        h = store[0][-1]
        h = h if position is None else h[:, position]
        means.append(h.reshape(-1, h.shape[-1]).mean(0))
    return means[0] - means[1]


@contextlib.contextmanager
def add_steering(
    model: nn.Module, layer: nn.Module | str, vector: Tensor, coefficient: float = 1.0, position: Any = None
) -> Iterator[None]:
    """Inside the block, ``layer``'s output becomes ``h + coefficient * vector`` (at every position, or at
    ``position``); the hook is removed on exit, also after an exception."""
    shift = coefficient * vector

    def steer(out: Tensor) -> Tensor:
        if position is None:
            return out + shift
        out = out.clone()
        out[:, position] += shift
        return out

    with forward_hooks([(resolve_module(model, layer), replace_output(steer))]):
        yield


def steering_vectors(
    model: nn.Module,
    inputs: Tensor,
    positive: Tensor,
    negative: Tensor,
    layer: nn.Module | str,
    coefficient: float = 1.0,
    position: Any = None,
) -> Tensor:
    """Activation addition: run ``inputs`` with ``coefficient * (mean h(positive) - mean h(negative))``
    added to ``layer``'s output; returns the steered output.

    The vector is :func:`steering_vector` (read at ``position`` of the prompt sets, and added at
    ``position`` of ``inputs``); the addition is :func:`add_steering`. No weights change and no
    optimisation is involved: the contrast of the two prompt sets is the edit.

    References
    ----------
    [@turner2023steering]
    """
    vector = steering_vector(model, positive, negative, layer, position)
    with torch.no_grad(), add_steering(model, layer, vector, coefficient, position):
        return model(inputs)


def key_covariance(keys: Tensor) -> Tensor:
    """ROME's ``C = K^T K / n``: the uncentred second moment of ``(n, d)`` keys (inputs of the edited layer)."""
    return keys.T @ keys / keys.shape[0]


def rome_edit(weight: Tensor, key: Tensor, value: Tensor, cov: Tensor) -> Tensor:
    """ROME's closed-form rank-one edit: the new ``W'`` with ``W' k* = v*`` that least disturbs other keys.

    ``W' = W + (v* - W k*) (C^{-1} k*)^T / ((C^{-1} k*)^T k*)`` minimises ``sum_k |W' k - W k|^2``
    over keys with second moment ``C`` (:func:`key_covariance`) subject to ``W' k* = v*``. Keys
    with ``k^T C^{-1} k* = 0`` map exactly as before. ``C`` must be invertible: add a small ridge
    (``C + eps I``) when some inputs are constant, e.g. dead ReLU units. Pure: returns the new weight (copy it into
    an ``nn.Linear`` with ``layer.weight.copy_(...)``; a Linear computes ``W x``, so ``weight`` is
    its ``(out, in)`` matrix).

    Parameters
    ----------
    weight : ``(out, in)``; key : ``(in,)``; value : ``(out,)``; cov : ``(in, in)``.

    References
    ----------
    [@meng2022locating]
    """
    u = torch.linalg.solve(cov, key)  # C^{-1} k*
    return weight + torch.outer(value - weight @ key, u) / (u @ key)


@dataclasses.dataclass
class FunctionVector:
    """``vector`` ``(D,)``: the summed mean outputs of the chosen ``heads``; ``indirect_effects[i]``: the
    average indirect effect of candidate ``i``; ``mean_outputs`` ``(n_candidates, D)``."""

    vector: Tensor
    heads: list
    indirect_effects: Tensor
    mean_outputs: Tensor


def function_vector(
    model: nn.Module,
    prompts: Tensor,
    corrupted: Tensor,
    answers: Tensor,
    heads: Sequence[tuple[nn.Module | str, int]],
    n_heads: int = 2,
    position: int = -1,
) -> FunctionVector:
    """Function vector: the sum of the mean outputs of the heads that carry an in-context task.

    1. ``a_h = mean over prompts of head h's output at position`` (``heads``: ``(module, head)``
       pairs, the module's output ``(B, T, H, D)``: each head's write to the residual stream).
    2. Average indirect effect: on the ``corrupted`` prompts (the same task with shuffled
       demonstrations), put ``a_h`` in place of head ``h``'s output and measure the rise in the mean
       probability of ``answers`` ``(B,)`` at ``position``.
    3. ``v = sum of a_h`` over the ``n_heads`` heads with the largest effect. Add it to the residual
       stream of another prompt with :func:`add_steering`.

    References
    ----------
    [@todd2024function]; [@hendel2023incontext]
    """
    mods = [resolve_module(model, m) for m, _ in heads]
    with torch.no_grad(), capture_outputs(list(dict.fromkeys(mods)), detach=True) as store:
        model(prompts)
    captured = dict(zip(dict.fromkeys(mods), store))
    means = torch.stack([captured[m][-1][:, position, h].mean(0) for m, (_, h) in zip(mods, heads)])
    rows = torch.arange(len(answers))

    def answer_prob(out: Tensor) -> float:
        return float(out[:, position].softmax(-1)[rows, answers].mean())

    with torch.no_grad():
        base = answer_prob(model(corrupted))
        effects = []
        for m, (_, h), mean in zip(mods, heads, means):
            def put(out, h=h, mean=mean):
                out = out.clone()
                out[:, position, h] = mean
                return out
            with forward_hooks([(m, replace_output(put))]):
                effects.append(answer_prob(model(corrupted)) - base)
    effects = torch.tensor(effects)
    top = effects.topk(min(n_heads, len(heads))).indices.tolist()
    return FunctionVector(means[top].sum(0), [heads[i] for i in top], effects, means)
