"""Global, model-level explanations of tabular models: ALE, Friedman's H-statistic, global surrogates, EBMs."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ._common import as_target, select_target

__all__ = ["ALE", "accumulated_local_effects", "h_statistic", "Surrogate", "global_surrogate", "EBM", "train_ebm"]


def _scores(model: Callable[[Tensor], Tensor], x: Tensor, target) -> Tensor:
    """``(N,)`` the model's output for ``target`` (a regression model's single output when ``target`` is None)."""
    with torch.no_grad():
        out = model(x)
    if target is None:
        if out.ndim > 1 and out.reshape(len(x), -1).shape[1] != 1:
            raise ValueError(f"the model has {out.reshape(len(x), -1).shape[1]} outputs: pass target")
        return out.reshape(len(x))
    return select_target(out, as_target(target, len(x)))


def _quantile_edges(x: Tensor, n_bins: int) -> Tensor:
    """Bin edges at the empirical quantiles of ``x`` (duplicates merged): ``(K + 1,)``, ``K <= n_bins``."""
    return torch.quantile(x.double(), torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)).unique().to(x.dtype)


def _bin_of(x: Tensor, edges: Tensor) -> Tensor:
    """Bin ``k`` (0-based) holds ``edges[k] < x <= edges[k + 1]``; the minimum falls in bin 0."""
    return torch.bucketize(x.contiguous(), edges[1:-1].contiguous())


@dataclasses.dataclass
class ALE:
    """``edges``: bin edges, one tensor ``(K + 1,)`` per feature; ``values``: the centred effect at the edges,
    ``(K + 1,)`` for one feature or ``(K1 + 1, K2 + 1)`` for a pair; ``counts``: rows per bin or cell."""

    edges: tuple[Tensor, ...]
    values: Tensor
    counts: Tensor


def accumulated_local_effects(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    target=None,
    feature: int | tuple[int, int] = 0,
    n_bins: int = 20,
) -> ALE:
    """Accumulated local effects of one feature, or the second-order (pure interaction) effect of a pair.

    One feature ``j``: cut its range at quantiles ``z_0 < ... < z_K``; every row in bin ``k`` moves
    only across its own bin, ``d_i = f(z_k, x_{i,-j}) - f(z_{k-1}, x_{i,-j})``; the bin means of ``d``
    are accumulated, ``g(z_k) = sum_{k' <= k} mean_{bin k'} d``, and centred so that the rows'
    average effect is 0 (each bin counts with its rows, at the mean of its two edges). Because each
    row moves only inside its bin, ALE never evaluates the model far outside the data, unlike
    partial dependence. A pair ``(j, l)``: the double differences
    ``f(z_a, w_b) - f(z_{a-1}, w_b) - f(z_a, w_{b-1}) + f(z_{a-1}, w_{b-1})`` are averaged per cell
    and accumulated over both axes; the first-order effects of that surface are subtracted and the
    result centred (as Apley's ``ALEPlot`` does). Empty cells count as 0 (``ALEPlot`` copies the
    nearest cell). ``target`` picks a class's output; ``None`` takes a regression model's only output.

    Examples
    --------
    A quadratic's ALE is the quadratic (exactly at the edges, up to the centring constant):

    >>> x = torch.linspace(-1, 1, 201).view(-1, 1)
    >>> ale = accumulated_local_effects(lambda v: v[:, 0] ** 2, x, n_bins=10)
    >>> z = ale.edges[0]
    >>> bool(torch.allclose(ale.values - ale.values[5], z ** 2 - z[5] ** 2, atol=1e-6))
    True

    References
    ----------
    [@apley2020visualizing]
    """
    pair = not isinstance(feature, int)
    cols = list(feature) if pair else [feature]
    edges = [_quantile_edges(inputs[:, c], n_bins) for c in cols]
    bins = [_bin_of(inputs[:, c], e) for c, e in zip(cols, edges)]

    def f_at(offsets):  # model output with each chosen feature set to the lower (0) or upper (1) edge of its bin
        x = inputs.clone()
        for c, e, b, o in zip(cols, edges, bins, offsets):
            x[:, c] = e[b + o]
        return _scores(model, x, target)

    if not pair:
        (e,), (b,) = edges, bins
        k = len(e) - 1
        d = f_at([1]) - f_at([0])
        counts = torch.bincount(b, minlength=k)
        means = torch.zeros(k, dtype=d.dtype).index_add_(0, b, d) / counts.clamp(min=1)
        g = torch.cat([torch.zeros(1, dtype=d.dtype), means.cumsum(0)])
        g = g - (counts * (g[1:] + g[:-1]) / 2).sum() / counts.sum()
        return ALE((e,), g, counts)
    k1, k2 = len(edges[0]) - 1, len(edges[1]) - 1
    d = f_at([1, 1]) - f_at([0, 1]) - f_at([1, 0]) + f_at([0, 0])
    cell = bins[0] * k2 + bins[1]
    n = torch.bincount(cell, minlength=k1 * k2).view(k1, k2).to(d.dtype)
    delta = torch.zeros(k1 * k2, dtype=d.dtype).index_add_(0, cell, d).view(k1, k2) / n.clamp(min=1)
    h = torch.zeros(k1 + 1, k2 + 1, dtype=d.dtype)
    h[1:, 1:] = delta.cumsum(0).cumsum(1)
    # remove the surface's own first-order effects, averaging each strip over its cells' rows
    dj, dl = h[1:] - h[:-1], h[:, 1:] - h[:, :-1]  # (k1, k2 + 1), (k1 + 1, k2)
    fj = ((dj[:, 1:] + dj[:, :-1]) / 2 * n).sum(1) / n.sum(1).clamp(min=1)
    fl = ((dl[1:] + dl[:-1]) / 2 * n).sum(0) / n.sum(0).clamp(min=1)
    h = h - torch.cat([fj.new_zeros(1), fj.cumsum(0)])[:, None] - torch.cat([fl.new_zeros(1), fl.cumsum(0)])[None]
    corners = (h[1:, 1:] + h[:-1, 1:] + h[1:, :-1] + h[:-1, :-1]) / 4
    return ALE(tuple(edges), h - (corners * n).sum() / n.sum(), n.long())


def h_statistic(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    target=None,
    features: int | tuple[int, int] = (0, 1),
) -> float:
    """Friedman and Popescu's H² statistic: the share of a partial dependence's variance that is interaction.

    With ``PD_S(x_S) = 1/n sum_l f(x_S, x_{l,-S})`` centred over the rows, for a pair ``(j, k)``:
    ``H²_jk = sum_i [PD_jk(x_ij, x_ik) - PD_j(x_ij) - PD_k(x_ik)]² / sum_i PD_jk(x_ij, x_ik)²``;
    for one feature ``j`` against all others:
    ``H²_j = sum_i [f(x_i) - PD_j(x_ij) - PD_-j(x_i,-j)]² / sum_i f(x_i)²`` (``f`` centred).
    0 when the pair (or the feature) enters additively; about 1 when the joint effect is pure
    interaction (in a finite sample the main effects can correlate negatively with the interaction,
    and H² then slightly exceeds 1).
    Each partial dependence is evaluated at every row's own values: ``n²`` model evaluations, so
    pass a subsample of a few hundred rows. Take the square root for Friedman's ``H``.

    Examples
    --------
    >>> x = torch.rand(50, 3, generator=torch.Generator().manual_seed(0)) - 0.5
    >>> round(h_statistic(lambda v: v[:, 0] + v[:, 1] ** 2, x, features=(0, 1)), 6)  # additive
    0.0

    References
    ----------
    [@friedman2008predictive]
    """
    n, d = inputs.shape

    def pd(cols: list[int]) -> Tensor:
        x = inputs[None].repeat(n, 1, 1)  # x[i, l] = row l with the columns ``cols`` taken from row i
        x[:, :, cols] = inputs[:, None, cols]
        f = _scores(model, x.reshape(n * n, d), None if target is None else as_target(target, n).repeat_interleave(n))
        f = f.view(n, n).mean(1)
        return f - f.mean()

    if isinstance(features, int):
        f = _scores(model, inputs, target)
        f = f - f.mean()
        rest = [c for c in range(d) if c != features]
        return float(((f - pd([features]) - pd(rest)) ** 2).sum() / (f ** 2).sum())
    j, k = features
    joint = pd([j, k])
    return float(((joint - pd([j]) - pd([k])) ** 2).sum() / (joint ** 2).sum())


# --- global surrogate -------------------------------------------------------------------------------

def _best_split(x: Tensor, y: Tensor, min_leaf: int):
    """The (feature, threshold, sse) that minimises the summed squared error of two children, or None."""
    n = len(y)
    order = x.argsort(0)
    xs, ys = x.gather(0, order), y[order]
    m = torch.arange(1, n, dtype=y.dtype).view(-1, 1)  # rows on the left of a cut after row m - 1
    cs, cs2 = ys.cumsum(0)[:-1], (ys ** 2).cumsum(0)[:-1]
    left = cs2 - cs ** 2 / m
    right = (ys ** 2).sum(0) - cs2 - (ys.sum(0) - cs) ** 2 / (n - m)
    sse = left + right
    ok = (m >= min_leaf) & (n - m >= min_leaf) & (xs[1:] > xs[:-1])
    sse = torch.where(ok, sse, torch.inf)
    if not torch.isfinite(sse).any():
        return None
    pos, feat = divmod(int(sse.argmin()), x.shape[1])
    return feat, float((xs[pos, feat] + xs[pos + 1, feat]) / 2), float(sse[pos, feat])


def _grow(x: Tensor, y: Tensor, depth: int, min_leaf: int) -> dict:
    """A CART regression tree as nested dicts: ``{"value"}`` leaves, ``{"feature", "threshold", "left", "right"}``."""
    node = {"value": float(y.mean()), "n": len(y)}
    split = _best_split(x, y, min_leaf) if depth > 0 and len(y) >= 2 * min_leaf else None
    if split is None or split[2] >= float(((y - y.mean()) ** 2).sum()) - 1e-12:
        return node
    feat, thr, _ = split
    go = x[:, feat] <= thr
    return {**node, "feature": feat, "threshold": thr,
            "left": _grow(x[go], y[go], depth - 1, min_leaf), "right": _grow(x[~go], y[~go], depth - 1, min_leaf)}


def _tree_predict(node: dict, x: Tensor) -> Tensor:
    if "feature" not in node:
        return torch.full((len(x),), node["value"], dtype=x.dtype)
    go = x[:, node["feature"]] <= node["threshold"]
    out = torch.empty(len(x), dtype=x.dtype)
    out[go], out[~go] = _tree_predict(node["left"], x[go]), _tree_predict(node["right"], x[~go])
    return out


def _tree_text(node: dict, names: Sequence[str], indent: str = "") -> str:
    if "feature" not in node:
        return f"{indent}value {node['value']:.3g} (n={node['n']})\n"
    name, thr = names[node["feature"]], node["threshold"]
    return (f"{indent}{name} <= {thr:.3g}\n" + _tree_text(node["left"], names, indent + "  ")
            + f"{indent}{name} > {thr:.3g}\n" + _tree_text(node["right"], names, indent + "  "))


def _r2(f: Tensor, g: Tensor) -> float:
    return float(1 - ((f - g) ** 2).sum() / ((f - f.mean()) ** 2).sum())


@dataclasses.dataclass
class Surrogate:
    """A fitted surrogate: ``predict(x) -> (N,)``; ``fidelity``: R² of the surrogate against the model on the
    fitting rows, ``test_fidelity`` on ``test_inputs`` (None if not given); ``rules`` (tree) or
    ``coef``/``intercept`` (linear)."""

    kind: str
    predict: Callable[[Tensor], Tensor]
    fidelity: float
    test_fidelity: float | None
    rules: str = ""
    coef: Tensor | None = None
    intercept: float = 0.0


def global_surrogate(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    target=None,
    kind: str = "tree",
    max_depth: int = 3,
    min_leaf: int = 5,
    test_inputs: Tensor | None = None,
    feature_names: Sequence[str] | None = None,
) -> Surrogate:
    """A global surrogate: an interpretable model fitted to the black box's outputs (not to the labels).

    ``kind="tree"`` grows a CART regression tree of depth ``max_depth`` on the target output
    ``f(x)`` (greedy least-squares splits, at least ``min_leaf`` rows per leaf); ``kind="linear"``
    fits ``f(x) ~ x w + b`` by least squares. Its fidelity is ``R² = 1 - sum (f - g)² / sum (f - mean f)²``
    against the model, on the fitting rows and on ``test_inputs``: the surrogate explains the model
    only as far as this is high, and says nothing about the data beyond the model. For a classifier,
    pass ``target`` and a model that returns probabilities or logits.

    Examples
    --------
    A linear surrogate of a linear model is exact:

    >>> x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    >>> s = global_surrogate(lambda v: v @ torch.tensor([1.0, -2.0, 0.5]) + 3, x, kind="linear")
    >>> round(s.fidelity, 6), [round(c, 4) for c in s.coef.tolist()], round(s.intercept, 4)
    (1.0, [1.0, -2.0, 0.5], 3.0)

    References
    ----------
    [@craven1996extracting]
    """
    f = _scores(model, inputs, target)
    names = list(feature_names or [f"x{j}" for j in range(inputs.shape[1])])
    if kind == "tree":
        tree = _grow(inputs, f, max_depth, min_leaf)
        predict, extra = (lambda x: _tree_predict(tree, x)), {"rules": _tree_text(tree, names)}
    elif kind == "linear":
        design = torch.cat([inputs, torch.ones(len(inputs), 1, dtype=inputs.dtype)], 1)
        w = torch.linalg.lstsq(design, f[:, None]).solution[:, 0]
        predict = lambda x: x @ w[:-1] + w[-1]  # noqa: E731
        extra = {"coef": w[:-1], "intercept": float(w[-1])}
    else:
        raise ValueError(f"kind must be 'tree' or 'linear', got {kind!r}")
    test = None
    if test_inputs is not None:
        test = _r2(_scores(model, test_inputs, target), predict(test_inputs))
    return Surrogate(kind, predict, _r2(f, predict(inputs)), test, **extra)


# --- explainable boosting machine -------------------------------------------------------------------

def _leaves_1d(g: Tensor, h: Tensor, max_leaves: int, min_hessian: float = 1e-3) -> Tensor:
    """Newton values ``G/H`` of a greedy regression tree on ordered bins with at most ``max_leaves`` leaves."""
    cuts = [0, len(g)]
    for _ in range(max_leaves - 1):
        best = (0.0, None)
        for a, b in zip(cuts[:-1], cuts[1:]):
            gl, hl = g[a:b].cumsum(0)[:-1], h[a:b].cumsum(0)[:-1]
            gt, ht = g[a:b].sum(), h[a:b].sum()
            score = lambda gs, hs: gs ** 2 / hs.clamp(min=min_hessian)  # noqa: E731  (Newton gain of a leaf)
            gain = score(gl, hl) + score(gt - gl, ht - hl) - score(gt, ht)
            gain = torch.where((hl > min_hessian) & (ht - hl > min_hessian), gain, 0.0)
            if len(gain) and float(gain.max()) > best[0]:
                best = (float(gain.max()), a + 1 + int(gain.argmax()))
        if best[1] is None:
            break
        cuts = sorted(cuts + [best[1]])
    values = torch.zeros_like(g)
    for a, b in zip(cuts[:-1], cuts[1:]):
        values[a:b] = g[a:b].sum() / h[a:b].sum().clamp(min=min_hessian)
    return values


@dataclasses.dataclass
class EBM:
    """A fitted EBM: ``edges[j]`` inner cut points of feature ``j``, ``shapes[j]`` its value per bin,
    ``pairs`` maps ``(j, k)`` to a ``(Bj, Bk)`` table on the coarser ``pair_edges``; the output
    ``intercept + sum_j shapes[j][bin] + sum_pairs table[cell]`` is the prediction (a logit for
    ``loss="logistic"``). Every term is centred over the training rows."""

    edges: list[Tensor]
    shapes: list[Tensor]
    intercept: float
    pairs: dict = dataclasses.field(default_factory=dict)
    pair_edges: list[Tensor] = dataclasses.field(default_factory=list)

    def contributions(self, x: Tensor) -> Tensor:
        """``(N, d + n_pairs)``: each term's contribution to each row's output."""
        terms = [s[torch.bucketize(x[:, j].contiguous(), e)] for j, (e, s) in enumerate(zip(self.edges, self.shapes))]
        for (j, k), table in self.pairs.items():
            a = torch.bucketize(x[:, j].contiguous(), self.pair_edges[j])
            b = torch.bucketize(x[:, k].contiguous(), self.pair_edges[k])
            terms.append(table[a, b])
        return torch.stack(terms, 1)

    def __call__(self, x: Tensor) -> Tensor:
        return self.intercept + self.contributions(x).sum(1)


def train_ebm(
    inputs: Tensor,
    targets: Tensor,
    loss: str = "mse",
    n_bins: int = 32,
    n_rounds: int = 300,
    learning_rate: float = 0.05,
    max_leaves: int = 3,
    interactions: Sequence[tuple[int, int]] = (),
    pair_bins: int = 8,
) -> EBM:
    """An explainable boosting machine: a GA²M fitted by cyclic gradient boosting of tiny per-feature trees.

    Features are cut into ``n_bins`` quantile bins. Each round visits the features in turn and
    fits, to the current gradients ``g = y - F(x)`` (``mse``) or ``y - sigmoid(F(x))`` (``logistic``,
    with Hessians ``p(1 - p)``), a greedy tree over that feature's ordered bins with ``max_leaves``
    leaves and Newton values ``sum g / sum h``; the feature's shape function moves by
    ``learning_rate`` times the tree. One feature at a time and a small rate keep correlated
    features from stealing each other's effect. Then the ``interactions`` pairs are boosted the
    same way on a ``pair_bins x pair_bins`` grid (one leaf per cell), on top of the main effects.
    Every term is finally centred and its mean moved into the intercept. Plain and deterministic:
    the InterpretML implementation adds outer bagging, early stopping, automatic pair selection
    (FAST) and purification of pairs into the main effects.

    Parameters
    ----------
    inputs : ``(N, d)`` features; targets : ``(N,)`` real values or 0/1 labels.

    Examples
    --------
    A single step function is recovered as its shape (up to centring):

    >>> x = torch.linspace(-1, 1, 400).view(-1, 1)
    >>> ebm = train_ebm(x, (x[:, 0] > 0).double(), n_bins=8, n_rounds=100, learning_rate=0.2)
    >>> [round(v, 2) for v in ebm.shapes[0][[0, -1]].tolist()], round(ebm.intercept, 2)
    ([-0.5, 0.5], 0.5)

    References
    ----------
    [@lou2013accurate] [@nori2019interpretml]
    """
    x, y = inputs.double(), targets.double()
    n, d = x.shape
    edges = [_quantile_edges(x[:, j], n_bins)[1:-1] for j in range(d)]
    bins = [torch.bucketize(x[:, j].contiguous(), e) for j, e in enumerate(edges)]
    shapes = [torch.zeros(len(e) + 1, dtype=torch.float64) for e in edges]
    intercept = float(y.mean()) if loss == "mse" else float(torch.logit(y.mean().clamp(1e-6, 1 - 1e-6)))
    out = torch.full((n,), intercept, dtype=torch.float64)

    def grad_hess(out):
        if loss == "mse":
            return y - out, torch.ones_like(y)
        p = torch.sigmoid(out)
        return y - p, p * (1 - p)

    for _ in range(n_rounds):
        for j in range(d):
            g, h = grad_hess(out)
            k = len(shapes[j])
            step = learning_rate * _leaves_1d(torch.bincount(bins[j], g, k), torch.bincount(bins[j], h, k), max_leaves)
            shapes[j] += step
            out += step[bins[j]]
    pairs, pair_edges = {}, [_quantile_edges(x[:, j], pair_bins)[1:-1] for j in range(d)]
    for j, k in interactions:
        a = torch.bucketize(x[:, j].contiguous(), pair_edges[j])
        b = torch.bucketize(x[:, k].contiguous(), pair_edges[k])
        ka, kb = len(pair_edges[j]) + 1, len(pair_edges[k]) + 1
        cell, table = a * kb + b, torch.zeros(ka * kb, dtype=torch.float64)
        for _ in range(n_rounds):
            g, h = grad_hess(out)
            step = learning_rate * torch.bincount(cell, g, ka * kb) / torch.bincount(cell, h, ka * kb).clamp(min=1e-3)
            table += step
            out += step[cell]
        pairs[(j, k)] = table.view(ka, kb)
    for j in range(d):  # centre every term over the training rows; the means go to the intercept
        mean = float(shapes[j][bins[j]].mean())
        shapes[j] -= mean
        intercept += mean
    for (j, k), table in pairs.items():
        mean = float(table[torch.bucketize(x[:, j].contiguous(), pair_edges[j]),
                           torch.bucketize(x[:, k].contiguous(), pair_edges[k])].mean())
        table -= mean
        intercept += mean
    return EBM(edges, shapes, intercept, pairs, pair_edges)
