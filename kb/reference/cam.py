"""Class activation mapping: Grad-CAM and its variants (Grad-CAM++, Score-CAM, LayerCAM, Eigen-CAM)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import as_target, batched_forward, capture_outputs, resolve_module, select_target, single_or_batch

__all__ = ["grad_cam", "grad_cam_plus_plus", "score_cam", "layer_cam", "eigen_cam"]


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
    acts, grads = _activations_and_gradients(model, inputs, target, layer)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return _finish(F.relu((weights * acts).sum(1, keepdim=True)), inputs, upsample, mode)


def _activations_and_gradients(model, inputs: Tensor, target, layer, grad: bool = True) -> tuple[Tensor, Tensor | None]:
    """``layer``'s output ``A`` (N, K, h, w) on ``model(inputs)`` and ``d f_c / d A`` (or None), both detached."""
    module = resolve_module(model, layer)
    with capture_outputs([module]) as store:
        with torch.set_grad_enabled(grad):
            out = model(inputs.detach().clone().requires_grad_(grad))  # so a layer right at the input has a graph
    acts = store[0][-1]
    if acts.ndim != 4:
        raise ValueError(f"CAM methods need a layer with (N, K, h, w) outputs; {layer!r} gives {tuple(acts.shape)}")
    if not grad:
        return acts.detach(), None
    (grads,) = torch.autograd.grad(select_target(out, as_target(target, inputs.shape[0])).sum(), acts)
    return acts.detach(), grads


def _finish(cam: Tensor, inputs: Tensor, upsample: bool, mode: str) -> Tensor:
    """The ``(N, 1, h, w)`` map, detached, interpolated to the input's spatial size when ``upsample``."""
    cam = cam.detach()
    if upsample:
        kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        cam = F.interpolate(cam, size=inputs.shape[2:], mode=mode, **kwargs)
    return cam


@single_or_batch
def grad_cam_plus_plus(
    model: nn.Module, inputs: Tensor, target, layer: nn.Module | str, upsample: bool = True,
    mode: str = "bilinear", eps: float = 1e-6,
) -> Tensor:
    """Grad-CAM++: channel weights from positive gradients, each position weighted by ``alpha``.

    ``w_k = sum_ij alpha^k_ij ReLU(g^k_ij)`` with ``g = d f_c / d A`` and
    ``alpha^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3 + eps)`` (0 where ``g = 0``), the closed
    form of the paper's Eq. 19 for an exponential output ``exp(f_c)``; the factor ``exp(f_c)``
    it puts on every weight is dropped (it scales the map, as in pytorch-grad-cam).
    ``L = ReLU(sum_k w_k A^k)``. When ``sum_ab A^k_ab = 0`` and the gradient is constant per
    channel (a global-average-pooled linear head), ``alpha = 1/2`` and the map is
    ``h w / 2`` times Grad-CAM's wherever the head's weights are positive. Channels whose
    gradients are all negative get weight 0 (Grad-CAM gives them a negative weight).
    Arguments and output as :func:`grad_cam`.

    References
    ----------
    [@chattopadhay2018gradcam]
    """
    acts, g = _activations_and_gradients(model, inputs, target, layer)
    g2, g3 = g.pow(2), g.pow(3)
    alpha = g2 / (2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g3 + eps)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    weights = (alpha * F.relu(g)).sum(dim=(2, 3), keepdim=True)
    return _finish(F.relu((weights * acts).sum(1, keepdim=True)), inputs, upsample, mode)


@single_or_batch
def layer_cam(
    model: nn.Module, inputs: Tensor, target, layer: nn.Module | str, upsample: bool = True,
    mode: str = "bilinear",
) -> Tensor:
    """LayerCAM: every position of every channel weighted by its own positive gradient.

    ``L = ReLU(sum_k ReLU(g^k) * A^k)``, ``g = d f_c / d A``. Where the gradient is constant
    and positive in each channel it equals Grad-CAM; it keeps fine detail at shallow layers,
    where Grad-CAM's spatial average does not. Arguments and output as :func:`grad_cam`.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    >>> _ = model[3].weight.data.abs_()  # a pooled head with positive weights: constant positive gradients
    >>> x = torch.randn(2, 1, 4, 4)
    >>> bool(torch.allclose(layer_cam(model, x, 0, "0"), grad_cam(model, x, 0, "0")))
    True

    References
    ----------
    [@jiang2021layercam]
    """
    acts, g = _activations_and_gradients(model, inputs, target, layer)
    return _finish(F.relu((F.relu(g) * acts).sum(1, keepdim=True)), inputs, upsample, mode)


