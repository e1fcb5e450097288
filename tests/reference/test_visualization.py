"""Activation maximisation and DeepDream."""

import torch

from kb.reference import activation_maximization, deepdream, gaussian_blur


def test_activation_maximization_finds_inputs_the_class_prefers(shapes):
    model = shapes.model
    for c in range(3):
        x = activation_maximization(model, (1, 16, 16), unit=c, n_steps=64)
        with torch.no_grad():
            assert int(model(x).argmax(1)) == c


def test_activation_maximization_of_a_hidden_channel(shapes, no_hooks):
    model = shapes.model
    # the first conv's output: a ReLU channel that is silent at the start would give no gradient
    x = activation_maximization(model, (1, 16, 16), unit=5, layer=model[0], n_steps=48)
    start = 0.01 * torch.randn((1, 1, 16, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert model[0](x)[:, 5].mean() > model[0](start)[:, 5].mean() + 0.5
    assert no_hooks(model)


def test_activation_maximization_on_a_linear_unit_follows_the_weight():
    w = torch.tensor([1.0, -2.0, 0.5])
    model = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(w)
    x = activation_maximization(model, (3,), unit=0, n_steps=200, lr=0.05, l2=0.5)
    # maximiser of w.x - l2 ||x||^2 is w / (2 l2) = w
    torch.testing.assert_close(x[0], w, atol=0.05, rtol=0)


def test_deepdream_amplifies_the_layer(shapes, no_hooks):
    model, x = shapes.model, shapes.inputs[:2]
    dream = deepdream(model, x, model[4], n_steps=10)
    with torch.no_grad():
        assert model[:5](dream).pow(2).mean() > 2 * model[:5](x).pow(2).mean()
    assert dream.shape == x.shape and no_hooks(model)


def test_gaussian_blur_preserves_constants():
    x = torch.full((1, 2, 8, 8), 3.0)
    torch.testing.assert_close(gaussian_blur(x, 1.0), x)
