"""Gradient and perturbation attribution: analytic answers and agreement with Captum."""

import warnings

import pytest
import torch
from torch import nn

from kb.reference import (deeplift, gradient_x_input, guided_backprop, integrated_gradients, models,
                          occlusion, saliency, smoothgrad)

captum_attr = pytest.importorskip("captum.attr")
warnings.filterwarnings("ignore", category=UserWarning)


@pytest.fixture()
def rows(tabular):
    return tabular.model, tabular.inputs[:16], tabular.labels[:16]


# --- analytic ------------------------------------------------------------------------------------

def test_gradient_x_input_on_linear_model_is_weight_times_input():
    w = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]])
    model, x = models.LinearModel(w), torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    torch.testing.assert_close(gradient_x_input(model, x, 0), x * w[0])
    torch.testing.assert_close(saliency(model, x, torch.tensor([0, 1])), w.abs())
    torch.testing.assert_close(saliency(model, x, 1, abs=False), w[1].expand(2, 3))


@pytest.mark.parametrize("method", ["riemann_trapezoid", "riemann_middle", "gausslegendre"])
def test_integrated_gradients_completeness_error_shrinks(rows, method):
    model, x, t = rows
    with torch.no_grad():
        delta = model(x).gather(1, t[:, None])[:, 0] - model(torch.zeros_like(x)).gather(1, t[:, None])[:, 0]
    errors = [float((integrated_gradients(model, x, t, n_steps=n, method=method).sum(1) - delta).abs().max())
              for n in (4, 16, 64, 256)]
    assert errors[-1] < 1e-3 * float(delta.abs().max())  # logits reach ~70 on this MLP
    assert errors[-1] < errors[0] / 50
    assert all(b <= a * 1.5 + 1e-5 for a, b in zip(errors, errors[1:]))  # monotone up to float noise


def test_integrated_gradients_sees_past_saturation():
    model, x = models.saturating_model(), torch.tensor([[2.0]])
    assert float(saliency(model, x, 0)) == 0.0  # the gradient vanishes past x = 1
    torch.testing.assert_close(integrated_gradients(model, x, 0, n_steps=1000, method="riemann_middle"),
                               torch.tensor([[1.0]]), atol=2e-3, rtol=0)


def test_integrated_gradients_batches_steps_not_loops(rows):
    model, x, t = rows
    calls = []
    handle = model.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    try:
        integrated_gradients(model, x, t, n_steps=50)
        assert calls == [50 * len(x)]
        calls.clear()
        chunked = integrated_gradients(model, x, t, n_steps=50, batch_size=200)
        assert len(calls) == 4 and sum(calls) == 800
    finally:
        handle.remove()
    torch.testing.assert_close(chunked, integrated_gradients(model, x, t, n_steps=50))


def test_deeplift_summation_to_delta(rows):
    model, x, t = rows
    base = 0.1 * torch.ones_like(x)
    attr = deeplift(model, x, t, baselines=base)
    with torch.no_grad():
        delta = model(x).gather(1, t[:, None])[:, 0] - model(base).gather(1, t[:, None])[:, 0]
    torch.testing.assert_close(attr.sum(1), delta, atol=1e-4, rtol=1e-4)


def _literal_occlusion(model, x, t, window, stride, baseline=0.0):
    """Slow literal version: loop over every window position of one example."""
    n, length = x.shape
    total, count = torch.zeros_like(x), torch.zeros_like(x)
    start = 0
    with torch.no_grad():
        full = model(x).gather(1, t[:, None])[:, 0]
        while True:
            occ = x.clone()
            occ[:, start:start + window] = baseline
            drop = full - model(occ).gather(1, t[:, None])[:, 0]
            total[:, start:start + window] += drop[:, None]
            count[:, start:start + window] += 1
            if start + window >= length:
                break
            start += stride
    return total / count


@pytest.mark.parametrize("window,stride", [(1, 1), (3, 2), (3, 3), (5, 4)])
def test_occlusion_matches_literal_loop(rows, window, stride):
    model, x, t = rows
    torch.testing.assert_close(occlusion(model, x, t, (window,), (stride,)),
                               _literal_occlusion(model, x, t, window, stride), atol=1e-5, rtol=1e-5)


