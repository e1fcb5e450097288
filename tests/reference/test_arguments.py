"""Argument handling on the shapes people have: integer windows for any channel count, single or
batched inputs, a layer given by name or by module (issue 13, section 2)."""

import pytest
import torch
from torch import nn

from kb.reference import (deeplift, grad_cam, gradient_x_input, guided_backprop, integrated_gradients,
                          occlusion, saliency, smoothgrad)


def _cnn(channels: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3)).eval()


@pytest.mark.parametrize("channels", [1, 3])
def test_integer_occlusion_window_covers_all_channels(channels):
    model, x = _cnn(channels), torch.rand(2, channels, 16, 16)
    ours = occlusion(model, x, 1, window=8, stride=8)  # was: "window (8, 8, 8) larger than input (1, 64, 64)"
    explicit = occlusion(model, x, 1, window=(channels, 8, 8), stride=(channels, 8, 8))
    torch.testing.assert_close(ours, explicit)
    spatial = occlusion(model, x, 1, window=(8, 8), stride=(8, 8))
    torch.testing.assert_close(spatial, explicit)
    # one window spans every channel: the attribution is constant across channels within a patch
    assert torch.allclose(ours, ours[:, :1].expand_as(ours))


def test_occlusion_integer_window_on_tabular_rows(tabular):
    model, x = tabular.model, tabular.inputs[:4]
    torch.testing.assert_close(occlusion(model, x, 0, 2, 2), occlusion(model, x, 0, (2,), (2,)))


def test_occlusion_window_too_large_is_a_clear_error():
    with pytest.raises(ValueError, match="larger than"):
        occlusion(_cnn(1), torch.rand(1, 1, 8, 8), 0, window=16, stride=4)


@pytest.mark.parametrize("method", [
    saliency, gradient_x_input, guided_backprop, deeplift,
    lambda m, x, t: smoothgrad(m, x, t, n_samples=3),
    lambda m, x, t: integrated_gradients(m, x, t, n_steps=8),
    lambda m, x, t: occlusion(m, x, t, window=4, stride=4),
], ids=["saliency", "gradxinput", "guided", "deeplift", "smoothgrad", "ig", "occlusion"])
def test_single_image_without_batch_dimension(method):
    model, x = _cnn(1), torch.rand(3, 1, 16, 16)
    single = method(model, x[1], 2)
    assert single.shape == x[1].shape
    torch.testing.assert_close(single, method(model, x[1:2], 2)[0])


def test_single_tabular_row(tabular):
    model, x = tabular.model, tabular.inputs[:3]
    torch.testing.assert_close(saliency(model, x[0], 1), saliency(model, x, 1)[0])


def test_grad_cam_layer_by_name_or_module_and_single_input():
    model, x = _cnn(1), torch.rand(2, 1, 16, 16)
    by_module = grad_cam(model, x, 0, model[3])
    torch.testing.assert_close(grad_cam(model, x, 0, "3"), by_module)
    single = grad_cam(model, x[0], 0, "3")
    assert single.shape == (1, 16, 16)
    torch.testing.assert_close(single, by_module[0])


def test_unknown_layer_names_the_alternatives():
    model = _cnn(1)
    with pytest.raises(ValueError, match="no submodule 'features'.*'0'"):
        grad_cam(model, torch.rand(1, 1, 16, 16), 0, "features")
    other = _cnn(1)
    with pytest.raises(ValueError, match="not a submodule"):
        grad_cam(model, torch.rand(1, 1, 16, 16), 0, other[3])  # a layer of another model (e.g. the original of a copy)


def test_a_new_users_own_single_channel_cnn():
    """Issue 13's scenario: a user's own 1x64x64 CNN with named blocks, the checks, an integer occlusion window."""
    from kb.reference import check_attributions, occlusion

    class UserCNN(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.features = nn.Sequential(nn.Conv2d(1, 4, 5, stride=2, padding=2), nn.ReLU(),
                                          nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU())
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))

        def forward(self, x):
            return self.head(self.features(x))

    model, x = UserCNN().eval(), torch.rand(4, 1, 64, 64)
    assert occlusion(model, x, 1, window=8, stride=8).shape == (4, 1, 64, 64)
    assert occlusion(model, x[0], 1, window=8, stride=8).shape == (1, 64, 64)
    checks = check_attributions(model, x, 1, lambda m, xs, t: grad_cam(m, xs, t, "features.3"))
    assert checks.randomization.steps == ["head.2", "features.2", "features.0"]
    assert len(str(checks).splitlines()) == 3
