"""Reading the residual stream with the unembedding: logit lens and tuned lens."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import capture_outputs, resolve_module

__all__ = ["logit_lens", "TunedLens", "tuned_lens"]


def _residuals(model: nn.Module, inputs: Tensor, layers: Sequence[nn.Module | str]) -> tuple[list[Tensor], Tensor]:
    modules = [resolve_module(model, layer) for layer in layers]
    with torch.no_grad(), capture_outputs(modules, detach=True) as store:
        out = model(inputs)
    return [s[-1] for s in store], out


def logit_lens(
    model: nn.Module,
    inputs: Tensor,
    layers: Sequence[nn.Module | str],
    unembed: Callable[[Tensor], Tensor],
) -> Tensor:
    """Decode every layer's residual stream with the model's own unembedding.

    ``logits_l = unembed(h_l)`` for the output ``h_l`` of each of ``layers`` (the residual stream
    after that block, ``(B, T, D)``); ``unembed`` includes the final normalisation if the model
    has one.

    Returns
    -------
    Tensor ``(L, B, T, V)``.

    References
    ----------
    [@nostalgebraist2020logit]
    """
    hidden, _ = _residuals(model, inputs, layers)
    with torch.no_grad():
        return torch.stack([unembed(h) for h in hidden])


@dataclasses.dataclass
class TunedLens:
    """Per-layer affine translators ``h -> h + A h + b`` and the lens logits ``(L, B, T, V)`` on the inputs."""

    translators: nn.ModuleList
    logits: Tensor
    kl: Tensor  # (L,) KL(final || lens) after training


def tuned_lens(
    model: nn.Module,
    inputs: Tensor,
    layers: Sequence[nn.Module | str],
    unembed: Callable[[Tensor], Tensor],
    n_steps: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
) -> TunedLens:
    """Tuned lens: train one affine translator per layer so ``unembed(translator(h_l))`` matches the final logits.

    Each translator starts at the identity (so it starts as the logit lens) and minimises
    ``KL(softmax(final) || softmax(unembed(h_l + A_l h_l + b_l)))`` over ``inputs``.

    References
    ----------
    [@belrose2023eliciting]
    """
    hidden, final = _residuals(model, inputs, layers)
    target = F.log_softmax(final, -1).reshape(-1, final.shape[-1])
    d = hidden[0].shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        translators = nn.ModuleList(nn.Linear(d, d) for _ in hidden)
    for tr in translators:  # identity start: the residual form h + A h + b with A = b = 0
        nn.init.zeros_(tr.weight), nn.init.zeros_(tr.bias)
    opt = torch.optim.Adam(translators.parameters(), lr=lr)

    def lens_logp(tr, h):
        return F.log_softmax(unembed(h + tr(h)), -1).reshape(-1, target.shape[-1])

    frozen = [p for p in model.parameters() if p.requires_grad]
    try:  # the model's own weights (the unembedding) must not collect gradients
        for p in frozen:
            p.requires_grad_(False)
        for _ in range(n_steps):
            loss = sum(F.kl_div(lens_logp(tr, h), target, log_target=True, reduction="batchmean")
                       for tr, h in zip(translators, hidden))
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    with torch.no_grad():
        logits = torch.stack([unembed(h + tr(h)) for tr, h in zip(translators, hidden)])
        kl = torch.stack([F.kl_div(lens_logp(tr, h), target, log_target=True, reduction="batchmean")
                          for tr, h in zip(translators, hidden)])
    return TunedLens(translators.requires_grad_(False), logits, kl)
