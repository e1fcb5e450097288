"""Attribution graphs: direct effects between tokens, transcoder features, error nodes and logits in a local replacement model."""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ._common import capture_outputs, forward_hooks, replace_output, resolve_module
from .transcoders import CrossLayerTranscoder, Transcoder

__all__ = ["AttributionGraph", "attribution_graph", "graph_influence", "prune_graph", "graph_scores"]


@dataclasses.dataclass
class AttributionGraph:
    """Nodes and the direct-effect matrix of one prompt.

    ``nodes``: ``("token", pos, token_id)``, ``("feature", layer, pos, index)``, ``("error", layer, pos)``,
    ``("logit", pos, token_id)``, in that order. ``adjacency[t, s]``: the direct effect of node ``s`` on
    node ``t`` (a feature's pre-activation or a logit); rows of tokens and errors are zero.
    ``values[t]``: the target's value in the model; ``constant[t]``: its value with every source
    set to zero (biases), so ``adjacency.sum(1) + constant == values`` on target rows.
    ``activations``: each feature's activation (0 for other nodes).
    """

    nodes: list
    adjacency: Tensor
    values: Tensor
    constant: Tensor
    activations: Tensor

    def index(self, kind: str) -> Tensor:
        """Indices of the nodes of one kind (``"token"``, ``"feature"``, ``"error"``, ``"logit"``)."""
        return torch.tensor([i for i, n in enumerate(self.nodes) if n[0] == kind], dtype=torch.long)


