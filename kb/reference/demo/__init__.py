"""``kb run METHOD``: each reference implementation on a fitting demo model -> a figure and a reading.

The only module of ``kb.reference`` that imports matplotlib (headless, Agg backend).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import pathlib
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .. import (alignment, attention, attribution, blackbox, cam, circuit_discovery, circuits,  # noqa: E402
               counterfactual, dissection, dynamics, editing, embedding, influence, lens, mdl, models, patching,
               probes, sae, shapley, similarity, visualization)
from ..lrp import lrp as _lrp  # noqa: E402  (the package re-exports the function under the module's name)
from ..tcav import tcav as _tcav  # noqa: E402
from .. import evaluation, perturbation  # noqa: E402  (checks on your own model; meaningful perturbation)

__all__ = ["Runner", "RUNNABLE", "list_runnable", "run_method", "demo_model"]

TRAINERS: dict[str, Callable[[], models.Demo]] = {
    "tabular-mlp": models.train_tabular_mlp,
    "shapes-cnn": models.train_shapes_cnn,
    "flipflop-gru": models.train_flipflop_gru,
    "induction-transformer": models.train_induction_transformer,
}


def demo_model(name: str, cache: dict | None = None) -> models.Demo:
    """Train demo ``name`` (seed 0), or take it from the caller's ``cache`` dict (no global cache)."""
    if cache is not None and name in cache:
        return cache[name]
    demo = TRAINERS[name]()
    if cache is not None:
        cache[name] = demo
    return demo


@dataclasses.dataclass(frozen=True)
class Runner:
    """How ``kb run`` shows one method: the demo model it uses, what it shows, an optional package it needs."""

    fn: Callable[[pathlib.Path, dict | None], dict]
    model: str
    description: str
    requires: str | None = None


RUNNABLE: dict[str, Runner] = {}


def _runner(method: str, model: str, description: str, requires: str | None = None):
    def register(fn):
        RUNNABLE[method] = Runner(fn, model, description, requires)
        return fn
    return register


def list_runnable() -> list[dict]:
    """One dict per runnable method: ``method``, ``model``, ``description``, ``available`` (its optional package is installed)."""
    return [{"method": m, "model": r.model, "description": r.description,
             "available": r.requires is None or importlib.util.find_spec(r.requires) is not None}
            for m, r in sorted(RUNNABLE.items())]


def run_method(method_id: str, out_dir: pathlib.Path, cache: dict | None = None) -> dict:
    """Run ``method_id``'s reference implementation on its demo model.

    Writes ``out_dir/<method_id>.png`` and returns ``{"method", "figure", "reading", "metrics"}``;
    ``reading`` is one paragraph interpreting the figure from the computed metrics. ``cache`` is an
    optional dict in which trained demo models are kept between calls.
    """
    if method_id not in RUNNABLE:
        raise KeyError(f"no runnable demo for {method_id!r}; runnable: {', '.join(sorted(RUNNABLE))}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    try:  # demo models are tiny: one thread is as fast and immune to oversubscription
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            result = RUNNABLE[method_id].fn(out_dir, cache)
    finally:
        torch.set_num_threads(threads)
    return {"method": method_id, **result}


def _save(fig, out_dir: pathlib.Path, name: str) -> pathlib.Path:
    path = out_dir / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _result(fig, out_dir, name, reading, metrics) -> dict:
    metrics = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}
    return {"figure": str(_save(fig, out_dir, name)), "reading": " ".join(reading.split()), "metrics": metrics}


# --- attribution on the shapes CNN -----------------------------------------------------------------

