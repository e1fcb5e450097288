"""Loss slices through a quadratic bowl, mode connectivity of two small MLPs, the LLC of regular and degenerate models."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kb.reference.landscape import (filter_normalized_direction, local_learning_coefficient, loss_landscape,
                                    mode_connectivity)
from kb.reference.models import make_tabular_data, tabular_mlp


def least_squares(x, y):
    model = nn.Linear(x.shape[1], 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y[:, None]).solution.T)
    return model


def mse(out, y):
    return F.mse_loss(out.squeeze(-1), y)


def half_mse(out, y):
    """Mean negative log-likelihood of Gaussian noise with variance 1 (up to a constant)."""
    return 0.5 * (out.squeeze(-1) - y).pow(2).mean()


@pytest.fixture(scope="module")
def regression():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 4, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -0.5, 0.3, 2.0], dtype=torch.float64) + torch.randn(1000, generator=g, dtype=torch.float64)
    return x, y


def test_filter_normalised_direction_matches_filter_norms():
    model = tabular_mlp(hidden=16, seed=0)
    d = filter_normalized_direction(model, seed=3)
    for name, p in model.named_parameters():
        if p.ndim == 1:
            assert (d[name] == 0).all()  # biases are not moved
        else:
            assert torch.allclose(d[name].norm(dim=1), p.detach().norm(dim=1), rtol=1e-5)


def test_slice_through_a_quadratic_bowl_is_the_analytic_parabola(regression):
    x, y = regression
    model = least_squares(x, y)
    res = loss_landscape(model, x, y, mse, n_directions=1, span=2.0, steps=21)
    d = res.directions[0]["weight"][0]
    curvature = float(d @ (x.T @ x / len(x)) @ d)  # L(w* + a d) = L(w*) + a² d^T (X^T X / n) d, exactly
    expected = res.center + res.coords.double() ** 2 * curvature
    assert torch.allclose(res.losses.double(), expected, rtol=1e-5)
    assert int(res.losses.argmin()) == 10  # the minimum is at the trained weights


def test_plane_has_its_minimum_at_the_centre(regression):
    x, y = regression
    res = loss_landscape(least_squares(x, y), x, y, mse, n_directions=2, steps=5, span=1.0)
    assert res.losses.shape == (5, 5) and res.losses[2, 2] == res.losses.min()
    assert res.losses[2, 2] == pytest.approx(res.center)


@pytest.fixture(scope="module")
def two_solutions():
    x, y = make_tabular_data(512, seed=0)
    out = []
    for seed in (0, 1):
        model = tabular_mlp(hidden=8, seed=seed)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(200):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        out.append(model)
    return x, y, out


def test_bezier_curve_has_a_lower_barrier_than_the_line(two_solutions):
    x, y, (a, b) = two_solutions
    before = [p.detach().clone() for p in a.parameters()]
    res = mode_connectivity(a, b, x, y, n_steps=300, lr=1e-2)
    assert all(torch.equal(p, q) for p, q in zip(before, a.parameters()))  # the end models are untouched
    assert res.line_losses[0] == pytest.approx(res.curve_losses[0]) and res.curve_losses[-1] == pytest.approx(res.line_losses[-1])
    assert res.line_barrier > 0.5  # measured 0.76: the straight line crosses a ridge
    assert res.curve_barrier < 0.1 * res.line_barrier  # measured 0.026: the trained curve goes around it
    assert res.curve_losses.max() < res.line_losses.max()


def test_llc_of_a_regular_model_is_half_its_dimension(regression):
    x, y = regression
    res = local_learning_coefficient(least_squares(x, y), x, y, half_mse, n_chains=16, n_draws=500, seed=0)
    assert res.beta == pytest.approx(1 / math.log(1000))
    # d/2 = 2; measured 2.21 (seeds 1-3: 2.11, 2.07, 2.13): the SGLD step inflates the spread by ~4%
    assert res.llc == pytest.approx(2.0, abs=0.3)
    assert res.loss_trace.shape == (16, 500)
    late, early = res.loss_trace[:, 250:].mean(), res.loss_trace[:, :250].mean()
    assert abs(float(late - early)) < 0.2 * float(res.loss_trace.mean() - res.init_loss)  # the chains have settled


def test_llc_is_lower_with_degenerate_directions(regression):
    """Features duplicated: (x0, x0, x1, x1) with 4 weights has rank 2, so lambda = 1 instead of d/2 = 2."""
    x, y = regression
    xd = x[:, [0, 0, 1, 1]]
    model = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x[:, :2], y[:, None]).solution.T.repeat_interleave(2, 1) / 2)
    res = local_learning_coefficient(model, xd, y, half_mse, n_chains=16, n_draws=500, seed=0)
    assert res.llc == pytest.approx(1.0, abs=0.25)  # measured 1.15 (seeds 1-3: 1.13, 1.10, 1.12)
    assert res.llc < 1.5  # clearly below d/2 = 2 of the regular model with the same parameter count
