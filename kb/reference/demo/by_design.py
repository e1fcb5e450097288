"""``kb run`` demos of models interpretable by design on the shapes task: concept bottlenecks, ProtoPNet."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from .. import by_design, models
from ._registry import _result, _runner, demo_model, plt

__all__: list[str] = []


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