def _block_mask(size: int = 16, block: int = 4) -> torch.Tensor:
    idx = torch.arange(size) // block
    return idx.view(-1, 1) * (size // block) + idx.view(1, -1)


ATTRIBUTIONS: dict[str, tuple[str, Callable]] = {
    "saliency-maps": ("saliency", lambda m, x, t: attribution.saliency(m, x, t)),
    "gradient-x-input": ("gradient x input", lambda m, x, t: attribution.gradient_x_input(m, x, t)),
    "smoothgrad": ("SmoothGrad", lambda m, x, t: attribution.smoothgrad(m, x, t, n_samples=32, stdev=0.15)),
    "integrated-gradients": ("integrated gradients", lambda m, x, t: attribution.integrated_gradients(m, x, t)),
    "grad-cam": ("Grad-CAM", lambda m, x, t: cam.grad_cam(m, x, t, m[4])),
    "occlusion": ("occlusion", lambda m, x, t: attribution.occlusion(m, x, t, (1, 4, 4), (1, 2, 2))),
    "lime": ("LIME", lambda m, x, t: shapley.lime(m, x, t, 400, feature_mask=_block_mask().view(1, 16, 16))),
    "shap": ("KernelSHAP", lambda m, x, t: shapley.kernel_shap(m, x, t, 0.0, 400, feature_mask=_block_mask().view(1, 16, 16))),
    "lrp": ("LRP (epsilon)", lambda m, x, t: _lrp(m, x, t)),
    "deeplift": ("DeepLIFT (rescale)", lambda m, x, t: attribution.deeplift(m, x, t)),
    "guided-backprop": ("guided backprop", lambda m, x, t: attribution.guided_backprop(m, x, t)),
}


def _image_attribution(method: str, out_dir, cache) -> dict:
    label, fn = ATTRIBUTIONS[method]
    demo = demo_model("shapes-cnn", cache)
    x, y = demo.inputs, demo.labels
    idx = torch.stack([(y == c).nonzero()[0, 0] for c in range(3)])
    xs, ys = x[idx], y[idx]
    attr = fn(demo.model, xs, ys).detach().sum(1)  # (3, H, W)
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


# --- probing -------------------------------------------------------------------------------------------

def _mlp_layers(demo):
    m, x = demo.model, demo.inputs
    with torch.no_grad():
        return {"input": x, "hidden 1": m[:2](x), "hidden 2": m[:4](x)}


@_runner("linear-probes", "tabular-mlp", "probe accuracy and control-task selectivity per layer")
def _run_probes(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    concept = (demo.inputs[:, 0] + demo.inputs[:, 1] > 0).long()  # a feature the task uses
    results = {name: probes.linear_probe(h, concept) for name, h in _mlp_layers(demo).items()}
    fig, ax = plt.subplots(figsize=(5, 3))
    names = list(results)
    ax.bar([i - 0.2 for i in range(3)], [results[n].accuracy for n in names], 0.4, label="task")
    ax.bar([i + 0.2 for i in range(3)], [results[n].control_accuracy for n in names], 0.4, label="control")
    ax.set_xticks(range(3), names), ax.set_ylabel("held-out accuracy"), ax.legend()
    best = max(names, key=lambda n: results[n].selectivity)
    reading = f"""A logistic-regression probe decodes whether x0 + x1 > 0 from each layer of the tabular MLP.
    Task accuracy is {', '.join(f'{results[n].accuracy:.2f}' for n in names)} (input, hidden 1, hidden 2)
    against {', '.join(f'{results[n].control_accuracy:.2f}' for n in names)} on the control task with
    shuffled labels; selectivity is highest at {best} ({results[best].selectivity:.2f}). High accuracy with
    low control accuracy means the representation makes the property linearly available rather than the
    probe memorising labels; it does not show that the network uses it (see causal probing)."""
    return _result(fig, out_dir, "linear-probes", reading,
                   {f"selectivity_{n.replace(' ', '_')}": results[n].selectivity for n in names})


@_runner("causal-probing", "tabular-mlp", "INLP removes a concept from hidden layer 2; effect on accuracy")
def _run_causal_probing(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    h = _mlp_layers(demo)["hidden 2"]
    acc = lambda logits: (logits.argmax(1) == demo.labels).float().mean()  # noqa: E731
    used = probes.causal_probing(demo.model[4], h, (demo.inputs[:, 3] > 0).long(), acc)
    unused = probes.causal_probing(demo.model[4], h, (demo.inputs[:, 6] > 0).long(), acc)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(["original", "x3 removed", "x6 removed"], [used.metric_before, used.metric_after, unused.metric_after])
    ax.set_ylabel("task accuracy")
    reading = f"""Iterative nullspace projection removes the linearly decodable sign of an input feature from
    the last hidden layer, and the network's own readout is re-run on the projected activations. Removing
    x3, which decides class 2, drops accuracy from {used.metric_before:.2f} to {used.metric_after:.2f}
    (probe accuracy {used.probe_accuracy_before:.2f} -> {used.probe_accuracy_after:.2f}); removing x6, which the
    task ignores, leaves {unused.metric_after:.2f}. A concept the model uses causally matters when removed;
    a merely decodable one does not."""
    return _result(fig, out_dir, "causal-probing", reading,
                   {"accuracy_before": used.metric_before, "accuracy_without_x3": used.metric_after,
                    "accuracy_without_x6": unused.metric_after})


@_runner("mutual-information", "tabular-mlp", "mutual information between each hidden unit and the class")
def _run_mi(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    h = _mlp_layers(demo)["hidden 1"]
    mi = probes.mutual_information_binned(h, demo.labels, n_bins=8)
    shuffled = probes.mutual_information_binned(h, demo.labels[torch.randperm(len(demo.labels))], n_bins=8)
    top = int(mi.argmax())
    ksg = probes.mutual_information_ksg(h[:, top:top + 1], demo.labels.float().view(-1, 1)
                                        + 1e-3 * torch.randn(len(h), 1))
    order = mi.argsort(descending=True)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(range(len(mi)), mi[order], label="units (sorted)")
    ax.axhline(float(shuffled.max()), color="k", ls="--", label="max with shuffled labels")
    ax.set_ylabel("I(unit; class) [nats]"), ax.legend()
    reading = f"""Binned mutual information between each first-layer unit and the class label. The most
    informative unit carries {float(mi.max()):.2f} nats (KSG estimate {ksg:.2f}) of the {float(torch.log(torch.tensor(3.0))):.2f}
    nats of label entropy; {int((mi > shuffled.max()).sum())} of {len(mi)} units exceed the largest value
    obtained with shuffled labels (the estimator's bias floor), so those units are specialised for the task."""
    return _result(fig, out_dir, "mutual-information", reading,
                   {"max_mi": float(mi.max()), "ksg_top_unit": ksg, "n_above_shuffled": int((mi > shuffled.max()).sum())})


# --- representations ------------------------------------------------------------------------------------

def _scatter(ax, z, labels, title):
    ax.scatter(z[:, 0], z[:, 1], c=labels, s=6, cmap="viridis")
    ax.set_title(title, fontsize=9), ax.set_xticks([]), ax.set_yticks([])


def _knn_agreement(z, labels, k=5):
    d = torch.cdist(z.double(), z.double()).fill_diagonal_(float("inf"))
    nn_labels = labels[d.topk(k, largest=False).indices]
    return float((nn_labels == labels[:, None]).float().mean())


def _embedding_runner(method: str, fn: Callable, title: str):
    def run(out_dir, cache):
        demo = demo_model("tabular-mlp", cache)
        h = _mlp_layers(demo)["hidden 2"][:300]
        labels = demo.labels[:300]
        z = torch.as_tensor(fn(h)).float()
        agreement = _knn_agreement(z, labels)
        fig, ax = plt.subplots(figsize=(4, 4))
        _scatter(ax, z, labels, f"{title}: last hidden layer of the MLP")
        reading = f"""{title} of 300 test examples' last-hidden-layer activations, coloured by class.
        {agreement:.0%} of each point's 5 nearest neighbours in the 2-D map share its class: the layer
        separates the three classes {'cleanly' if agreement > 0.85 else 'partially'}.
        {'PCA is linear, so distances and directions in the plot are those of the top-variance subspace.'
         if method == 'pca' else 'Distances between clusters in a nonlinear embedding are not meaningful; read neighbourhoods only.'}"""
        return _result(fig, out_dir, method, reading, {"knn_class_agreement": agreement})
    return run


_runner("pca", "tabular-mlp", "PCA of hidden activations")(_embedding_runner("pca", lambda h: embedding.pca(h).scores, "PCA"))
_runner("tsne", "tabular-mlp", "t-SNE of hidden activations")(_embedding_runner("tsne", lambda h: embedding.tsne(h, perplexity=30), "t-SNE"))
_runner("umap", "tabular-mlp", "UMAP of hidden activations", requires="umap")(_embedding_runner("umap", embedding.umap, "UMAP"))
_runner("phate", "tabular-mlp", "PHATE of hidden activations", requires="phate")(_embedding_runner("phate", embedding.phate, "PHATE"))


def _similarity_runner(method: str, fn: Callable, title: str):
    def run(out_dir, cache):
        a = demo_model("tabular-mlp", cache)
        b = models.train_tabular_mlp(seed=1)
        la, lb = _mlp_layers(a), _mlp_layers(models.Demo(b.model, a.inputs, a.labels, {}))
        names = list(la)
        grid = torch.tensor([[fn(la[i], lb[j]) for j in names] for i in names])
        fig, ax = plt.subplots(figsize=(4, 3.5))
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="magma")
        ax.set_xticks(range(3), names), ax.set_yticks(range(3), names)
        ax.set_xlabel("MLP, seed 1"), ax.set_ylabel("MLP, seed 0"), fig.colorbar(im)
        diag = float(grid.diagonal()[1:].mean())
        off = float((grid.sum() - grid.diagonal().sum()) / 6)
        verdict = ("networks that learn the same task converge to similar representations layer by layer, "
                   "even though their individual units differ" if diag - off > 0.1 else
                   "the measure barely tells corresponding layers from the others here; an index invariant to "
                   "every invertible linear map rates most layer pairs of small networks as alike")
        reading = f"""{title} between the layers of two MLPs trained from different seeds on the same task.
        Corresponding hidden layers score {diag:.2f} on average against {off:.2f} for non-corresponding
        pairs: {verdict}."""
        return _result(fig, out_dir, method, reading, {"matching_layers": diag, "other_pairs": off})
    return run


_runner("cka", "tabular-mlp", "linear CKA between layers of two seeds")(_similarity_runner("cka", similarity.linear_cka, "Linear CKA"))
_runner("svcca", "tabular-mlp", "SVCCA between layers of two seeds")(_similarity_runner("svcca", similarity.svcca, "SVCCA"))
_runner("rsa", "tabular-mlp", "RSA between layers of two seeds")(_similarity_runner("rsa", lambda x, y: similarity.rsa(x[:200], y[:200]), "RSA (Spearman of RDMs)"))


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


# --- mechanistic, on the induction transformer --------------------------------------------------------------

def _induction_setup(cache):
    demo = demo_model("induction-transformer", cache)
    half = demo.info["half"]
    tokens = demo.inputs
    g = torch.Generator().manual_seed(5)
    corrupted = tokens.clone()
    corrupted[:, :half] = torch.rand(len(tokens), 32, generator=g).argsort(1)[:, :half]

    def logprob(logits):  # mean log-probability of the correct next token over the second copy
        return logits[:, half - 1:-1].log_softmax(-1).gather(-1, tokens[:, half:, None]).mean()

    return demo, tokens, corrupted, logprob, half


HEADS = [(layer, head) for layer in range(2) for head in range(2)]


def _head(layer, head):
    return f"blocks.{layer}.attn.head_out", (slice(None), slice(None), head)


@_runner("attention-pattern-analysis", "induction-transformer", "attention patterns and prefix-matching scores")
def _run_attention(out_dir, cache):
    demo, tokens, _, _, half = _induction_setup(cache)
    pats = attention.attention_patterns(demo.model, tokens)
    score = attention.prefix_matching_score(pats, half)
    chance = attention.prefix_matching_chance(half)
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    for ax, (l, h) in zip(axes, HEADS):
        ax.imshow(pats[l, 0, h], cmap="Blues")
        ax.set_title(f"layer {l + 1} head {h}: {score[l, h]:.2f}", fontsize=8)
    best = divmod(int(score.argmax()), 2)
    reading = f"""Attention patterns of the four heads on a random sequence repeated twice (query rows, key
    columns). Titles give the prefix-matching score: the attention from each token of the second copy to the
    token after its first occurrence (chance {chance:.2f}). Layer-2 heads score
    {', '.join(f'{v:.2f}' for v in score[1].tolist())}, layer-1 heads {', '.join(f'{v:.2f}' for v in score[0].tolist())}:
    the off-diagonal stripe in layer 2 is an induction head [@olsson2022context] (best: layer {best[0] + 1} head {best[1]})."""
    return _result(fig, out_dir, "attention-pattern-analysis", reading,
                   {"prefix_matching_layer2_max": float(score[1].max()), "prefix_matching_layer1_max": float(score[0].max()),
                    "chance": chance})


@_runner("attention-rollout", "induction-transformer", "attention rollout through both layers")
def _run_rollout(out_dir, cache):
    demo, tokens, _, _, half = _induction_setup(cache)
    roll = attention.attention_rollout(attention.attention_patterns(demo.model, tokens))
    q = torch.arange(half, 2 * half)
    to_match = float(roll[:, q, q - half + 1].mean())
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(roll[0], cmap="Blues")
    ax.set_xlabel("input token"), ax.set_ylabel("position")
    reading = f"""Attention rollout multiplies the head-averaged attention matrices of both layers, each mixed
    half-and-half with the identity for the residual stream. In the second copy, positions draw
    {to_match:.2f} of their rollout mass on average from the token after the earlier occurrence of the
    current token, besides the diagonal kept by the residual connection. Rollout ignores values and MLPs,
    so it describes information routing, not importance."""
    return _result(fig, out_dir, "attention-rollout", reading, {"mass_on_induction_source": to_match})


@_runner("activation-patching", "induction-transformer", "patching each layer's residual stream per position")
def _run_patching(out_dir, cache):
    demo, tokens, corrupted, logprob, half = _induction_setup(cache)
    layers = ["embed", "blocks.0", "blocks.1"]
    grid = patching.patching_sweep(demo.model, tokens, corrupted, layers, logprob,
                                   indices=[(slice(None), p) for p in range(2 * half)])
    with torch.no_grad():
        clean, corrupt = float(logprob(demo.model(tokens))), float(logprob(demo.model(corrupted)))
    fig, ax = plt.subplots(figsize=(7, 2.5))
    im = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(3), layers), ax.set_xlabel("position patched"), fig.colorbar(im)
    best = divmod(int(grid.argmax()), grid.shape[1])
    reading = f"""The first copy of the sequence is replaced by other tokens (log-prob of the correct second-copy
    tokens falls from {clean:.2f} to {corrupt:.2f}); each cell restores one layer's residual stream at one
    position from the clean run. The largest single-cell recovery, to {float(grid.max()):.2f}, is at
    {layers[best[0]]}, position {best[1]}. One position carries only the information for the one prediction
    that copies from it, so single cells recover little; patching a layer at every position restores the
    clean output exactly."""
    return _result(fig, out_dir, "activation-patching", reading, {"clean": clean, "corrupted": corrupt,
                                                                   "best_cell": float(grid.max())})


@_runner("path-patching", "induction-transformer", "layer-1 heads' effect through layer-2 attention vs directly")
def _run_path_patching(out_dir, cache):
    demo, tokens, corrupted, logprob, _ = _induction_setup(cache)
    via, direct = [], []
    for h in range(2):
        sender, idx = _head(0, h)
        via.append(patching.path_patching(demo.model, tokens, corrupted, sender, "blocks.1.attn", logprob, sender_index=idx))
        direct.append(patching.path_patching(demo.model, tokens, corrupted, sender, "unembed", logprob,
                                             freeze=["blocks.1.attn.head_out"], sender_index=idx))
    with torch.no_grad():
        corrupt = float(logprob(demo.model(corrupted)))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([0, 2], [v - corrupt for v in via], label="via layer-2 attention")
    ax.bar([1, 3], [d - corrupt for d in direct], label="direct to logits")
    ax.set_xticks([0.5, 2.5], ["L1 head 0", "L1 head 1"]), ax.set_ylabel("log-prob gain"), ax.legend(fontsize=7)
    reading = f"""Path patching sends each layer-1 head's clean output into the corrupted run (first copy
    replaced by other tokens) along one path only: into layer-2 attention's input, or straight to the logits
    with layer 2 held at its corrupted output. The log-probability of the correct second-copy tokens changes
    by {', '.join(f'{v - corrupt:+.2f}' for v in via)} nats through layer 2 and by
    {', '.join(f'{d - corrupt:+.2f}' for d in direct)} directly. Neither path alone restores the output,
    because the values layer 2 copies are still the corrupted tokens: copying needs the layer-1 keys and the
    clean tokens together, the composition that makes an induction circuit. Compare with activation patching,
    which restores a component on every path at once."""
    return _result(fig, out_dir, "path-patching", reading,
                   {"via_layer2": max(via) - corrupt, "direct": max(direct) - corrupt})


@_runner("causal-tracing", "induction-transformer", "restore one (layer, position) after corrupting the first copy's embedding")
def _run_tracing(out_dir, cache):
    demo, tokens, _, _, half = _induction_setup(cache)
    tok = tokens[:16]

    def prob(logits):
        return logits[:, half - 1:-1].softmax(-1).gather(-1, tok[:, half:, None]).mean()

    layers = ["embed", "blocks.0", "blocks.1"]
    grid = patching.causal_tracing(demo.model, tok, "embed", layers, prob, subject=slice(0, half))
    with torch.no_grad():
        clean_p = float(prob(demo.model(tok)))
    corrupt_p = float(patching.causal_tracing(demo.model, tok, "embed", ["embed"], prob, positions=[2 * half - 1],
                                              subject=slice(0, half))[0, 0])  # last position is never corrupted
    fig, ax = plt.subplots(figsize=(7, 2.5))
    im = ax.imshow(grid, aspect="auto", cmap="magma")
    ax.set_yticks(range(3), layers), ax.set_xlabel("position restored"), fig.colorbar(im)
    best = divmod(int(grid.argmax()), grid.shape[1])
    reading = f"""Noise is added to the embeddings of the first copy, which drops the mean probability of the
    correct second-copy tokens from {clean_p:.2f} to {corrupt_p:.2f}; each cell restores the clean hidden state
    of one layer at one position. The best single restoration reaches {float(grid.max()):.2f} at
    {layers[best[0]]}, position {best[1]}{' (a second-copy position: the restored state carries its own prediction)' if best[1] >= half else ''}.
    A restored first-copy position helps only the one prediction that copies from it, so in a copying task no
    single state carries the whole answer; in factual recall the same sweep singles out the subject's last
    token in middle layers [@meng2022locating]."""
    return _result(fig, out_dir, "causal-tracing", reading,
                   {"clean": clean_p, "corrupted": corrupt_p, "max_restored": float(grid.max())})


@_runner("ablation", "induction-transformer", "mean-ablating each head")
def _run_ablation(out_dir, cache):
    demo, tokens, _, logprob, _ = _induction_setup(cache)
    with torch.no_grad():
        base = float(logprob(demo.model(tokens)))
    drops = [base - patching.ablation(demo.model, tokens, *_head(l, h), method="mean", metric=logprob) for l, h in HEADS]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([f"L{l + 1}H{h}" for l, h in HEADS], drops)
    ax.set_ylabel("log-prob drop when mean-ablated")
    worst = HEADS[int(torch.tensor(drops).argmax())]
    reading = f"""Each head's output is replaced by its mean over the batch and the log-probability of the
    correct second-copy tokens is re-measured (clean {base:.2f}). Ablating layer {worst[0] + 1} head {worst[1]}
    costs the most ({max(drops):.2f} nats). Mean ablation keeps activations on-distribution; zero ablation
    can overstate importance by pushing the network off its usual inputs."""
    return _result(fig, out_dir, "ablation", reading, {f"drop_L{l + 1}H{h}": d for (l, h), d in zip(HEADS, drops)})


@_runner("circuit-analysis", "induction-transformer", "patching per head, circuit selection, ablation check")
def _run_circuit(out_dir, cache):
    demo, tokens, corrupted, logprob, _ = _induction_setup(cache)
    result = circuits.circuit_analysis(demo.model, tokens, corrupted, [_head(l, h) for l, h in HEADS], logprob)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([f"L{l + 1}H{h}" for l, h in HEADS], result.effects)
    ax.axhline(0.1, color="k", ls="--")
    ax.set_ylabel("normalised patching effect")
    names = [f"L{int(c[0].split('.')[1]) + 1}H{c[1][2]}" for c in result.circuit]
    reading = f"""Each head's clean output is patched into the corrupted run (first copy replaced); effects are
    normalised so 1 restores clean performance. Heads above 0.1 form the circuit ({len(names)} of 4:
    {', '.join(names) or 'none'}). Mean-ablating everything outside it keeps {result.faithfulness:.2f} of the
    clean performance (faithfulness), while ablating the circuit leaves {result.ablated:.2f}:
    {'the subgraph is sufficient and necessary for in-context copying in this model'
     if result.faithfulness > 0.8 and result.ablated < 0.5 else 'the subgraph explains the behaviour only in part'}."""
    return _result(fig, out_dir, "circuit-analysis", reading,
                   {"faithfulness": result.faithfulness, "ablated": result.ablated, "circuit_size": len(names)})


def _lens_accuracy(logits, tokens, half):
    return [float((lg[:, half - 1:-1].argmax(-1) == tokens[:, half:]).float().mean()) for lg in logits]


@_runner("logit-lens", "induction-transformer", "next-token accuracy read from each layer")
def _run_logit_lens(out_dir, cache):
    demo, tokens, _, _, half = _induction_setup(cache)
    layers = ["embed", "blocks.0", "blocks.1"]
    acc = _lens_accuracy(lens.logit_lens(demo.model, tokens, layers, demo.model.unembed), tokens, half)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(layers, acc, marker="o"), ax.set_ylabel("second-copy accuracy"), ax.set_ylim(0, 1)
    reading = f"""The residual stream after each layer is decoded with the model's own unembedding. Accuracy
    on the predictable second copy is {', '.join(f'{a:.2f}' for a in acc)} after the embedding, layer 1 and
    layer 2: the answer appears only after layer 2, where the induction head writes it."""
    return _result(fig, out_dir, "logit-lens", reading, {f"accuracy_{l}": a for l, a in zip(layers, acc)})


@_runner("tuned-lens", "induction-transformer", "tuned lens (affine translator per layer) vs logit lens")
def _run_tuned_lens(out_dir, cache):
    demo, tokens, _, _, half = _induction_setup(cache)
    layers = ["embed", "blocks.0", "blocks.1"]
    tuned = lens.tuned_lens(demo.model, tokens, layers, demo.model.unembed, n_steps=200)
    acc_t = _lens_accuracy(tuned.logits, tokens, half)
    acc_l = _lens_accuracy(lens.logit_lens(demo.model, tokens, layers, demo.model.unembed), tokens, half)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(layers, acc_l, marker="o", label="logit lens")
    ax.plot(layers, acc_t, marker="s", label="tuned lens")
    ax.set_ylabel("second-copy accuracy"), ax.legend()
    reading = f"""A tuned lens learns one affine map per layer that best translates its residual stream into the
    final layer's basis (KL to the final logits {', '.join(f'{k:.2f}' for k in tuned.kl.tolist())}). Its
    accuracy on the second copy is {', '.join(f'{a:.2f}' for a in acc_t)} against the logit lens's
    {', '.join(f'{a:.2f}' for a in acc_l)}: even a trained readout cannot find the copied token before
    layer 2, so its absence there is real, not a basis mismatch."""
    return _result(fig, out_dir, "tuned-lens", reading, {"kl_layer1": float(tuned.kl[1])})


# --- sparse autoencoder, TCAV -------------------------------------------------------------------------------

@_runner("sparse-autoencoders", "synthetic", "SAE recovers planted sparse directions from superposed data")
def _run_sae(out_dir, cache):
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(20, 10, generator=g)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    codes = (torch.rand(8192, 20, generator=g) < 0.05).float() * torch.rand(8192, 20, generator=g) * 2
    x = codes @ dirs
    model = sae.train_sae(x, 40, l1_coeff=0.3, n_steps=2000)
    w = model.W_dec / model.W_dec.norm(dim=0, keepdim=True)
    cos = (dirs @ w).max(1).values
    with torch.no_grad():
        recon, f = model(x)
    fve = float(1 - (x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    l0 = float((f > 0).float().sum(1).mean())
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(20), cos.sort().values), ax.set_ylim(0, 1)
    ax.set_xlabel("planted feature"), ax.set_ylabel("best cosine with a dictionary atom")
    reading = f"""Twenty sparse features are superposed in a 10-dimensional space and a 40-latent sparse
    autoencoder is trained on the mixtures. Every planted direction has a dictionary atom at cosine
    {float(cos.min()):.2f} or more (mean {float(cos.mean()):.2f}), with {fve:.0%} of the variance explained and
    {l0:.1f} active latents per example: the L1 penalty makes the SAE find the sparse basis that PCA,
    limited to 10 orthogonal directions, cannot."""
    return _result(fig, out_dir, "sparse-autoencoders", reading,
                   {"mean_max_cosine": float(cos.mean()), "variance_explained": fve, "l0": l0})


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


# --- MDL probing ---------------------------------------------------------------------------------------------

@_runner("mdl-probing", "tabular-mlp", "online codelength of the class label from each layer, against shuffled labels")
def _run_mdl(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    x, y = models.make_tabular_data(2000, seed=5)
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    layers = _mlp_layers(models.Demo(demo.model, x, y, {}))
    real = {name: mdl.mdl_probe(h, y) for name, h in layers.items()}
    control = {name: mdl.mdl_probe(h, shuffled) for name, h in layers.items()}
    names = list(layers)
    accuracy = {}
    for k, h in layers.items():  # the plain probe: trained on half the rows, scored on the other half
        probe = probes.train_linear_probe(h[:1000], y[:1000], 1e-2, 100, n_classes=3)
        with torch.no_grad():
            accuracy[k] = float((probe(h[1000:]).argmax(1) == y[1000:]).float().mean())
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].bar([i - 0.2 for i in range(3)], [real[k].compression for k in names], 0.4, label="class label")
    axes[0].bar([i + 0.2 for i in range(3)], [control[k].compression for k in names], 0.4, label="shuffled")
    axes[0].axhline(1, color="k", lw=0.8), axes[0].set_xticks(range(3), names)
    axes[0].set_ylabel("compression (uniform / online)"), axes[0].legend(fontsize=7)
    for k in names:
        res = real[k]
        sizes = [e - s for s, e in zip(res.cuts[:-1], res.cuts[1:])]
        axes[1].plot(res.cuts[:-1], [b / s for b, s in zip(res.blocks[1:], sizes)], marker="o", label=k)
    axes[1].set_xscale("log"), axes[1].set_xlabel("examples the probe was trained on")
    axes[1].set_ylabel("bits per label in next block"), axes[1].legend(fontsize=7)
    reading = f"""Online (prequential) coding sends the labels of 2000 rows block by block, each block encoded
    by a linear probe trained on all earlier rows; the codelength counts how hard the labels are to learn
    from the layer, not only whether a probe can eventually fit them. The class label costs
    {', '.join(f'{real[k].online:.0f}' for k in names)} bits from the input, hidden layer 1 and hidden layer 2
    (uniform code {real[names[0]].uniform:.0f} bits), a compression of
    {', '.join(f'{real[k].compression:.1f}' for k in names)}; with shuffled labels every layer compresses
    {', '.join(f'{control[k].compression:.2f}' for k in names)}: nothing to learn. A probe trained on 1000 rows
    reaches held-out accuracy {', '.join(f'{accuracy[k]:.3f}' for k in names)} on the same layers (the class is a
    linear function of the input, so every layer makes it decodable), while the codelengths differ by a factor
    of {real[names[0]].online / real[names[-1]].online:.1f}: the deeper layers make the label learnable from far
    fewer examples (right panel), a difference accuracy alone {'hides' if max(accuracy.values()) - min(accuracy.values()) < 0.05 else 'understates'}."""
    return _result(fig, out_dir, "mdl-probing", reading,
                   {**{f"compression_{k.replace(' ', '_')}": real[k].compression for k in names},
                    **{f"probe_accuracy_{k.replace(' ', '_')}": accuracy[k] for k in names},
                    **{f"control_{k.replace(' ', '_')}": control[k].compression for k in names}})


# --- model editing ----------------------------------------------------------------------------------------------

@_runner("rome", "tabular-mlp", "rank-one edits of the MLP's readout: the edited prediction vs all others")
def _run_rome(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    body, head = demo.model[:4], demo.model[4]
    n_edits = 50
    with torch.no_grad():
        keys = body(models.make_tabular_data(1024)[0])
        dead = int((keys == 0).all(0).sum())
        cov = editing.key_covariance(keys) + 1e-4 * torch.eye(keys.shape[1])  # ridge: dead ReLU units
        k_test = body(demo.inputs)
        logits = head(k_test)
        before = logits.argmax(1)
        kept = {"ROME (key covariance)": [], "identity covariance": []}
        success = {name: 0 for name in kept}
        share_flipped, share_all = [], []  # the share of the edit a row receives: k^T C^-1 k* / k*^T C^-1 k*
        for i in range(n_edits):
            new_class = (int(before[i]) + 1) % 3
            value = logits[i].clone()
            value[new_class] = logits[i].max() + 5
            for name, c in zip(kept, (cov, torch.eye(keys.shape[1]))):
                w = editing.rome_edit(head.weight, k_test[i], value - head.bias, c)
                after = (k_test @ w.T + head.bias).argmax(1)
                success[name] += int(after[i] == new_class)
                others = torch.arange(len(after)) != i
                kept[name].append(float((after == before)[others].float().mean()))
                if c is cov:
                    u = torch.linalg.solve(cov, k_test[i])
                    share = (k_test @ u / (u @ k_test[i])).abs()
                    share_flipped += share[others & (after != before)].tolist()
                    share_all += share[others].tolist()
            if i == 0:
                example = (logits[0].clone(), k_test[0] @ editing.rome_edit(head.weight, k_test[0], value - head.bias, cov).T
                           + head.bias, new_class)
    rome_kept, naive_kept = (torch.tensor(v) for v in kept.values())
    med_flipped = float(torch.tensor(share_flipped).median()) if share_flipped else 0.0
    med_all = float(torch.tensor(share_all).median())
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].bar([-0.2, 0.8, 1.8], example[0].tolist(), 0.4, label="before")
    axes[0].bar([0.2, 1.2, 2.2], example[1].tolist(), 0.4, label="after ROME")
    axes[0].set_xticks(range(3), ["class 0", "class 1", "class 2"]), axes[0].set_ylabel("logit")
    axes[0].set_title(f"test row 0, edited to class {example[2]}", fontsize=9), axes[0].legend(fontsize=7)
    axes[1].hist([rome_kept.tolist(), naive_kept.tolist()], bins=15, label=list(kept))
    axes[1].set_xlabel("share of the other 511 predictions unchanged"), axes[1].set_ylabel("edits")
    axes[1].legend(fontsize=7)
    reading = f"""Each of {n_edits} edits rewrites the MLP's readout so that one test row's last hidden activation (the
    key) maps to new logits that put a different class on top, with ROME's closed-form rank-one update;
    the other 511 test rows are then re-classified. {success['ROME (key covariance)']} of {n_edits} edits
    take effect, and an edit leaves {float(rome_kept.mean()):.1%} of the other predictions unchanged on average
    (worst edit {float(rome_kept.min()):.1%}). The same rank-one edit with the identity in place of the key
    covariance, which ignores which directions other keys occupy, keeps only {float(naive_kept.mean()):.1%}
    (worst {float(naive_kept.min()):.1%}). A ridge of 1e-4 makes the covariance invertible ({dead} of
    {keys.shape[1]} units {'is' if dead == 1 else 'are'} dead). A row j receives the share k_j^T C^-1 k* / k*^T C^-1 k*
    of the edit; it is {med_flipped:.2f} (median, absolute) for the rows an edit flips against {med_all:.2f} for
    all rows: the edit spills over to inputs whose keys overlap the edited one in the covariance's metric,
    whether or not that was intended."""
    return _result(fig, out_dir, "rome", reading,
                   {"edits_succeeded": success["ROME (key covariance)"], "kept_rome": float(rome_kept.mean()),
                    "kept_rome_worst": float(rome_kept.min()), "kept_identity_covariance": float(naive_kept.mean()),
                    "edit_share_flipped_rows": med_flipped, "edit_share_all_rows": med_all})


# --- causal abstraction -------------------------------------------------------------------------------------

@_runner("distributed-alignment-search", "tabular-mlp", "DAS: a learned direction per layer that carries the class-2 score")
def _run_das(out_dir, cache):
    demo = demo_model("tabular-mlp", cache)
    m = demo.model

    def counterfactual_label(base, source):  # the task's causal model with s2 = 1.5 x3 taken from the source
        scores = torch.stack([base[:, 0] + base[:, 1], base[:, 2] - base[:, 0], 1.5 * source[:, 3]], 1)
        return scores.argmax(1)

    xb, xs = models.make_tabular_data(2048, seed=11)[0], models.make_tabular_data(2048, seed=12)[0]
    tb, ts = models.make_tabular_data(512, seed=13)[0], models.make_tabular_data(512, seed=14)[0]
    labels, test_labels = counterfactual_label(xb, xs), counterfactual_label(tb, ts)
    with torch.no_grad():
        base_pred = m(tb).argmax(1)
    changes = test_labels != base_pred
    null = float((base_pred == test_labels).float().mean())  # no intervention at all
    layers = {"pre-ReLU 1": "0", "hidden 1": "1", "hidden 2": "3"}
    iia, iia_changed, best_unit = {}, {}, {}
    for name, layer in layers.items():
        res = alignment.distributed_alignment_search(m, layer, xb, xs, labels, k=1, test=(tb, ts, test_labels))
        with torch.no_grad():
            pred = alignment.interchange_intervention(m, layer, tb, ts, res.subspace).argmax(1)
            width = res.rotation.shape[0]
            units = [float((alignment.interchange_intervention(m, layer, tb, ts, torch.eye(width)[j:j + 1]).argmax(1)
                            == test_labels).float().mean()) for j in range(width)]
        iia[name], iia_changed[name], best_unit[name] = res.accuracy, float((pred == test_labels)[changes].float().mean()), max(units)
    names = list(layers)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar([i - 0.27 for i in range(3)], [iia[n] for n in names], 0.27, label="DAS direction (k=1)")
    ax.bar([i for i in range(3)], [iia_changed[n] for n in names], 0.27, label="DAS, pairs whose label changes")
    ax.bar([i + 0.27 for i in range(3)], [best_unit[n] for n in names], 0.27, label="best single unit")
    ax.axhline(null, color="k", ls="--", lw=0.8, label="no intervention")
    ax.set_xticks(range(3), names), ax.set_ylabel("interchange-intervention accuracy"), ax.set_ylim(0, 1.3)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0]), ax.legend(fontsize=6, loc="upper center", ncol=2)
    best = max(names, key=lambda n: iia[n])
    w = torch.nn.functional.normalize(m[0].weight.detach(), dim=0)  # unit input columns of layer 1
    overlap = float((w[:, 3] @ w).abs()[torch.arange(8) != 3].max())
    verdict = ("a one-dimensional subspace carries the variable there almost completely" if iia_changed[best] > 0.9 else
               f"""even there one direction carries the variable only in part: x3 enters layer 1 along a weight
               column whose cosine with another feature's column reaches {overlap:.2f}, so swapping any single
               direction also moves other features, and the ReLUs bend the representation further""")
    reading = f"""The task's causal model scores the classes as (x0 + x1, x2 - x0, 1.5 x3). DAS learns a rotation of
    one layer of the MLP such that copying a single rotated coordinate from a source input into a base
    input makes the network output the causal model's answer with the class-2 score taken from the source.
    On 512 held-out pairs, interchange-intervention accuracy is {', '.join(f'{iia[n]:.2f}' for n in names)} at
    the pre-activation of layer 1, hidden layer 1 and hidden layer 2, against {null:.2f} when nothing is swapped
    (for {1 - float(changes.float().mean()):.0%} of pairs the source's x3 should not change the class) and
    at most {max(best_unit.values()):.2f} for the best single unit. On the pairs whose label the swap should change,
    the learned direction gets {', '.join(f'{iia_changed[n]:.2f}' for n in names)}. The best alignment is at {best};
    {verdict}.
    IIA, not probe accuracy, is the evidence: the swap changes the output the way the causal model says."""
    return _result(fig, out_dir, "distributed-alignment-search", reading,
                   {**{f"iia_{n.replace(' ', '_').replace('-', '_')}": iia[n] for n in names},
                    **{f"iia_changed_{n.replace(' ', '_').replace('-', '_')}": iia_changed[n] for n in names},
                    "iia_no_intervention": null, "iia_best_unit": max(best_unit.values()), "x3_column_max_overlap": overlap})


# --- editing and circuit discovery on the induction transformer -------------------------------------------

def _two_token_prompts(a: int = 3, b: int = 7, n: int = 64):
    """Ten-token contexts holding tokens ``a`` and ``b`` once each (never last), then ``a`` or ``b``; the
    tokens that follow a and b in the context (what induction copies) ``x_tok`` and ``y_tok``."""
    g = torch.Generator().manual_seed(0)
    others = torch.tensor([t for t in range(32) if t not in (a, b)])
    rows = []
    for _ in range(n):
        rest = iter(others[torch.randperm(len(others), generator=g)[:8]].tolist())
        pa, pb = torch.randperm(9, generator=g)[:2].tolist()
        rows.append([a if i == pa else b if i == pb else next(rest) for i in range(10)])
    first = torch.tensor(rows)
    after = lambda tok: first[torch.arange(n), (first == tok).float().argmax(1) + 1]  # noqa: E731
    return torch.cat([first, torch.full((n, 1), a)], 1), torch.cat([first, torch.full((n, 1), b)], 1), after(a), after(b)


@_runner("steering-vectors", "induction-transformer", "adding a prompt contrast to the residual stream at three depths")
def _run_steering(out_dir, cache):
    demo = demo_model("induction-transformer", cache)
    m = demo.model
    ends_a, ends_b, x_tok, y_tok = _two_token_prompts()
    coefs = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0]
    layers = ["embed", "blocks.0", "blocks.1"]
    to_x, to_y = {}, {}
    for layer in layers:
        v = editing.steering_vector(m, ends_a, ends_b, layer, position=-1)
        to_x[layer], to_y[layer] = [], []
        for c in coefs:
            with torch.no_grad(), editing.add_steering(m, layer, v, c, position=-1):
                pred = m(ends_b)[:, -1].argmax(1)
            to_x[layer].append(float((pred == x_tok).float().mean()))
            to_y[layer].append(float((pred == y_tok).float().mean()))
    fig, ax = plt.subplots(figsize=(5.5, 3))
    for layer, colour in zip(layers, ("tab:blue", "tab:orange", "tab:green")):
        ax.plot(coefs, to_x[layer], marker="o", color=colour, label=f"{layer}: predicts X")
        ax.plot(coefs, to_y[layer], ls="--", color=colour, label=f"{layer}: predicts Y")
    ax.set_xlabel("steering coefficient"), ax.set_ylabel("share of prompts"), ax.legend(fontsize=6)
    one = coefs.index(1.0)
    peak = max(range(len(coefs)), key=lambda i: to_x["embed"][i])
    late = max(max(to_x["blocks.0"]), max(to_x["blocks.1"]))
    reading = f"""Each prompt holds tokens a and b once, followed by X and Y, and ends in b, so the induction model
    predicts Y (unsteered: {to_y['embed'][0]:.0%} of 64 prompts). The steering vector is the mean residual
    stream of the same prompts ending in a minus that of those ending in b, taken at the last position and added
    there. Added to the embedding (where it is exactly emb(a) - emb(b)), it makes the model predict X, the
    token after a, on {to_x['embed'][one]:.0%} of prompts at coefficient 1{'' if peak == one else f", {to_x['embed'][peak]:.0%} at coefficient {coefs[peak]}"};
    at 2 it overshoots and X falls to {to_x['embed'][-1]:.0%}. The same contrast added after layer 1 or layer 2
    makes X the prediction on at most {late:.0%} of prompts at any coefficient. That fits how this model copies:
    a layer-1 head already attends from the last token to its earlier occurrence, so once layer 1 has run,
    changing the token's identity in the residual stream no longer changes what is looked up. Where a steering vector is added matters as much as what it is."""
    return _result(fig, out_dir, "steering-vectors", reading,
                   {"unsteered_predicts_y": to_y["embed"][0], "embed_c1_predicts_x": to_x["embed"][one],
                    "embed_c2_predicts_x": to_x["embed"][-1], "after_layers_max_predicts_x": late})


