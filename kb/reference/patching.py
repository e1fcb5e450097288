"""Causal interventions through forward hooks: activation patching, path patching, causal tracing, ablation."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ._common import (capture_outputs, forward_hooks, generator, patch_output, replace_output,
                      resolve_module)

__all__ = ["activation_patching", "patching_sweep", "path_patching", "causal_tracing", "ablation"]

Index = Any  # anything valid in ``tensor[index]``: a slice tuple, an int, a bool mask



def activation_patching(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    layer: nn.Module | str,
    metric: Callable[[Tensor], Tensor | float],
    index: Index | None = None,
) -> float:
    """Run ``corrupted`` with ``layer``'s output replaced by its output on ``clean``; return ``metric``.

    ``layer`` is a module or a dotted name (``"blocks.1.attn.head_out"``); ``index`` restricts the
    patch to part of the activation, e.g. ``(slice(None), position)`` for one sequence position
    or ``(slice(None), slice(None), head)`` for one head. Patching everything restores the clean
    output exactly.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> clean, corrupted = torch.ones(1, 2), torch.zeros(1, 2)
    >>> patched = activation_patching(model, clean, corrupted, "1", metric=lambda out: out.sum())
    >>> bool(torch.isclose(torch.tensor(patched), model(clean).sum()))
    True

    References
    ----------
    [@vig2020investigating]; [@meng2022locating]
    """
    module = resolve_module(model, layer)
    with torch.no_grad():
        with capture_outputs([module], detach=True) as store:
            model(clean)
        with forward_hooks([(module, replace_output(patch_output(store[0][-1], index)))]):
            out = model(corrupted)
    return float(metric(out))


def patching_sweep(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    layers: Sequence[nn.Module | str],
    metric: Callable[[Tensor], Tensor | float],
    indices: Sequence[Index] = (None,),
) -> Tensor:
    """:func:`activation_patching` for every ``(layer, index)`` pair: a ``(len(layers), len(indices))`` grid."""
    return torch.tensor([[activation_patching(model, clean, corrupted, layer, metric, idx)
                          for idx in indices] for layer in layers])


def path_patching(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    sender: nn.Module | str,
    receiver: nn.Module | str,
    metric: Callable[[Tensor], Tensor | float],
    freeze: Sequence[nn.Module | str] = (),
    sender_index: Index | None = None,
) -> float:
    """Patch the clean ``sender`` output into the corrupted run only along the path through ``receiver``.

    1. cache the sender's output on ``clean`` and the ``freeze`` modules' outputs on ``corrupted``;
    2. run ``corrupted`` with the sender patched and every ``freeze`` module held at its corrupted
       value, recording the *input* the receiver gets;
    3. run ``corrupted`` again with only the receiver's input replaced by that recording.
    ``freeze`` lists the other components between sender and receiver (e.g. the other heads), so
    the effect flows through the direct sender -> receiver path alone.

    References
    ----------
    [@wang2023interpretability]; [@goldowskydill2023localizing]
    """
    send, recv = resolve_module(model, sender), resolve_module(model, receiver)
    frozen = [resolve_module(model, f) for f in freeze]
    with torch.no_grad():
        with capture_outputs([send], detach=True) as clean_store:
            model(clean)
        with capture_outputs(frozen, detach=True) as corrupt_store:
            model(corrupted)
        received: list[tuple] = []
        hooks = [(send, replace_output(patch_output(clean_store[0][-1], sender_index)))]
        hooks += [(m, replace_output(patch_output(store[-1], None))) for m, store in zip(frozen, corrupt_store)]
        with forward_hooks(hooks), forward_hooks(
                [(recv, lambda _m, args: received.append(tuple(a.detach() for a in args)))], pre=True):
            model(corrupted)
        with forward_hooks([(recv, lambda _m, _args: received[-1])], pre=True):
            out = model(corrupted)
    return float(metric(out))


def causal_tracing(
    model: nn.Module,
    inputs: Tensor,
    embedding: nn.Module | str,
    layers: Sequence[nn.Module | str],
    metric: Callable[[Tensor], Tensor],
    positions: Sequence[int] | None = None,
    noise: float = 3.0,
    subject: slice | Sequence[int] = slice(None),
    seed: int = 0,
) -> Tensor:
    """Causal tracing: corrupt the input embedding with noise, then restore one (layer, position) at a time.

    The corrupted run adds ``N(0, noise^2 * var)`` noise to the ``embedding`` output ``(B, T, D)`` at
    the ``subject`` positions (an index along ``T``; ``var`` the embedding's variance); each restoration copies the clean
    hidden state of ``layer`` at one position into the corrupted run. All positions of a layer
    are restored in one batched run (a copy of the input per position); ``metric(output)``
    reduces the output of one copy of ``inputs`` to a number (e.g. the mean probability of the
    correct token), as in :func:`activation_patching`.

    Returns
    -------
    Tensor ``(len(layers), n_positions)``: the metric with that state restored; compare with
    the clean and fully corrupted values.

    References
    ----------
    [@meng2022locating]
    """
    emb = resolve_module(model, embedding)
    with torch.no_grad():
        with capture_outputs([emb], detach=True) as store:
            model(inputs)
        clean_emb = store[0][-1]
        eps = torch.randn(clean_emb.shape, generator=generator(seed)) * noise * clean_emb.std()
        corrupted_emb = clean_emb.clone()
        corrupted_emb[:, subject] += eps[:, subject]
        t = inputs.shape[1]
        positions = list(range(t)) if positions is None else list(positions)
        p, n = len(positions), inputs.shape[0]
        batch = inputs.repeat(p, *[1] * (inputs.ndim - 1))  # position-major copies
        rows = torch.arange(p * n)
        pos = torch.tensor(positions).repeat_interleave(n)
        grid = []
        for layer in layers:
            module = resolve_module(model, layer)
            with capture_outputs([module], detach=True) as hidden:
                model(inputs)
            clean_h = hidden[0][-1].repeat(p, *[1] * (hidden[0][-1].ndim - 1))

            def restore(out, clean_h=clean_h):
                out = out.clone()
                out[rows, pos] = clean_h[rows, pos]
                return out

            hooks = [(emb, replace_output(lambda _o: corrupted_emb.repeat(p, 1, 1))),
                     (module, replace_output(restore))]
            with forward_hooks(hooks):
                grid.append(torch.tensor([float(metric(o)) for o in model(batch).split(n)]))
    return torch.stack(grid)


def ablation(
    model: nn.Module,
    inputs: Tensor,
    layer: nn.Module | str,
    units: Index | None = None,
    method: str = "zero",
    reference: Tensor | None = None,
    metric: Callable[[Tensor], Tensor | float] | None = None,
):
    """Run ``model`` with ``layer``'s output (or only ``units`` of it) zeroed or mean-ablated.

    ``units`` indexes the activation (``(..., [3, 7])`` for units 3 and 7 of the last dimension,
    ``(slice(None), slice(None), head)`` for one head). ``method="mean"`` replaces it with its
    mean over the batch of ``reference`` inputs (default: ``inputs``), which keeps the
    activation on-distribution. Returns the output, or ``metric(output)`` when given.

    References
    ----------
    [@olsson2022context]; [@wang2023interpretability]
    """
    module = resolve_module(model, layer)
    with torch.no_grad():
        if method == "mean":
            with capture_outputs([module], detach=True) as store:
                model(inputs if reference is None else reference)
            fill = store[0][-1].mean(0, keepdim=True)
        elif method == "zero":
            fill = None
        else:
            raise ValueError(f"unknown ablation method {method!r}")

        def ablate(out):
            value = torch.zeros_like(out) if fill is None else fill.expand_as(out)
            if units is None:
                return value.clone()
            out = out.clone()
            out[units] = value[units]
            return out

        with forward_hooks([(module, replace_output(ablate))]):
            out = model(inputs)
    return out if metric is None else float(metric(out))
