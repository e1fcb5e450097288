"""Automated interpretability scoring: explain a unit, simulate it from the explanation, score the explanation.

No language model runs here: the explainer is a keyword rule (the tokens on which the unit fires
most, relative to how common they are) and the simulator and detection scorer read that rule. The
scoring, which is the part that makes automated interpretability a measurement, is the papers'.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ._common import generator

__all__ = ["explain_by_top_tokens", "simulate", "simulation_score", "detection_score", "AutoInterpResult",
           "automated_interpretability"]


def explain_by_top_tokens(tokens: Tensor, activations: Tensor, n_keywords: int = 3, top_k: int = 50) -> Tensor:
    """A keyword explanation: the token ids that make up most of the unit's ``top_k`` strongest activations.

    ``tokens``, ``activations``: ``(N, T)``. Each token id is scored by its summed activation among
    the top ``top_k`` (token, activation) pairs; the ``n_keywords`` best (with positive score) are the
    explanation "fires on these tokens". A language-model explainer writes prose from the same pairs.
    """
    flat_t, flat_a = tokens.reshape(-1), activations.reshape(-1).float()
    top = flat_a.topk(min(top_k, flat_a.numel())).indices
    score = torch.zeros(int(flat_t.max()) + 1).index_add_(0, flat_t[top], flat_a[top].clamp_min(0))
    keep = score.topk(min(n_keywords, len(score)))
    return keep.indices[keep.values > 0]


def simulate(explanation: Tensor, tokens: Tensor) -> Tensor:
    """The simulator: predicted activation 1 on tokens named by the explanation, 0 elsewhere (``(N, T)``)."""
    return torch.isin(tokens, explanation).float()


def simulation_score(explanation: Tensor, tokens: Tensor, activations: Tensor) -> float:
    """Correlation between simulated and true activations over every token of held-out contexts.

    >>> tok = torch.tensor([[1, 2, 3, 1]])
    >>> simulation_score(torch.tensor([1]), tok, 2.0 * (tok == 1))
    1.0

    References
    ----------
    [@bills2023language]
    """
    sim, act = simulate(explanation, tokens).reshape(-1), activations.reshape(-1).float()
    if sim.std() == 0 or act.std() == 0:
        return 0.0
    return float(torch.corrcoef(torch.stack([sim, act]))[0, 1])


def detection_score(explanation: Tensor, tokens: Tensor, activations: Tensor, n: int = 20, seed: int = 0) -> float:
    """Detection: does the explanation tell activating contexts from random ones? Balanced accuracy.

    ``n`` of the contexts (rows) with the highest maximum activation and ``n`` random
    non-activating ones (maximum activation ``<= 0``; for a unit active almost everywhere, the
    ``n`` least-activating contexts instead) are shown; the scorer says "activating" when a context
    contains an explanation token (a language-model scorer reads the prose instead).

    References
    ----------
    [@paulo2025automatically]
    """
    peak = activations.reshape(len(tokens), -1).amax(1)
    active = peak.argsort(descending=True)[:n]
    active = active[peak[active] > 0]
    quiet = (peak <= 0).nonzero().view(-1)
    if len(quiet) < n:
        quiet = peak.argsort()[:n]
    quiet = quiet[torch.randperm(len(quiet), generator=generator(seed))[:n]]
    said = simulate(explanation, tokens).amax(1) > 0
    hits = [float(said[active].float().mean()) if len(active) else 0.0,
            float((~said[quiet]).float().mean()) if len(quiet) else 0.0]
    return sum(hits) / 2


@dataclasses.dataclass
class AutoInterpResult:
    """Per unit: the keyword ``explanations`` (token ids), ``simulation`` and ``detection`` scores ``(U,)``."""

    explanations: list
    simulation: Tensor
    detection: Tensor


def automated_interpretability(
    tokens: Tensor,
    activations: Tensor,
    held_out_tokens: Tensor,
    held_out_activations: Tensor,
    n_keywords: int = 3,
    seed: int = 0,
) -> AutoInterpResult:
    """Explain every unit on one set of contexts and score the explanation on another.

    ``activations`` ``(N, T, U)`` for ``tokens`` ``(N, T)`` (likewise held out). Explanations come
    from :func:`explain_by_top_tokens` (a keyword rule standing in for the explainer model), scores
    from :func:`simulation_score` (explain-simulate-score) and :func:`detection_score`.

    References
    ----------
    [@bills2023language]; [@paulo2025automatically]
    """
    explanations, sim, det = [], [], []
    for u in range(activations.shape[-1]):
        e = explain_by_top_tokens(tokens, activations[..., u], n_keywords)
        explanations.append(e)
        sim.append(simulation_score(e, held_out_tokens, held_out_activations[..., u]))
        det.append(detection_score(e, held_out_tokens, held_out_activations[..., u], seed=seed))
    return AutoInterpResult(explanations, torch.tensor(sim), torch.tensor(det))