@_runner("attribution-patching", "induction-transformer", "linear estimate of activation patching per head and per position")
def _run_attribution_patching(out_dir, cache):
    demo, tokens, corrupted, logprob, half = _induction_setup(cache)
    m = demo.model
    with torch.no_grad():
        base = float(logprob(m(corrupted)))
    head_layers = [f"blocks.{layer}.attn.head_out" for layer in range(2)]
    est = circuit_discovery.attribution_patching(m, tokens, corrupted, [*head_layers, "blocks.0"], logprob)
    heads_est = torch.stack([a.sum((0, 1, 3)) for a in est[:2]]).flatten()  # (layer, head)
    heads_exact = torch.tensor([patching.activation_patching(m, tokens, corrupted, _head(l, h)[0], logprob, _head(l, h)[1])
                                - base for l, h in HEADS])
    pos_est = est[2].sum((0, 2))  # residual stream after layer 1, per position
    pos_exact = torch.tensor([patching.activation_patching(m, tokens, corrupted, "blocks.0", logprob, (slice(None), p))
                              - base for p in range(2 * half)])
    r_pos = float(torch.corrcoef(torch.stack([pos_est, pos_exact]))[0, 1])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    labels = [f"L{l + 1}H{h}" for l, h in HEADS]
    axes[0].bar([i - 0.2 for i in range(4)], heads_est.tolist(), 0.4, label="attribution patching")
    axes[0].bar([i + 0.2 for i in range(4)], heads_exact.tolist(), 0.4, label="activation patching")
    axes[0].set_xticks(range(4), labels), axes[0].set_ylabel("log-prob gain"), axes[0].legend(fontsize=7)
    axes[1].plot(pos_est.tolist(), marker="o", label="attribution patching")
    axes[1].plot(pos_exact.tolist(), marker="s", label="activation patching")
    axes[1].set_xlabel("position (residual stream after layer 1)"), axes[1].legend(fontsize=7)
    same_top = int(heads_est.argmax()) == int(heads_exact.argmax())
    sign_flips = [labels[i] for i in range(4) if heads_est[i] * heads_exact[i] < 0 and heads_exact[i].abs() > 0.1]
    reading = f"""Attribution patching replaces each activation-patching run by a first-order Taylor estimate: one
    clean run, one corrupted run and one backward pass give the effect of restoring every head and every
    position at once (first copy scrambled; metric: log-probability of the correct second-copy tokens,
    {base:.2f} corrupted). Per head the estimates are {', '.join(f'{v:+.2f}' for v in heads_est.tolist())} against
    {', '.join(f'{v:+.2f}' for v in heads_exact.tolist())} from actually patching each head ({', '.join(labels)}):
    {'the same head comes out on top' if same_top else 'the top head differs'}{f", but the sign is wrong for {', '.join(sign_flips)}" if sign_flips else ''}.
    Per position of the residual stream after layer 1 the two correlate at r = {r_pos:.2f}. The estimate is exact
    only where the metric is linear in the activation; a layer-1 head acts through the softmax of layer-2
    attention, where restoring the whole head is far from a small change. Use it to rank candidates cheaply
    and confirm the top ones by real patching."""
    return _result(fig, out_dir, "attribution-patching", reading,
                   {**{f"estimate_{k}": float(v) for k, v in zip(labels, heads_est)},
                    **{f"exact_{k}": float(v) for k, v in zip(labels, heads_exact)},
                    "position_correlation": r_pos, "same_top_head": int(same_top)})


