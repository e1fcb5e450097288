"""Grad-CAM: shapes, non-negativity, agreement with Captum's LayerGradCam + interpolate."""

import warnings

import pytest
import torch

from kb.reference import grad_cam

captum_attr = pytest.importorskip("captum.attr")
warnings.filterwarnings("ignore", category=UserWarning)


def test_grad_cam_shapes_and_sign(shapes):
    model, x, t = shapes.model, shapes.inputs[:6], shapes.labels[:6]
    low = grad_cam(model, x, t, model[4], upsample=False)
    high = grad_cam(model, x, t, "4")
    assert low.shape == (6, 1, 8, 8) and high.shape == (6, 1, 16, 16)
    assert (low >= 0).all() and (high >= 0).all()


@pytest.mark.parametrize("layer_index", [1, 4])
def test_grad_cam_matches_captum(shapes, layer_index):
    model, x, t = shapes.model, shapes.inputs[:6], shapes.labels[:6]
    layer = model[layer_index]
    raw = captum_attr.LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)
    torch.testing.assert_close(grad_cam(model, x, t, layer, upsample=False), raw.detach())
    up = captum_attr.LayerAttribution.interpolate(raw, x.shape[2:], interpolate_mode="nearest")
    torch.testing.assert_close(grad_cam(model, x, t, layer, mode="nearest"), up.detach())


def test_grad_cam_highlights_the_shape(shapes):
    model, x, t = shapes.model, shapes.inputs[:32], shapes.labels[:32]
    cam = grad_cam(model, x, t, model[4])[:, 0]
    inside = x[:, 0] > 0.5
    share = (cam * inside).sum() / cam.sum()
    assert share > 2 * inside.float().mean()  # far more mass on the object than its area


def test_grad_cam_removes_its_hook_after_an_error(shapes, no_hooks):
    model = shapes.model
    with pytest.raises(RuntimeError):
        grad_cam(model, torch.zeros(2, 3, 16, 16), 0, model[4])  # wrong channel count
    assert no_hooks(model)


# --- Grad-CAM++, LayerCAM, Score-CAM, Eigen-CAM ---------------------------------------------------------
# Compared once with pytorch-grad-cam 1.5.7 (scratch environment, not a project dependency) on the shapes
# CNN, layers 1 and 4, 8 images: Grad-CAM++ 8e-8, LayerCAM 0, Score-CAM ("channel-softmax", layer 1) 0,
# Eigen-CAM (center=True, up to the SVD's sign) 5e-7 max relative difference. The tests below keep the
# analytic properties and a numpy transcription of pytorch-grad-cam's Grad-CAM++ weights.

import numpy as np  # noqa: E402
from torch import nn  # noqa: E402

from kb.reference import eigen_cam, grad_cam_plus_plus, layer_cam, score_cam  # noqa: E402


def _pooled_head(weight: torch.Tensor, channels_in: int = 2) -> nn.Sequential:
    """1x1 conv (the CAM layer, no bias) -> global average pool -> linear head with the given weights."""
    k = weight.shape[1]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(channels_in, k, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(k, weight.shape[0]))
    with torch.no_grad():
        model[3].weight.copy_(weight)
    return model


def test_grad_cam_plus_plus_is_hw_over_two_grad_cams_when_higher_order_terms_vanish():
    # zero-mean inputs through a bias-free 1x1 conv: every channel sums to 0 over space, and the
    # pooled head makes the gradient constant per channel, g_k = W_ck / (h w): alpha = g^2 / (2 g^2 + eps).
    weight = torch.tensor([[0.5, 1.0, 2.0], [1.0, 1.0, 1.0]])
    model = _pooled_head(weight)
    x = torch.randn(3, 2, 4, 4)
    x = x - x.mean(dim=(2, 3), keepdim=True)
    g = weight[0] / 16
    scale = 16 * (g.pow(2) / (2 * g.pow(2) + 1e-6))  # h w alpha: -> 8 = h w / 2 as eps -> 0
    expected = torch.relu((scale * g).view(1, 3, 1, 1).mul(model[0](x)).sum(1, keepdim=True))
    torch.testing.assert_close(grad_cam_plus_plus(model, x, 0, model[0], upsample=False), expected)
    torch.testing.assert_close(grad_cam_plus_plus(model, x, 0, "0", upsample=False),
                               8 * grad_cam(model, x, 0, "0", upsample=False), rtol=2e-3, atol=1e-6)


def test_grad_cam_plus_plus_gives_negative_gradient_channels_no_weight():
    model = _pooled_head(torch.tensor([[1.0, -3.0]]), channels_in=1)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    x = torch.rand(2, 1, 4, 4)  # both channels equal x; the second enters the logit negatively
    assert grad_cam(model, x, 0, "0").sum() == 0  # Grad-CAM: (1 - 3) x < 0, ReLU'd away
    assert grad_cam_plus_plus(model, x, 0, "0").sum() > 0  # Grad-CAM++ keeps only the positive channel


def test_layer_cam_equals_grad_cam_for_constant_positive_gradients():
    model = _pooled_head(torch.tensor([[0.3, 1.2, 0.7]]))
    x = torch.randn(4, 2, 6, 6)
    torch.testing.assert_close(layer_cam(model, x, 0, "0"), grad_cam(model, x, 0, "0"))


