"""``kb run`` demos on the shapes CNN: image attribution, feature visualisation, TCAV, RISE, network dissection."""

from __future__ import annotations

import torch

from .. import blackbox, dissection, models, visualization
from ..tcav import tcav as _tcav
from ._registry import _result, _runner, demo_model, plt, reference_function

__all__: list[str] = []


# --- attribution on the shapes CNN -----------------------------------------------------------------

def _block_mask(size: int = 16, block: int = 4) -> torch.Tensor:
    idx = torch.arange(size) // block
    return idx.view(-1, 1) * (size // block) + idx.view(1, -1)


_BLOCKS = _block_mask().view(1, 16, 16)  # 4x4-pixel blocks: the features LIME and KernelSHAP switch on and off

# method id -> (label, the options this demo passes); the function is the method's reference
# implementation, looked up in METHOD_REFERENCES (the one method -> function map)
ATTRIBUTIONS: dict[str, tuple[str, dict]] = {
    "saliency-maps": ("saliency", {}),
    "gradient-x-input": ("gradient x input", {}),
    "smoothgrad": ("SmoothGrad", {"n_samples": 32, "stdev": 0.15}),
    "integrated-gradients": ("integrated gradients", {}),
    "grad-cam": ("Grad-CAM", {"layer": "4"}),  # the last conv block's ReLU
    "occlusion": ("occlusion", {"window": (1, 4, 4), "stride": (1, 2, 2)}),
    "lime": ("LIME", {"n_samples": 400, "feature_mask": _BLOCKS}),
    "shap": ("KernelSHAP", {"baselines": 0.0, "n_samples": 400, "feature_mask": _BLOCKS}),
    "lrp": ("LRP (epsilon)", {}),
    "deeplift": ("DeepLIFT (rescale)", {}),
    "guided-backprop": ("guided backprop", {}),
}


def _image_attribution(method: str, out_dir, cache) -> dict:
    label, options = ATTRIBUTIONS[method]
    demo = demo_model("shapes-cnn", cache)
    x, y = demo.inputs, demo.labels
    idx = torch.stack([(y == c).nonzero()[0, 0] for c in range(3)])
    xs, ys = x[idx], y[idx]
    attr = reference_function(method)(demo.model, xs, ys, **options).detach().sum(1)  # (3, H, W)
    inside = xs[:, 0] > 0.5
    mass = attr.clamp(min=0) if method in ("grad-cam",) else attr.abs()
    share = float((mass * inside).sum() / mass.sum().clamp_min(1e-12))
    area = float(inside.float().mean())
    fig, axes = plt.subplots(2, 3, figsize=(6, 4))
    for k in range(3):
        axes[0, k].imshow(xs[k, 0], cmap="gray")
        axes[0, k].set_title(models.SHAPE_CLASSES[k], fontsize=8)
        lim = float(attr[k].abs().max()) or 1.0
        axes[1, k].imshow(attr[k], cmap="bwr", vmin=-lim, vmax=lim)
        for ax in axes[:, k]:
            ax.axis("off")
    fig.suptitle(f"{label} on the shapes CNN")
    reading = f"""Top row: one test image per class; bottom row: the {label} map for the true class
    (red positive, blue negative). {share:.0%} of the attribution mass falls on the shape's pixels,
    which cover {area:.0%} of the image, so the method {'concentrates on' if share > 2 * area else 'only weakly favours'}
    the object rather than the noisy background. Where inside the shape the attribution sits (ends,
    edges, corners) suggests which structure separates the classes; check it with a perturbation test."""
    return _result(fig, out_dir, method, reading, {"mass_on_shape": share, "shape_area": area})


for _m, (_label, _) in ATTRIBUTIONS.items():
    _runner(_m, "shapes-cnn", f"{_label} maps for one image per class")(
        lambda out_dir, cache, _m=_m: _image_attribution(_m, out_dir, cache))


# --- feature visualisation ---------------------------------------------------------------------------

@_runner("activation-maximization", "shapes-cnn", "synthetic input maximising each class logit (L2, jitter, blur)")
def _run_actmax(out_dir, cache):
    m = demo_model("shapes-cnn", cache).model
    imgs = torch.cat([visualization.activation_maximization(m, (1, 16, 16), unit=c, n_steps=128) for c in range(3)])
    with torch.no_grad():
        probs = m(imgs).softmax(1).diagonal()
    fig, axes = plt.subplots(1, 3, figsize=(6, 2.3))
    for c, ax in enumerate(axes):
        ax.imshow(imgs[c, 0], cmap="gray")
        ax.set_title(f"{models.SHAPE_CLASSES[c]}\np={probs[c]:.2f}", fontsize=8)
        ax.axis("off")
    reading = f"""Each panel is an input optimised from noise to maximise one class logit, regularised by an
    L2 penalty, random jitter and periodic blur. The network assigns them probabilities
    {', '.join(f'{p:.2f}' for p in probs.tolist())}. A confident class does not make the image a prototype:
    compare each panel with the class's defining structure (a horizontal stroke, a vertical stroke, a compact
    block). Without the regularisers the same optimisation tends to produce high-frequency patterns that
    fool the classifier just as well."""
    return _result(fig, out_dir, "activation-maximization", reading,
                   {f"p_{c}": float(p) for c, p in enumerate(probs)})


@_runner("deepdream", "shapes-cnn", "DeepDream amplification of the last conv layer")
def _run_deepdream(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    m, x = demo.model, demo.inputs[:3]
    dream = visualization.deepdream(m, x, m[4], n_steps=20)
    with torch.no_grad():
        before, after = m[:5](x).pow(2).mean(), m[:5](dream).pow(2).mean()
    fig, axes = plt.subplots(2, 3, figsize=(6, 4))
    for k in range(3):
        axes[0, k].imshow(x[k, 0], cmap="gray")
        axes[1, k].imshow(dream[k, 0], cmap="gray")
        axes[0, k].axis("off"), axes[1, k].axis("off")
    ratio = float(after / before)
    reading = f"""Top: inputs; bottom: after DeepDream on the last convolutional layer (two octaves).
    The layer's mean squared activation grew {ratio:.1f}-fold: the ascent adds whatever patterns those
    channels respond to, starting from what the image already contains, so the changes show what the layer
    detects rather than what the class needs."""
    return _result(fig, out_dir, "deepdream", reading, {"activation_gain": ratio})



# --- TCAV ----------------------------------------------------------------------------------------------------

@_runner("tcav", "shapes-cnn", "TCAV score of a 'horizontal stripes' concept per class")
def _run_tcav(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    m = demo.model
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(1, 14, (40,), generator=g)
    stripes = (torch.arange(16).view(1, 16, 1) == rows.view(-1, 1, 1)).float().expand(40, 16, 16)
    concept = (stripes + 0.1 * torch.randn(40, 16, 16, generator=g)).unsqueeze(1)
    random = 0.5 * torch.randn(40, 1, 16, 16, generator=g).abs()
    scores = []
    for c in range(3):
        xs = demo.inputs[demo.labels == c][:40]
        scores.append(_tcav(m, m[4], concept, random, xs, c).score)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.bar(models.SHAPE_CLASSES, scores), ax.set_ylim(0, 1), ax.set_ylabel("TCAV score")
    rise = [n for n, v in zip(models.SHAPE_CLASSES, scores) if v > 0.5] or ["none"]
    fall = [n for n, v in zip(models.SHAPE_CLASSES, scores) if v <= 0.5] or ["none"]
    reading = f"""A concept activation vector separates the last conv layer's response to full-width horizontal
    stripes from its response to noise; the TCAV score is the share of a class's images whose logit rises
    along it. Scores: {', '.join(f'{n} {v:.2f}' for n, v in zip(models.SHAPE_CLASSES, scores))}. The logits of
    {', '.join(rise)} rise along the concept and those of {', '.join(fall)} fall. When several classes score near
    1, the CAV captures something they share (elongated strokes) more than the concept's name (horizontal);
    compare with CAVs trained on random image sets before reading a score as evidence."""
    return _result(fig, out_dir, "tcav", reading, {f"score_{c}": s for c, s in zip(("hbar", "vbar", "square"), scores)})


# --- black-box explanations ------------------------------------------------------------------------------

@_runner("rise", "shapes-cnn", "RISE saliency from 2000 random masks, one image per class")
def _run_rise(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    x, y = demo.inputs, demo.labels
    idx = torch.stack([(y == c).nonzero()[0, 0] for c in range(3)])
    xs, ys = x[idx], y[idx]
    sal = blackbox.rise(demo.model, xs, ys, n_masks=2000)[:, 0]  # (3, H, W), expected class probability
    inside = xs[:, 0] > 0.5
    hits, contrast = [], []
    for k in range(3):
        top = sal[k].flatten().topk(int(inside[k].sum())).indices
        hits.append(float(inside[k].flatten()[top].float().mean()))
        contrast.append(float(sal[k][inside[k]].mean() - sal[k][~inside[k]].mean()))
    with torch.no_grad():
        blank = demo.model(torch.zeros(1, 1, 16, 16)).softmax(1)[0]
    fig, axes = plt.subplots(2, 3, figsize=(6, 4))
    for k in range(3):
        axes[0, k].imshow(xs[k, 0].numpy(), cmap="gray")
        axes[0, k].set_title(models.SHAPE_CLASSES[k], fontsize=8)
        im = axes[1, k].imshow(sal[k].numpy(), cmap="viridis")
        axes[1, k].set_title(f"range {float(sal[k].min()):.2f}-{float(sal[k].max()):.2f}", fontsize=8)
        fig.colorbar(im, ax=axes[1, k], fraction=0.046)
        for ax in axes[:, k]:
            ax.axis("off")
    fig.suptitle("RISE on the shapes CNN (expected class probability when a pixel is visible)", fontsize=9)
    flat = [models.SHAPE_CLASSES[k] for k in range(3) if contrast[k] < 0.05]
    default = models.SHAPE_CLASSES[int(blank.argmax())]
    flat_note = (f"""The {', '.join(flat)} map is nearly flat: a blank image is already classified {default} with
        probability {float(blank.max()):.2f}, so hiding pixels cannot lower that class's probability and RISE has
        nothing to credit. """ if flat else "")
    reading = f"""RISE multiplies each image by 2000 smooth random masks (half the pixels visible on average)
    and credits each pixel with the class probability averaged over the masks that show it. Among the
    pixels RISE ranks highest, the share lying on the shape is {', '.join(f'{models.SHAPE_CLASSES[k]} {hits[k]:.0%}' for k in range(3))};
    the mean saliency inside the shape exceeds the background's by {', '.join(f'{c:+.2f}' for c in contrast)}.
    {flat_note}Being
    black-box, RISE needs only forward passes, but its map is bounded by what masking can change:
    where the masked image keeps the prediction, the explanation is uninformative rather than wrong."""
    return _result(fig, out_dir, "rise", reading,
                   {**{f"top_pixels_on_shape_{c}": h for c, h in zip(("hbar", "vbar", "square"), hits)},
                    **{f"contrast_{c}": v for c, v in zip(("hbar", "vbar", "square"), contrast)},
                    "blank_image_max_prob": float(blank.max())})




# --- network dissection ------------------------------------------------------------------------------------

@_runner("network-dissection", "shapes-cnn", "IoU of each conv unit's top activations with shape masks")
def _run_dissection(out_dir, cache):
    demo = demo_model("shapes-cnn", cache)
    x, y = models.make_shapes(256, seed=7)
    shape = x > 0.5  # the noise-free shape (noise std 0.1)
    concept_names = [*models.SHAPE_CLASSES, "any shape", "background"]
    concepts = torch.cat([shape & (y == c).view(-1, 1, 1, 1) for c in range(3)] + [shape, ~shape], 1)
    quantile = 0.95  # unit masks cover ~5% of pixels, the area of a shape
    layers = {"conv 1": "1", "conv 2": "4"}
    iou = {name: dissection.network_dissection(demo.model, x, layer, concepts, quantile=quantile)
           for name, layer in layers.items()}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [8, 16]})
    for ax, (name, grid) in zip(axes, iou.items()):
        im = ax.imshow(grid.T.numpy(), cmap="magma", vmin=0, vmax=float(max(g.max() for g in iou.values())), aspect="auto")
        ax.set_yticks(range(len(concept_names)), concept_names if ax is axes[0] else [""] * len(concept_names))
        ax.set_xlabel(f"{name} unit"), ax.set_title(f"IoU, {name}", fontsize=9)
    fig.colorbar(im, ax=axes[1])
    detail = {}
    for name, grid in iou.items():
        best = grid.max(0)
        labels = grid.argmax(1)  # each unit's best concept, as in dissection
        detectors = grid.max(1).values > 0.04
        detail[name] = (best, labels, detectors)
    c1, c2 = detail["conv 1"], detail["conv 2"]
    generic = all(int(c1[0].indices[c]) == int(c1[0].indices[3]) for c in range(3))
    early = (" and is also the best for every class-specific shape: an early unit responds to bright pixels"
             " whatever their arrangement" if generic else ", while other units lead for some class-specific shapes")
    class_specific = [c for c in range(3) if int(c2[0].indices[c]) != int(c2[0].indices[3])]
    reading = f"""Each unit's activation map is thresholded at its top {1 - quantile:.0%} over 256 images (about the
    area of a shape, where Bau et al. use the top 0.5% for natural images), upsampled to the input, and
    compared by IoU with five concept masks. In conv layer 1 the best unit for 'any shape' scores
    {float(c1[0].values[3]):.2f}{early}. In conv layer 2 the best IoU per concept is
    {', '.join(f'{n} {float(v):.2f}' for n, v in zip(concept_names[:4], c2[0].values[:4].tolist()))}, and
    {len(class_specific)} of the 3 shape classes have a best unit different from the 'any shape' one; {int(c2[2].sum())} of 16
    units reach IoU > 0.04 with some concept, Bau et al.'s bar for calling a unit a detector. Dissection labels units only with
    the concepts one provides, and a high IoU shows overlap, not that the network uses the unit for that concept."""
    return _result(fig, out_dir, "network-dissection", reading,
                   {**{f"conv2_best_iou_{k}": float(v) for k, v in zip(("hbar", "vbar", "square", "shape"), c2[0].values[:4])},
                    "conv1_best_iou_shape": float(c1[0].values[3]), "conv2_units_above_0.04": int(c2[2].sum()),
                    "conv2_class_specific_units": len(class_specific)})