@_runner("automated-circuit-discovery", "induction-transformer", "ACDC-style pruning of heads (KL to the clean run)")
def _run_acdc(out_dir, cache):
    demo, tokens, corrupted, _, _ = _induction_setup(cache)
    m = demo.model
    components = [_head(l, h) for l, h in HEADS]
    threshold = 0.3
    res = circuit_discovery.acdc(m, tokens, corrupted, components, threshold=threshold)
    with torch.no_grad():
        everything = float(circuit_discovery.kl_to_clean(m(tokens))(m(corrupted)))
    name = lambda c: f"L{int(c[0].split('.')[1]) + 1}H{c[1][2]}"  # noqa: E731
    fig, ax = plt.subplots(figsize=(5.5, 3))
    steps = [name(c) for c, _, _ in res.trace]
    values = [v for _, v, _ in res.trace]
    ax.bar(range(len(steps)), values, color=["0.6" if d else "tab:red" for _, _, d in res.trace])
    ax.set_xticks(range(len(steps)), [f"{i + 1}. {s}" for i, s in enumerate(steps)])
    ax.axhline(everything, color="k", ls="--", lw=0.8, label="all heads corrupted")
    ax.set_ylabel("KL to clean if removed"), ax.legend(fontsize=7)
    ax.set_title("visited from the output back; red = kept", fontsize=9)
    kept = [name(c) for c in res.kept]
    reading = f"""ACDC visits the four heads from the output backwards and replaces each in turn by its activation
    on the corrupted run (first copy scrambled), on top of those already removed; a head is removed for
    good if the KL divergence from the clean run's next-token distribution grows by less than {threshold}.
    The search keeps {len(kept)} of 4 heads ({', '.join(kept) or 'none'}); with the rest patched the KL is
    {res.metric:.2f} nats, against {everything:.2f} when every head is corrupted, so the kept heads preserve
    {1 - res.metric / everything:.0%} of the clean behaviour in this sense. The threshold sets the circuit's size,
    and the order of visits matters: a head can look unnecessary only because of what was removed before it.
    This is node-level pruning; edge-level ACDC asks the same question of every sender-receiver pair."""
    return _result(fig, out_dir, "automated-circuit-discovery", reading,
                   {"n_kept": len(kept), "kl_circuit": res.metric, "kl_all_corrupted": everything})


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


