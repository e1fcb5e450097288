"""``kb run`` demos for interpretable-by-design models, global effects, data attribution and loss landscapes.

Registered in :mod:`kb.reference.demo`'s ``RUNNABLE`` (which imports this module); the figures go
through its headless pyplot.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from .. import blackbox, by_design, data_attribution, global_effects, landscape, models
from . import _result, _runner, demo_model, plt

__all__: list[str] = []


def _cached(cache: dict | None, name: str, build):
    """``build()`` once per ``cache`` dict (the same dict ``kb run`` keeps demo models in)."""
    if cache is not None and name in cache:
        return cache[name]
    value = build()
    if cache is not None:
        cache[name] = value
    return value


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


# --- a regression MLP fitted to f = x0 + x1² + 2 x2 x3 (x4 unused) ------------------------------------------

def _planted(x):
    return x[:, 0] + x[:, 1] ** 2 + 2 * x[:, 2] * x[:, 3]


def _train_planted_mlp():
    x = torch.rand(3000, 5, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = models._seeded(0, lambda: nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                                                     nn.Linear(32, 1)))
    models._fit(model, lambda _: (x, _planted(x)), 400, 1e-2, 0, loss_fn=lambda o, y: F.mse_loss(o[:, 0], y))
    xt = torch.rand(1000, 5, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        r2 = 1 - float(F.mse_loss(model(xt)[:, 0], _planted(xt)) / _planted(xt).var())
    return models.Demo(model, xt, _planted(xt), {"test_r2": r2})


@_runner("accumulated-local-effects", "planted-mlp", "ALE curves and the 2-D ALE of a planted interaction, against the truth")
def _run_ale(out_dir, cache):
    demo = _cached(cache, "planted-mlp", _train_planted_mlp)
    m, x = demo.model, demo.inputs
    truths = {0: lambda z: z, 1: lambda z: z ** 2, 4: lambda z: 0 * z}
    fig, axes = plt.subplots(1, 4, figsize=(12, 3))
    err, agree = {}, {}
    for ax, (j, fn) in zip(axes, truths.items()):
        ale = global_effects.accumulated_local_effects(m, x, feature=j, n_bins=20)
        z = ale.edges[0]
        t = fn(z)
        t = t - (ale.counts * (t[1:] + t[:-1]) / 2).sum() / ale.counts.sum()
        pd = blackbox.partial_dependence(m, x, 0, j, grid=z)
        err[j] = float((ale.values - t).abs().max())
        if j != 4:
            agree[j] = _corr(ale.values, pd.average)
        ax.plot(z, t, "k--", label="truth (centred)")
        ax.plot(z, ale.values, "o-", ms=3, label="ALE")
        ax.plot(z, pd.average - pd.average.mean(), ":", label="partial dependence")
        ax.set_title(f"x{j}", fontsize=9), ax.set_xlabel(f"x{j}")
    axes[0].legend(fontsize=7)
    pair = global_effects.accumulated_local_effects(m, x, feature=(2, 3), n_bins=10)
    zc, wc = pair.edges[0] - x[:, 2].mean(), pair.edges[1] - x[:, 3].mean()
    r_pair = _corr(pair.values, 2 * zc[:, None] * wc[None])
    im = axes[3].imshow(pair.values.T, origin="lower", cmap="bwr", extent=[-1, 1, -1, 1])
    axes[3].set_title("2nd-order ALE (x2, x3)", fontsize=9), axes[3].set_xlabel("x2"), axes[3].set_ylabel("x3")
    fig.colorbar(im, ax=axes[3])
    additive = global_effects.accumulated_local_effects(m, x, feature=(0, 1), n_bins=10)
    reading = f"""An MLP is fitted to f = x0 + x1² + 2 x2 x3 on five independent uniform features (x4 unused; held-out
    R² {demo.info['test_r2']:.3f}). Its ALE curves follow the centred truth: the largest deviation over 20 quantile bins
    is {err[0]:.3f} for the linear x0, {err[1]:.3f} for the quadratic x1 and {err[4]:.3f} for the unused x4. The
    second-order ALE of (x2, x3), the interaction left after both main effects are removed, correlates at
    r = {r_pair:.3f} with the saddle 2 (x2 - mean)(x3 - mean); for the additive pair (x0, x1) it stays within
    ±{float(additive.values.abs().max()):.2f}. With independent features ALE and partial dependence agree, as here (their
    curves correlate at r >= {min(agree.values()):.3f} for x0 and x1); they part
    ways when features are correlated, where partial dependence averages over inputs that never occur."""
    return _result(fig, out_dir, "accumulated-local-effects", reading,
                   {"max_error_x0": err[0], "max_error_x1": err[1], "max_error_x4": err[4],
                    "pair_23_correlation": r_pair, "pair_01_max": float(additive.values.abs().max()),
                    "ale_pd_correlation_min": min(agree.values())})


@_runner("feature-interaction", "planted-mlp", "Friedman's H² for every pair and each feature against the rest")
def _run_h_statistic(out_dir, cache):
    demo = _cached(cache, "planted-mlp", _train_planted_mlp)
    m, x = demo.model, demo.inputs[:150]
    d = x.shape[1]
    h = torch.zeros(d, d)
    for j in range(d):
        for k in range(j + 1, d):
            h[j, k] = h[k, j] = global_effects.h_statistic(m, x, features=(j, k))
    total = [global_effects.h_statistic(m, x, features=j) for j in range(d)]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    im = axes[0].imshow(h, cmap="viridis", vmin=0, vmax=1)
    axes[0].set_xticks(range(d), [f"x{j}" for j in range(d)]), axes[0].set_yticks(range(d), [f"x{j}" for j in range(d)])
    axes[0].set_title("pairwise H²", fontsize=9)
    fig.colorbar(im, ax=axes[0])
    axes[1].bar([f"x{j}" for j in range(d)], total)
    axes[1].set_title("H² of each feature with all others", fontsize=9)
    others = h[torch.triu(torch.ones(d, d, dtype=torch.bool), 1)]
    others = others[others != h[2, 3]]
    reading = f"""The MLP fitted to f = x0 + x1² + 2 x2 x3 has one planted interaction. Friedman's H² over 150 rows
    (each statistic costs 150² predictions per partial dependence) is {float(h[2, 3]):.2f} for (x2, x3): nearly all
    of their joint partial dependence is interaction (the exact function gives 0.98 on these rows).
    Every other pair stays at or below {float(others.max()):.3f}, the network's small departures from additivity.
    Against all other features, x2 and x3 score {total[2]:.2f} and {total[3]:.2f}, and x0, x1, x4 at most
    {max(total[0], total[1], total[4]):.3f}. H² is a share, not a size: a tiny interaction between weak
    features can score high, so read it next to the effect sizes (e.g. ALE or partial dependence)."""
    return _result(fig, out_dir, "feature-interaction", reading,
                   {"h2_x2_x3": float(h[2, 3]), "h2_other_pairs_max": float(others.max()),
                    **{f"h2_x{j}_vs_rest": float(v) for j, v in enumerate(total)}})


@_runner("global-surrogate", "planted-mlp", "fidelity of tree and linear surrogates by depth; the depth-3 rules")
def _run_surrogate(out_dir, cache):
    demo = _cached(cache, "planted-mlp", _train_planted_mlp)
    m = demo.model
    x = torch.rand(2000, 5, generator=torch.Generator().manual_seed(2)) * 2 - 1
    depths = [1, 2, 3, 4, 6, 8]
    fits = [global_effects.global_surrogate(m, x, max_depth=k, test_inputs=demo.inputs) for k in depths]
    linear = global_effects.global_surrogate(m, x, kind="linear", test_inputs=demo.inputs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.2]})
    axes[0].plot(depths, [s.fidelity for s in fits], "o-", label="tree, fitting rows")
    axes[0].plot(depths, [s.test_fidelity for s in fits], "s-", label="tree, held-out rows")
    axes[0].axhline(linear.test_fidelity, color="k", ls=":", label="linear, held-out")
    share = (1 / 3 + 4 / 45) / (1 / 3 + 4 / 45 + 4 / 9)
    axes[0].axhline(share, color="0.6", ls="--", lw=0.8, label="additive share of Var f")
    axes[0].set_xlabel("tree depth"), axes[0].set_ylabel("fidelity R² to the MLP"), axes[0].legend(fontsize=7)
    axes[1].axis("off")
    axes[1].text(0, 1, fits[2].rules, family="monospace", fontsize=6.5, va="top")
    axes[1].set_title("depth-3 surrogate", fontsize=9)
    best = max(fits, key=lambda s: s.test_fidelity)
    uses = sorted({n for n in ("x0", "x1", "x2", "x3", "x4") if f"{n} <=" in fits[2].rules})
    reading = f"""Surrogates are fitted to the MLP's outputs on 2,000 fresh rows (f = x0 + x1² + 2 x2 x3, x4 unused) and
    scored by R² against the MLP on 1,000 held-out rows. The depth-3 tree reaches fidelity {fits[2].test_fidelity:.2f}
    and splits only on {', '.join(uses)}; the best depth ({depths[fits.index(best)]}) reaches {best.test_fidelity:.2f}, and
    deeper trees fit the fitting rows far better than held-out ones ({fits[-1].fidelity:.2f} against
    {fits[-1].test_fidelity:.2f} at depth 8). The linear
    surrogate gets {linear.test_fidelity:.2f}, with coefficient {float(linear.coef[0]):.2f} on x0. Fidelity stalls near
    the additive share of the variance ({share:.2f}) because a pure interaction like 2 x2 x3 gives no greedy split any
    gain: every single split on x2 or x3 leaves the mean unchanged on both sides. A surrogate's rules explain the
    model only as far as its fidelity goes; report it, and check what the surrogate cannot express."""
    return _result(fig, out_dir, "global-surrogate", reading,
                   {"depth3_fidelity": fits[2].test_fidelity, "best_tree_fidelity": best.test_fidelity,
                    "depth8_train_fidelity": fits[-1].fidelity, "linear_fidelity": linear.test_fidelity,
                    "additive_share": share})


# --- additive models: y = sin(3 x0) + x1² + |x3| + 1.5 x2 x3 + noise -------------------------------------------

_SHAPES = {0: ("sin(3 x0)", lambda v: torch.sin(3 * v)), 1: ("x1²", lambda v: v ** 2),
           2: ("0 (only in x2 x3)", lambda v: 0 * v), 3: ("|x3|", lambda v: v.abs())}


def _additive_data(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 4, generator=g) * 2 - 1
    y = sum(fn(x[:, j]) for j, (_, fn) in _SHAPES.items()) + 1.5 * x[:, 2] * x[:, 3] + 0.1 * torch.randn(n, generator=g)
    return x, y


def _shape_panels(axes, x, contrib, title):
    r = {}
    order = x.argsort(0)
    for j, ax in enumerate(axes):
        name, fn = _SHAPES[j]
        t = fn(x[:, j])
        t = t - t.mean()
        c = contrib[:, j] - contrib[:, j].mean()
        r[j] = _corr(c, t) if t.std() > 0 else float(c.std())
        ax.plot(x[order[:, j], j], t[order[:, j]], "k--", label="truth")
        ax.plot(x[order[:, j], j], c[order[:, j]], label=title)
        ax.set_title(name, fontsize=9), ax.set_xlabel(f"x{j}")
    axes[0].legend(fontsize=7)
    return r


@_runner("explainable-boosting-machines", "additive-synthetic", "EBM shape functions and a pair term against the planted ones")
def _run_ebm(out_dir, cache):
    x, y = _additive_data()
    xt, yt = _additive_data(1000, seed=1)
    ebm = global_effects.train_ebm(x, y, n_rounds=200, learning_rate=0.1)
    ebm2 = global_effects.train_ebm(x, y, n_rounds=200, learning_rate=0.1, interactions=[(2, 3)])
    r2 = lambda e: 1 - float(((e(xt.double()) - yt) ** 2).mean() / yt.var())  # noqa: E731
    fig, axes = plt.subplots(1, 5, figsize=(14, 2.8))
    r = _shape_panels(axes[:4], x.double(), ebm2.contributions(x.double()), "EBM")
    pair = ebm2.pairs[(2, 3)]
    im = axes[4].imshow(pair.T, origin="lower", cmap="bwr", extent=[-1, 1, -1, 1])
    axes[4].set_title("pair term (x2, x3)", fontsize=9), fig.colorbar(im, ax=axes[4])
    r_pair = _corr(ebm2.contributions(xt.double())[:, 4], 1.5 * xt[:, 2] * xt[:, 3])
    reading = f"""Data: y = sin(3 x0) + x1² + |x3| + 1.5 x2 x3 + noise (sd 0.1), four uniform features. The EBM
    (cyclic boosting of 3-leaf trees over 32 quantile bins, 200 rounds) recovers the main-effect shapes with
    correlations {r[0]:.3f}, {r[1]:.3f} and {r[3]:.3f} for x0, x1 and x3; x2 has no main effect and its shape stays flat
    (sd {r[2]:.3f}). Without a pair term it explains held-out R² = {r2(ebm):.3f}; adding the (x2, x3) pair on an 8x8 grid
    raises this to {r2(ebm2):.3f}, and the pair term correlates at r = {r_pair:.3f} with 1.5 x2 x3. Every term can be
    plotted and edited; the price is that only the interactions you add (or that a pair search finds) exist."""
    return _result(fig, out_dir, "explainable-boosting-machines", reading,
                   {"shape_r_x0": r[0], "shape_r_x1": r[1], "shape_r_x3": r[3], "x2_shape_sd": r[2],
                    "heldout_r2_main": r2(ebm), "heldout_r2_with_pair": r2(ebm2), "pair_r": r_pair})


@_runner("neural-additive-models", "additive-synthetic", "NAM shape functions against the planted ones")
def _run_nam(out_dir, cache):
    x, y = _additive_data()
    xt, yt = _additive_data(1000, seed=1)
    nam = by_design.train_nam(x, y, hidden=16, n_steps=400)
    with torch.no_grad():
        contrib = nam.contributions(x)
        r2 = 1 - float(((nam(xt) - yt) ** 2).mean() / yt.var())
        unexplained = float((1.5 * xt[:, 2] * xt[:, 3]).var() / yt.var())
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.8))
    r = _shape_panels(axes, x, contrib, "NAM")
    reading = f"""A neural additive model (one 1-16-16-1 ReLU network per feature, outputs summed, 400 Adam steps
    with an output penalty) is fitted to y = sin(3 x0) + x1² + |x3| + 1.5 x2 x3 + noise. Its shape functions
    correlate with the planted ones at {r[0]:.3f}, {r[1]:.3f} and {r[3]:.3f} (x0, x1, x3); the shape of x2, which acts
    only through the product with x3, stays near flat (sd {r[2]:.3f}). Held-out R² is {r2:.3f}: the interaction holds
    {unexplained:.0%} of the variance of y and no sum of one-feature functions can express it, so the NAM leaves it as
    error instead of hiding it in a shape. Smooth shapes come from the ReLU units here; the paper's ExU units fit
    sharper jumps."""
    return _result(fig, out_dir, "neural-additive-models", reading,
                   {"shape_r_x0": r[0], "shape_r_x1": r[1], "shape_r_x3": r[3], "x2_shape_sd": r[2],
                    "heldout_r2": r2, "interaction_variance_share": unexplained})


# --- interpretable by design on the shapes task -------------------------------------------------------------

def _shape_concepts(y):
    """Two planted concepts: 'wide' (width >= 4: horizontal bar, square), 'tall' (height >= 4: vertical bar, square)."""
    return torch.stack([y != 1, y != 0], 1).float()


@_runner("concept-bottleneck-models", "shapes-cnn", "concept bottleneck (wide, tall) on noisy shapes; three trainings; intervention")
def _run_cbm(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    x, y = models.make_shapes(1024, noise=0.5, seed=3)
    xt, yt = models.make_shapes(512, noise=0.5, seed=4)
    c, ct = _shape_concepts(y), _shape_concepts(yt)
    stats, trained = {}, {}
    for mode in ("independent", "sequential", "joint"):
        g = nn.Sequential(*copy.deepcopy(demo.model[:7]), nn.Linear(256, 2))  # the CNN's conv layers as backbone
        steps = 60
        if mode == "sequential":  # the same concept network as independent training: reuse it, fit only the head
            g, steps = copy.deepcopy(trained["independent"].concept_net), 0
        cbm = trained[mode] = by_design.train_cbm(g, x, c, y, 3, mode=mode, n_steps=steps, head_steps=200, batch_size=256)
        with torch.no_grad():
            ch = cbm.concepts(xt)
            acc = float((cbm(xt).argmax(1) == yt).float().mean())
            hard = float((cbm.head((ch > 0.5).float()).argmax(1) == yt).float().mean())
        wrong = (ch > 0.5).float() != ct
        one = torch.zeros_like(wrong)
        one[:, 1] = wrong[:, 1]  # an expert corrects only 'tall'
        fix_one = float((by_design.intervene(cbm, xt, one, ct).argmax(1) == yt).float().mean())
        fix_all = float((by_design.intervene(cbm, xt, wrong, ct).argmax(1) == yt).float().mean())
        stats[mode] = {"concept_acc": float(((ch > 0.5).float() == ct).float().mean()), "acc": acc, "hard": hard,
                       "fix_tall": fix_one, "fix_all": fix_all, "weights": cbm.head.weight.detach().clone()}
    modes = list(stats)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    keys = [("concept_acc", "concepts"), ("acc", "label"), ("hard", "label, hard concepts"),
            ("fix_tall", "after fixing 'tall'"), ("fix_all", "after fixing all wrong")]
    for i, (k, label) in enumerate(keys):
        axes[0].bar([m + (i - 2) * 0.16 for m in range(3)], [stats[m][k] for m in modes], 0.16, label=label)
    axes[0].set_xticks(range(3), modes), axes[0].set_ylim(0.8, 1.01), axes[0].legend(fontsize=6, loc="lower right")
    axes[0].set_ylabel("test accuracy")
    w = stats["independent"]["weights"]
    im = axes[1].imshow(w, cmap="bwr", vmin=-float(w.abs().max()), vmax=float(w.abs().max()))
    axes[1].set_xticks([0, 1], ["wide", "tall"]), axes[1].set_yticks(range(3), models.SHAPE_CLASSES)
    axes[1].set_title("independent head: concept -> class weights", fontsize=9), fig.colorbar(im, ax=axes[1])
    s = stats
    reading = f"""Shapes with heavy pixel noise (sd 0.5); the bottleneck holds two planted concepts, 'wide' (horizontal bar,
    square) and 'tall' (vertical bar, square), which determine the class. The concept network reuses the shapes
    CNN's convolutions, fine-tuned for 60 steps; the label head is linear. Concept accuracy is
    {', '.join(f"{s[m]['concept_acc']:.3f}" for m in modes)} and label accuracy {', '.join(f"{s[m]['acc']:.3f}" for m in modes)}
    for independent, sequential and joint training. Correcting only the wrong 'tall' predictions (test-time
    intervention) lifts label accuracy to {', '.join(f"{s[m]['fix_tall']:.3f}" for m in modes)}, and correcting every
    wrong concept to {', '.join(f"{s[m]['fix_all']:.3f}" for m in modes)}. With thresholded (hard) concepts the heads
    score {', '.join(f"{s[m]['hard']:.3f}" for m in modes)}: with two sufficient concepts there is little room for
    leakage here; on real data check this gap. The independent head's weights read as rules: 'wide' votes for the
    horizontal bar and square, 'tall' for the vertical bar and square."""
    return _result(fig, out_dir, "concept-bottleneck-models", reading,
                   {**{f"{k}_{m}": s[m][k] for m in modes for k in ("concept_acc", "acc", "hard", "fix_tall", "fix_all")}})


@_runner("protopnet", "shapes-cnn", "ProtoPNet on the shapes: where each pushed prototype comes from, and where it matches")
def _run_protopnet(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    x, y = models.make_shapes(1024, seed=3)
    xt, yt = models.make_shapes(512, seed=4)
    model = by_design.ProtoPNet(copy.deepcopy(demo.model[:5]), 16, 3, per_class=2, proto_dim=16)  # 8x8 latent grid
    push = by_design.train_protopnet(model, x, y, n_steps=60, last_layer_steps=100, batch_size=128)
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).float().mean())
        sims = model.similarities(xt)
        d = model.distances(xt)
    by_class = torch.stack([sims[yt == k].mean(0) for k in range(3)])
    specific = int((by_class.argmax(0) == model.prototype_class).sum())
    on_shape = [bool((x[i, 0, 2 * h:2 * h + 2, 2 * w:2 * w + 2] > 0.5).any())
                for i, (h, w) in zip(push.image.tolist(), push.location.tolist())]
    # where each prototype matches in test images of its class: the best cell falls on the shape?
    best = d.flatten(2).argmin(-1)  # (N, P)
    hits = []
    for p in range(len(model.prototypes)):
        rows = (yt == model.prototype_class[p]).nonzero()[:, 0]
        hh, ww = best[rows, p] // 8, best[rows, p] % 8
        hits.append(float(torch.stack([(xt[i, 0, 2 * a:2 * a + 2, 2 * b:2 * b + 2] > 0.5).any()
                                       for i, a, b in zip(rows.tolist(), hh.tolist(), ww.tolist())]).float().mean()))
    n_p = len(model.prototypes)
    fig, axes = plt.subplots(2, n_p, figsize=(2 * n_p, 4.2))
    for p in range(n_p):
        i, (h, w) = int(push.image[p]), push.location[p].tolist()
        axes[0, p].imshow(x[i, 0], cmap="gray")
        axes[0, p].add_patch(plt.Rectangle((2 * w - 0.5, 2 * h - 0.5), 2, 2, fill=False, ec="red", lw=2))
        axes[0, p].set_title(f"prototype {p} ({models.SHAPE_CLASSES[int(model.prototype_class[p])]})", fontsize=7)
        j = int((yt == model.prototype_class[p]).nonzero()[0, 0])
        axes[1, p].imshow(xt[j, 0], cmap="gray")
        sim = torch.log((d[j, p] + 1) / (d[j, p] + model.eps))
        axes[1, p].imshow(F.interpolate(sim[None, None], size=(16, 16), mode="nearest")[0, 0], cmap="jet", alpha=0.45)
        axes[1, p].set_title("similarity on a test image", fontsize=7)
        for ax in axes[:, p]:
            ax.axis("off")
    reading = f"""A ProtoPNet with two prototypes per class is built on the shapes CNN's first two conv layers (an 8x8
    grid of latent patches, each centred on a 2x2 pixel cell) and trained in the paper's three stages: joint
    training with the cluster and separation costs, a push that replaces every prototype by its nearest
    training patch of its own class, and a last-layer fit. Test accuracy is {acc:.3f}. Top row: the patch each
    prototype now is (red box); {sum(on_shape)} of {n_p} pushed patches lie on the shape rather than the noisy
    background. Bottom: the prototype's similarity map on a test image of its class. On test images of its class,
    a prototype's best-matching cell lies on the shape in {min(hits):.0%} to {max(hits):.0%} of images (median
    {sorted(hits)[n_p // 2]:.0%}); a prototype that fires next to the shape has learnt an end or an edge, which
    its 8x8-pixel receptive field still covers. {specific} of {n_p} prototypes are most similar, on average, to
    their own class. A prototype is a patch, not a
    concept: what about the patch it matches (an end, an edge, a width) still has to be read off by a person."""
    return _result(fig, out_dir, "protopnet", reading,
                   {"test_accuracy": acc, "pushed_on_shape": sum(on_shape), "class_specific": specific,
                    "test_match_on_shape_min": min(hits), "test_match_on_shape_max": max(hits)})


# --- data attribution: binary logistic regression on the tabular task (class 2 vs rest) ----------------------

_LAM = 1.0


def _fit_logistic(x, y, masks):
    """Batched Newton for ``min sum_i m_i CE_i + LAM/2 |theta|²`` over many training subsets: ``(M, d + 1)``."""
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    m = masks.double()
    theta = torch.zeros(len(m), design.shape[1], dtype=x.dtype)
    eye = torch.eye(design.shape[1], dtype=x.dtype)
    for _ in range(12):
        p = torch.sigmoid(theta @ design.T)
        hess = torch.einsum("mn,ni,nj->mij", m * p * (1 - p), design, design) + _LAM * eye
        theta = theta - torch.linalg.solve(hess, (m * (p - y)) @ design + _LAM * theta)
    return theta


def _attribution_setup(cache):
    def build():
        x, labels = models.make_tabular_data(150, seed=5)
        x = x.double()
        flipped = torch.randperm(150, generator=torch.Generator().manual_seed(0))[:10]
        y = (labels == 2).double()
        y[flipped] = 1 - y[flipped]  # ten mislabelled rows
        xt, lt = models.make_tabular_data(30, seed=6)
        xt, yt = xt.double(), (lt == 2).long()

        def margins(theta):
            z = theta[:, :-1] @ xt.T + theta[:, -1:]
            return torch.where(yt.bool(), z, -z)

        full = _fit_logistic(x, y, torch.ones(1, 150, dtype=torch.bool))[0]
        model = nn.Linear(8, 2).double()
        with torch.no_grad():
            model.weight.copy_(torch.stack([torch.zeros(8, dtype=torch.float64), full[:-1]]))
            model.bias.copy_(torch.tensor([0.0, float(full[-1])]))
        loo = (margins(full[None]) - margins(_fit_logistic(x, y, ~torch.eye(150, dtype=torch.bool)))).T
        held = torch.zeros(300, 150, dtype=torch.bool)
        held[torch.arange(300)[:, None], torch.rand(300, 150, generator=torch.Generator().manual_seed(9)).argsort(1)[:, :75]] = True
        return {"x": x, "y": y, "xt": xt, "yt": yt, "model": model, "loo": loo, "held": held, "flipped": flipped,
                "held_margins": margins(_fit_logistic(x, y, held)), "fit": lambda mk: margins(_fit_logistic(x, y, mk))}
    return _cached(cache, "tabular-logistic", build)


@_runner("trak", "tabular-logistic", "TRAK scores against leave-one-out retraining; LDS with and without projection")
def _run_trak(out_dir, cache):
    s = _attribution_setup(cache)
    args = (s["model"], s["x"], s["y"].long(), s["xt"], s["yt"])
    full = data_attribution.trak(*args, proj_dim=None)
    proj = {k: data_attribution.trak(*args, proj_dim=k, seed=1) for k in (2, 4, 8)}
    ens = data_attribution.trak(*args, checkpoints=[s["model"].state_dict()] * 5, proj_dim=4, seed=1)
    lds = lambda t: data_attribution.linear_datamodeling_score(t, s["held"], s["held_margins"])  # noqa: E731
    loo_lds = lds(s["loo"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].scatter(s["loo"].flatten(), full.flatten(), s=3)
    axes[0].set_xlabel("leave-one-out change of the test margin"), axes[0].set_ylabel("TRAK score")
    labels = ["no projection", "k=8", "k=4", "k=2", "k=4, 5 draws", "leave-one-out"]
    values = [lds(full), lds(proj[8]), lds(proj[4]), lds(proj[2]), lds(ens), loo_lds]
    axes[1].bar(range(len(values)), values)
    axes[1].set_xticks(range(len(values)), labels, rotation=30, fontsize=7), axes[1].set_ylabel("LDS")
    r = _corr(full, s["loo"])
    reading = f"""L2-regularised logistic regression (class 2 against the rest of the tabular task, 150 training rows,
    ten labels flipped, 9 parameters). TRAK's scores, computed from the gradients of the correct-class margin at
    the trained weights, correlate at r = {r:.3f} with the change of each of 30 test margins when a training row is
    left out and the model retrained. On 300 held-out random halves of the training set, the linear datamodeling
    score (Spearman correlation between summed scores and retrained margins) is {values[0]:.3f} without projection,
    {values[1]:.3f}, {values[2]:.3f} and {values[3]:.3f} after a random projection to 8, 4 and 2 dimensions, and
    {values[4]:.3f} averaging five projections to 4 dimensions; leave-one-out itself scores {loo_lds:.3f}. On a convex
    model TRAK is close to exact; on deep networks the paper needs an ensemble of independently trained models to
    reach its LDS."""
    return _result(fig, out_dir, "trak", reading,
                   {"loo_correlation": r, "lds_full": values[0], "lds_k8": values[1], "lds_k4": values[2],
                    "lds_k2": values[3], "lds_k4_ensemble": values[4], "lds_loo": loo_lds})


@_runner("datamodels", "tabular-logistic", "datamodels fitted on more and more retrained models: LDS against TRAK")
def _run_datamodels(out_dir, cache):
    s = _attribution_setup(cache)
    counts = [100, 300, 1000, 2000]
    fits = {m: data_attribution.datamodels(s["fit"], 150, n_models=m, fraction=0.5, seed=0) for m in counts}
    lds = lambda t: data_attribution.linear_datamodeling_score(t, s["held"], s["held_margins"])  # noqa: E731
    scores = [lds(fits[m].weights) for m in counts]
    trak_lds = lds(data_attribution.trak(s["model"], s["x"], s["y"].long(), s["xt"], s["yt"], proj_dim=None))
    best = fits[counts[-1]]
    r_loo = _corr(best.weights, s["loo"])
    self_effect = best.weights.mean(0)  # mean effect of each training row on the 30 test margins
    flipped = torch.isin(torch.arange(150), s["flipped"])
    worst = self_effect.argsort()[:10]
    share = float(flipped[worst].float().mean())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].semilogx(counts, scores, "o-", label="datamodels")
    axes[0].axhline(trak_lds, color="k", ls=":", label="TRAK (one model)")
    axes[0].set_xlabel("retrained models used for the fit"), axes[0].set_ylabel("LDS on held-out subsets")
    axes[0].legend(fontsize=7)
    order = self_effect.argsort()
    axes[1].bar(range(150), self_effect[order], color=["tab:red" if f else "0.6" for f in flipped[order].tolist()], width=1)
    axes[1].set_xlabel("training rows"), axes[1].set_ylabel("mean datamodel weight"), axes[1].set_title("red: flipped labels", fontsize=9)
    reading = f"""Datamodels retrain the logistic regression (class 2 against the rest, 150 rows, ten labels flipped) on
    random halves of the training set and regress each of 30 test margins on which rows were included. With
    {', '.join(str(m) for m in counts)} retrained models the LDS on 300 held-out subsets is
    {', '.join(f'{v:.3f}' for v in scores)}, against {trak_lds:.3f} for TRAK computed from one trained model. The fitted
    weights correlate at r = {r_loo:.3f} with leave-one-out retraining. Averaged over the test margins, the ten most
    harmful training rows include {share:.0%} of flipped labels (chance {10 / 150:.0%}). Datamodels are the
    expensive yardstick: thousands of retrainings for a linear model here, hundreds of thousands in the paper."""
    return _result(fig, out_dir, "datamodels", reading,
                   {**{f"lds_{m}_models": v for m, v in zip(counts, scores)}, "lds_trak": trak_lds,
                    "loo_correlation": r_loo, "flipped_among_10_most_harmful": share})


@_runner("representer-points", "tabular-mlp", "representer values of the MLP's training rows; exact decomposition; mislabelled rows")
def _run_representer(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    x, labels = models.make_tabular_data(300, seed=3)
    flipped = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:30]
    noisy = labels.clone()
    noisy[flipped] = (labels[flipped] + 1) % 3
    with torch.no_grad():
        feats, test_feats = demo.model[:4](x), demo.model[:4](demo.inputs[:200])
    ones = lambda f: torch.cat([f, torch.ones(len(f), 1)], 1)  # noqa: E731  (the bias as a constant feature)
    rep = data_attribution.representer_points(ones(feats), noisy, ones(test_feats), lam=1e-3)
    logits = ones(test_feats).double() @ rep.weight.T
    err = float((rep.values.sum(1) - logits).abs().max())
    own_alpha = rep.alpha[torch.arange(300), noisy]  # weight on the row's own (possibly wrong) label
    is_flipped = torch.isin(torch.arange(300), flipped)
    top = own_alpha.topk(30).indices
    share = float(is_flipped[top].float().mean())
    pred = logits.argmax(1)
    acc_clean = float((pred == demo.labels[:200]).float().mean())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].hist([own_alpha[~is_flipped].tolist(), own_alpha[is_flipped].tolist()], bins=30, label=["clean", "flipped"], log=True)
    axes[0].set_xlabel("alpha of the row's own label"), axes[0].legend(fontsize=7)
    v = rep.values[0, :, int(pred[0])]
    order = v.argsort(descending=True)
    axes[1].bar(range(300), v[order], color=["tab:red" if f else "0.6" for f in is_flipped[order].tolist()], width=1)
    axes[1].set_xlabel("training rows"), axes[1].set_ylabel("representer value"), axes[1].set_title("test row 0, predicted class", fontsize=9)
    reading = f"""The tabular MLP's last hidden layer (32 units plus a constant) gives features for 300 training rows, 30 with
    flipped labels; a linear head is refitted there with an L2 penalty to a stationary point (test accuracy
    {acc_clean:.3f}). The representer theorem writes each test logit as a sum over training rows of alpha times a
    feature dot product; summed, they reproduce the head's {logits.numel()} test logits to {err:.1e}. A training row's alpha
    for its own label is large when the head fits that label badly: the 30 rows with the largest alpha hold
    {share:.0%} of the flipped rows (chance 10%). For one test row (right), most of the logit comes from a few rows.
    The decomposition is exact for the refitted last layer only; it says nothing about how the features were learned."""
    return _result(fig, out_dir, "representer-points", reading,
                   {"decomposition_max_error": err, "flipped_among_top30_alpha": share, "test_accuracy": acc_clean})


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
