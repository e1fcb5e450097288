"""Fixed points, trajectories and attractor basins; the flip-flop GRU case study."""

import math

import pytest
import torch

from kb.reference import attractor_basins, find_fixed_points, models, trajectory_analysis


def _positive_root(a: float) -> float:
    """The positive solution of h = tanh(a h) for a > 1, by iterating the (stable) map."""
    h = 1.0
    for _ in range(2000):
        h = math.tanh(a * h)
    return h


def _grid(lim=1.2, n=15):
    axis = torch.linspace(-lim, lim, n, dtype=torch.float64)
    return torch.cartesian_prod(axis, axis)


def test_fixed_points_of_tanh_map_with_known_answer():
    a = torch.tensor([2.0, 3.0], dtype=torch.float64)
    step = models.tanh_rnn_step(torch.diag(a))
    fps = find_fixed_points(step, _grid(), n_iter=500, lr=0.05)
    roots = [_positive_root(2.0), _positive_root(3.0)]
    expected = torch.tensor([[s0 * roots[0] * b0, s1 * roots[1] * b1]
                             for b0 in (0, 1) for b1 in (0, 1) for s0 in (-1, 1) for s1 in (-1, 1)
                             if (b0 or s0 == 1) and (b1 or s1 == 1)], dtype=torch.float64)
    assert len(fps) == 9
    dist = torch.cdist(fps.points, expected)
    assert dist.min(1).values.max() < 1e-6 and dist.min(0).values.max() < 1e-6
    # stable exactly at the four corners (both coordinates non-zero)
    corners = (fps.points.abs() > 0.1).all(1)
    assert torch.equal(fps.is_stable, corners)
    # Jacobian at a corner: diag(a (1 - h*^2))
    corner = fps.points[corners][0]
    expected_eigs = (a * (1 - corner**2)).sort(descending=True).values
    torch.testing.assert_close(fps.eigenvalues[corners][0].real, expected_eigs)
    assert (fps.speeds < 1e-12).all()


def test_contracting_map_has_one_stable_fixed_point():
    step = models.tanh_rnn_step(0.5 * torch.eye(3, dtype=torch.float64))
    start = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fps = find_fixed_points(step, start, n_iter=300, lr=0.05)
    assert len(fps) == 1 and bool(fps.is_stable[0])
    assert fps.points.abs().max() < 1e-6
    torch.testing.assert_close(fps.eigenvalues[0].abs(), torch.full((3,), 0.5, dtype=torch.float64))


def test_attractor_basins_split_by_sign():
    step = models.tanh_rnn_step(torch.diag(torch.tensor([2.0, 3.0], dtype=torch.float64)))
    samples = _grid(1.0, 12)  # even n: no sample on an axis
    basins = attractor_basins(step, samples, n_iter=200)
    assert len(basins.attractors) == 4
    assert (basins.labels >= 0).all()
    # each sample converges to the corner with its own signs
    ends = basins.attractors[basins.labels]
    assert torch.equal(ends.sign(), samples.sign())
    torch.testing.assert_close(basins.fractions, torch.full((4,), 0.25))


def test_trajectory_analysis_of_a_straight_line():
    t = torch.linspace(0, 1, 11).view(-1, 1)
    line = t * torch.tensor([[3.0, 4.0, 0.0]])
    traj = trajectory_analysis(line, n_components=2)
    assert float(traj.path_length) == pytest.approx(5.0, rel=1e-5)
    assert float(traj.straightness) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(traj.step_lengths, torch.full((10,), 0.5))
    assert float(traj.explained_variance_ratio[0]) == pytest.approx(1.0, abs=1e-6)


def test_trajectory_analysis_batch_and_circle():
    theta = torch.linspace(0, 2 * math.pi, 101)
    circle = torch.stack([theta.cos(), theta.sin()], 1)
    traj = trajectory_analysis(torch.stack([circle, 2 * circle]))
    assert traj.coords.shape == (2, 101, 2)
    torch.testing.assert_close(traj.path_length, torch.tensor([2 * math.pi, 4 * math.pi]), rtol=1e-3, atol=0)
    assert traj.straightness.max() < 1e-3


# --- case study: the 3-bit flip-flop GRU (Sussillo & Barak 2013) -----------------------------------------

@pytest.fixture(scope="module")
def flipflop_fixed_points(flipflop):
    states = flipflop.model.hidden_states(flipflop.inputs).detach().reshape(-1, flipflop.model.gru.hidden_size)
    g = torch.Generator().manual_seed(0)
    init = states[torch.randperm(len(states), generator=g)[:256]] + 0.1 * torch.randn(256, states.shape[1], generator=g)
    return find_fixed_points(flipflop.model.step, init, n_iter=1000)


def test_flipflop_gru_solves_the_task(flipflop):
    assert flipflop.info["bit_accuracy"] > 0.98


def test_flipflop_gru_has_eight_stable_fixed_points_one_per_bit_pattern(flipflop, flipflop_fixed_points):
    fps = flipflop_fixed_points
    stable = fps.points[fps.is_stable]
    assert len(stable) == 8
    with torch.no_grad():
        patterns = flipflop.model.readout(stable).sign()
    assert len({tuple(p.tolist()) for p in patterns}) == 8  # every corner of {-1, 1}^3 exactly once
    assert (flipflop.model.readout(stable).abs() > 0.5).all()
    # the other fixed points are unstable (saddles between memories)
    assert (fps.eigenvalues[~fps.is_stable].abs().amax(1) > 1).all()


def test_flipflop_basins_cover_all_memories(flipflop, flipflop_fixed_points):
    states = flipflop.model.hidden_states(flipflop.inputs).detach().reshape(-1, flipflop.model.gru.hidden_size)
    g = torch.Generator().manual_seed(1)
    samples = states[torch.randperm(len(states), generator=g)[:200]]
    basins = attractor_basins(flipflop.model.step, samples, fixed_points=flipflop_fixed_points)
    assert len(basins.attractors) == 8
    assert (basins.labels >= 0).float().mean() > 0.95
    assert (basins.fractions > 0).all()
