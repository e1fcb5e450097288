"""``kb run`` demos of loss landscapes: 2-D surfaces, mode connectivity, the local learning coefficient."""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import landscape, models
from ._registry import _result, _runner, demo_model, plt

__all__: list[str] = []


# --- loss landscapes ---------------------------------------------------------------------------------------

@_runner("loss-landscape-visualization", "tabular-mlp", "filter-normalised 2-D loss surface and 1-D slices around the trained MLP")
def _run_loss_landscape(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    x, y = models.make_tabular_data(seed=0)
    m = demo.model
    plane = landscape.loss_landscape(m, x, y, n_directions=2, span=1.0, steps=21)
    init = models.tabular_mlp(seed=0)
    to_init = {k: dict(init.named_parameters())[k].detach() - v.detach() for k, v in m.named_parameters()}
    line = landscape.loss_landscape(m, x, y, directions=[to_init], span=1.0, steps=21)  # -1: beyond, 1: the init
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    c = axes[0].contourf(plane.coords, plane.coords, plane.losses.T.log10(), levels=20, cmap="viridis")
    axes[0].plot(0, 0, "r*"), fig.colorbar(c, ax=axes[0], label="log10 loss")
    axes[0].set_xlabel("filter-normalised direction 1"), axes[0].set_ylabel("direction 2")
    axes[1].plot(plane.coords, plane.losses[:, 10], label="direction 1")
    axes[1].plot(plane.coords, plane.losses[10], label="direction 2")
    axes[1].plot(line.coords, line.losses, label="towards the initialisation (1 = init)")
    axes[1].set_yscale("log"), axes[1].set_xlabel("step"), axes[1].legend(fontsize=7)
    half = plane.losses[[5, 15], 10].mean()
    reading = f"""The loss of the trained tabular MLP (cross-entropy {plane.center:.4f} on its 1,024 training rows) on a plane
    spanned by two random Gaussian directions, each filter rescaled to the norm of the corresponding filter of the
    network. A step of half a filter norm along direction 1 raises the loss to {float(half):.3f} on average and a full
    step to {float(plane.losses[[0, 20], 10].mean()):.3f}; the minimum of the 21x21 grid is {'at the trained weights' if int(plane.losses.argmin()) == 220 else 'off the trained weights'}.
    Along the straight line back to the initialisation the loss rises {'monotonically' if bool((line.losses[10:].diff() >= -1e-6).all()) else 'non-monotonically'}
    from {line.center:.4f} to {float(line.losses[-1]):.3f}, as Goodfellow et al. observed for many networks. Two random directions are two of
    {sum(p.numel() for p in m.parameters())} dimensions: the picture shows a section, not the basin's true shape, and
    sharpness read off it depends on the normalisation."""
    return _result(fig, out_dir, "loss-landscape-visualization", reading,
                   {"center_loss": plane.center, "loss_at_half_step": float(half),
                    "loss_at_full_step": float(plane.losses[[0, 20], 10].mean()), "loss_at_init": float(line.losses[-1])})


@_runner("mode-connectivity", "tabular-mlp", "two MLPs from different seeds: loss along the line and along a trained Bezier curve")
def _run_mode_connectivity(out_dir, cache):
    x, y = models.make_tabular_data(512, seed=0)

    def train(seed):
        model = models.tabular_mlp(hidden=8, seed=seed)
        models._fit(model, lambda _: (x, y), 300, 1e-2, seed)
        return model

    a, b = train(0), train(1)
    res = landscape.mode_connectivity(a, b, x, y, n_steps=300)
    xt, yt = models.make_tabular_data(512, seed=1)

    def accuracy(params):
        with torch.no_grad():
            return float((torch.func.functional_call(a, params, (xt,)).argmax(1) == yt).float().mean())

    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    acc_line = [accuracy({k: (1 - t) * pa[k] + t * pb[k] for k in pa}) for t in res.t.tolist()]
    acc_curve = [accuracy(landscape._bezier(pa, pb, res.control, t)) for t in res.t.tolist()]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    axes[0].plot(res.t, res.line_losses, label="straight line")
    axes[0].plot(res.t, res.curve_losses, label="quadratic Bezier curve")
    axes[0].set_xlabel("t"), axes[0].set_ylabel("training loss"), axes[0].legend(fontsize=7)
    axes[1].plot(res.t, acc_line, label="straight line"), axes[1].plot(res.t, acc_curve, label="Bezier curve")
    axes[1].set_xlabel("t"), axes[1].set_ylabel("test accuracy"), axes[1].legend(fontsize=7)
    reading = f"""Two 8-unit MLPs trained on the tabular task from different seeds reach training losses
    {float(res.line_losses[0]):.3f} and {float(res.line_losses[-1]):.3f}. On the straight line between their weights the loss
    rises by up to {res.line_barrier:.2f} (test accuracy drops to {min(acc_line):.2f} at worst): the line crosses a ridge.
    A quadratic Bezier curve with the same end points, whose one control point is trained for 300 steps on
    random points of the curve, keeps the excess loss below {res.curve_barrier:.3f} and accuracy at or above
    {min(acc_curve):.2f} all the way, as Garipov et al. and Draxler et al. found for deep networks. The two
    solutions are not isolated minima but ends of one low-loss valley, though not a straight one; part of the
    line's barrier is the permutation symmetry of hidden units, which weight matching removes."""
    return _result(fig, out_dir, "mode-connectivity", reading,
                   {"line_barrier": res.line_barrier, "curve_barrier": res.curve_barrier,
                    "line_min_accuracy": min(acc_line), "curve_min_accuracy": min(acc_curve)})


class _Product(nn.Module):
    """``y = a b x``: two parameters, one effective; at ``a b = 0`` the minimum set is two crossing lines."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor([a], dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor([b], dtype=torch.float64))

    def forward(self, x):
        return self.a * self.b * x[:, 0]


@_runner("local-learning-coefficient", "regression", "SGLD estimates of the LLC for regular, rank-deficient and singular models")
def _run_llc(out_dir, cache):
    g = torch.Generator().manual_seed(0)
    n = 1000
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    noise = torch.randn(n, generator=g, dtype=torch.float64)
    nll = lambda o, t: 0.5 * (o.reshape(-1) - t).pow(2).mean()  # noqa: E731  (Gaussian noise, variance 1)

    def least_squares(features, target):
        model = nn.Linear(features.shape[1], 1, bias=False).double()
        with torch.no_grad():
            model.weight.copy_(torch.linalg.lstsq(features, target[:, None]).solution.T)
        return model

    y = x @ torch.tensor([1.0, -0.5, 0.3, 2.0], dtype=torch.float64) + noise
    y2 = x[:, :2] @ torch.tensor([1.0, -0.5], dtype=torch.float64) + noise
    dup = least_squares(x[:, :2], y2)
    dup_model = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        dup_model.weight.copy_(dup.weight.repeat_interleave(2, 1) / 2)
    y1 = 1.5 * x[:, 0] + noise
    c = float(least_squares(x[:, :1], y1).weight.detach())
    cases = [("linear, 4 weights", least_squares(x, y), x, y, 2.0),
             ("duplicated features (rank 2), 4 weights", dup_model, x[:, [0, 0, 1, 1]], y2, 1.0),
             ("a b x, ab = 1.5", _Product(1.0, c), x, y1, 0.5),
             ("a b x, ab = 0", _Product(0.0, 0.0), x, noise, 0.5)]
    est = {name: landscape.local_learning_coefficient(m, xs, ys, nll, n_chains=32, n_draws=500, seed=0)
           for name, m, xs, ys, _ in cases}
    beta_n = n / math.log(n)
    finite = 0.5 - 1 / math.log(beta_n)  # lambda - (m - 1) / log(n beta) with multiplicity m = 2
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    names = [cs[0] for cs in cases]
    axes[0].bar(range(4), [est[k].llc for k in names], label="SGLD estimate")
    axes[0].scatter(range(4), [cs[4] for cs in cases], color="k", zorder=3, label="theory (n -> infinity)")
    axes[0].set_xticks(range(4), ["linear\n4 w", "rank 2\n4 w", "ab x\nab=1.5", "ab x\nab=0"], fontsize=7)
    axes[0].set_ylabel("LLC"), axes[0].legend(fontsize=7)
    for k in names:
        axes[1].plot(est[k].loss_trace.mean(0) - est[k].init_loss, lw=0.8, label=k)
    axes[1].set_xlabel("SGLD draw"), axes[1].set_ylabel("L(w) - L(w*)"), axes[1].legend(fontsize=6)
    e = [est[k].llc for k in names]
    over = [e[i] / cases[i][4] - 1 for i in range(3)]
    reading = f"""Local learning coefficients by SGLD (32 chains, 500 draws, step 1e-3, localisation 1, beta = 1/log n,
    n = 1,000, Gaussian likelihood) at the fitted weights of four regressions. A regular linear model with 4
    weights gives {e[0]:.2f} (theory d/2 = 2); the same 4 weights on duplicated features, so only 2 directions
    change the loss, give {e[1]:.2f} (theory 1). y = a b x has 2 weights but one effective one: at ab = 1.5 the
    minimum set is a smooth curve and the estimate is {e[2]:.2f} (theory 1/2); at ab = 0 the two lines a = 0 and b = 0
    cross, a genuine singularity with lambda = 1/2 and multiplicity 2, and the estimate is {e[3]:.2f}; at finite n
    the expected value there is lambda - (m - 1)/log(n beta) = {finite:.2f}, below 1/2, and the chains mix slowly
    along the two flat lines, so this estimate is the least reliable of the four. The other three sit
    {min(over):.0%} to {max(over):.0%} above theory: an SGLD step eps inflates the sampled spread along a direction of
    curvature k by about eps k / 4, which is {1e-3 * beta_n * float((x ** 2).mean()) / 4:.0%} for the regular linear model and
    {1e-3 * beta_n * (1 + c ** 2) * float((x[:, 0] ** 2).mean()) / 4:.0%} along the steep direction of a b x; a smaller
    step trades this bias for run time.
    Counting parameters would give 2, 2, 1 and 1: the LLC counts the directions that matter."""
    return _result(fig, out_dir, "local-learning-coefficient", reading,
                   {"llc_regular_4": e[0], "llc_rank_2": e[1], "llc_product_nonzero": e[2], "llc_product_zero": e[3],
                    "finite_n_singular_value": finite})