def attribution_graph(
    model: nn.Module,
    tokens: Tensor,
    transcoder: CrossLayerTranscoder | Sequence[Transcoder],
    logits: Sequence[tuple[int, int]],
    mlps: Sequence[nn.Module | str] | None = None,
    embed: nn.Module | str = "embed",
    freeze: Sequence[nn.Module | str] | None = None,
    frozen_edits: Mapping[str, Callable[[Tensor], Tensor]] | None = None,
    feature_targets: bool = True,
) -> AttributionGraph:
    """Attribution graph of one prompt ``tokens`` ``(T,)`` for the ``(position, token_id)`` ``logits``.

    The *local replacement model*: the model run on ``tokens`` with (1) the outputs of the
    ``freeze`` modules (attention patterns and LayerNorm scales; default: every submodule named
    ``pattern`` or ``scale``) fixed at their values, (2) each MLP in ``mlps`` (default
    ``blocks.{l}.mlp``) replaced by the transcoder's reconstruction from the features' values plus an
    *error node* ``MLP(x) - reconstruction``. It reproduces the model's output on this prompt exactly
    and is linear in its sources (token embeddings, feature activations, errors). The edge from a
    source ``s`` (value ``a_s``) to a target ``t`` is the direct effect ``a_s . d t / d a_s`` with
    every feature activation held fixed (a stop-gradient), so effects through other features are
    their own edges; sources plus biases sum exactly to each target. All targets are computed at
    once, one copy of the prompt per target (circuit-tracer's batching). ``frozen_edits`` maps a
    frozen module's name to a change of its frozen value (e.g. zero one head's pattern) to see which
    paths an edge takes; with edits the model is no longer reproduced. ``feature_targets=False``
    computes only the edges into the logits (one copy per logit: much faster).

    References
    ----------
    [@ameisen2025circuit]; [@dunefsky2024transcoders]
    """
    clt = transcoder if isinstance(transcoder, CrossLayerTranscoder) else CrossLayerTranscoder.from_transcoders(transcoder)
    n_layers = clt.W_enc.shape[0]
    mlp_mods = [resolve_module(model, m) for m in (mlps or [f"blocks.{l}.mlp" for l in range(n_layers)])]
    names = [n for n, _ in model.named_modules() if n.split(".")[-1] in ("pattern", "scale")] if freeze is None else freeze
    frozen = [resolve_module(model, f) for f in names]
    emb = resolve_module(model, embed)
    tokens = torch.as_tensor(tokens).view(1, -1)
    mlp_io: dict[int, tuple[Tensor, Tensor]] = {}
    with torch.no_grad():  # the clean run: frozen values, MLP inputs/outputs, embeddings
        with capture_outputs([emb, *frozen], detach=True) as store, forward_hooks(
                [(m, lambda mod, i, o, l=l: mlp_io.__setitem__(l, (i[0][0], o[0]))) for l, m in enumerate(mlp_mods)]):
            out = model(tokens)
        feats = [clt.encode_layer(l, mlp_io[l][0]) for l in range(n_layers)]  # (T, m) each
        errors = torch.stack([mlp_io[l][1] - clt.decode_layer(l, feats) for l in range(n_layers)])  # (L, T, d)
    fixed = {m: s[-1] for m, s in zip(frozen, store[1:])}
    for name, edit in (frozen_edits or {}).items():
        module = resolve_module(model, name)
        fixed[module] = edit(fixed[module].clone())
    active = [(l, p, i) for l in range(n_layers) for p, i in (feats[l] > 0).nonzero().tolist()]
    targets = [("feature", *a) for a in active if feature_targets] + [("logit", p, t) for p, t in logits]
    k, t_len = len(targets), tokens.shape[1]

    def run(scale: float) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor, dict]:
        """One batched pass of the local model with every source multiplied by ``scale`` (1 or 0)."""
        e = (store[0][-1].expand(k, -1, -1) * scale).requires_grad_()
        f = [(x.expand(k, -1, -1) * scale).requires_grad_() for x in feats]
        err = [(x.expand(k, -1, -1) * scale).requires_grad_() for x in errors]
        pre: dict[int, Tensor] = {}

        def mlp_hook(layer):
            def hook(_m, inputs, _o):
                pre[layer] = inputs[0] @ clt.W_enc[layer].T + clt.b_enc[layer]  # targets: pre-activations
                return clt.decode_layer(layer, f) + err[layer]  # from the fixed feature values: a stop-gradient
            return hook

        hooks = [(emb, replace_output(lambda _o: e))]
        hooks += [(m, replace_output(lambda _o, v=v: v.expand(k, *v.shape[1:]))) for m, v in fixed.items()]
        hooks += [(m, mlp_hook(l)) for l, m in enumerate(mlp_mods)]
        with torch.enable_grad(), forward_hooks(hooks):
            logit_out = model(tokens.expand(k, -1))
        rows = torch.arange(k)
        value = torch.stack([pre[t[1]][r, t[2], t[3]] if t[0] == "feature" else logit_out[r, t[1], t[2]]
                             for r, t in zip(rows.tolist(), targets)]) if k else torch.zeros(0)
        return value, [e], f, err, pre

    value, (e,), f, err, _ = run(1.0)
    grads = torch.autograd.grad(value.sum(), [e, *f, *err], allow_unused=True) if k else []
    g_e, g_f, g_err = grads[0], grads[1:1 + n_layers], grads[1 + n_layers:]
    zero = lambda g, like: torch.zeros_like(like) if g is None else g  # noqa: E731
    cols = [(zero(g_e, e) * e.detach()).sum(-1)]  # (k, T): token nodes
    cols += [zero(g_f[l], f[l])[:, p, i, None] * feats[l][p, i] for l, p, i in active]  # feature nodes
    cols += [(zero(g_err[l], err[l]) * errors[l]).sum(-1) for l in range(n_layers)]  # (k, T) error nodes per layer
    with torch.no_grad():
        constant = run(0.0)[0]
    nodes = ([("token", p, int(tokens[0, p])) for p in range(t_len)] + [("feature", *a) for a in active]
             + [("error", l, p) for l in range(n_layers) for p in range(t_len)] + [("logit", p, t) for p, t in logits])
    n = len(nodes)
    adjacency = torch.zeros(n, n)
    sources = torch.cat(cols, 1).detach()  # (k, n - n_logits): logits are never sources
    n_feat = len(active) if feature_targets else 0
    adjacency[t_len:t_len + n_feat, :n - len(logits)] = sources[:n_feat]
    adjacency[n - len(logits):, :n - len(logits)] = sources[n_feat:]
    values, const = torch.zeros(n), torch.zeros(n)
    tgt = torch.cat([torch.arange(t_len, t_len + n_feat), torch.arange(n - len(logits), n)])
    values[tgt], const[tgt] = value.detach(), constant
    acts = torch.zeros(n)
    acts[t_len:t_len + len(active)] = torch.tensor([float(feats[l][p, i]) for l, p, i in active])
    clean_logits = torch.stack([out[0, p, t] for p, t in logits])
    if not frozen_edits and not torch.allclose(values[n - len(logits):], clean_logits, atol=1e-4):
        raise RuntimeError("the local replacement model does not reproduce the model's logits: are all attention "
                           "patterns and normalisation scales in `freeze`, and every MLP in `mlps`?")
    return AttributionGraph(nodes, adjacency, values, const, acts)


