"""``kb run`` demos around the tabular MLP: black-box explanations and training-data attribution."""

from __future__ import annotations

import copy

import torch

from .. import blackbox, counterfactual, influence, models
from ._registry import _result, _runner, demo_model, plt

__all__: list[str] = []


# --- black-box explanations ------------------------------------------------------------------------------

TABULAR_FEATURES = [f"x{j}" for j in range(8)]


@_runner("anchors", "tabular-mlp", "Anchors rules (precision >= 0.95) for eight test rows")
def _run_anchors(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    data = models.make_tabular_data(2000, seed=2)[0]
    rows = demo.inputs[:8]
    res = blackbox.anchors(demo.model, rows, data=data, n_samples=300, seed=0)
    found = res.precision >= 0.95
    mask = res.mask.float()
    informative = float(res.mask[found, :4].sum() / res.mask[found].sum().clamp_min(1))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.imshow(mask.numpy(), cmap="Blues", vmin=0, vmax=1.6, aspect="auto")
    for i in range(len(rows)):
        for j in range(8):
            if res.mask[i, j]:
                lo, hi = float(res.lower[i, j]), float(res.upper[i, j])
                txt = f">= {lo:.2f}" if hi == float("inf") else f"< {hi:.2f}" if lo == -float("inf") else f"{lo:.1f}..{hi:.1f}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=6)
    ax.set_xticks(range(8), TABULAR_FEATURES)
    ax.set_yticks(range(len(rows)), [f"class {int(t)}: prec {float(p):.2f}, cov {float(c):.1%}"
                                     for t, p, c in zip(res.target, res.precision, res.coverage)], fontsize=7)
    ax.set_title("anchor rules: features held in the row's quartile bin", fontsize=9)
    failed = (~found).nonzero().flatten().tolist()
    with torch.no_grad():
        confidence = demo.model(rows).softmax(1).max(1).values
    fail_note = (f"""{'Rows' if len(failed) > 1 else 'Row'} {', '.join(str(i) for i in failed)} {'get' if len(failed) > 1 else 'gets'}
        no anchor: even holding all eight features in the row's bins keeps the prediction on only
        {', '.join(f'{float(res.precision[i]):.0%}' for i in failed)} of samples, although the MLP is confident at the row
        itself (probability {', '.join(f'{float(confidence[i]):.2f}' for i in failed)}). The box of quartile bins around it
        straddles a decision boundary: the discretisation, not the model, is too coarse there. """ if failed else "")
    cov = res.coverage[found] if found.any() else torch.zeros(1)
    reading = f"""Anchors searches, for each of eight test rows, for the shortest rule 'these features stay in the row's
    quartile bins' under which the MLP keeps its prediction on at least 95% of perturbed samples. {int(found.sum())}
    of 8 rows get such a rule, with {float(res.mask[found].sum(1).float().mean()) if found.any() else 0:.1f} features on average
    and precision {float(res.precision[found].mean()) if found.any() else 0:.2f}; {informative:.0%} of the features the rules
    use are among x0-x3, the ones that decide the class (x4-x7 are noise). {fail_note}Each rule covers only
    {float(cov.min()):.1%} to {float(cov.max()):.1%} of the data: an anchor is a local, sufficient condition for one
    prediction and says nothing about rows outside its box."""
    return _result(fig, out_dir, "anchors", reading,
                   {"n_anchored": int(found.sum()), "mean_precision": float(res.precision[found].mean()) if found.any() else 0.0,
                    "mean_coverage": float(res.coverage[found].mean()) if found.any() else 0.0,
                    "share_informative_features": informative})


@_runner("permutation-feature-importance", "tabular-mlp", "accuracy drop when each feature is shuffled")
def _run_permutation_importance(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    x, y = demo.inputs, demo.labels
    n_repeats = 10
    imp = blackbox.permutation_feature_importance(demo.model, x, y, n_repeats=n_repeats)
    # a second set of permutations shows the sampling error of the scores
    again = blackbox.permutation_feature_importance(demo.model, x, y, n_repeats=n_repeats, seed=1)
    with torch.no_grad():
        base = float((demo.model(x).argmax(1) == y).float().mean())
    fig, ax = plt.subplots(figsize=(5.5, 3))
    ax.bar([j - 0.2 for j in range(8)], imp.tolist(), 0.4, label="seed 0")
    ax.bar([j + 0.2 for j in range(8)], again.tolist(), 0.4, label="seed 1")
    ax.set_xticks(range(8), TABULAR_FEATURES), ax.set_ylabel("accuracy drop"), ax.legend(fontsize=7)
    ax.set_title(f"permutation importance (test accuracy {base:.2f})", fontsize=9)
    noise = float(imp[4:].abs().max())
    order = [TABULAR_FEATURES[j] for j in imp.argsort(descending=True)[:4].tolist()]
    reading = f"""Each feature of the 512 test rows is shuffled ({n_repeats} permutations) and the MLP's accuracy,
    {base:.2f} on intact data, is re-measured. Shuffling x0-x3 costs {', '.join(f'{v:.2f}' for v in imp[:4].tolist())}
    accuracy (ranked {', '.join(order)}); the noise features x4-x7 cost at most {noise:.3f}, and a second set of
    permutations changes any score by at most {float((imp - again).abs().max()):.3f}.
    {'x0 ranks first because it enters two of the three class scores. ' if order[0] == 'x0' else ''}Permutation breaks a feature's correlations with the others, so with
    correlated inputs it queries the model off the data distribution; it measures reliance on a feature, not
    the feature's effect in the world."""
    return _result(fig, out_dir, "permutation-feature-importance", reading,
                   {**{f"importance_x{j}": float(imp[j]) for j in range(8)}, "base_accuracy": base})


@_runner("partial-dependence", "tabular-mlp", "partial dependence and ICE curves of class probabilities")
def _run_partial_dependence(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    x = demo.inputs
    panels = [(2, 3), (0, 0), (2, 5)]
    curves = [blackbox.partial_dependence(demo.model, x, c, feature=f, probs=True) for c, f in panels]
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.8), sharey=True)
    ranges, spread = [], []
    for ax, (c, f), pd in zip(axes, panels, curves):
        ax.plot(pd.grid.numpy(), pd.ice[:60].T.numpy(), color="0.75", lw=0.5)
        ax.plot(pd.grid.numpy(), pd.average.numpy(), color="tab:red", lw=2)
        ax.set_xlabel(f"x{f}"), ax.set_title(f"P(class {c}) vs x{f}", fontsize=9)
        ranges.append(float(pd.average.max() - pd.average.min()))
        centred = pd.ice - pd.ice[:, :1]  # ICE curves anchored at the first grid point
        spread.append(float((centred - centred.mean(0)).std(0).mean()))
    axes[0].set_ylabel("probability")
    reading = f"""Grey: individual conditional expectation (ICE) curves, the class probability of single test
    rows as one feature sweeps its 5th-95th percentile; red: their mean, the partial dependence. The
    probability of class 2 (decided by 1.5 x3) rises by {ranges[0]:.2f} across x3; class 0 (x0 + x1 against
    x2 - x0) moves by {ranges[1]:.2f} across x0; the noise feature x5 moves class 2 by only {ranges[2]:.3f}.
    Anchored at the left end, ICE curves scatter around their mean by {', '.join(f'{s:.2f}' for s in spread)}
    (same order): the rows disagree where a feature's effect depends on the others, which the average
    hides, so read the PD curve together with its ICE curves. PD also evaluates the model at feature
    combinations the data may never contain when features are correlated."""
    return _result(fig, out_dir, "partial-dependence", reading,
                   {"pd_range_class2_x3": ranges[0], "pd_range_class0_x0": ranges[1], "pd_range_class2_x5": ranges[2],
                    "ice_spread_class2_x3": spread[0], "ice_spread_class0_x0": spread[1]})


@_runner("counterfactual-explanations", "tabular-mlp", "sparse counterfactuals (MAD-weighted L1) towards another class")
def _run_counterfactuals(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    x = demo.inputs[:64]
    with torch.no_grad():
        target = (demo.model(x).argmax(1) + 1) % 3
    xtr, ytr = models.make_tabular_data(1024)
    mad = counterfactual.median_absolute_deviation(xtr)
    nearest = (torch.cdist(x / mad, xtr / mad, p=1).masked_fill(target[:, None] != ytr[None], float("inf"))
               .min(1).values)
    runs = {}
    for lam in (0.05, 0.5):
        cf = counterfactual.counterfactual_explanation(demo.model, x, target, lam=lam, mad=mad)
        with torch.no_grad():
            probs = demo.model(cf).softmax(1)
        change = cf - x
        runs[lam] = dict(success=float((probs.argmax(1) == target).float().mean()),
                         prob=float(probs.gather(1, target[:, None]).median()),
                         p10=float(probs.gather(1, target[:, None]).quantile(0.1)),
                         moved=(change != 0).float(), dist=(change.abs() / mad).sum(1))
    a, b = runs[0.05], runs[0.5]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].bar(TABULAR_FEATURES, a["moved"].mean(0).tolist())
    axes[0].set_ylabel("share of counterfactuals changing it"), axes[0].set_ylim(0, 1)
    axes[0].set_title("features changed (lam = 0.05)", fontsize=9)
    for lam, r in runs.items():
        axes[1].scatter(nearest.tolist(), r["dist"].tolist(), s=8, label=f"lam = {lam}")
    lim = float(max(nearest.max(), a["dist"].max()))
    axes[1].plot([0, lim], [0, lim], "k--", lw=0.8)
    axes[1].set_xlabel("to nearest training row of target class"), axes[1].set_ylabel("to counterfactual")
    axes[1].set_title("L1 distance in MAD units", fontsize=9), axes[1].legend(fontsize=7)
    noise = float(a["moved"][:, 4:].mean())
    reading = f"""For 64 test rows, proximal gradient descent finds a nearby input, in MAD-weighted L1 distance,
    that the MLP assigns to the next class (predicted class + 1 mod 3). With the distance price lam = 0.05,
    {a['success']:.0%} of the counterfactuals reach their target class; each changes
    {float(a['moved'].sum(1).mean()):.1f} of 8 features on average and {'never' if noise == 0 else 'rarely'} the noise
    features x4-x7 ({noise:.0%} of them moved), because the L1 step leaves a feature exactly in place unless the
    model's gradient pulls on it harder than its price. The median counterfactual lies {float(a['dist'].median()):.1f}
    MAD units from its row (the nearest training row of the target class: {float(nearest.median()):.1f}) and gets a
    median target probability of {a['prob']:.2f} (10th percentile {a['p10']:.2f}). Raising the price to lam = 0.5
    brings the median distance to {float(b['dist'].median()):.1f} with {b['success']:.0%} still reaching the class
    (target probability: median {b['prob']:.2f}, 10th percentile {b['p10']:.2f}): the MLP's logits are steep near
    its decision boundaries, so a counterfactual a little past one is already predicted confidently, and
    confidence says nothing about how far the change is. Nothing here keeps the counterfactual on the data
    distribution."""
    return _result(fig, out_dir, "counterfactual-explanations", reading,
                   {"success_rate": a["success"], "median_target_probability": a["prob"],
                    "mean_features_changed": float(a["moved"].sum(1).mean()), "noise_features_moved": noise,
                    "median_distance": float(a["dist"].median()), "median_nearest_training_row": float(nearest.median()),
                    "median_distance_lam_0.5": float(b["dist"].median()), "median_target_probability_lam_0.5": b["prob"]})


# --- training-data attribution ------------------------------------------------------------------------------

def _noisy_tabular(n: int, n_flipped: int, seed: int = 3):
    """Tabular training data with ``n_flipped`` labels moved to the next class; returns x, noisy y, flipped indices."""
    x, y = models.make_tabular_data(n, seed=seed)
    flipped = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:n_flipped]
    noisy = y.clone()
    noisy[flipped] = (y[flipped] + 1) % 3
    return x, noisy, flipped


