"""Private helpers shared by the reference implementations: targets, batching, hooks."""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "as_target",
    "select_target",
    "target_scores",
    "resolve_module",
    "single_or_batch",
    "expand_window",
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
    """Return ``layer`` itself, or the submodule of ``model`` named by a dotted path (``"blocks.1.attn"``).

    A module that is not part of ``model`` (say, a layer of the original model handed to a
    function that runs on a copy) is an error rather than a hook that never fires.
    """
    if isinstance(layer, nn.Module):
        if isinstance(model, nn.Module) and not any(m is layer for m in model.modules()):
            raise ValueError(f"layer {type(layer).__name__} is not a submodule of the model; pass it by "
                             f"name (one of {_names(model)})")
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError:
        raise ValueError(f"model has no submodule {layer!r}; names: {_names(model)}") from None


def _names(model: nn.Module, limit: int = 12) -> str:
    names = [n for n, _ in model.named_modules() if n]
    return ", ".join(map(repr, names[:limit])) + (", ..." if len(names) > limit else "")


def _lacks_batch_dim(model, inputs: Tensor) -> bool:
    """True when ``inputs`` is one example: one dimension fewer than the model's first layer expects.

    Decided from the first module with parameters: ``ConvNd`` expects ``N + 2`` dimensions,
    ``Linear`` at least 2. Other first layers (embeddings, recurrent) are left alone.
    """
    if not isinstance(model, nn.Module):
        return False
    first = next((m for m in model.modules() if next(m.parameters(recurse=False), None) is not None), None)
    expected = {nn.Conv1d: 3, nn.Conv2d: 4, nn.Conv3d: 5, nn.Linear: 2}.get(type(first))
    return expected is not None and inputs.ndim == expected - 1


def single_or_batch(fn: Callable) -> Callable:
    """Let ``fn(model, inputs, target, ...)`` take one example without its batch dimension.

    When :func:`_lacks_batch_dim` says ``inputs`` is a single example (a ``(C, H, W)`` image for a
    CNN, a ``(D,)`` row for an MLP), it runs on ``inputs[None]`` and the batch dimension is
    removed from the result; batched inputs pass through unchanged.
    """
    @functools.wraps(fn)
    def wrapper(model, inputs, target, *args, **kwargs):
        if isinstance(inputs, Tensor) and _lacks_batch_dim(model, inputs):
            return fn(model, inputs.unsqueeze(0), target, *args, **kwargs).squeeze(0)
        return fn(model, inputs, target, *args, **kwargs)
    return wrapper


def expand_window(size: int | Sequence[int], shape: tuple[int, ...], name: str = "window") -> tuple[int, ...]:
    """Per-dimension ``window`` (or ``stride``) for examples of ``shape`` (without the batch dimension).

    An int applies to the spatial dimensions: to every dimension of a 1-D or 2-D example, and to
    all but the first (channel) dimension of a ``(C, *spatial)`` example, whose window spans all
    ``C`` channels (whatever ``C`` is). A tuple as long as the spatial dimensions gets the channel
    dimension prepended the same way; a tuple as long as ``shape`` is taken as is.

    >>> expand_window(8, (1, 64, 64)), expand_window(8, (3, 64, 64)), expand_window(2, (10,))
    ((1, 8, 8), (3, 8, 8), (2,))
    >>> expand_window((4, 4), (3, 32, 32))
    (3, 4, 4)
    """
    channels = shape[:1] if len(shape) >= 3 else ()
    if isinstance(size, int):
        size = (size,) * (len(shape) - len(channels))
    size = tuple(int(s) for s in size)
    if len(size) == len(shape) - len(channels) and channels:
        size = channels + size
    if len(size) != len(shape):
        raise ValueError(f"{name} {size} does not fit examples of shape {shape}")
    return size


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
