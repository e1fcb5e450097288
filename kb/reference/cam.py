"""Class activation mapping: Grad-CAM."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import as_target, capture_outputs, resolve_module, select_target, single_or_batch

__all__ = ["grad_cam"]


@single_or_batch
def grad_cam(
    model: nn.Module,
    inputs: Tensor,
    target,
    layer: nn.Module | str,
    upsample: bool = True,
    mode: str = "bilinear",
) -> Tensor:
    """Grad-CAM: ReLU of the channels of ``layer`` weighted by their spatially averaged gradients.

    ``L = ReLU(sum_k alpha_k A^k)``, ``alpha_k = mean_{ij} d f_c / d A^k_{ij}`` for the
    ``(N, K, h, w)`` output ``A`` of ``layer`` (a module or a dotted name).

    Parameters
    ----------
    upsample : bool
        ``True``: the map interpolated (``mode``: ``"bilinear"`` or Captum's default ``"nearest"``)
        to the input's spatial size, ``(N, 1, H, W)``, one map shared by all input channels
        (broadcastable to ``inputs``). ``False``: the layer-resolution map ``(N, 1, h, w)``.

    References
    ----------
    [@selvaraju2017gradcam]
    """
    module = resolve_module(model, layer)
    with capture_outputs([module]) as store:
        out = model(inputs.detach().clone().requires_grad_(True))  # so a layer right at the input has a graph
    acts = store[0][-1]
    (grads,) = torch.autograd.grad(select_target(out, as_target(target, inputs.shape[0])).sum(), acts)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * acts).sum(1, keepdim=True)).detach()
    if upsample:
        kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        cam = F.interpolate(cam, size=inputs.shape[2:], mode=mode, **kwargs)
    return cam
