"""Optimised perturbation masks: meaningful perturbation (the deletion game of Fong and Vedaldi 2017)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import as_target, select_target, single_or_batch

__all__ = ["meaningful_perturbation"]


def _total_variation(m: Tensor, beta: float) -> Tensor:
    """``mean_u |d_h m(u)|^beta + mean_u |d_w m(u)|^beta`` per example, for ``(N, 1, h, w)`` masks."""
    dh = (m[:, :, 1:, :] - m[:, :, :-1, :]).abs().pow(beta).mean(dim=(1, 2, 3))
    dw = (m[:, :, :, 1:] - m[:, :, :, :-1]).abs().pow(beta).mean(dim=(1, 2, 3))
    return dh + dw


@single_or_batch
def meaningful_perturbation(
    model: nn.Module,
    inputs: Tensor,
    target,
    mask_size: int | tuple[int, int] = 28,
    area: float = 0.2,
    smoothness: float = 0.2,
    tv_beta: float = 3.0,
    n_steps: int = 300,
    lr: float = 0.1,
    baseline: float | Tensor | str = "blur",
    blur_sigma: float | None = None,
    init: float = 0.5,
) -> Tensor:
    """Meaningful perturbation: the smallest, smoothest region whose deletion destroys the class score.

    Learns a mask ``m`` in ``[0, 1]`` (1 keeps a pixel, 0 deletes it) of ``mask_size`` (the paper's
    28 x 28 for 224 x 224 images; never finer than the input), upsampled bilinearly to ``M``, by
    minimising with Adam (``lr``, ``n_steps``)

    ``p_c(x * M + b * (1 - M)) + area * mean|1 - m| + smoothness * TV_beta(m)``

    (the "deletion game", Eq. 3-4 of the paper), where ``p_c`` is the target's softmax probability,
    ``b`` the ``baseline`` (``"blur"``: the Gaussian-blurred input, the paper's choice,
    ``blur_sigma`` default ``max(H, W) / 8``; or a number or tensor) and ``TV_beta`` the total
    variation of :func:`_total_variation` (``tv_beta = 3`` as in the paper). ``m`` starts at ``init`` and is
    clipped to ``[0, 1]`` after every step; the default 0.5 (half deleted) matters for confident
    models: starting from 1, a saturated class probability has no gradient and the mask can stay
    empty although a deletion that removes the class exists. The paper's random jitter and noise on the mask are left
    out; the penalties are means over mask positions, so ``area`` and ``smoothness`` do not depend
    on the image size. Every example is optimised independently in one batch (deterministic: no
    random draws). A coarse mask cannot outline a small object: bilinear upsampling spreads each
    mask cell over ``H / mask_size`` pixels and the area penalty then prefers no deletion.

    Returns
    -------
    Tensor ``(N, 1, H, W)``: ``1 - M``, high where deleting the pixel lowers the class score.

    References
    ----------
    [@fong2017interpretable]
    """
    if inputs.ndim != 4:
        raise ValueError("meaningful_perturbation needs (N, C, H, W) images")
    n, (h, w) = inputs.shape[0], inputs.shape[2:]
    t = as_target(target, n)
    x = inputs.detach()
    if isinstance(baseline, str):
        if baseline != "blur":
            raise ValueError(f"baseline must be 'blur', a number or a tensor, not {baseline!r}")
        from .visualization import gaussian_blur
        base = gaussian_blur(x, blur_sigma if blur_sigma is not None else max(h, w) / 8)
    else:
        base = torch.broadcast_to(torch.as_tensor(baseline, dtype=x.dtype), x.shape)
    mh, mw = (mask_size, mask_size) if isinstance(mask_size, int) else mask_size
    m = torch.full((n, 1, min(mh, h), min(mw, w)), float(init), requires_grad=True)
    opt = torch.optim.Adam([m], lr=lr)
    for _ in range(n_steps):
        up = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        prob = select_target(model(x * up + base * (1 - up)).softmax(1), t)
        loss = (prob + area * (1 - m).abs().mean(dim=(1, 2, 3)) + smoothness * _total_variation(m, tv_beta)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            m.clamp_(0, 1)
    return 1 - F.interpolate(m.detach(), size=(h, w), mode="bilinear", align_corners=False)
