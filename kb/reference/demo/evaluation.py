"""``kb run`` checks to run on your own model, on the shapes CNN and the tabular MLP; CAM variants."""

from __future__ import annotations

import copy

import torch

from .. import attribution, cam, evaluation, models, perturbation
from ._registry import _result, _runner, demo_model, plt

__all__: list[str] = []


# --- evaluation: checks to run on your own model (model randomisation, deletion/insertion, ROAR, ----------
# --- infidelity and sensitivity), meaningful perturbation, CAM variants -----------------------------------

def _slug(name: str) -> str:
    return name.lower().replace("++", "pp").replace(" ", "_").replace("-", "_")


def _one_per_class(demo, k: int = 1):
    """``k`` test images of each class, class by class."""
    idx = torch.cat([(demo.labels == c).nonzero()[:k, 0] for c in range(3)])
    return demo.inputs[idx], demo.labels[idx]


_CHECKED = {
    "gradient": lambda m, x, t: attribution.saliency(m, x, t),
    "gradient x input": lambda m, x, t: attribution.gradient_x_input(m, x, t),
    "guided backprop": lambda m, x, t: attribution.guided_backprop(m, x, t),
    "Grad-CAM": lambda m, x, t: cam.grad_cam(m, x, t, "4"),
}


@_runner("model-randomization-test", "shapes-cnn", "rank correlation of four methods' maps under cascading layer randomisation")
def _run_randomization(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    x, y = demo.inputs[:32], demo.labels[:32]
    res = {k: evaluation.model_randomization_test(demo.model, x, y, f) for k, f in _CHECKED.items()}
    names = {"7": "linear head", "3": "conv 2", "0": "conv 1"}
    fig = plt.figure(figsize=(7, 5))
    grid = fig.add_gridspec(2, 4, height_ratios=[3, 2])
    line = fig.add_subplot(grid[0, :])
    steps = ["original"] + [f"+ {names.get(s, s)}" for s in res["gradient"].steps]
    for k, r in res.items():
        line.plot(steps, [r.original, *r.rank_correlation], marker="o", label=k)
    line.axhline(res["gradient"].random, color="gray", ls="--", label="two random maps")
    line.set_ylabel("rank corr. of |map|\nwith the original", fontsize=8), line.set_ylim(-0.2, 1.05)
    line.legend(fontsize=7), line.tick_params(labelsize=7)
    xs, ys = x[:1], y[:1]
    work = copy.deepcopy(demo.model)
    maps = [attribution.saliency(work, xs, ys)[0, 0]]
    for i, name in enumerate(res["gradient"].steps):
        evaluation._reinitialize(work.get_submodule(name), i)  # the test's own per-layer seeds
        maps.append(attribution.saliency(work, xs, ys)[0, 0])
    for j, mp in enumerate(maps):
        ax = fig.add_subplot(grid[1, j])
        ax.imshow(mp.numpy(), cmap="viridis"), ax.axis("off")
        ax.set_title(f"gradient, {steps[j]}", fontsize=7)
    fig.suptitle("Model randomisation test on the shapes CNN (cascading, top layer first)", fontsize=9)
    g, gxi = res["gradient"], res["gradient x input"]
    passing = [k for k, r in res.items() if r.passed]
    reading = f"""Layers of the trained CNN are re-initialised from the linear head down, and each method's maps
    for 32 test images are recomputed after every step. The gradient's |map| rank correlation with the
    original falls to {g.rank_correlation[0]:.2f} once the head is random and to {g.fully_randomized:.2f}
    with all three layers random, against {g.random:.2f} for two random maps measured in the same call:
    the maps change sharply, as Adebayo et al. report. Gradient x input stays at {gxi.fully_randomized:.2f},
    because multiplying by the image keeps its outline whatever the weights. Guided backprop ends at
    {res['guided backprop'].fully_randomized:.2f} and Grad-CAM at {res['Grad-CAM'].fully_randomized:.2f}; on
    this three-layer network guided backprop changes, unlike the near-invariance Adebayo et al. found in
    deep ImageNet networks. Passing this handbook's mark (at least half way from 1.0 to the random
    level): {', '.join(passing) or 'none'}. Passing shows only that a map depends on the weights."""
    return _result(fig, out_dir, "model-randomization-test", reading,
                   {**{f"{_slug(k)}_full": r.fully_randomized for k, r in res.items()},
                    "gradient_after_head": g.rank_correlation[0], "random_maps": g.random,
                    "n_passing": len(passing)})


@_runner("deletion-insertion-curves", "shapes-cnn", "deletion and insertion curves of saliency, Grad-CAM and random maps")
def _run_deletion(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    m, x, y = demo.model, demo.inputs[:48], demo.labels[:48]
    maps = {"gradient": attribution.saliency(m, x, y), "Grad-CAM": cam.grad_cam(m, x, y, "4"),
            "integrated gradients": attribution.integrated_gradients(m, x, y, n_steps=16),
            "random map": torch.rand(x.shape, generator=torch.Generator().manual_seed(0))}
    res = {k: evaluation.deletion_insertion_curves(m, x, y, a, steps=16) for k, a in maps.items()}
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    f = res["gradient"].fractions
    for k, r in res.items():
        axes[0].plot(f, r.deletion, label=f"{k} ({r.deletion_auc:.2f})")
        axes[1].plot(f, r.insertion, label=f"{k} ({r.insertion_auc:.2f})")
    r0 = res["gradient"]
    axes[0].plot(f, r0.random_deletion, "k--", label=f"random orders ({r0.random_deletion_auc:.2f})")
    axes[1].plot(f, r0.random_insertion, "k--", label=f"random orders ({r0.random_insertion_auc:.2f})")
    for ax, title in zip(axes, ["deletion (most relevant pixels to 0 first)", "insertion (into a black image)"]):
        ax.set_xlabel("fraction of pixels"), ax.set_title(title, fontsize=8), ax.legend(fontsize=6)
    axes[0].set_ylabel("p(true class)")
    fig.suptitle("Deletion and insertion curves, 48 test images of the shapes CNN (AUC)", fontsize=9)
    ig, gc, rnd = res["integrated gradients"], res["Grad-CAM"], res["random map"]
    reading = f"""Pixels are set to 0 in the order each map ranks them (deletion) or copied into a black image in
    that order (insertion), and the true class's probability is recorded; four random orders per image are
    the reference, measured in the same call. Deleting by the gradient gives an area under the curve of
    {r0.deletion_auc:.2f}, integrated gradients {ig.deletion_auc:.2f} and Grad-CAM {gc.deletion_auc:.2f}, against
    {r0.random_deletion_auc:.2f} for random orders (lower is better); insertion gives {r0.insertion_auc:.2f},
    {ig.insertion_auc:.2f} and {gc.insertion_auc:.2f} against {r0.random_insertion_auc:.2f} (higher is better).
    A random map lands at chance ({rnd.deletion_auc:.2f} / {rnd.insertion_auc:.2f}). Verdicts: gradient
    {'pass' if r0.passed else 'fail'}, integrated gradients {'pass' if ig.passed else 'fail'}, Grad-CAM
    {'pass' if gc.passed else 'fail'}, random map {'pass' if rnd.passed else 'fail'}. The images are mostly
    near-black background, so setting pixels to 0 removes little but the shape; on natural images the
    black patches are off-distribution, which is what remove-and-retrain and ROAD correct for."""
    return _result(fig, out_dir, "deletion-insertion-curves", reading,
                   {**{f"deletion_auc_{_slug(k)}": r.deletion_auc for k, r in res.items()},
                    **{f"insertion_auc_{_slug(k)}": r.insertion_auc for k, r in res.items()},
                    "random_deletion_auc": r0.random_deletion_auc, "random_insertion_auc": r0.random_insertion_auc})


def _train_small_mlp(X, y):
    model = models.tabular_mlp(n_features=X.shape[1], hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@_runner("remove-and-retrain", "tabular-mlp", "accuracy after removing the top features and retraining, by attribution and at random")
def _run_roar(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    X, y = models.make_tabular_data(1024, seed=5)
    maps = {"|integrated gradients|": attribution.integrated_gradients(demo.model, X, y, n_steps=16).abs(),
            "random map": torch.rand(X.shape, generator=torch.Generator().manual_seed(0))}
    fractions = (0.25, 0.5, 0.75)
    res = {k: evaluation.remove_and_retrain(_train_small_mlp, X, y, a, fractions=fractions) for k, a in maps.items()}
    fig, ax = plt.subplots(figsize=(5, 3.3))
    ig, rnd = res["|integrated gradients|"], res["random map"]
    ax.plot(ig.fractions, ig.accuracy, marker="o", label="remove top |IG| features")
    ax.plot(rnd.fractions, rnd.accuracy, marker="s", label="remove by a random map")
    ax.plot(ig.fractions, ig.random_accuracy, "k--", label="random removal (reference)")
    ax.axhline(ig.chance, color="gray", ls=":", label="majority class")
    ax.set_xlabel("fraction of the 8 features replaced by their mean"), ax.set_ylabel("test accuracy after retraining")
    ax.legend(fontsize=7), ax.set_title("ROAR on the tabular task (4 informative features of 8)", fontsize=9)
    reading = f"""The demo MLP's integrated gradients rank each row's 8 features; the top fraction is replaced by the
    training mean in training and test rows, a fresh MLP is trained on the result and tested. Removing the
    top quarter (2 features) leaves {ig.accuracy[1]:.2f} accuracy against {ig.random_accuracy[1]:.2f} for random
    removal, and the top half {ig.accuracy[2]:.2f} against {ig.random_accuracy[2]:.2f} (all features:
    {ig.accuracy[0]:.2f}, majority class {ig.chance:.2f}). Averaged over the fractions the gap to random
    removal is {ig.gap:+.3f} ({'pass' if ig.passed else 'fail'}); a random map's gap is {rnd.gap:+.3f}, at chance
    as it should be. The labels depend on features 0-3 only, so once they are gone no retraining brings the
    accuracy back: that is what ROAR measures, without the off-distribution inputs of deletion curves."""
    return _result(fig, out_dir, "remove-and-retrain", reading,
                   {"acc_top_quarter": ig.accuracy[1], "random_top_quarter": ig.random_accuracy[1],
                    "acc_top_half": ig.accuracy[2], "random_top_half": ig.random_accuracy[2], "gap": ig.gap,
                    "random_map_gap": rnd.gap, "chance": ig.chance})


@_runner("infidelity-sensitivity", "shapes-cnn", "infidelity and max-sensitivity of five attribution methods")
def _run_infidelity(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    m, x, y = demo.model, demo.inputs[:24], demo.labels[:24]
    methods = {"gradient": lambda mm, xx, tt: attribution.saliency(mm, xx, tt, abs=False),
               "SmoothGrad": lambda mm, xx, tt: attribution.smoothgrad(mm, xx, tt, n_samples=16, stdev=0.2, abs=False),
               "gradient x input": attribution.gradient_x_input,
               "integrated gradients": lambda mm, xx, tt: attribution.integrated_gradients(mm, xx, tt, n_steps=16),
               "Grad-CAM": lambda mm, xx, tt: cam.grad_cam(mm, xx, tt, "4")}
    infid, sens = {}, {}
    for k, f in methods.items():
        infid[k] = float(evaluation.infidelity(m, x, y, f(m, x, y), n_perturb_samples=32, normalize=True).mean())
        sens[k] = float(evaluation.max_sensitivity(m, x, y, f, radius=0.05, n_perturb_samples=8).mean())
    ceiling = float(evaluation.infidelity(m, x, y, torch.zeros_like(x), n_perturb_samples=32, normalize=True).mean())
    rnd = float(evaluation.infidelity(m, x, y, torch.randn(x.shape, generator=torch.Generator().manual_seed(0)),
                                      n_perturb_samples=32, normalize=True).mean())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    names = list(methods)
    axes[0].barh(names, [infid[k] / ceiling for k in names])
    axes[0].axvline(rnd / ceiling, color="k", ls="--", label="random map")
    axes[0].set_xlabel("infidelity / infidelity of a zero map"), axes[0].legend(fontsize=7)
    axes[1].barh(names, [sens[k] for k in names]), axes[1].set_xlabel("max-sensitivity (radius 0.05)")
    axes[1].set_yticks(range(len(names)), [""] * len(names))
    fig.suptitle("Infidelity (Gaussian noise, sd 0.1, optimal scale) and max-sensitivity, 24 images", fontsize=9)
    best = min(names, key=infid.get)
    reading = f"""Infidelity asks how well the attribution, dotted with a random perturbation (Gaussian, sd 0.1),
    predicts the change of the class logit; with the optimal scale per image, a zero map scores
    {ceiling:.3f}, so the bars show the share of the output change left unexplained. A random map leaves
    {rnd / ceiling:.0%}; the gradient {infid['gradient'] / ceiling:.0%}, SmoothGrad {infid['SmoothGrad'] / ceiling:.0%},
    integrated gradients {infid['integrated gradients'] / ceiling:.0%}, gradient x input
    {infid['gradient x input'] / ceiling:.0%}, Grad-CAM {infid['Grad-CAM'] / ceiling:.0%}; {best} is the most
    faithful to this perturbation, as expected for small Gaussian noise, which rewards the local gradient
    (Yeh et al.). Max-sensitivity, the largest relative change of the map under noise of radius 0.05, is
    {sens['gradient']:.2f} for the gradient and {sens['SmoothGrad']:.2f} for SmoothGrad (smoothing buys
    stability) and {sens['Grad-CAM']:.2f} for Grad-CAM, whose coarse 8x8 map barely moves. Both numbers depend
    on the perturbation chosen; compare methods under the same one, and read sensitivity next to
    faithfulness, since a constant map is perfectly stable."""
    return _result(fig, out_dir, "infidelity-sensitivity", reading,
                   {**{f"infidelity_{_slug(k)}": v / ceiling for k, v in infid.items()},
                    **{f"sensitivity_{_slug(k)}": v for k, v in sens.items()},
                    "infidelity_random_map": rnd / ceiling, "infidelity_zero_map": ceiling})


@_runner("meaningful-perturbation", "shapes-cnn", "deletion-game masks (Fong and Vedaldi) for one image per class")
def _run_meaningful(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    xs, ys = _one_per_class(demo)
    from ..visualization import gaussian_blur
    m = demo.model
    masks = {"to black": perturbation.meaningful_perturbation(m, xs, ys, n_steps=200, baseline=0.0),
             "blurred": perturbation.meaningful_perturbation(m, xs, ys, n_steps=200)}  # the paper's blur
    fills = {"to black": torch.zeros_like(xs), "blurred": gaussian_blur(xs, 2.0)}
    inside = xs[:, 0] > 0.5
    with torch.no_grad():
        p0 = m(xs).softmax(1).gather(1, ys[:, None])[:, 0]
        p1 = {k: m(xs * (1 - mk) + fills[k] * mk).softmax(1).gather(1, ys[:, None])[:, 0] for k, mk in masks.items()}
    share = {k: [float((mk[i, 0] * inside[i]).sum() / mk[i, 0].sum().clamp_min(1e-12)) for i in range(3)]
             for k, mk in masks.items()}
    area = {k: [float(mk[i, 0].mean()) for i in range(3)] for k, mk in masks.items()}
    fig, axes = plt.subplots(3, 3, figsize=(6, 6))
    for i in range(3):
        axes[0, i].imshow(xs[i, 0].numpy(), cmap="gray")
        axes[0, i].set_title(f"{models.SHAPE_CLASSES[i]}  p={float(p0[i]):.2f}", fontsize=8)
        for r, k in enumerate(masks, start=1):
            axes[r, i].imshow(masks[k][i, 0].numpy(), cmap="magma", vmin=0, vmax=1)
            axes[r, i].set_title(f"mask, deleted {k}: p={float(p1[k][i]):.2f}", fontsize=7)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.suptitle("Meaningful perturbation: the smallest smooth region whose deletion removes the class", fontsize=8)
    pct = lambda v: ", ".join(f"{a:.0%}" for a in v)  # noqa: E731
    prob = lambda v: ", ".join(f"{float(a):.2f}" for a in v)  # noqa: E731
    with torch.no_grad():
        blank = m(torch.zeros_like(xs[:1])).softmax(1)[0]
    default = int(blank.argmax())
    reading = f"""For one image per class a 16x16 mask is optimised (200 Adam steps from a half-deleted start) so
    that deleting the masked pixels lowers the true class's probability, while an area penalty keeps the
    mask small and a total-variation penalty keeps it smooth. Deleting to black, the masks cover
    {pct(area['to black'])} of the image, {pct(share['to black'])} of their weight lies on the shape (which covers
    about 5%), and the class probability goes from {prob(p0)} to {prob(p1['to black'])}. The
    {models.SHAPE_CLASSES[default]} cannot be deleted: a blank image is itself classified
    {models.SHAPE_CLASSES[default]} (p = {float(blank.max()):.2f}), so the area penalty wins and its mask stays empty,
    a true statement about this model rather than a failure. With the paper's blur as the deletion the
    masks cover {pct(area['blurred'])} and the probabilities end at {prob(p1['blurred'])}: a blurred bar
    is still a bar, so the mask grows over the blur's reach. The mask answers "what must be destroyed, by
    this perturbation"; report the perturbation and the two penalty weights with it."""
    return _result(fig, out_dir, "meaningful-perturbation", reading,
                   {**{f"mask_share_on_shape_{c}": v for c, v in zip(("hbar", "vbar", "square"), share["to black"])},
                    **{f"p_after_{c}": float(v) for c, v in zip(("hbar", "vbar", "square"), p1["to black"])},
                    **{f"p_after_blur_{c}": float(v) for c, v in zip(("hbar", "vbar", "square"), p1["blurred"])}})


@_runner("cam-variants", "shapes-cnn", "Grad-CAM, Grad-CAM++, Score-CAM, LayerCAM and Eigen-CAM on the last conv layer")
def _run_cam_variants(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    m = demo.model
    xs, ys = _one_per_class(demo)
    variants = {"Grad-CAM": cam.grad_cam, "Grad-CAM++": cam.grad_cam_plus_plus, "Score-CAM": cam.score_cam,
                "LayerCAM": cam.layer_cam, "Eigen-CAM": cam.eigen_cam}
    x32, y32 = demo.inputs[:24], demo.labels[:24]
    inside32 = x32[:, 0] > 0.5
    share, deletion = {}, {}
    for k, f in variants.items():
        maps = f(m, x32, y32, "4")[:, 0]
        share[k] = float((maps * inside32).sum() / maps.sum().clamp_min(1e-12))
        deletion[k] = evaluation.deletion_insertion_curves(m, x32, y32, maps[:, None], steps=10, n_random=2).deletion_auc
    fig, axes = plt.subplots(3, 6, figsize=(8, 4.2))
    for r in range(3):
        axes[r, 0].imshow(xs[r, 0].numpy(), cmap="gray")
        for c, (k, f) in enumerate(variants.items(), start=1):
            axes[r, c].imshow(f(m, xs[r:r + 1], ys[r:r + 1], "4")[0, 0].numpy(), cmap="jet")
            if r == 0:
                axes[r, c].set_title(k, fontsize=8)
        for ax in axes[r]:
            ax.axis("off")
    fig.suptitle("CAM variants at the last conv layer (8x8, upsampled)", fontsize=9)
    area = float(inside32.float().mean())
    spread = max(deletion.values()) - min(deletion.values())
    spread_note = (f", within {spread:.3f} of each other: every variant puts its top pixels on the shape, so "
                   "deletion cannot tell them apart here" if spread < 0.02 else "")
    reading = f"""Five class activation maps from the same 8x8 layer. Over 24 test images the share of each map's
    mass on the shape (which covers {area:.0%} of the image) is {', '.join(f'{k} {v:.0%}' for k, v in share.items())};
    deleting pixels in each map's order gives deletion AUCs of
    {', '.join(f'{k} {v:.2f}' for k, v in deletion.items())} (lower is better){spread_note}. Grad-CAM++ counts only positive
    gradients, LayerCAM weighs every position by its own gradient, Score-CAM replaces gradients by the
    class-probability gain of the input masked by each channel, and Eigen-CAM ignores the class: its
    map is the layer's first principal component, the same for every class. On a CNN this shallow the
    variants agree where the object is; they differ in how much background and how sharp an edge they keep."""
    return _result(fig, out_dir, "cam-variants", reading,
                   {**{f"share_{_slug(k)}": v for k, v in share.items()},
                    **{f"deletion_auc_{_slug(k)}": v for k, v in deletion.items()}})
