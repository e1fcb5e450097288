"""Evaluating sparse dictionaries: reconstruction, sparsity, dead and dense latents, spliced-in loss, absorption."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._common import forward_hooks, replace_output, resolve_module

__all__ = ["SAEEvaluation", "evaluate_sae", "dictionary_metrics", "spliced_loss", "feature_absorption"]


def dictionary_metrics(sae: nn.Module, activations: Tensor, dense_threshold: float = 0.1) -> dict:
    """Core metrics of a dictionary with ``encode``/``decode`` on ``(n, d)`` activations.

    ``mse`` (mean over rows of ``||x - x_hat||^2``), ``fve`` (``1 - sum ||x - x_hat||^2 / sum ||x - mean||^2``),
    ``l0`` (mean number of nonzero latents per row), ``firing`` (``(m,)`` fraction of rows on which
    each latent fires), ``dead_fraction`` (latents that never fire), ``dense_fraction`` (latents
    firing on more than ``dense_threshold`` of rows).

    >>> class Identity(torch.nn.Module):
    ...     def encode(self, x): return torch.relu(torch.cat([x, -x], 1))
    ...     def decode(self, f): return f[:, :2] - f[:, 2:]
    >>> m = dictionary_metrics(Identity(), torch.tensor([[1.0, 0.0], [0.0, -2.0]]))
    >>> m["fve"], m["l0"], m["dead_fraction"]
    (1.0, 1.0, 0.5)

    References
    ----------
    [@gao2024scaling]; [@karvonen2025saebench]
    """
    x = activations.detach().float()
    with torch.no_grad():
        f = sae.encode(x)
        x_hat = sae.decode(f)
    err = (x - x_hat).pow(2).sum(1)
    firing = (f > 0).float().mean(0)
    return {"mse": float(err.mean()), "fve": float(1 - err.sum() / (x - x.mean(0)).pow(2).sum()),
            "l0": float((f > 0).float().sum(1).mean()), "firing": firing,
            "dead_fraction": float((firing == 0).float().mean()),
            "dense_fraction": float((firing > dense_threshold).float().mean())}


def spliced_loss(
    model: nn.Module,
    inputs: Tensor,
    layer: nn.Module | str,
    sae: nn.Module,
    loss_fn: Callable[[Tensor], Tensor],
) -> dict:
    """Loss with ``layer``'s output replaced by the dictionary's reconstruction, against clean and zero-ablated runs.

    ``loss_fn(output)`` is the model's loss (e.g. next-token cross-entropy). Returns ``clean``,
    ``spliced``, ``zero`` and ``recovered = (zero - spliced) / (zero - clean)`` (1: as good as the model,
    0: as bad as deleting the activation), plus ``kl``: ``KL(p_clean || p_spliced)`` of the softmax over
    the output's last dimension, averaged over the other dimensions.

    References
    ----------
    [@bricken2023monosemanticity]; [@gao2024scaling]
    """
    module = resolve_module(model, layer)
    with torch.no_grad():
        clean_out = model(inputs)
        with forward_hooks([(module, replace_output(lambda h: sae.decode(sae.encode(h))))]):
            spliced_out = model(inputs)
        with forward_hooks([(module, replace_output(torch.zeros_like))]):
            zero_out = model(inputs)
    clean, spliced, zero = float(loss_fn(clean_out)), float(loss_fn(spliced_out)), float(loss_fn(zero_out))
    log_p, log_q = clean_out.log_softmax(-1), spliced_out.log_softmax(-1)
    kl = float((log_p.exp() * (log_p - log_q)).sum(-1).mean())
    return {"clean": clean, "spliced": spliced, "zero": zero, "kl": kl,
            "recovered": (zero - spliced) / (zero - clean) if zero != clean else float("nan")}


def feature_absorption(
    sae: nn.Module,
    activations: Tensor,
    labels: Tensor,
    direction: Tensor,
    main_latents: Tensor | None = None,
    share: float = 0.5,
) -> dict:
    """A simple absorption probe: on the rows where a concept is present, how often do its "main"
    latents stay silent while other latents carry the concept direction instead?

    ``direction`` ``(d,)`` is the concept's direction (e.g. a supervised probe); ``labels`` ``(n,)``
    marks the rows with the concept. ``main_latents`` default to the one latent whose decoder vector
    has the highest cosine with ``direction``. A row is a *false negative* when no main latent
    fires, and *absorbed* when it is a false negative and the other active latents' projection onto
    ``direction``, ``sum_j f_j W_dec[:, j] . u``, is at least ``share`` of ``(x - b_dec) . u``
    (``u`` the unit direction). Returns ``false_negative_rate``, ``absorption_rate`` (both over
    concept rows) and ``main_latents``. Chanin et al. measure the same on the first-letter task with
    k-sparse probing to choose the main latents and ablation checks.

    References
    ----------
    [@chanin2024absorption]
    """
    x = activations.detach().float()
    u = direction / direction.norm()
    cos = (u @ sae.W_dec) / sae.W_dec.norm(dim=0).clamp_min(1e-12)
    main = cos.argmax().view(1) if main_latents is None else torch.as_tensor(main_latents).view(-1)
    with torch.no_grad():
        f = sae.encode(x)
    pos = labels.bool()
    silent = (f[:, main] <= 0).all(1)
    others = f.clone()
    others[:, main] = 0
    carried = others @ (sae.W_dec.T @ u)
    target = (x - sae.b_dec) @ u
    absorbed = silent & (carried >= share * target) & (target > 0)
    n = int(pos.sum())
    return {"false_negative_rate": float(silent[pos].float().sum() / max(n, 1)),
            "absorption_rate": float(absorbed[pos].float().sum() / max(n, 1)), "main_latents": main}


@dataclasses.dataclass
class SAEEvaluation:
    """Core metrics (:func:`dictionary_metrics`) and, when a model was given, the spliced-in loss (:func:`spliced_loss`)."""

    metrics: dict
    loss: dict | None

    def summary(self) -> dict[str, Any]:
        keep = {k: v for k, v in self.metrics.items() if k != "firing"}
        return {**keep, **({f"ce_{k}": v for k, v in self.loss.items()} if self.loss else {})}


def evaluate_sae(
    sae: nn.Module,
    activations: Tensor,
    model: nn.Module | None = None,
    inputs: Tensor | None = None,
    layer: nn.Module | str | None = None,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    dense_threshold: float = 0.1,
) -> SAEEvaluation:
    """SAEBench's core evaluation: reconstruction, sparsity and latent frequencies on ``activations``, plus
    the spliced-in loss when ``model``, ``inputs``, ``layer`` and ``loss_fn`` are given.

    References
    ----------
    [@karvonen2025saebench]; [@gao2024scaling]
    """
    metrics = dictionary_metrics(sae, activations, dense_threshold)
    loss = spliced_loss(model, inputs, layer, sae, loss_fn) if model is not None else None
    return SAEEvaluation(metrics, loss)
