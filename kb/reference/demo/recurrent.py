"""``kb run`` demos on the flip-flop GRU: fixed points, trajectories, basins, manifold geometry."""

from __future__ import annotations

import torch

from .. import dynamics, embedding
from ._registry import _result, _runner, demo_model, plt

__all__: list[str] = []


# --- dynamics on the flip-flop GRU ------------------------------------------------------------------------

def _gru_states(demo):
    with torch.no_grad():
        return demo.model.hidden_states(demo.inputs)


def _gru_fixed_points(demo):
    states = _gru_states(demo).reshape(-1, demo.model.gru.hidden_size)
    g = torch.Generator().manual_seed(0)
    init = states[torch.randperm(len(states), generator=g)[:256]]
    init = init + 0.1 * torch.randn(init.shape, generator=g)
    return dynamics.find_fixed_points(demo.model.step, init, n_iter=1000), states, init


@_runner("fixed-point-analysis", "flipflop-gru", "fixed points of the 3-bit flip-flop GRU and their stability")
def _run_fixed_points(out_dir, cache):
    demo = demo_model("flipflop-gru", cache)
    fps, states, _ = _gru_fixed_points(demo)
    p = embedding.pca(states, 3)
    proj = lambda v: (v - p.mean) @ p.components.T  # noqa: E731
    fig = plt.figure(figsize=(5, 4))
    ax = fig.add_subplot(projection="3d")
    s = proj(states[::7])
    ax.plot(s[:, 0], s[:, 1], s[:, 2], lw=0.2, color="0.7")
    for stable, colour in ((True, "tab:blue"), (False, "tab:red")):
        q = proj(fps.points[fps.is_stable == stable])
        ax.scatter(q[:, 0], q[:, 1], q[:, 2], color=colour, s=30, label="stable" if stable else "unstable")
    ax.legend()
    n_stable = int(fps.is_stable.sum())
    reading = f"""Fixed points of the trained GRU with its input held at zero, found by minimising
    ||F(h) - h||^2 from 256 visited states and shown in the top three principal components of the hidden
    states (grey). {n_stable} points are stable (all Jacobian eigenvalues inside the unit circle), one per
    corner of the 3-bit cube, the memories of the flip-flop; the {len(fps) - n_stable} unstable points are
    saddles between them (at least one eigenvalue outside the unit circle), the passes between memories."""
    return _result(fig, out_dir, "fixed-point-analysis", reading,
                   {"n_fixed_points": len(fps), "n_stable": n_stable})


@_runner("trajectory-analysis", "flipflop-gru", "hidden-state trajectories in PCA space and their speed")
def _run_trajectories(out_dir, cache):
    demo = demo_model("flipflop-gru", cache)
    traj = dynamics.trajectory_analysis(_gru_states(demo)[:4], n_components=2)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for c in traj.coords:
        axes[0].plot(c[:, 0], c[:, 1], lw=0.8)
    axes[0].set_title("hidden state, PC1 vs PC2", fontsize=9)
    pulses = demo.inputs[0].abs().sum(1) > 0
    axes[1].plot(traj.step_lengths[0], label="speed ||h(t+1) - h(t)||")
    axes[1].scatter(pulses.nonzero()[:, 0] - 1, torch.zeros(int(pulses.sum())), color="r", s=10, label="input pulse")
    axes[1].legend(fontsize=7)
    fast = float(traj.step_lengths[0][pulses[1:]].mean()) if pulses[1:].any() else 0.0
    slow = float(traj.step_lengths[0][~pulses[1:]].median())
    reading = f"""Left: four trials' hidden-state trajectories projected on the first two principal components
    ({float(traj.explained_variance_ratio.sum()):.0%} of the variance). Right: the speed of trial 1. The
    state moves fast right after an input pulse (mean step {fast:.2f}) and {fast / max(slow, 1e-9):.0f} times
    more slowly in between (median step {slow:.3f}): the network jumps between slow regions, the
    attractors that store the bits, and rests there until the next pulse."""
    return _result(fig, out_dir, "trajectory-analysis", reading, {"speed_after_pulse": fast, "speed_between": slow})


@_runner("attractor-landscapes", "flipflop-gru", "basins of attraction of the GRU's stable fixed points")
def _run_basins(out_dir, cache):
    demo = demo_model("flipflop-gru", cache)
    fps, states, init = _gru_fixed_points(demo)
    g = torch.Generator().manual_seed(1)
    samples = states[torch.randperm(len(states), generator=g)[:400]] + 0.3 * torch.randn(400, states.shape[1], generator=g)
    basins = dynamics.attractor_basins(demo.model.step, samples, fixed_points=fps)
    p = embedding.pca(states, 2)
    z = (samples - p.mean) @ p.components.T
    a = (basins.attractors - p.mean) @ p.components.T
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(z[:, 0], z[:, 1], c=basins.labels, cmap="tab10", s=8)
    ax.scatter(a[:, 0], a[:, 1], marker="*", s=150, c="k")
    ax.set_title("initial states coloured by basin", fontsize=9)
    reached = float((basins.labels >= 0).float().mean())
    reading = f"""400 perturbed hidden states were iterated with zero input and coloured by the stable fixed
    point (stars) they converge to. {len(basins.attractors)} attractors share the space,
    {reached:.0%} of samples reach one, and basin sizes range from {float(basins.fractions.min()):.0%} to
    {float(basins.fractions.max()):.0%}: the landscape is a set of comparable wells, one per stored bit pattern."""
    return _result(fig, out_dir, "attractor-landscapes", reading,
                   {"n_attractors": len(basins.attractors), "fraction_converged": reached})


@_runner("manifold-geometry", "flipflop-gru", "participation ratio and intrinsic dimension of GRU states")
def _run_manifold(out_dir, cache):
    demo = demo_model("flipflop-gru", cache)
    states = _gru_states(demo).reshape(-1, demo.model.gru.hidden_size)[::3]
    geo = embedding.manifold_geometry(states)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(range(1, len(geo.explained_variance_ratio) + 1), geo.explained_variance_ratio.cumsum(0), marker="o")
    ax.set_xlabel("principal components"), ax.set_ylabel("cumulative variance")
    reading = f"""The GRU's {states.shape[1]}-dimensional hidden states use few dimensions: the participation
    ratio is {geo.participation_ratio:.1f} and {geo.n_components_90} principal components explain 90% of the
    variance, about the three dimensions a cube of 3-bit memories needs. Locally the data are even simpler:
    the TwoNN intrinsic dimension is {geo.intrinsic_dimension:.1f}, because the states cluster at the memories
    and move along one-dimensional paths between them. Linear and intrinsic dimension answer different
    questions; report both."""
    return _result(fig, out_dir, "manifold-geometry", reading,
                   {"participation_ratio": geo.participation_ratio, "two_nn_dimension": geo.intrinsic_dimension})