# --- by design, global effects, data attribution, loss landscapes: runners in their own module --------------
from . import global_effects  # noqa: E402,F401  (imported last: it registers its runners with _runner above)


# --- transcoders, attribution graphs and other LLM mechanistic methods (toy scale) ---------------------

import importlib as _importlib  # noqa: E402

_ag = _importlib.import_module("kb.reference.attribution_graph")
from .. import autointerp as _autointerp  # noqa: E402
from .. import sae_eval as _sae_eval  # noqa: E402
from .. import transcoders as _transcoders  # noqa: E402

_MLPS = ["blocks.0.mlp", "blocks.1.mlp"]


def _induction_mlp(cache) -> models.Demo:
    """The induction transformer with MLPs and a final LayerNorm added and fine-tuned (shared with the tests)."""
    if cache is not None and "induction-mlp-transformer" in cache:
        return cache["induction-mlp-transformer"]
    demo = models.train_induction_mlp_transformer(demo_model("induction-transformer", cache))
    if cache is not None:
        cache["induction-mlp-transformer"] = demo
    return demo


def _fitted_transcoders(cache):
    """Per-layer transcoders and a cross-layer transcoder (64 latents each) on the MLP demo's MLPs, and held-out data
    (tests/reference/conftest.py's ``induction_transcoders`` fills the same cache entry the same way)."""
    if cache is not None and "induction-mlp-transcoders" in cache:
        return cache["induction-mlp-transcoders"]
    model = _induction_mlp(cache).model
    (x, y) = _transcoders.mlp_io(model, models.make_induction_batch(128, 24, seed=123), _MLPS)
    test = _transcoders.mlp_io(model, models.make_induction_batch(32, 24, seed=321), _MLPS)
    per_layer = [_transcoders.train_transcoder(x[l], y[l], 64, l1_coeff=0.03, n_steps=400) for l in range(2)]
    clt = _transcoders.train_cross_layer_transcoder(x, y, 64, l1_coeff=0.03, n_steps=400)
    fitted = (per_layer, clt, test)
    if cache is not None:
        cache["induction-mlp-transcoders"] = fitted
    return fitted


