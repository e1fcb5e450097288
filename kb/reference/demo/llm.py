"""``kb run`` demos of LLM mechanistic methods at toy scale: SAEs, transcoders, attribution graphs, and more."""

from __future__ import annotations

import importlib

import torch

from .. import circuits, editing, lens, models, probes, sae
from .. import autointerp as _autointerp
from .. import sae_eval as _sae_eval
from .. import transcoders as _transcoders
from .transformer import _induction_setup
from ._registry import _result, _runner, demo_model, plt

__all__: list[str] = []


_ag = importlib.import_module("kb.reference.attribution_graph")  # the package re-exports a function under this name

# --- sparse autoencoder -------------------------------------------------------------------------------------

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


@_runner("function-vectors", "induction-transformer", "heads with the largest indirect effect and their summed output added to zero-shot prompts")
def _run_function_vectors(out_dir, cache):
    m = demo_model("induction-transformer", cache).model
    a, x = 3, 11
    icl, corrupted = models.association_prompts(64, a, x, True, 0), models.association_prompts(64, a, x, False, 1)
    heads = [(f"blocks.{l}.attn.head_out", h) for l in range(2) for h in range(2)]
    fv = editing.function_vector(m, icl, corrupted, torch.full((64,), x), heads, n_heads=2)
    zero_shot = models.association_prompts(64, a, x, False, 2)
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
    h_pos, h_neg, truth, v = models.contrast_pairs(512, 16, seed=0)
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
