"""Eight attractors in an RNN trained on the 3-bit flip-flop task [@sussillo2013opening].

The runnable form of ``tests/reference/test_dynamics.py``'s reproduction: train the demo GRU
(``kb.reference.models.train_flipflop_gru``), search for fixed points of its autonomous map from
visited states (``kb.reference.find_fixed_points``), and count the stable ones and the bit
patterns they hold.
"""

from __future__ import annotations

import torch

from ..dynamics import find_fixed_points
from ..embedding import pca
from ..models import train_flipflop_gru
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "run", "figure"]

CLAIM = """A recurrent network trained on the 3-bit flip-flop task stores each of the 2^3 memories as a
stable fixed point of its dynamics, with unstable (saddle) points between them (Sussillo and Barak 2013)."""

QUICK: dict = {}


def run(seed: int = 0, n_starts: int = 256, n_iter: int = 1000) -> dict:
    """Train the GRU, find its fixed points, classify them, read out the bit pattern of each stable one."""
    demo = train_flipflop_gru(seed)
    model = demo.model
    states = model.hidden_states(demo.inputs).detach().reshape(-1, model.gru.hidden_size)
    g = torch.Generator().manual_seed(seed)
    init = states[torch.randperm(len(states), generator=g)[:n_starts]]
    init = init + 0.1 * torch.randn(init.shape, generator=g)
    fps = find_fixed_points(model.step, init, n_iter=n_iter)
    stable = fps.points[fps.is_stable]
    with torch.no_grad():
        patterns = {tuple(p.tolist()) for p in model.readout(stable).sign()}
    saddles_unstable = bool((fps.eigenvalues[~fps.is_stable].abs().amax(1) > 1).all()) if (~fps.is_stable).any() else True
    n_stable = int(fps.is_stable.sum())
    passed = demo.info["bit_accuracy"] > 0.98 and n_stable == 8 and len(patterns) == 8 and saddles_unstable
    coords = pca(torch.cat([states[:2000], fps.points]), n_components=2).scores
    return result(
        CLAIM,
        f"The demo GRU (24 units) trained 500 Adam steps on the 3-bit flip-flop task; fixed points of h -> GRU(0, h) "
        f"searched from {n_starts} visited states (plus noise), {n_iter} Adam steps and Newton refinement.",
        {"bit_accuracy": demo.info["bit_accuracy"], "stable_fixed_points": n_stable,
         "distinct_patterns": len(patterns), "unstable_fixed_points": int((~fps.is_stable).sum()),
         "other_points_all_unstable": saddles_unstable},
        "stable_fixed_points",
        "passes when the GRU solves the task (bit accuracy > 0.98) and has exactly 8 stable fixed points holding 8 "
        "distinct bit patterns, every other fixed point being unstable",
        passed,
        {"pc": coords, "n_states": min(2000, len(states)),
         "stable": fps.is_stable},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, width=4.5, height=4.0) as (fig, ax):
        pts = c["pc"]
        n = c["n_states"]
        if pts:  # noqa: SIM102
            ax.scatter([p[0] for p in pts[:n]], [p[1] for p in pts[:n]], s=2, alpha=0.2, color="grey", label="visited states")
            fp = pts[n:]
            for is_stable, colour, label in ((True, "tab:blue", "stable"), (False, "tab:red", "unstable")):
                sel = [p for p, s in zip(fp, c["stable"]) if s == is_stable]
                ax.scatter([p[0] for p in sel], [p[1] for p in sel], s=40, color=colour, label=f"{label} fixed points")
        ax.set_xlabel("PC 1"), ax.set_ylabel("PC 2"), ax.legend(fontsize=7)