@_runner("transcoders", "induction-mlp-transformer", "per-layer and cross-layer transcoders reconstruct both MLPs")
def _run_transcoders(out_dir, cache):
    model = _induction_mlp(cache).model
    per_layer, clt, (x, y) = _fitted_transcoders(cache)
    fve_pl = [_transcoders.fraction_variance_explained(y[l], per_layer[l](x[l])[0]) for l in range(2)]
    l0_pl = [float((per_layer[l].encode(x[l]) > 0).float().sum(1).mean()) for l in range(2)]
    y_hat, f = clt(x)
    fve_clt = [_transcoders.fraction_variance_explained(y[l], y_hat[l]) for l in range(2)]
    l0_clt = (f > 0).float().sum(-1).mean(1).tolist()
    with torch.no_grad():
        neurons = [float((model.blocks[l].mlp[1](model.blocks[l].mlp[0](x[l])) > 0).float().sum(1).mean()) for l in range(2)]
        cross = float(clt.W_dec[0, 1].norm(dim=0).mean() / clt.W_dec[0, 0].norm(dim=0).mean())
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, vals, title in ((axes[0], (fve_pl, fve_clt), "held-out variance explained"), (axes[1], (l0_pl, l0_clt), "active latents per token")):
        ax.bar([0, 2], vals[0], 0.8, label="per-layer transcoder")
        ax.bar([1, 3], vals[1], 0.8, label="cross-layer transcoder")
        ax.set_xticks([0.5, 2.5], ["MLP 1", "MLP 2"]), ax.set_title(title, fontsize=9)
    axes[0].set_ylim(0.8, 1), axes[0].legend(fontsize=7)
    reading = f"""The attention-only demo transformer has no MLPs, so an MLP (64 ReLU neurons) was added to each block
    and a final LayerNorm before the unembedding, and the model fine-tuned for 200 steps; its layer-2 induction heads
    survive. Transcoders with 64 latents, trained to map each MLP's input to its output on 3,072 tokens, explain
    {fve_pl[0]:.1%} and {fve_pl[1]:.1%} of the variance of held-out MLP outputs with {l0_pl[0]:.0f} and {l0_pl[1]:.0f}
    active latents per token; one cross-layer transcoder, whose layer-1 latents also write to MLP 2, explains
    {fve_clt[0]:.1%} and {fve_clt[1]:.1%} with {l0_clt[0]:.0f} and {l0_clt[1]:.0f} (its layer-1 latents' decoders into MLP 2
    are {cross:.2f} times as long as into MLP 1). These MLPs are dense ({neurons[0]:.0f} and {neurons[1]:.0f} of 64 neurons
    active per token) because a random-token copying task gives them little to do, so the transcoders are sparser
    than the neurons but not sparse in the sense of an LLM dictionary with thousands of latents."""
    return _result(fig, out_dir, "transcoders", reading,
                   {"fve_mlp1": fve_pl[0], "fve_mlp2": fve_pl[1], "fve_clt_mlp1": fve_clt[0], "fve_clt_mlp2": fve_clt[1],
                    "l0_mlp1": l0_pl[0], "l0_mlp2": l0_pl[1], "neurons_active_mlp1": neurons[0]})


@_runner("crosscoders", "synthetic model pair", "crosscoder relative decoder norms on two toy models with a planted difference")
def _run_crosscoders(out_dir, cache):
    pair = models.train_superposition_pair(seed=0, n_steps=500)
    a, b = pair.model
    x = pair.inputs
    with torch.no_grad():
        acts = [a.hidden(x), b.hidden(x)]
    cc = _transcoders.train_crosscoder(acts, 24, l1_coeff=0.03, n_steps=800)
    rel = _transcoders.relative_decoder_norm(cc)
    with torch.no_grad():
        f = cc.encode(torch.stack(acts))
    alive = (f > 0).any(0)
    corr = ((x - x.mean(0)) / (x.std(0) + 1e-8)).T @ ((f - f.mean(0)) / (f.std(0) + 1e-8)) / len(x)
    tracked = rel[corr.argmax(1)]
    only_a, only_b = pair.info["only_a"], pair.info["only_b"]
    shared = [i for i in range(12) if i not in only_a + only_b]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(rel[alive].tolist(), bins=20, range=(0, 1), color="0.7", label="all live latents")
    for group, colour, name in ((shared, "tab:blue", "shared"), (only_a, "tab:orange", "only in A"), (only_b, "tab:green", "only in B")):
        ax.scatter(tracked[group].tolist(), [0.3] * len(group), color=colour, zorder=3, label=f"latent tracking a feature {name}")
    ax.set_xlabel("relative decoder norm ||d_B|| / (||d_A|| + ||d_B||)"), ax.legend(fontsize=7)
    reading = f"""Two toy models of superposition (12 sparse features through 6 hidden units): A reads features 0-9;
    B is A fine-tuned to read features 0-8, 10 and 11, so feature {only_a[0]} exists only in A and features
    {only_b[0]} and {only_b[1]} only in B. A crosscoder with 24 latents is trained on both models' hidden states for the
    same inputs. The latents that track the {len(shared)} shared features have relative decoder norms between
    {float(tracked[shared].min()):.2f} and {float(tracked[shared].max()):.2f}; the one tracking A's own feature has
    {float(tracked[only_a].max()):.2f}, the ones tracking B's own features {', '.join(f'{v:.2f}' for v in tracked[only_b].tolist())}:
    the histogram separates shared from model-specific latents as Lindsey et al. describe. Here the difference
    is planted and clean; Minder et al. show that with an L1 penalty on real models some apparently
    model-specific latents are artefacts of the loss, so check candidates before trusting them."""
    return _result(fig, out_dir, "crosscoders", reading,
                   {"shared_min": float(tracked[shared].min()), "shared_max": float(tracked[shared].max()),
                    "only_a": float(tracked[only_a].max()), "only_b_min": float(tracked[only_b].min()),
                    "live_latents": int(alive.sum())})


@_runner("attribution-graphs", "induction-mlp-transformer", "attribution graph of one repeated sequence with a cross-layer transcoder")
def _run_attribution_graph(out_dir, cache):
    demo = _induction_mlp(cache)
    model, half = demo.model, demo.info["half"]
    _, clt, _ = _fitted_transcoders(cache)
    seq = models.make_repeated_sequences(1, half, 32, seed=999)[0]
    logits = [(p, int(seq[p + 1])) for p in range(half, 2 * half - 1)]
    g = _ag.attribution_graph(model, seq, clt, logits)
    keep, edges = _ag.prune_graph(g)
    replacement, completeness = _ag.graph_scores(g)
    rows = g.index("logit")
    copied = [g.nodes.index(("token", p - half + 1, t)) for p, t in logits]
    top_is_copied = float((g.adjacency[rows].argmax(1) == torch.tensor(copied)).float().mean())
    edge = g.adjacency[rows, copied]

    def without(layer, heads):
        def edit(pattern):
            pattern[:, heads] = 0
            return pattern
        cut = _ag.attribution_graph(model, seq, clt, logits, frozen_edits={f"blocks.{layer}.attn.pattern": edit},
                                    feature_targets=False)
        return float(cut.adjacency[rows, copied].mean())

    no_l2, no_l1 = without(1, [0, 1]), without(0, [0, 1])
    a = g.adjacency.abs()[rows]
    share = {k: float(a[:, g.index(k)].sum() / a.sum()) for k in ("token", "feature", "error")}
    height = {"token": 0, "feature": None, "error": None, "logit": 3}
    xy = []
    for n in g.nodes:
        if n[0] in ("token", "logit"):
            xy.append((n[1], height[n[0]]))
        else:
            xy.append((n[2] + (0.25 if n[0] == "error" else 0), 1 + n[1] + (0.3 if n[0] == "error" else 0)))
    xy = torch.tensor(xy, dtype=torch.float)
    fig, ax = plt.subplots(figsize=(9, 4))
    w = g.adjacency.abs() * edges
    scale = float(w.max())
    for t, s in w.nonzero().tolist():
        ax.plot([xy[s, 0], xy[t, 0]], [xy[s, 1], xy[t, 1]], color="tab:red" if g.adjacency[t, s] > 0 else "tab:blue",
                lw=0.3 + 2.5 * float(w[t, s]) / scale, alpha=0.25 + 0.6 * float(w[t, s]) / scale)
    kinds = {"token": ("k", "s"), "feature": ("tab:purple", "o"), "error": ("0.6", "x"), "logit": ("tab:green", "^")}
    for kind, (colour, marker) in kinds.items():
        idx = [i for i in g.index(kind).tolist() if keep[i]]
        ax.scatter(xy[idx, 0], xy[idx, 1], c=colour, marker=marker, s=14, zorder=3, label=kind)
    ax.set_yticks([0, 1, 2, 3], ["tokens", "MLP 1 features", "MLP 2 features", "logits"])
    ax.set_xlabel("position (a random sequence of 10 tokens, then the same 10 again)"), ax.legend(fontsize=7, loc="upper left")
    reading = f"""The local replacement model freezes the attention patterns and the final LayerNorm scale of this
    prompt and replaces both MLPs by the cross-layer transcoder plus error nodes; it reproduces the model's
    logits exactly and every edge is a linear direct effect ({len(g.index('feature'))} active features; pruning to
    80% of node influence and 98% of edge influence keeps {int(keep[g.index('feature')].sum())}). For
    {top_is_copied:.0%} of the nine second-copy logits the strongest incoming edge comes from the token after the
    earlier occurrence of the current token: the induction answer, moved by attention in one step (edge
    {float(edge.mean()):.1f} on average). Zeroing the frozen attention of both layer-2 heads, the induction heads,
    leaves {no_l2:.2f} of it; zeroing layer-1 attention leaves {no_l1:.1f}. Of the absolute weight into the logits,
    {share['token']:.0%} comes straight from tokens, {share['feature']:.0%} from features and {share['error']:.0%} from
    error nodes (replacement score {replacement:.2f}, completeness {completeness:.2f}). The graph cannot show the
    other half of induction, how the head finds the right token: that lives in the queries and keys it freezes."""
    return _result(fig, out_dir, "attribution-graphs", reading,
                   {"top_edge_is_induction_source": top_is_copied, "mean_edge": float(edge.mean()),
                    "edge_without_layer2_attention": no_l2, "edge_without_layer1_attention": no_l1,
                    "replacement": replacement, "completeness": completeness,
                    "features": len(g.index("feature")), "kept_features": int(keep[g.index("feature")].sum())})


