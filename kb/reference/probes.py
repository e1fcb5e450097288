"""Probing: linear probes with control-task selectivity, mutual information (binned, KSG), nullspace projection, CCS."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import generator

__all__ = [
    "train_linear_probe",
    "ProbeResult",
    "linear_probe",
    "control_labels",
    "mutual_information_binned",
    "mutual_information_ksg",
    "INLP",
    "inlp",
    "CausalProbe",
    "causal_probing",
    "CCSResult",
    "ccs",
]


def train_linear_probe(features: Tensor, labels: Tensor, l2: float = 1e-3, n_iter: int = 100,
                       n_classes: int | None = None) -> nn.Linear:
    """Multinomial logistic regression ``softmax(W h + b)`` fitted full-batch with L-BFGS.

    Deterministic (no sampling); ``l2`` is the weight penalty (the bias is not penalised).
    ``n_classes`` defaults to ``labels.max() + 1``; pass it when a subset may lack some classes.

    References
    ----------
    [@hewitt2019designing]
    """
    x = features.detach().float()
    probe = nn.Linear(x.shape[1], n_classes or int(labels.max()) + 1)
    with torch.no_grad():
        probe.weight.zero_(), probe.bias.zero_()
    opt = torch.optim.LBFGS(probe.parameters(), lr=1, max_iter=n_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(probe(x), labels) + l2 * probe.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return probe.eval().requires_grad_(False)


def control_labels(labels: Tensor, types: Tensor | None = None, seed: int = 0) -> Tensor:
    """Hewitt & Liang's control task: every type (e.g. word identity) gets a random label.

    Labels are drawn from the empirical label distribution, one per distinct value of ``types``;
    with ``types=None`` each example is its own type (a shuffled-label control).
    """
    g = generator(seed)
    if types is None:
        return labels[torch.randperm(len(labels), generator=g)]
    uniq, inverse = torch.unique(types, return_inverse=True)
    drawn = labels[torch.randint(0, len(labels), (len(uniq),), generator=g)]
    return drawn[inverse]


@dataclasses.dataclass
class ProbeResult:
    """Held-out accuracy of the probe on the task and on the control task; ``selectivity`` is their difference."""

    accuracy: float
    control_accuracy: float
    selectivity: float
    train_accuracy: float
    probe: nn.Linear


def _accuracy(probe: nn.Linear, x: Tensor, y: Tensor) -> float:
    return float((probe(x.float()).argmax(1) == y).float().mean())


def linear_probe(
    features: Tensor,
    labels: Tensor,
    types: Tensor | None = None,
    test_fraction: float = 0.3,
    l2: float = 1e-3,
    seed: int = 0,
) -> ProbeResult:
    """Train a linear probe on a random split and report its selectivity.

    ``selectivity = acc(task) - acc(control task)`` on held-out data, where the control task
    assigns random labels per type (:func:`control_labels`): a selective probe reads the
    property from the representation rather than memorising it.

    Parameters
    ----------
    features : ``(n, d)`` activations.  labels : ``(n,)`` class indices.
    types : ``(n,)`` optional type ids for the control task (word identity in the paper).

    References
    ----------
    [@hewitt2019designing]
    """
    n = len(labels)
    perm = torch.randperm(n, generator=generator(seed))
    n_test = int(round(test_fraction * n))
    test, train = perm[:n_test], perm[n_test:]
    probe = train_linear_probe(features[train], labels[train], l2)
    acc, train_acc = _accuracy(probe, features[test], labels[test]), _accuracy(probe, features[train], labels[train])
    ctrl = control_labels(labels, types, seed + 1)
    ctrl_probe = train_linear_probe(features[train], ctrl[train], l2)
    ctrl_acc = _accuracy(ctrl_probe, features[test], ctrl[test])
    return ProbeResult(acc, ctrl_acc, acc - ctrl_acc, train_acc, probe)


def _bin(v: Tensor, n_bins: int) -> Tensor:
    """Equal-width bin index of each entry, per column (``(n, d)`` -> ``(n, d)`` longs)."""
    lo, hi = v.min(0).values, v.max(0).values
    idx = ((v - lo) / (hi - lo).clamp_min(1e-12) * n_bins).long()
    return idx.clamp(0, n_bins - 1)


def mutual_information_binned(x: Tensor, y: Tensor, n_bins: int = 10) -> Tensor:
    """Plug-in mutual information (nats) between each column of ``x`` and ``y``, after binning.

    ``I(X; Y) = sum p(x, y) log p(x, y) / (p(x) p(y))``. ``x`` is ``(n,)`` or ``(n, d)``
    (e.g. ``d`` neurons; all columns at once); integer ``y`` is treated as discrete, a float
    ``y`` is binned too. The plug-in estimate is biased upwards by about
    ``(bins_x - 1)(bins_y - 1) / (2n)``; compare against shuffled ``y``.

    Returns
    -------
    Tensor ``(d,)`` (a 0-d tensor for 1-D ``x``).

    References
    ----------
    [@kraskov2004estimating]
    """
    xs = x.reshape(len(x), -1).double()
    bx = _bin(xs, n_bins)  # (n, d)
    by = y.long() if not torch.is_floating_point(y) else _bin(y.double().view(-1, 1), n_bins)[:, 0]
    by = torch.unique(by, return_inverse=True)[1]
    n, d, ky = xs.shape[0], xs.shape[1], int(by.max()) + 1
    joint = torch.zeros(d, n_bins * ky, dtype=torch.float64)
    joint.scatter_add_(1, (bx * ky + by[:, None]).T, torch.ones(d, n, dtype=torch.float64))
    pxy = joint.view(d, n_bins, ky) / n
    px, py = pxy.sum(2, keepdim=True), pxy.sum(1, keepdim=True)
    terms = torch.where(pxy > 0, pxy * (pxy / (px * py)).log(), 0.0)
    mi = terms.sum((1, 2))
    return mi[0] if x.ndim == 1 else mi


def mutual_information_ksg(x: Tensor, y: Tensor, k: int = 3) -> float:
    """Kraskov-Stoegbauer-Grassberger estimator (algorithm 1) of ``I(X; Y)`` in nats.

    ``I = psi(k) + psi(n) - < psi(n_x + 1) + psi(n_y + 1) >``, where ``eps_i`` is the distance
    to the ``k``-th neighbour in the joint space (max-norm) and ``n_x``, ``n_y`` count points
    strictly closer than ``eps_i`` in each marginal. ``x``: ``(n, dx)``, ``y``: ``(n, dy)``.

    References
    ----------
    [@kraskov2004estimating]
    """
    xs, ys = x.reshape(len(x), -1).double(), y.reshape(len(y), -1).double()
    n = xs.shape[0]
    dx, dy = torch.cdist(xs, xs, p=math.inf), torch.cdist(ys, ys, p=math.inf)
    joint = torch.maximum(dx, dy).fill_diagonal_(math.inf)
    eps = joint.kthvalue(k, dim=1).values
    nx = (dx < eps[:, None]).sum(1) - 1  # minus the point itself
    ny = (dy < eps[:, None]).sum(1) - 1
    psi = torch.special.digamma
    mi = psi(torch.tensor(float(k))) + psi(torch.tensor(float(n))) \
        - (psi(nx.double() + 1) + psi(ny.double() + 1)).mean()
    return float(mi.clamp_min(0.0))


@dataclasses.dataclass
class INLP:
    """Iterative nullspace projection: ``projection`` ``(d, d)`` removes the ``directions`` ``(k, d)``;
    ``accuracies`` is the probe's accuracy before each iteration (it should fall to chance)."""

    projection: Tensor
    directions: Tensor
    accuracies: list[float]


