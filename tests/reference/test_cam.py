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