def graph_influence(graph: AttributionGraph, logit_weights: Tensor | None = None) -> Tensor:
    """Influence of every node on the logits, summed over paths of every length.

    ``A = |adjacency|`` with rows normalised to sum to 1; ``B = (I - A)^{-1} - I`` sums the
    products of normalised edges over all paths; influence ``= w^T B`` with ``w`` the logit weights
    (default: equal) on the logit nodes. Returns ``(n,)``.

    References
    ----------
    [@ameisen2025circuit]
    """
    a = graph.adjacency.abs()
    a = a / a.sum(1, keepdim=True).clamp_min(1e-12)
    logit_idx = graph.index("logit")
    w = torch.zeros(len(graph.nodes))
    w[logit_idx] = (torch.ones(len(logit_idx)) if logit_weights is None else logit_weights) / (
        len(logit_idx) if logit_weights is None else 1.0)
    eye = torch.eye(len(w))
    return w @ (torch.linalg.inv(eye - a) - eye)


def prune_graph(graph: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98,
                logit_weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Keep the nodes carrying ``node_threshold`` of the influence on the logits, then the edges
    carrying ``edge_threshold`` of the influence between kept nodes; tokens, errors and logits are always kept.

    Returns boolean masks ``(n,)`` for nodes and ``(n, n)`` for edges (circuit-tracer's defaults).

    References
    ----------
    [@ameisen2025circuit]
    """
    influence = graph_influence(graph, logit_weights)
    keep = torch.ones(len(graph.nodes), dtype=torch.bool)
    feat = graph.index("feature")
    if len(feat):
        order = influence[feat].argsort(descending=True)
        share = influence[feat][order].cumsum(0) / influence[feat].sum().clamp_min(1e-12)
        keep[feat] = False
        keep[feat[order[: int((share < node_threshold).sum()) + 1]]] = True
    a = graph.adjacency.abs() * keep[:, None] * keep[None, :]
    a = a / a.sum(1, keepdim=True).clamp_min(1e-12)
    logit_idx = graph.index("logit")
    weight = influence.clone()
    weight[logit_idx] += 1.0 / len(logit_idx)
    score = (a * weight[:, None]).flatten()
    order = score.argsort(descending=True)
    share = score[order].cumsum(0) / score.sum().clamp_min(1e-12)
    edges = torch.zeros_like(score, dtype=torch.bool)
    edges[order[: int((share < edge_threshold).sum()) + 1]] = True
    return keep, edges.view_as(graph.adjacency) & (score.view_as(graph.adjacency) > 0)


def graph_scores(graph: AttributionGraph, logit_weights: Tensor | None = None) -> tuple[float, float]:
    """``(replacement, completeness)``: the share of the logits' influence that starts at tokens rather than
    error nodes, and the influence-weighted share of every target's incoming edges not from error nodes.

    References
    ----------
    [@ameisen2025circuit]
    """
    influence = graph_influence(graph, logit_weights)
    tok, err = graph.index("token"), graph.index("error")
    replacement = float(influence[tok].sum() / (influence[tok].sum() + influence[err].sum()).clamp_min(1e-12))
    a = graph.adjacency.abs()
    incoming = a.sum(1)
    non_error = incoming - a[:, err].sum(1)
    weight = influence.clone()
    weight[graph.index("logit")] += 1.0 / len(graph.index("logit"))
    rows = incoming > 0
    completeness = float((weight[rows] * non_error[rows] / incoming[rows]).sum() / weight[rows].sum())
    return replacement, completeness
