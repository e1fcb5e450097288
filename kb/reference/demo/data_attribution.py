"""``kb run`` demos of training-data attribution on the tabular task: TRAK, datamodels, representer points."""

from __future__ import annotations

import torch
from torch import nn

from .. import data_attribution, models
from ._registry import _cached, _corr, _result, _runner, demo_model, plt

__all__: list[str] = []


# --- data attribution: binary logistic regression on the tabular task (class 2 vs rest) ----------------------


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

        full = models.fit_logistic_subsets(x, y, torch.ones(1, 150, dtype=torch.bool))[0]
        model = nn.Linear(8, 2).double()
        with torch.no_grad():
            model.weight.copy_(torch.stack([torch.zeros(8, dtype=torch.float64), full[:-1]]))
            model.bias.copy_(torch.tensor([0.0, float(full[-1])]))
        loo = (margins(full[None]) - margins(models.fit_logistic_subsets(x, y, ~torch.eye(150, dtype=torch.bool)))).T
        held = torch.zeros(300, 150, dtype=torch.bool)
        held[torch.arange(300)[:, None], torch.rand(300, 150, generator=torch.Generator().manual_seed(9)).argsort(1)[:, :75]] = True
        return {"x": x, "y": y, "xt": xt, "yt": yt, "model": model, "loo": loo, "held": held, "flipped": flipped,
                "held_margins": margins(models.fit_logistic_subsets(x, y, held)), "fit": lambda mk: margins(models.fit_logistic_subsets(x, y, mk))}
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