def _fit_readout(features, labels, keep, lam, init=None):
    """The L2-regularised readout ``1/n sum_i keep_i CE_i + lam/2 |theta|^2``, fitted to convergence by L-BFGS."""
    head = torch.nn.Linear(features.shape[1], 3).double() if init is None else copy.deepcopy(init).requires_grad_(True)
    opt = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=200, tolerance_grad=1e-10, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(head(features), labels, reduction="none") * keep).sum() / len(features)
        loss = loss + lam / 2 * sum(p.square().sum() for p in head.parameters())
        loss.backward()
        return loss

    opt.step(closure)
    return head.requires_grad_(False)


@_runner("influence-functions", "tabular-mlp", "influence of training rows on the test loss vs leave-one-out refits")
def _run_influence(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    lam, n = 1e-2, 200
    x, noisy, flipped = _noisy_tabular(n, 20)
    with torch.no_grad():
        h, h_test = demo.model[:4](x).double(), demo.model[:4](demo.inputs).double()
    keep = torch.ones(n, dtype=torch.float64)
    head = _fit_readout(h, noisy, keep, lam)
    # the readout's loss is convex, so the exact Hessian (99 x 99) is positive definite with the L2 term
    infl = influence.influence_functions(head, h, noisy, h_test, demo.labels, damping=lam).mean(0)  # mean test loss
    predicted = -infl / n  # change of the mean test loss when the row is removed
    harmful = infl.topk(20).indices
    share_flipped = float(torch.isin(harmful, flipped).float().mean())
    g = torch.Generator().manual_seed(1)
    check = torch.cat([infl.topk(8).indices, infl.topk(8, largest=False).indices, torch.randperm(n, generator=g)[:8]])
    with torch.no_grad():
        base = torch.nn.functional.cross_entropy(head(h_test), demo.labels)
    actual = []
    for i in check.tolist():
        k = keep.clone()
        k[i] = 0
        refit = _fit_readout(h, noisy, k, lam, init=head)
        with torch.no_grad():
            actual.append(float(torch.nn.functional.cross_entropy(refit(h_test), demo.labels) - base))
    actual = torch.tensor(actual, dtype=torch.float64)
    r = float(torch.corrcoef(torch.stack([predicted[check], actual]))[0, 1])
    is_flipped = torch.isin(torch.arange(n), flipped)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    order = infl.argsort(descending=True)
    axes[0].bar(range(n), infl[order].tolist(), color=["tab:red" if f else "0.6" for f in is_flipped[order].tolist()], width=1.0)
    axes[0].set_xlabel("training rows, most harmful first"), axes[0].set_ylabel("influence on test loss")
    axes[0].set_title("red: flipped labels", fontsize=9)
    axes[1].scatter((predicted[check] * 1e3).tolist(), (actual * 1e3).tolist(), s=10)
    lim = float(max(predicted[check].abs().max(), actual.abs().max())) * 1e3
    axes[1].plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
    axes[1].set_xlabel("predicted change (x1e-3)"), axes[1].set_ylabel("leave-one-out refit (x1e-3)")
    reading = f"""The tabular MLP's readout (99 parameters) is refitted with an L2 penalty on 200 training rows, 20
    of them with flipped labels, and the influence of each row on the mean loss of the 512 test rows is
    computed with the exact Hessian. {share_flipped:.0%} of the 20 most harmful rows (up-weighting them raises
    the test loss) are the flipped ones, against 10% by chance. Over 24 rows (the most harmful, the most
    helpful and random ones), the predicted change of the test loss when a row is removed and the change
    measured by refitting without it correlate at r = {r:.2f}{': the first-order estimate holds' if r > 0.9 else ''}. Influence functions are a local, first-order estimate around a
    converged, convex fit; for a whole deep network the Hessian is huge and indefinite, and the estimates
    become fragile."""
    return _result(fig, out_dir, "influence-functions", reading,
                   {"flipped_among_top20_harmful": share_flipped, "loo_correlation": r,
                    "max_predicted_change": float(predicted.abs().max())})


@_runner("tracin", "tabular-mlp", "TracIn self-influence over checkpoints flags mislabelled training rows")
def _run_tracin(out_dir, cache):
    n, n_flipped = 300, 30
    x, noisy, flipped = _noisy_tabular(n, n_flipped)
    model = models.tabular_mlp(seed=0, hidden=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    checkpoints = []
    for epoch in range(20):
        for batch in torch.randperm(n, generator=g).split(30):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), noisy[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % 5 == 4:
            checkpoints.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    model.eval()
    self_influence = influence.tracin(model, checkpoints, x, noisy, x, noisy, lr=0.1).diagonal()
    with torch.no_grad():
        final_loss = torch.nn.functional.cross_entropy(model(x), noisy, reduction="none")
        fitted = float((model(x[flipped]).argmax(1) == noisy[flipped]).float().mean())
    is_flipped = torch.isin(torch.arange(n), flipped)

    def recall_curve(score):
        hits = is_flipped[score.argsort(descending=True)].float().cumsum(0)
        return hits / n_flipped

    curve_t, curve_l = recall_curve(self_influence), recall_curve(final_loss)
    recall_t, recall_l = float(curve_t[n_flipped - 1]), float(curve_l[n_flipped - 1])
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].hist([self_influence[~is_flipped].tolist(), self_influence[is_flipped].tolist()], bins=30,
                 label=["clean", "flipped"], log=True)
    axes[0].set_xlabel("TracIn self-influence"), axes[0].legend(fontsize=7)
    axes[1].plot(range(1, n + 1), curve_t.tolist(), label="TracIn self-influence")
    axes[1].plot(range(1, n + 1), curve_l.tolist(), label="final training loss")
    axes[1].plot([1, n], [1 / n_flipped, 1], "k:", lw=0.8, label="random order")
    axes[1].axvline(n_flipped, color="0.6", lw=0.8)
    axes[1].set_xlabel("rows inspected"), axes[1].set_ylabel("flipped rows found"), axes[1].legend(fontsize=7)
    reading = f"""A 16-unit MLP is trained by SGD on 300 tabular rows, 30 with flipped labels, saving four
    checkpoints; TracIn sums, over the checkpoints, the learning rate times the squared norm of each row's
    loss gradient (its self-influence). Ranking the rows by it, the top 30 hold {recall_t:.0%} of the
    flipped rows (chance 10%). The final network still gets {1 - fitted:.0%} of the flipped rows 'wrong', so
    their loss stays high and ranking by the final training loss alone finds {recall_l:.0%}:
    {'TracIn adds little over the loss here' if recall_l >= recall_t else 'TracIn beats the loss ranking here'}.
    The checkpoints matter when a network memorises its noisy labels by the end of training; test-set
    influence (proponents and opponents of a prediction) is the other use of the same dot products."""
    return _result(fig, out_dir, "tracin", reading,
                   {"recall_top30_tracin": recall_t, "recall_top30_loss": recall_l, "flipped_fitted": fitted})