def inlp(features: Tensor, labels: Tensor, n_iter: int = 10, l2: float = 1e-3, min_accuracy: float | None = None,
         dev_fraction: float = 0.3, seed: int = 0) -> INLP:
    """Iterative nullspace projection: train a linear probe, project out its row space, repeat.

    Each probe's directions are its class contrasts ``W - mean_c W_c`` (rank ``C - 1``);
    ``P = I - B B^T`` with ``B`` an orthonormal basis of all directions found so far. The loop stops
    after ``n_iter`` iterations or once the probe's held-out accuracy on ``X P`` is at most
    ``min_accuracy`` (default: majority rate + two standard errors).

    References
    ----------
    [@ravfogel2020null]
    """
    x = features.detach().double()
    n, d = x.shape
    perm = torch.randperm(n, generator=generator(seed))
    n_dev = int(round(dev_fraction * n))
    dev, train = perm[:n_dev], perm[n_dev:]
    chance = float(torch.bincount(labels[dev]).max()) / n_dev
    stop = chance + 2 * math.sqrt(chance * (1 - chance) / n_dev) if min_accuracy is None else min_accuracy
    found = torch.zeros(0, d, dtype=torch.float64)
    basis = found
    projection = torch.eye(d, dtype=torch.float64)
    accs: list[float] = []
    for _ in range(n_iter):
        xp = x @ projection
        probe = train_linear_probe(xp[train], labels[train], l2)
        accs.append(_accuracy(probe, xp[dev], labels[dev]))
        if accs[-1] <= stop:
            break
        w = probe.weight.double()
        found = torch.cat([found, (w - w.mean(0)) @ projection])  # class contrasts inside the subspace
        _, s, vh = torch.linalg.svd(found, full_matrices=False)
        basis = vh[s > 1e-6 * s.max()]  # orthonormal rows spanning everything removed so far
        projection = torch.eye(d, dtype=torch.float64) - basis.T @ basis
    return INLP(projection.to(features.dtype), basis.to(features.dtype), accs)


