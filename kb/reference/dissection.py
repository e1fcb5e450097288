"""Network dissection: IoU between each unit's thresholded activation map and each concept's segmentation mask."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import batched_forward, capture_outputs, resolve_module

__all__ = ["unit_masks", "network_dissection"]


def unit_masks(activations: Tensor, size: tuple[int, int], quantile: float = 0.995) -> Tensor:
    """Binary masks ``(N, U, H, W)``: each unit's map upsampled (bilinear) to ``size`` and thresholded at ``T_u``.

    ``T_u`` is the ``quantile`` of unit ``u``'s activations over the whole dataset and every
    location (before upsampling); a pixel is on where the upsampled map is ``>= T_u``. A unit whose
    ``T_u`` is its minimum (e.g. a ReLU that is zero almost everywhere) gets an empty mask, not a full one.
    """
    n, u = activations.shape[:2]
    flat = activations.transpose(0, 1).reshape(u, -1).float()
    thresholds = torch.quantile(flat, quantile, dim=1)  # (U,)
    alive = thresholds > flat.min(1).values
    up = F.interpolate(activations.float(), size=size, mode="bilinear", align_corners=False)
    return (up >= thresholds.view(1, u, 1, 1)) & alive.view(1, u, 1, 1)


def network_dissection(
    model: nn.Module,
    inputs: Tensor,
    layer: nn.Module | str,
    concept_masks: Tensor,
    quantile: float = 0.995,
    batch_size: int | None = None,
) -> Tensor:
    """Network dissection: ``IoU[u, c] = sum |M_u & L_c| / sum |M_u | L_c|`` over the dataset.

    ``M_u`` are the unit masks of :func:`unit_masks` for ``layer``'s output ``(N, U, h, w)`` on
    ``inputs``; ``L_c`` the binary ``concept_masks`` ``(N, C, H, W)`` at input resolution. A unit
    is a detector for concept ``c`` when its IoU is high (Bau et al. count IoU > 0.04 on Broden).
    Sums run over all images, so a concept absent from an image adds the unit's false positives
    there to the union.

    Returns
    -------
    Tensor ``(U, C)``.

    References
    ----------
    [@bau2017network]
    """
    module = resolve_module(model, layer)

    def activations(x: Tensor) -> Tensor:
        with capture_outputs([module], detach=True) as store:
            model(x)
        return store[0][-1]

    with torch.no_grad():
        acts = batched_forward(activations, inputs, batch_size)
    masks = unit_masks(acts, tuple(concept_masks.shape[-2:]), quantile).float()
    concepts = concept_masks.float()
    inter = torch.einsum("nuhw,nchw->uc", masks, concepts)
    union = masks.sum((0, 2, 3))[:, None] + concepts.sum((0, 2, 3))[None] - inter
    return inter / union.clamp_min(1)
