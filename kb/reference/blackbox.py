"""Black-box explanations that only query the model: RISE, Anchors, permutation importance, partial dependence."""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import as_target, batched_forward, generator, target_scores

__all__ = ["rise", "rise_masks", "AnchorResult", "anchors", "permutation_feature_importance",
           "PartialDependence", "partial_dependence"]


def rise_masks(n_masks: int, size: tuple[int, int], grid: int = 4, p: float = 0.5, seed: int = 0) -> Tensor:
    """RISE's random masks ``(n_masks, 1, H, W)``: a ``grid x grid`` Bernoulli(``p``) grid, bilinearly
    upsampled to ``(grid + 1) * cell`` pixels and cropped at a random shift of up to one cell, so the
    mask is smooth and not aligned to the grid."""
    g = generator(seed)
    h, w = size
    cell_h, cell_w = -(-h // grid), -(-w // grid)
    small = (torch.rand(n_masks, 1, grid, grid, generator=g) < p).float()
    big = F.interpolate(small, size=((grid + 1) * cell_h, (grid + 1) * cell_w), mode="bilinear",
                        align_corners=False)
    dy = torch.randint(0, cell_h, (n_masks, 1, 1), generator=g)
    dx = torch.randint(0, cell_w, (n_masks, 1, 1), generator=g)
    rows = dy + torch.arange(h).view(1, h, 1)
    cols = dx + torch.arange(w).view(1, 1, w)
    return big[torch.arange(n_masks).view(-1, 1, 1), 0, rows, cols].unsqueeze(1)


def rise(
    model: nn.Module,
    inputs: Tensor,
    target,
    n_masks: int = 2000,
    grid: int = 4,
    p: float = 0.5,
    seed: int = 0,
    probs: bool = True,
    batch_size: int | None = 1024,
) -> Tensor:
    """RISE: saliency as the mask-weighted average score over randomly masked copies of the image.

    ``S_c(x)[l] = 1 / (N p) * sum_i f_c(x * M_i) M_i[l]`` with the masks of :func:`rise_masks`
    (the same ``N = n_masks`` masks for every row); ``f_c`` is the softmax probability of the
    target class (``probs=True``, as in the paper) or its logit. A pixel scores the expected
    class score given that it is visible; a constant model gets ``S = f`` up to sampling error.

    Parameters
    ----------
    inputs : ``(N, C, H, W)`` images; masks cover all channels.

    Returns
    -------
    Tensor shaped like ``inputs`` (the map is repeated over channels).

    References
    ----------
    [@petsiuk2018rise]
    """
    n, c, h, w = inputs.shape
    t = as_target(target, n)
    masks = rise_masks(n_masks, (h, w), grid, p, seed)  # (M, 1, H, W)

    def score(m: Tensor) -> Tensor:  # (m, N) target scores of every row under each mask in the chunk
        out = model((m[:, None] * inputs[None]).reshape(-1, c, h, w))
        out = out.softmax(-1) if probs else out
        return target_scores(lambda _: out, None, t.repeat(len(m))).view(len(m), n)

    with torch.no_grad():
        chunk = None if batch_size is None else max(1, batch_size // n)
        scores = batched_forward(score, masks, chunk)  # (M, N)
    saliency = torch.einsum("mn,mhw->nhw", scores, masks[:, 0]) / (n_masks * p)
    return saliency[:, None].expand_as(inputs).contiguous()


@dataclasses.dataclass
class AnchorResult:
    """Per row: ``mask`` ``(N, d)`` the features in the anchor; the rule is ``lower <= x_j < upper`` for
    those features; ``precision`` (estimated on fresh samples) and ``coverage`` (share of ``data``
    satisfying the rule), both ``(N,)``; ``target`` the class the rule predicts."""

    mask: Tensor
    lower: Tensor
    upper: Tensor
    precision: Tensor
    coverage: Tensor
    target: Tensor


def _anchor_precision(model, x_bins, anchor, data, bins, target, n_samples, g):
    """Share of samples ``z ~ D(z | anchor)`` with ``argmax f(z) == target``: rows of ``data`` whose
    anchored features are redrawn from ``data`` values in the same bin as ``x``."""
    z = data[torch.randint(0, len(data), (n_samples,), generator=g)].clone()
    for j in anchor.nonzero().flatten().tolist():
        pool = data[bins[:, j] == x_bins[j], j]
        z[:, j] = pool[torch.randint(0, len(pool), (n_samples,), generator=g)]
    with torch.no_grad():
        return float((model(z).argmax(-1) == target).float().mean())


def anchors(
    model: nn.Module,
    inputs: Tensor,
    target=None,
    *,
    data: Tensor,
    n_bins: int = 4,
    threshold: float = 0.95,
    n_samples: int = 500,
    beam_width: int = 2,
    max_size: int | None = None,
    seed: int = 0,
) -> AnchorResult:
    """Anchors: a beam search for the shortest high-precision rule ``AND_j (x_j in bin_j(x))``.

    Features are discretised into ``n_bins`` quantile bins of ``data``. An anchor ``A`` is a set of
    features held in ``x``'s bins; its precision ``P(f(z) = target | z ~ D(z | A))`` is estimated
    on ``n_samples`` perturbations (data rows with the anchored features redrawn from ``x``'s
    bins). From the empty rule, every candidate ``A + {j}`` of the beam is scored; the first size
    at which some candidate reaches ``threshold`` returns the one with the largest coverage,
    otherwise the ``beam_width`` most precise candidates are extended. Fixed sample sizes replace
    the paper's KL-LUCB bandit (simpler, deterministic under ``seed``).

    ``target`` defaults to the model's prediction on each row.

    References
    ----------
    [@ribeiro2018anchors]
    """
    n, d = inputs.shape
    if target is None:
        with torch.no_grad():
            target = model(inputs).argmax(-1)
    target = as_target(target, n)
    qs = torch.linspace(0, 1, n_bins + 1)[1:-1]
    edges = torch.quantile(data.float(), qs, dim=0).T.contiguous()  # (d, n_bins - 1)
    bins = torch.stack([torch.bucketize(data[:, j].contiguous(), edges[j], right=True) for j in range(d)], 1)
    x_bins = torch.stack([torch.bucketize(inputs[:, j].contiguous(), edges[j], right=True) for j in range(d)], 1)
    inf = torch.full((d, 1), float("inf"))
    lo_edges, hi_edges = torch.cat([-inf, edges], 1), torch.cat([edges, inf], 1)
    g = generator(seed)
    result = {k: [] for k in ("mask", "precision", "coverage")}
    for i in range(n):
        beam, best = [torch.zeros(d, dtype=torch.bool)], None
        for _ in range(max_size or d):
            cands = {tuple((a | F.one_hot(torch.tensor(j), d).bool()).tolist())
                     for a in beam for j in range(d) if not a[j]}
            cands = [torch.tensor(c) for c in sorted(cands)]
            if not cands:
                break
            prec = torch.tensor([_anchor_precision(model, x_bins[i], c, data, bins, target[i], n_samples, g)
                                 for c in cands])
            cover = torch.tensor([float((bins[:, c] == x_bins[i, c]).all(1).float().mean()) for c in cands])
            ok = prec >= threshold
            if ok.any():
                k = int(torch.where(ok, cover, -1.0).argmax())
                best = (cands[k], prec[k], cover[k])
                break
            order = prec.argsort(descending=True)[:beam_width]
            beam = [cands[k] for k in order]
            best = (cands[int(order[0])], prec[order[0]], cover[order[0]])
        for key, value in zip(result, best):
            result[key].append(value)
    mask = torch.stack(result["mask"])
    lower = torch.where(mask, lo_edges.T.gather(0, x_bins), -float("inf"))
    upper = torch.where(mask, hi_edges.T.gather(0, x_bins), float("inf"))
    return AnchorResult(mask, lower, upper, torch.stack(result["precision"]), torch.stack(result["coverage"]),
                        target)


def _default_metric(output: Tensor, target: Tensor) -> Tensor:
    """Accuracy for class labels, negative mean squared error for real-valued targets."""
    if target.dtype in (torch.long, torch.int, torch.bool):
        return (output.argmax(-1) == target).float().mean()
    return -(output.reshape(target.shape) - target).square().mean()


def permutation_feature_importance(
    model: nn.Module,
    inputs: Tensor,
    target: Tensor,
    metric: Callable[[Tensor, Tensor], Tensor] | None = None,
    n_repeats: int = 10,
    seed: int = 0,
) -> Tensor:
    """Permutation importance: the drop in ``metric(model(X), y)`` when column ``j`` of ``X`` is shuffled.

    ``I_j = m(X) - 1/R sum_r m(X with column j permuted by pi_r)``, with ``R = n_repeats`` random
    permutations (shared by all features). ``target`` holds the labels ``y`` (class indices,
    or real values for regression); ``metric`` defaults to accuracy, or negative MSE for real
    ``y``. All ``R * d`` permuted copies run as one batch.

    Returns
    -------
    Tensor ``(d,)``; for a linear model ``w.x`` scored by negative MSE against its own output
    the expectation is ``2 w_j^2 Var(x_j)``.

    References
    ----------
    [@breiman2001random]
    """
    metric = metric or _default_metric
    n, d = inputs.shape
    g = generator(seed)
    perms = torch.stack([torch.randperm(n, generator=g) for _ in range(n_repeats)])  # (R, n)
    x = inputs[None, None].repeat(n_repeats, d, 1, 1)  # (R, d, n, d)
    cols = torch.arange(d)
    x[:, cols, :, cols] = inputs[perms][..., cols].permute(2, 0, 1)  # column j of copy (r, j) permuted
    with torch.no_grad():
        base = float(metric(model(inputs), target))
        out = model(x.reshape(-1, d))
        out = out.reshape(n_repeats * d, n, *out.shape[1:])
        scores = torch.stack([torch.as_tensor(metric(o, target), dtype=torch.float) for o in out])
    scores = scores.view(n_repeats, d)
    return base - scores.mean(0)


@dataclasses.dataclass
class PartialDependence:
    """``grid (G,)``; ``ice (N, G)``: each row's prediction as the feature sweeps the grid;
    ``average (G,)``: their mean, the partial-dependence curve."""

    grid: Tensor
    average: Tensor
    ice: Tensor


def partial_dependence(
    model: nn.Module,
    inputs: Tensor,
    target,
    feature: int,
    grid: Tensor | None = None,
    n_grid: int = 20,
    probs: bool = False,
) -> PartialDependence:
    """Partial dependence and ICE curves of the target output on one feature.

    ``ICE_i(v) = f_c(x_i with x_ij := v)`` and ``PD(v) = 1/N sum_i ICE_i(v)`` for ``v`` on ``grid``
    (default: ``n_grid`` points between the 5th and 95th percentile of the feature). ``f_c`` is
    the target logit, or its softmax probability with ``probs=True``. One batched forward pass of
    ``N * G`` rows. For an additive model ``g(x_j) + h(x_rest)``, every ICE curve is ``g`` shifted.

    References
    ----------
    [@friedman2001greedy]
    """
    n = inputs.shape[0]
    if grid is None:
        lo, hi = torch.quantile(inputs[:, feature].float(), torch.tensor([0.05, 0.95]))
        grid = torch.linspace(float(lo), float(hi), n_grid)
    grid = grid.to(inputs.dtype)
    x = inputs[:, None].repeat(1, len(grid), 1)  # (N, G, d)
    x[:, :, feature] = grid
    t = as_target(target, n).repeat_interleave(len(grid))
    with torch.no_grad():
        out = model(x.reshape(n * len(grid), -1))
        out = out.softmax(-1) if probs else out
        ice = target_scores(lambda _: out, None, t).view(n, len(grid))
    return PartialDependence(grid, ice.mean(0), ice)