def test_occlusion_single_feature_on_linear_model():
    w = torch.tensor([[1.0, -2.0, 3.0, 0.5]])
    x = torch.tensor([[1.0, 2.0, -1.0, 4.0]])
    torch.testing.assert_close(occlusion(models.LinearModel(w), x, 0, 1, 1), x * w)


def test_smoothgrad_zero_noise_is_saliency(rows):
    model, x, t = rows
    torch.testing.assert_close(smoothgrad(model, x, t, n_samples=3, stdev=0.0), saliency(model, x, t))


def test_guided_backprop_drops_negative_signals_at_relus():
    # f(x) = relu(x) - relu(x): the gradient is 0, but guided backprop keeps only the + path.
    model = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.fill_(1.0), model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, -1.0]])), model[2].bias.zero_()
    x = torch.tensor([[1.0]])
    assert float(saliency(model, x, 0, abs=False)) == 0.0
    torch.testing.assert_close(guided_backprop(model, x, 0), torch.tensor([[1.0]]))


# --- agreement with Captum ---------------------------------------------------------------------------

def test_saliency_and_gradient_x_input_match_captum(rows):
    model, x, t = rows
    torch.testing.assert_close(saliency(model, x, t), captum_attr.Saliency(model).attribute(x, target=t))
    torch.testing.assert_close(gradient_x_input(model, x, t),
                               captum_attr.InputXGradient(model).attribute(x, target=t).detach())


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_middle", "riemann_right"])
def test_integrated_gradients_matches_captum(rows, method):
    model, x, t = rows
    base = 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    ours = integrated_gradients(model, x, t, baselines=base, n_steps=32, method=method)
    theirs = captum_attr.IntegratedGradients(model).attribute(x, base, target=t, n_steps=32, method=method)
    torch.testing.assert_close(ours, theirs.float(), atol=1e-5, rtol=1e-5)


def test_integrated_gradients_trapezoid_differs_from_captum_by_its_weight_sum(rows):
    # Captum's trapezoid weights are 1/n with halved ends, summing to (n - 1)/n; ours sum to 1.
    model, x, t = rows
    n = 20
    ours = integrated_gradients(model, x, t, n_steps=n, method="riemann_trapezoid")
    theirs = captum_attr.IntegratedGradients(model).attribute(x, target=t, n_steps=n, method="riemann_trapezoid")
    torch.testing.assert_close(ours, theirs.float() * n / (n - 1), atol=1e-5, rtol=1e-5)


def test_smoothgrad_matches_captum_noise_tunnel_with_identical_noise(rows):
    model, x, t = rows
    ours = smoothgrad(model, x, t, n_samples=8, stdev=0.3, seed=7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)  # NoiseTunnel draws torch.normal(0, stdev) from the global generator
        theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=8, stdevs=0.3, target=t)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_occlusion_matches_captum_on_images(shapes):
    model, x, t = shapes.model, shapes.inputs[:4], shapes.labels[:4]
    for window, stride in [((1, 5, 5), (1, 3, 3)), ((1, 4, 4), (1, 2, 2)), ((1, 3, 3), (1, 3, 3))]:
        ours = occlusion(model, x, t, window, stride, baseline=0.0)
        theirs = captum_attr.Occlusion(model).attribute(x, target=t, sliding_window_shapes=window,
                                                         strides=stride, baselines=0.0)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("which", ["tabular", "shapes"])
def test_deeplift_matches_captum(which, request):
    demo = request.getfixturevalue(which)
    model, x, t = demo.model, demo.inputs[:8], demo.labels[:8]
    base = torch.zeros_like(x)
    theirs = captum_attr.DeepLift(model).attribute(x, base, target=t)
    torch.testing.assert_close(deeplift(model, x, t, base), theirs.detach(), atol=1e-5, rtol=1e-4)


def test_guided_backprop_matches_captum(shapes):
    model, x, t = shapes.model, shapes.inputs[:4], shapes.labels[:4]
    torch.testing.assert_close(guided_backprop(model, x, t),
                               captum_attr.GuidedBackprop(model).attribute(x, target=t))


def test_attribution_functions_leave_no_hooks(shapes, no_hooks):
    model, x, t = shapes.model, shapes.inputs[:2], shapes.labels[:2]
    deeplift(model, x, t)
    guided_backprop(model, x, t)
    assert no_hooks(model)
