"""``kb run`` demos on the induction transformer: attention, patching, lenses, steering, circuit discovery."""

from __future__ import annotations

import torch

from .. import attention, circuit_discovery, circuits, editing, lens, patching
from ._registry import _result, _runner, demo_model, plt

__all__: list[str] = []


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