def test_layer_cam_keeps_position_specific_gradients(shapes):
    model, x, t = shapes.model, shapes.inputs[:6], shapes.labels[:6]
    acts, g = [], []
    h = model[1].register_forward_hook(lambda _m, _i, o: acts.append(o))
    try:
        out = model(x)
    finally:
        h.remove()
    (grads,) = torch.autograd.grad(out.gather(1, t[:, None]).sum(), acts[0])
    expected = torch.relu((torch.relu(grads) * acts[0]).sum(1, keepdim=True)).detach()
    torch.testing.assert_close(layer_cam(model, x, t, model[1], upsample=False), expected)


def test_score_cam_weight_is_the_probability_increase():
    # one channel: the map is ReLU(w A) with w = p_c(x * H) - p_c(0), H = A min-max scaled
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(36, 3))
    x = torch.rand(1, 1, 6, 6)
    a = model[:2](x).detach()
    h = (a - a.min()) / (a.max() - a.min())
    with torch.no_grad():
        w = model(x * h).softmax(1)[0, 2] - model(torch.zeros_like(x)).softmax(1)[0, 2]
    torch.testing.assert_close(score_cam(model, x, 2, "1"), torch.relu(w * a))
    with torch.no_grad():
        p = model(x * h).softmax(1)[0, 2]
    torch.testing.assert_close(score_cam(model, x, 2, "1", weighting="probability"), torch.relu(p * a))


@pytest.mark.parametrize("weighting", ["increase", "probability", "channel-softmax"])
def test_score_cam_matches_a_loop_over_channels(shapes, weighting):
    model, x, t = shapes.model, shapes.inputs[:2], shapes.labels[:2]
    layer = model[4]
    ours = score_cam(model, x, t, layer, weighting=weighting, batch_size=7)
    with torch.no_grad():
        for i in range(2):
            a = model[:5](x[i:i + 1])[0]  # (K, 8, 8)
            up = torch.nn.functional.interpolate(a[None], size=(16, 16), mode="bilinear", align_corners=False)[0]
            scores, base = [], model(torch.zeros_like(x[i:i + 1])).softmax(1)[0, t[i]]
            for k in range(a.shape[0]):
                m = up[k]
                m = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else torch.zeros_like(m)
                logits = model(x[i:i + 1] * m)[0]
                scores.append({"increase": logits.softmax(0)[t[i]] - base, "probability": logits.softmax(0)[t[i]],
                               "channel-softmax": logits[t[i]]}[weighting])
            w = torch.stack(scores)
            w = w.softmax(0) if weighting == "channel-softmax" else w
            cam = torch.relu((w[:, None, None] * a).sum(0))
            expected = torch.nn.functional.interpolate(cam[None, None], size=(16, 16), mode="bilinear",
                                                       align_corners=False)[0]
            torch.testing.assert_close(ours[i], expected, atol=1e-6, rtol=1e-5)


def test_grad_cam_plus_plus_matches_pytorch_grad_cam_formula(shapes):
    """pytorch-grad-cam 1.5.7 GradCAMPlusPlus.get_cam_weights, transcribed in numpy."""
    model, x, t = shapes.model, shapes.inputs[:8], shapes.labels[:8]
    acts = model[:5](x).detach()
    a = acts.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model[5:](a).gather(1, t[:, None]).sum(), a)
    grads, activations = g.numpy(), acts.numpy()
    grads_power_2 = grads ** 2
    grads_power_3 = grads_power_2 * grads
    sum_activations = np.sum(activations, axis=(2, 3))
    aij = grads_power_2 / (2 * grads_power_2 + sum_activations[:, :, None, None] * grads_power_3 + 0.000001)
    aij = np.where(grads != 0, aij, 0)
    weights = np.sum(np.maximum(grads, 0) * aij, axis=(2, 3))
    cam = np.maximum((weights[:, :, None, None] * activations).sum(axis=1), 0)
    torch.testing.assert_close(grad_cam_plus_plus(model, x, t, model[4], upsample=False)[:, 0],
                               torch.from_numpy(cam))


def test_eigen_cam_recovers_a_rank_one_pattern():
    # A^k = a_k P with P >= 0: M = P a^T, v_1 = a / |a|, the map is |a| P
    model = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.Flatten(), nn.Linear(4 * 25, 2))
    a = torch.tensor([0.5, 1.0, 2.0, 0.1])
    with torch.no_grad():
        model[0].weight.copy_(a.view(4, 1, 1, 1))
    p = torch.rand(3, 1, 5, 5)
    torch.testing.assert_close(eigen_cam(model, p, None, "0", upsample=False), a.norm() * p)


@pytest.mark.parametrize("method", [grad_cam_plus_plus, layer_cam, score_cam, eigen_cam])
def test_cam_variants_remove_their_hooks_and_accept_names(shapes, method, no_hooks):
    model, x, t = shapes.model, shapes.inputs[:3], shapes.labels[:3]
    torch.testing.assert_close(method(model, x, t, "4"), method(model, x, t, model[4]))
    assert method(model, x[0], t[0], "4").shape == (1, 16, 16)
    with pytest.raises(RuntimeError):
        method(model, torch.zeros(2, 3, 16, 16), 0, model[4])
    assert no_hooks(model)
