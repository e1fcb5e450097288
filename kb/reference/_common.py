"""Private helpers shared by the reference implementations: targets, batching, hooks."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "as_target",
    "select_target",
    "target_scores",
    "resolve_module",
    "batched_forward",
    "forward_hooks",
    "capture_outputs",
    "replace_output",
    "generator",
]


def as_target(target: int | Tensor | Sequence[int], n: int) -> Tensor:
    """Return ``target`` as a LongTensor of ``n`` class indices (one per row)."""
    t = torch.as_tensor(target, dtype=torch.long)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"target must be an int or have shape ({n},), got {tuple(t.shape)}")
    return t


def select_target(output: Tensor, target: Tensor | None) -> Tensor:
    """Pick ``output[i, target[i]]`` for each row; a 1-D output (or ``target=None``) is returned as is."""
    if target is None or output.ndim == 1:
        return output.reshape(output.shape[0], -1).sum(1) if output.ndim > 1 else output
    return output.gather(1, target.view(-1, 1)).squeeze(1)


def target_scores(model: Callable[[Tensor], Tensor], inputs: Tensor, target: Tensor) -> Tensor:
    """The target logits ``model(inputs)[i, target[i]]``, shape ``(N,)``."""
    return select_target(model(inputs), target)


def batched_forward(
    fn: Callable[[Tensor], Tensor], inputs: Tensor, batch_size: int | None = None
) -> Tensor:
    """Apply ``fn`` to ``inputs`` in chunks of ``batch_size`` rows and concatenate (memory bound, not a loop per row)."""
    if batch_size is None or inputs.shape[0] <= batch_size:
        return fn(inputs)
    return torch.cat([fn(chunk) for chunk in inputs.split(batch_size)])


def resolve_module(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """Return ``layer`` itself, or the submodule of ``model`` named by a dotted path (``"blocks.1.attn"``)."""
    if isinstance(layer, nn.Module):
        return layer
    return model.get_submodule(layer)


@contextlib.contextmanager
def forward_hooks(
    pairs: Iterable[tuple[nn.Module, Callable]], pre: bool = False
) -> Iterator[None]:
    """Register forward (or forward-pre) hooks for the block's duration; always removed, even on error.

    The hooks live only inside the ``with`` block; this is the one place in ``kb.reference``
    that registers hooks, so a test can check that none survive an exception.
    """
    handles = []
    try:
        for module, hook in pairs:
            if pre:
                handles.append(module.register_forward_pre_hook(hook))
            else:
                handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def capture_outputs(modules: Sequence[nn.Module], detach: bool = False) -> Iterator[list]:
    """Record each module's output of the forward passes run inside the block: ``store[i]`` is a list per call."""
    store: list[list[Tensor]] = [[] for _ in modules]

    def make(i):
        def hook(_module, _inputs, output):
            store[i].append(output.detach() if detach else output)

        return hook

    with forward_hooks((m, make(i)) for i, m in enumerate(modules)):
        yield store


def replace_output(fn: Callable[[Tensor], Tensor]) -> Callable:
    """Turn ``fn(output) -> new_output`` into a forward hook that replaces the module's output."""

    def hook(_module, _inputs, output):
        return fn(output)

    return hook


def patch_output(value: Tensor, index=None) -> Callable[[Tensor], Tensor]:
    """Output transform writing ``value`` (or only ``value[index]``) into the running activation."""
    if index is None:
        return lambda out: value

    def fn(out: Tensor) -> Tensor:
        out = out.clone()
        out[index] = value[index]
        return out
    return fn


def generator(seed: int) -> torch.Generator:
    """A CPU random generator seeded explicitly (no global RNG state is touched)."""
    return torch.Generator().manual_seed(int(seed))