@dataclasses.dataclass
class CausalProbe:
    """Amnesic probing: the downstream ``metric`` before and after the concept is projected out."""

    metric_before: float
    metric_after: float
    probe_accuracy_before: float
    probe_accuracy_after: float
    projection: Tensor


def causal_probing(
    readout: Callable[[Tensor], Tensor],
    features: Tensor,
    concept_labels: Tensor,
    metric: Callable[[Tensor], float],
    n_iter: int = 10,
    l2: float = 1e-3,
) -> CausalProbe:
    """Causal probing by nullspace projection: does the model *use* what a probe can read?

    Finds the INLP projection ``P`` that removes the linearly decodable concept from the
    ``(n, d)`` representation, then compares ``metric(readout(h))`` with
    ``metric(readout(h P))`` (``h P`` re-centred on the mean, so only the concept directions
    change). A large drop means the model relies on the concept.

    References
    ----------
    [@ravfogel2020null]
    """
    result = inlp(features, concept_labels, n_iter, l2)
    p = result.projection
    mean = features.mean(0, keepdim=True)
    amnesic = (features - mean) @ p + mean
    with torch.no_grad():
        before, after = metric(readout(features)), metric(readout(amnesic))
    probe_after = train_linear_probe(amnesic, concept_labels, l2)
    return CausalProbe(float(before), float(after), result.accuracies[0],
                       _accuracy(probe_after, amnesic, concept_labels), p)


@dataclasses.dataclass
class CCSResult:
    """A CCS probe ``p(x) = sigmoid(theta . norm(x) + b)`` on separately normalised contrast states.

    ``direction`` ``(d,)``: ``theta`` in the units of the raw hidden states (divided by the pooled
    standard deviation); ``loss``: the final CCS loss of the best restart; ``credence`` ``(n,)``:
    ``(p(x+) + 1 - p(x-)) / 2`` on the training pairs (the sign of truth is not identified: ``> 0.5``
    means "the positive statement is true" or its negation, consistently).
    """

    probe: nn.Linear
    direction: Tensor
    loss: float
    credence: Tensor
    stats: tuple[Tensor, Tensor, Tensor, Tensor]

    def predict(self, h_pos: Tensor, h_neg: Tensor) -> Tensor:
        mp, sp, mn, sn = self.stats
        with torch.no_grad():
            p_pos = torch.sigmoid(self.probe((h_pos - mp) / sp)).squeeze(-1)
            p_neg = torch.sigmoid(self.probe((h_neg - mn) / sn)).squeeze(-1)
        return 0.5 * (p_pos + 1 - p_neg)


def ccs(h_pos: Tensor, h_neg: Tensor, n_tries: int = 10, n_steps: int = 500, lr: float = 1e-2,
        weight_decay: float = 0.01, seed: int = 0) -> CCSResult:
    """Contrast-consistent search: an unsupervised probe whose outputs on a statement and its negation
    are consistent (sum to 1) and confident.

    ``h_pos``, ``h_neg`` ``(n, d)``: hidden states of each question answered "yes" and "no". Each set is
    normalised on its own (mean 0, std 1 per dimension: removes the direction that only says which
    answer was appended). Loss, averaged over pairs: ``(p(x+) - (1 - p(x-)))^2 + min(p(x+), p(x-))^2``.
    The best of ``n_tries`` random restarts (lowest loss) is kept; no labels are used.

    References
    ----------
    [@burns2023discovering]; [@farquhar2023challenges]
    """
    mp, sp = h_pos.mean(0), h_pos.std(0).clamp_min(1e-6)
    mn, sn = h_neg.mean(0), h_neg.std(0).clamp_min(1e-6)
    xp, xn = (h_pos - mp) / sp, (h_neg - mn) / sn
    g = generator(seed)
    best = None
    for _ in range(n_tries):
        probe = nn.Linear(xp.shape[1], 1)
        with torch.no_grad():
            probe.weight.copy_(torch.randn(1, xp.shape[1], generator=g) / xp.shape[1] ** 0.5)
            probe.bias.zero_()
        opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(n_steps):
            p_pos, p_neg = torch.sigmoid(probe(xp)).squeeze(-1), torch.sigmoid(probe(xn)).squeeze(-1)
            loss = ((p_pos - (1 - p_neg)) ** 2 + torch.minimum(p_pos, p_neg) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if best is None or loss.item() < best[0]:
            best = (loss.item(), probe.requires_grad_(False))
    loss, probe = best
    direction = probe.weight[0] / (0.5 * (sp + sn))
    result = CCSResult(probe, direction, loss, torch.empty(0), (mp, sp, mn, sn))
    result.credence = result.predict(h_pos, h_neg)
    return result