@_runner("sae-evaluation", "induction-transformer", "FVE, L0, dense latents and spliced-in loss of SAEs at three sparsities")
def _run_sae_eval(out_dir, cache):
    demo, tokens, _, _, _ = _induction_setup(cache)
    m = demo.model
    from .._common import capture_outputs
    with torch.no_grad(), capture_outputs([m.blocks[0]], detach=True) as store:
        m(tokens)
    acts = store[0][-1].reshape(-1, store[0][-1].shape[-1])

    def ce(logits):
        return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))

    rows = []
    for l1 in (0.3, 1.0, 3.0):
        s = _sae_eval.evaluate_sae(sae.train_sae(acts, 64, l1_coeff=l1, n_steps=600), acts, m, tokens, "blocks.0", ce)
        rows.append((l1, s.summary(), s.metrics["firing"]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    l0s = [r[1]["l0"] for r in rows]
    axes[0].plot(l0s, [r[1]["fve"] for r in rows], marker="o", label="variance explained")
    axes[0].plot(l0s, [r[1]["ce_recovered"] for r in rows], marker="s", label="loss recovered")
    axes[0].set_xlabel("L0 (active latents per token, of 64)"), axes[0].legend(fontsize=7)
    for l1, _, firing in rows:
        axes[1].hist(firing.tolist(), bins=20, range=(0, 1), alpha=0.5, label=f"L1 {l1}")
    axes[1].set_xlabel("firing frequency of a latent"), axes[1].legend(fontsize=7)
    mid = rows[1][1]
    reading = f"""Three SAEs with 64 latents on the residual stream after layer 1 of the induction transformer
    (1,280 tokens), with L1 coefficients 0.3, 1 and 3. Sparser dictionaries reconstruct less: L0
    {', '.join(f'{v:.1f}' for v in l0s)} give variance explained {', '.join(f"{r[1]['fve']:.2f}" for r in rows)} but loss
    recovered {', '.join(f"{r[1]['ce_recovered']:.2f}" for r in rows)}, where 1 is the model's own loss
    ({mid['ce_clean']:.2f} nats) and 0 that of zero-ablating the layer ({mid['ce_zero']:.2f}). At L1 1 the SAE explains
    {mid['fve']:.0%} of the variance yet loses {1 - mid['ce_recovered']:.0%} of the loss gap: reconstruction error
    matters more to the model than its size suggests, which is why the spliced-in loss is the headline
    faithfulness number. Dead latents: {', '.join(f"{r[1]['dead_fraction']:.0%}" for r in rows)}; dense latents (firing
    on more than 10% of tokens): {', '.join(f"{r[1]['dense_fraction']:.0%}" for r in rows)}, a tiny model with 32 tokens
    has no rare features to spread them over."""
    return _result(fig, out_dir, "sae-evaluation", reading,
                   {**{f"fve_l1_{r[0]}": r[1]["fve"] for r in rows}, **{f"recovered_l1_{r[0]}": r[1]["ce_recovered"] for r in rows},
                    **{f"l0_l1_{r[0]}": r[1]["l0"] for r in rows}})


@_runner("automated-interpretability", "induction-mlp-transformer", "simulation and detection scores of keyword explanations: MLP neurons vs transcoder latents")
def _run_autointerp(out_dir, cache):
    model = _induction_mlp(cache).model
    per_layer, _, _ = _fitted_transcoders(cache)
    tok_train = models.make_induction_batch(200, 24, seed=11)
    tok_test = models.make_induction_batch(200, 24, seed=12)

    def units(tokens):
        x, _ = _transcoders.mlp_io(model, tokens, _MLPS[:1])
        with torch.no_grad():
            neurons = model.blocks[0].mlp[1](model.blocks[0].mlp[0](x[0]))
            latents = per_layer[0].encode(x[0])
        shape = (*tokens.shape, -1)
        return neurons.reshape(shape), latents.reshape(shape)

    (n_tr, l_tr), (n_te, l_te) = units(tok_train), units(tok_test)
    # score on 4-token excerpts: with 32 token types, a 24-token context holds most of them
    excerpt = lambda t: t.reshape(-1, 4, *t.shape[2:])  # noqa: E731
    res_n = _autointerp.automated_interpretability(tok_train, n_tr, excerpt(tok_test), excerpt(n_te))
    res_l = _autointerp.automated_interpretability(tok_train, l_tr, excerpt(tok_test), excerpt(l_te))
    alive = (l_te > 0).flatten(0, 1).any(0)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, key, title in ((axes[0], "simulation", "simulation score (correlation)"), (axes[1], "detection", "detection score (balanced accuracy)")):
        ax.hist(getattr(res_n, key).tolist(), bins=20, range=(-0.2 if key == "simulation" else 0, 1), alpha=0.6, label="MLP 1 neurons")
        ax.hist(getattr(res_l, key)[alive].tolist(), bins=20, range=(-0.2 if key == "simulation" else 0, 1), alpha=0.6, label="transcoder latents")
        ax.set_xlabel(title), ax.legend(fontsize=7)
    best = int(res_l.simulation.argmax())
    reading = f"""No language model runs here: each unit's explanation is the three tokens that make up most of its 50
    strongest activations ("fires on these tokens"), the simulator predicts 1 on those tokens and 0 elsewhere, and the
    detection scorer calls an excerpt activating when it contains one of them. Scored on held-out 4-token excerpts
    (top-activating against least-activating ones), the 64
    neurons of the first MLP reach a mean simulation score of {float(res_n.simulation.mean()):.2f} and detection
    {float(res_n.detection.mean()):.2f}; the {int(alive.sum())} live latents of its transcoder reach
    {float(res_l.simulation[alive].mean()):.2f} and {float(res_l.detection[alive].mean()):.2f} (best latent: tokens
    {res_l.explanations[best].tolist()}, r = {float(res_l.simulation[best]):.2f}). In this toy, MLP 1 sees a token
    and what layer-1 attention moved to it, so a token list explains only part of any unit; real pipelines write
    prose with an LLM and score it the same way [@bills2023language; @paulo2025automatically], and a high score
    still says nothing about the unit's causal role."""
    return _result(fig, out_dir, "automated-interpretability", reading,
                   {"neuron_simulation_mean": float(res_n.simulation.mean()), "neuron_detection_mean": float(res_n.detection.mean()),
                    "latent_simulation_mean": float(res_l.simulation[alive].mean()),
                    "latent_detection_mean": float(res_l.detection[alive].mean()), "live_latents": int(alive.sum())})


@_runner("direct-logit-attribution", "induction-mlp-transformer", "each head's and MLP's direct effect on the correct-token logit difference")
def _run_dla(out_dir, cache):
    demo = _induction_mlp(cache)
    model, tokens, half = demo.model, demo.inputs, demo.info["half"]
    comps = ["embed", "blocks.0.attn.head_out", "blocks.0.mlp", "blocks.1.attn.head_out", "blocks.1.mlp"]
    total, worst = None, 0.0
    for p in range(half, 2 * half - 1):
        target = tokens[:, p + 1]
        baseline = (target + 1 + torch.randint(0, 31, target.shape, generator=torch.Generator().manual_seed(p))) % 32
        dla = lens.direct_logit_attribution(model, tokens, target, comps, "blocks.1", model.unembed, baseline,
                                            position=p, norm=model.ln_f)
        worst = max(worst, float((dla.contributions.sum(0) - dla.logit_diff).abs().max()))
        total = dla.contributions.mean(1) if total is None else total + dla.contributions.mean(1)
    total = total / (half - 1)
    labels = ["embed", "L1 head 0", "L1 head 1", "MLP 1", "L2 head 0", "L2 head 1", "MLP 2", "biases", "constant"]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(labels, total.tolist(), color=["tab:red" if v < 0 else "tab:blue" for v in total.tolist()])
    ax.set_ylabel("mean logit difference"), ax.tick_params(axis="x", labelsize=7)
    diff = float(total.sum())
    reading = f"""Direct logit attribution splits the logit of the correct second-copy token minus that of a random
    other token (mean {diff:.2f} over 64 sequences and 9 positions) into what each component writes straight into the
    final residual stream, read through the unembedding with the final LayerNorm's scale frozen at its value on each
    input. The two layer-2 induction heads contribute {float(total[4]):.2f} and {float(total[5]):.2f}; MLP 2 adds
    {float(total[6]):.2f}, the layer-1 heads {float(total[1]):.2f} and {float(total[2]):.2f}, the embedding
    {float(total[0]):.2f}. The contributions add up to the logit difference to within {worst:.1e}. DLA sees only the
    last step: whatever earlier components do for the layer-2 heads, through their queries, keys or values, is
    credited to those heads, so a small direct effect does not mean a component is unimportant."""
    return _result(fig, out_dir, "direct-logit-attribution", reading,
                   {"logit_diff": diff, "l2_head0": float(total[4]), "l2_head1": float(total[5]), "mlp2": float(total[6]),
                    "max_sum_error": worst})


@_runner("patchscopes", "induction-transformer", "token-identity Patchscope through the induction heads vs the logit lens")
def _run_patchscopes(out_dir, cache):
    demo, tokens, _, _, half = _induction_setup(cache)
    m = demo.model
    target, j = tokens[:32], 4
    source = models.make_repeated_sequences(32, half, 32, seed=7)
    layers = ["embed", "blocks.0", "blocks.1"]
    scope, lensed = [], []
    lens_all = lens.logit_lens(m, source, layers, m.unembed)
    for i, layer in enumerate(layers):
        read = lens.patchscope(m, source, layer, j, target, layer, j, read_position=j - 1 + half)
        scope.append(float((read.argmax(-1) == source[:, j]).float().mean()))
        lensed.append(float((lens_all[i, :, j].argmax(-1) == source[:, j]).float().mean()))
    same = lens.patchscope(m, source, "blocks.0", j, target, "blocks.1", 0)
    gap = float((same - lens_all[1, :, j]).abs().max())
    fig, ax = plt.subplots(figsize=(5.5, 3))
    ax.bar([i - 0.2 for i in range(3)], scope, 0.4, label="token-identity Patchscope")
    ax.bar([i + 0.2 for i in range(3)], lensed, 0.4, label="logit lens top-1")
    ax.set_xticks(range(3), ["embedding", "after layer 1", "after layer 2"]), ax.set_ylabel("says the source token")
    ax.legend(fontsize=7)
    reading = f"""Which token does a hidden state hold? A token-identity Patchscope copies the state at position {j} of
    one sequence into position {j} of the first copy of another repeated sequence and reads the output where the
    induction heads copy from there (the second occurrence of the preceding token). The model then says the source
    token for {scope[0]:.0%} of 32 prompts from the embedding and {scope[1]:.0%} after layer 1. Patched after layer 2 it
    is past every attention layer and cannot reach the read position, so the {scope[2]:.0%} there is the target prompt
    answering for itself, a built-in control. The logit lens on the same states names the source token for {', '.join(f'{v:.0%}' for v in lensed)}:
    it reads what a state predicts next, not what it is. Patched into the last layer and read in place, the
    Patchscope equals the logit lens (largest difference {gap:.1e}). The target prompt does the decoding, so
    a Patchscope's answer is only as meaningful as the behaviour the prompt relies on."""
    return _result(fig, out_dir, "patchscopes", reading,
                   {**{f"patchscope_{k}": v for k, v in zip(("embed", "layer1", "layer2"), scope)},
                    **{f"logit_lens_{k}": v for k, v in zip(("embed", "layer1", "layer2"), lensed)}, "identity_gap": gap})


def _association_prompts(n, a, x, with_pair, seed):
    """Ten random tokens then ``a``; with ``with_pair`` the pair (a, x) appears once in the context."""
    g = torch.Generator().manual_seed(seed)
    others = torch.tensor([t for t in range(32) if t not in (a, x)])
    ctx = others[torch.randint(0, len(others), (n, 10), generator=g)]
    if with_pair:
        at = torch.randint(0, 8, (n,), generator=g)
        ctx[torch.arange(n), at], ctx[torch.arange(n), at + 1] = a, x
    return torch.cat([ctx, torch.full((n, 1), a)], 1)


@_runner("function-vectors", "induction-transformer", "heads with the largest indirect effect and their summed output added to zero-shot prompts")
def _run_function_vectors(out_dir, cache):
    m = demo_model("induction-transformer", cache).model
    a, x = 3, 11
    icl, corrupted = _association_prompts(64, a, x, True, 0), _association_prompts(64, a, x, False, 1)
    heads = [(f"blocks.{l}.attn.head_out", h) for l in range(2) for h in range(2)]
    fv = editing.function_vector(m, icl, corrupted, torch.full((64,), x), heads, n_heads=2)
    zero_shot = _association_prompts(64, a, x, False, 2)
    layers = ["embed", "blocks.0", "blocks.1"]
    with torch.no_grad():
        icl_acc = float((m(icl)[:, -1].argmax(-1) == x).float().mean())
        before = float((m(zero_shot)[:, -1].argmax(-1) == x).float().mean())
        after = []
        for layer in layers:
            with editing.add_steering(m, layer, fv.vector, position=-1):
                after.append(float((m(zero_shot)[:, -1].argmax(-1) == x).float().mean()))
    names = [f"L{int(h[0].split('.')[1]) + 1}H{h[1]}" for h in heads]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].bar(names, fv.indirect_effects.tolist()), axes[0].set_ylabel("indirect effect on P(answer)")
    axes[1].bar(["none", *["embedding", "after layer 1", "after layer 2"]], [before, *after])
    axes[1].set_ylabel("zero-shot prompts answering X"), axes[1].tick_params(axis="x", labelsize=7)
    chosen = [names[heads.index(h)] for h in fv.heads]
    reading = f"""The toy's one in-context skill is copying, so the "task" is an association shown in context: the
    pair (a, X) appears once among ten random tokens and the prompt ends in a; the model answers X on {icl_acc:.0%} of
    such prompts. Putting each head's mean output from these prompts into prompts whose pair is broken raises the
    probability of X by {', '.join(f'{v:.3f}' for v in fv.indirect_effects.tolist())} ({', '.join(names)}): the
    function vector is the sum of {', '.join(chosen)}. Added at the last position of zero-shot prompts without the
    pair, it makes X the answer on {after[2]:.0%} of them after layer 2, {after[1]:.0%} after layer 1 and {after[0]:.0%}
    at the embedding (none before: {before:.0%}). Unlike Todd et al.'s function vectors, which carry a task such as
    antonyms that then applies to any query, this vector carries the answer itself; a toy that knows one function
    can show the mechanics, not the abstraction."""
    return _result(fig, out_dir, "function-vectors", reading,
                   {"icl_accuracy": icl_acc, "zero_shot_before": before, "after_embed": after[0], "after_layer1": after[1],
                    "after_layer2": after[2], "top_indirect_effect": float(fv.indirect_effects.max())})


@_runner("contrast-consistent-search", "synthetic", "CCS on contrast pairs with a planted truth direction vs a PCA baseline")
def _run_ccs(out_dir, cache):
    g = torch.Generator().manual_seed(0)
    n, d = 512, 16
    v = torch.randn(d, generator=g)
    v /= v.norm()
    w = torch.randn(d, generator=g)
    truth = torch.randint(0, 2, (n,), generator=g)
    sign = (2 * truth - 1).float()[:, None]
    content = 2.0 * torch.randn(n, d, generator=g)
    h_pos = content + sign * v + 3 * w + 0.3 * torch.randn(n, d, generator=g)
    h_neg = content - sign * v - 3 * w + 0.3 * torch.randn(n, d, generator=g)
    res = probes.ccs(h_pos, h_neg, n_tries=3, n_steps=300)
    cos = float(torch.nn.functional.cosine_similarity(res.direction, v, dim=0))
    acc = float(((res.credence > 0.5).long() == truth).float().mean())
    acc = max(acc, 1 - acc)
    norm = lambda h: (h - h.mean(0)) / h.std(0)  # noqa: E731
    diff = norm(h_pos) - norm(h_neg)
    pc = torch.linalg.svd(diff - diff.mean(0), full_matrices=False).Vh[0]
    pca_acc = float(((diff @ pc > 0).long() == truth).float().mean())
    pca_acc = max(pca_acc, 1 - pca_acc)
    raw_pc = torch.linalg.svd(h_pos - h_pos.mean(0), full_matrices=False).Vh[0]
    raw_acc = float((((h_pos - h_pos.mean(0)) @ raw_pc > 0).long() == truth).float().mean())
    raw_acc = max(raw_acc, 1 - raw_acc)
    fig, ax = plt.subplots(figsize=(5, 3))
    for label, colour in ((1, "tab:green"), (0, "tab:red")):
        ax.hist(res.credence[truth == label].tolist(), bins=30, range=(0, 1), alpha=0.6, color=colour,
                label=f"statement {'true' if label else 'false'}")
    ax.set_xlabel("CCS credence (p(x+) + 1 - p(x-)) / 2"), ax.legend(fontsize=7)
    reading = f"""Synthetic hidden states for 512 yes/no questions: a large question-specific component (std 2 per
    dimension), a constant offset for the appended answer, and a planted truth direction v (+v when "yes" is true,
    -v otherwise, unit length). CCS, trained without labels on consistency and confidence, finds a direction with
    |cos| {abs(cos):.2f} to v and separates true from false statements with {acc:.0%} accuracy (up to the sign, which
    no unsupervised method can fix). The first principal component of the normalised contrast differences does as
    well ({pca_acc:.0%}), as Farquhar et al. warn, while the first component of the raw states, dominated by the question
    content, reaches {raw_acc:.0%}. On a real model the direction CCS finds need not be the model's knowledge: any
    feature that flips between the two completions satisfies the same loss."""
    return _result(fig, out_dir, "contrast-consistent-search", reading,
                   {"abs_cos": abs(cos), "accuracy": acc, "pca_of_differences_accuracy": pca_acc, "raw_pca_accuracy": raw_acc})


@_runner("causal-scrubbing", "induction-transformer", "fraction of the copying preserved when a hypothesis' unimportant heads are resampled")
def _run_causal_scrubbing(out_dir, cache):
    demo, tokens, _, logprob, _ = _induction_setup(cache)
    m = demo.model
    head = lambda l, h: (f"blocks.{l}.attn.head_out", (slice(None), slice(None), h))  # noqa: E731
    all_heads = [(l, h) for l in range(2) for h in range(2)]
    hypotheses = {"only layer 2 matters": [(0, 0), (0, 1)], "layer 1 head 0 is irrelevant": [(0, 0)],
                  "layer 1 head 1 is irrelevant": [(0, 1)], "only layer 1 matters": [(1, 0), (1, 1)],
                  "layer 2 head 1 is irrelevant": [(1, 1)]}
    fractions = {}
    for name, unimportant in hypotheses.items():
        kept = [c for c in all_heads if c not in unimportant]
        res = circuits.causal_scrubbing(m, tokens, logprob, unimportant=[head(*c) for c in unimportant],
                                        claims=[(*head(*c), torch.arange(len(tokens))) for c in kept], n_draws=2)
        fractions[name] = res.fraction
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(list(fractions), list(fractions.values())), ax.axvline(1, color="k", lw=0.8)
    ax.set_xlabel("fraction of the log-prob gap kept"), ax.tick_params(axis="y", labelsize=7)
    f = fractions
    spare_l1 = f["only layer 2 matters"] > 0.9
    reading = f"""Each hypothesis names the heads that do not matter for copying the second half of a repeated sequence;
    causal scrubbing replaces their outputs with those on a random other sequence, keeps the rest, and reports the
    fraction of the log-probability gap between the clean model ({res.clean:.2f}) and every head resampled that
    survives. "Only layer 2 matters" keeps {f['only layer 2 matters']:.0%}; resampling layer-1 head 0 or 1 alone keeps
    {f['layer 1 head 0 is irrelevant']:.0%} and {f['layer 1 head 1 is irrelevant']:.0%}; "only layer 1 matters" keeps
    {f['only layer 1 matters']:.0%}, and resampling the stronger induction head alone keeps
    {f['layer 2 head 1 is irrelevant']:.0%}. {"On these sequences, all of one shape (ten tokens repeated once), the layer-1 heads' outputs can come from any other sequence: whatever they contribute is the same for every sequence of this shape, or unused. That is a claim about this distribution; with a varying period (as in training) or a corrupted first half (as in the ACDC demo) the same heads can matter." if spare_l1 else "The layer-1 heads matter here too."}
    This is node-level scrubbing of heads with the claimed heads kept as they are; the paper's version resamples
    inputs path by path and can claim what a head computes, not only that it matters."""
    return _result(fig, out_dir, "causal-scrubbing", reading,
                   {f"fraction_{k.replace(' ', '_')}": v for k, v in fractions.items()})