@single_or_batch
def score_cam(
    model: nn.Module, inputs: Tensor, target, layer: nn.Module | str, upsample: bool = True,
    mode: str = "bilinear", weighting: str = "increase", batch_size: int | None = 256,
) -> Tensor:
    """Score-CAM: channel weights from the class score of the input masked by each channel (no gradients).

    Each channel ``A^k`` is upsampled to the input size and min-max scaled to ``[0, 1]``
    (``H^k``); the masked input ``x * H^k`` is scored, ``s_k = softmax(f(x * H^k))_c``.
    ``weighting="increase"`` (the paper's "increase of confidence", Eq. 2-3) uses
    ``w_k = s_k - softmax(f(0))_c``, the gain over the all-zero baseline image;
    ``"probability"`` uses ``s_k`` (the authors' released code); ``"channel-softmax"`` uses the
    softmax over channels of the masked inputs' logits (pytorch-grad-cam). Then
    ``L = ReLU(sum_k w_k A^k)``. Costs ``K`` forward passes per input, run in batches of
    ``batch_size``. Arguments and output as :func:`grad_cam`.

    References
    ----------
    [@wang2020scorecam]
    """
    acts, _ = _activations_and_gradients(model, inputs, target, layer, grad=False)
    n, k = acts.shape[:2]
    t = as_target(target, n)
    up = F.interpolate(acts, size=inputs.shape[2:], mode="bilinear", align_corners=False)
    lo, hi = up.amin(dim=(2, 3), keepdim=True), up.amax(dim=(2, 3), keepdim=True)
    masks = torch.where(hi > lo, (up - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(up))  # (N, K, H, W)
    masked = (inputs[:, None] * masks[:, :, None]).reshape(n * k, *inputs.shape[1:])  # (N*K, C, H, W)
    with torch.no_grad():
        logits = batched_forward(model, masked, batch_size).view(n, k, -1)
        chosen = logits.gather(2, t.view(n, 1, 1).expand(n, k, 1)).squeeze(2)  # (N, K)
        if weighting == "channel-softmax":
            weights = chosen.softmax(1)
        elif weighting in ("increase", "probability"):
            weights = logits.softmax(2).gather(2, t.view(n, 1, 1).expand(n, k, 1)).squeeze(2)
            if weighting == "increase":
                weights = weights - select_target(model(torch.zeros_like(inputs)).softmax(1), t)[:, None]
        else:
            raise ValueError(f"weighting must be 'increase', 'probability' or 'channel-softmax', not {weighting!r}")
    return _finish(F.relu((weights[:, :, None, None] * acts).sum(1, keepdim=True)), inputs, upsample, mode)


@single_or_batch
def eigen_cam(
    model: nn.Module, inputs: Tensor, target=None, layer: nn.Module | str | None = None, upsample: bool = True,
    mode: str = "bilinear", center: bool = False,
) -> Tensor:
    """Eigen-CAM: the layer's activations projected on their first principal direction (class-agnostic).

    For each input, the ``(h w, K)`` matrix ``M`` of ``layer``'s activations is factored
    ``M = U S V^T`` and the map is ``ReLU(M v_1)``, ``v_1`` the first right singular vector,
    its sign chosen so the map correlates positively with ``sum_k A^k``. ``target`` is ignored
    (kept for the shared signature). ``center=True`` subtracts each channel's spatial mean
    first, as pytorch-grad-cam does; the paper does not. For rank-one activations
    ``A^k = a_k P`` the map is ``||a|| P``.

    References
    ----------
    [@muhammad2020eigencam]
    """
    if layer is None:
        raise ValueError("eigen_cam needs a layer (a module or its name)")
    acts, _ = _activations_and_gradients(model, inputs, target, layer, grad=False)
    n, k, h, w = acts.shape
    m = acts.reshape(n, k, h * w).transpose(1, 2)  # (N, hw, K)
    if center:
        m = m - m.mean(1, keepdim=True)
    v1 = torch.linalg.svd(m, full_matrices=False).Vh[:, 0]  # (N, K)
    proj = (m @ v1[:, :, None]).squeeze(2)  # (N, hw)
    sign = torch.sign((proj * acts.sum(1).reshape(n, h * w)).sum(1, keepdim=True))
    proj = proj * torch.where(sign == 0, torch.ones_like(sign), sign)
    return _finish(F.relu(proj).view(n, 1, h, w), inputs, upsample, mode)
