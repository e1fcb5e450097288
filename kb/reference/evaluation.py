"""Checks to run on your own model before trusting its attributions: model randomisation, deletion and
insertion curves, remove-and-retrain, infidelity and max-sensitivity.

Each check takes any ``torch.nn.Module`` (or callable) and any attribution, returns its numbers together
with the reference values that make them readable (the same score for random attributions, for a
randomised model, for removing features at random), measured in the same call, and a verdict.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ._common import as_target, generator, select_target

__all__ = [
    "rank_correlation",
    "RandomizationResult",
    "model_randomization_test",
    "DeletionInsertion",
    "deletion_insertion_curves",
    "RemoveAndRetrain",
    "remove_and_retrain",
    "infidelity",
    "max_sensitivity",
    "AttributionChecks",
    "check_attributions",
]

Attribution = Callable[..., Tensor]  # f(model, inputs, target) -> Tensor


# --- shared pieces --------------------------------------------------------------------------------

def _avg_ranks(v: Tensor) -> Tensor:
    """Row-wise ranks of ``(N, D)`` with ties averaged (0-based), as scipy.stats.rankdata - 1."""
    s = v.sort(dim=1).values
    lo = torch.searchsorted(s, v.contiguous(), right=False)
    hi = torch.searchsorted(s, v.contiguous(), right=True)
    return (lo + hi - 1).double() / 2


def rank_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation of each pair of rows of ``a`` and ``b`` (``(N, ...)`` each, flattened per row).

    Ties get their average rank, so maps with large equal (zero) regions are not counted as
    agreeing on the order inside those regions. A constant row has correlation 0.

    >>> x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 2.0, 0.0]])
    >>> rank_correlation(x, x ** 3).tolist(), rank_correlation(x, -x).tolist()
    ([1.0, 1.0], [-1.0, -1.0])
    """
    ra, rb = _avg_ranks(a.reshape(a.shape[0], -1)), _avg_ranks(b.reshape(b.shape[0], -1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denom = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(denom > 0, (ra * rb).sum(1) / denom.clamp_min(1e-300), torch.zeros_like(denom)).float()


def _scores(model, x: Tensor, target: Tensor, probabilities: bool, batch_size: int | None) -> Tensor:
    """The target's softmax probability (or raw output) for every row of ``x``."""
    def f(xb_tb):
        out = model(xb_tb[0])
        if probabilities and out.ndim == 2 and out.shape[1] > 1:
            out = out.softmax(1)
        return select_target(out, xb_tb[1])
    with torch.no_grad():
        if batch_size is None or len(x) <= batch_size:
            return f((x, target))
        return torch.cat([f(p) for p in zip(x.split(batch_size), target.split(batch_size))])


def _units(inputs: Tensor, attributions: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """Attribution per removable unit, ``(N, U)``, and a map from a ``(..., N, U)`` mask to the input's shape.

    A unit is a pixel (all channels at once) for ``(N, C, H, W)`` inputs, whose attributions may be
    ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)`` (channels are summed); otherwise every element.
    """
    n = inputs.shape[0]
    if inputs.ndim == 4:
        h, w = inputs.shape[2:]
        per_pixel = attributions.reshape(n, -1, h, w).sum(1).reshape(n, h * w)
        return per_pixel, lambda m: m.reshape(*m.shape[:-1], 1, h, w).expand(*m.shape[:-1], *inputs.shape[1:])
    flat = torch.broadcast_to(attributions, inputs.shape).reshape(n, -1)
    return flat, lambda m: m.reshape(*m.shape[:-1], *inputs.shape[1:])


def _baseline(inputs: Tensor, baseline, blur_sigma: float | None) -> Tensor:
    """The replacement values, shaped like ``inputs``: a number, a tensor, ``"mean"`` or ``"blur"``."""
    if isinstance(baseline, str):
        if baseline == "mean":  # each feature's mean over the batch
            return inputs.mean(0, keepdim=True).expand_as(inputs)
        if baseline == "blur":
            if inputs.ndim != 4:
                raise ValueError("baseline='blur' needs (N, C, H, W) images")
            from .visualization import gaussian_blur
            sigma = blur_sigma if blur_sigma is not None else max(inputs.shape[2:]) / 8
            return gaussian_blur(inputs, sigma)
        raise ValueError(f"baseline must be a number, a tensor, 'mean' or 'blur', not {baseline!r}")
    return torch.broadcast_to(torch.as_tensor(baseline, dtype=inputs.dtype), inputs.shape)


# --- model randomisation test ---------------------------------------------------------------------

@dataclasses.dataclass
class RandomizationResult:
    """Similarity of the attributions of randomised models to the original ones, per step.

    ``steps[i]`` is the layer randomised at step ``i`` (cascading: with all steps before it);
    ``rank_correlation[i]`` and ``rank_correlation_signed[i]`` are the mean Spearman correlations
    with the original map of ``|map|`` and of the signed map. ``original`` (the method rerun on an
    untouched copy: 1.0 for a deterministic method), ``fully_randomized`` (every layer randomised)
    and ``random`` (two random maps) are the reference values; ``progress`` = ``(original -
    fully_randomized) / (original - random)`` is how far the maps moved towards random.
    """

    steps: list[str]
    rank_correlation: list[float]
    rank_correlation_signed: list[float]
    original: float
    fully_randomized: float
    fully_randomized_signed: float
    random: float
    progress: float
    passed: bool
    verdict: str

    def __str__(self) -> str:
        rows = [f"{'randomised':<24}{'|map| rank corr':>16}{'signed':>10}"]
        rows += [f"{s:<24}{a:>16.3f}{b:>10.3f}" for s, a, b in
                 zip(self.steps, self.rank_correlation, self.rank_correlation_signed)]
        rows += [f"{'reference: original':<24}{self.original:>16.3f}",
                 f"{'reference: all layers':<24}{self.fully_randomized:>16.3f}{self.fully_randomized_signed:>10.3f}",
                 f"{'reference: random maps':<24}{self.random:>16.3f}", self.verdict]
        return "\n".join(rows)


def _reinitialize(module: nn.Module, seed: int) -> None:
    """Redraw ``module``'s own parameters: its ``reset_parameters()`` (the framework's initialiser, as
    Quantus does), else a normal draw with each tensor's current standard deviation."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:
            for p in module.parameters(recurse=False):
                p.normal_(0.0, float(p.std()) if p.numel() > 1 else 1.0)


def model_randomization_test(
    model: nn.Module,
    inputs: Tensor,
    target,
    attribution_fn: Attribution,
    layers: Sequence[str | nn.Module] | None = None,
    cascade: bool = True,
    seed: int = 0,
    threshold: float = 0.5,
) -> RandomizationResult:
    """Model parameter randomisation test: do the attributions change when the weights do?

    Works on a deep copy (``model`` is never modified). ``layers`` (names or modules of ``model``)
    default to every module with parameters of its own, in reverse registration order (output
    first: the forward order reversed for ``nn.Sequential`` and most models; pass names if yours
    differs). ``cascade=True`` randomises them one after another, keeping earlier resets (Adebayo
    et al.'s cascading test); ``cascade=False`` randomises one at a time (independent). After each
    step ``attribution_fn(model_copy, inputs, target)`` is recomputed and compared with the
    original map per example: Spearman correlation of ``|map|`` and of the signed map, averaged.
    ``attribution_fn`` receives the copy, so a layer it needs must be named by string
    (``lambda m, x, t: grad_cam(m, x, t, "features.7")``), not taken from the original model.

    The verdict needs no absolute threshold: the same call measures the original map against itself
    (``original``), against the map of the model with every listed layer randomised
    (``fully_randomized``) and two random maps against each other (``random``, about 0). The test
    passes when ``progress = (original - fully_randomized) / (original - random) >= threshold``
    (``|map|`` correlation), i.e. full randomisation moves the maps at least ``threshold`` of the way
    from identical to unrelated. The threshold is this handbook's convention, not the paper's; a
    sound method need not reach 0 (Binder et al. 2023: top-down randomisation keeps activation
    scales), an input-copying method stays near ``original``. A method whose rerun on an untouched
    copy correlates below 0.9 with its first map (unseeded noise) fails: it cannot be tested this way.

    Examples
    --------
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> result = model_randomization_test(model, torch.randn(8, 4), 0, lambda m, x, t: x)  # ignores the model
    >>> result.steps, result.passed, round(result.progress, 2)
    (['2', '0'], False, 0.0)

    References
    ----------
    [@adebayo2018sanity]
    """
    named = dict(model.named_modules())
    if layers is None:
        names = [n for n, m in named.items() if next(m.parameters(recurse=False), None) is not None][::-1]
    else:
        ids = {id(m): n for n, m in named.items()}
        names = [ly if isinstance(ly, str) else ids.get(id(ly)) for ly in layers]
        if None in names or any(n not in named for n in names):
            raise ValueError(f"layers must be modules of the model or their names; names: {list(named)[1:12]}")
    if not names:
        raise ValueError("the model has no parameters to randomise")
    n = inputs.shape[0]
    t = as_target(target, n)

    def explain(m: nn.Module) -> Tensor:
        return attribution_fn(m, inputs, t).detach().reshape(n, -1).float()

    def similarity(a: Tensor, b: Tensor) -> tuple[float, float]:
        return float(rank_correlation(a.abs(), b.abs()).mean()), float(rank_correlation(a, b).mean())

    original = explain(model)
    steps, absolute, signed = [], [], []
    work = copy.deepcopy(model)
    for i, name in enumerate(names):
        if not cascade:
            work = copy.deepcopy(model)
        _reinitialize(work.get_submodule(name), seed + i)  # seed per layer: the same weights in both modes
        a, s = similarity(original, explain(work))
        steps.append(name or "(model)")
        absolute.append(a)
        signed.append(s)
    if cascade:
        full_abs, full_signed = absolute[-1], signed[-1]
    else:
        full = copy.deepcopy(model)
        for i, name in enumerate(names):
            _reinitialize(full.get_submodule(name), seed + i)
        full_abs, full_signed = similarity(original, explain(full))
    same = similarity(original, explain(copy.deepcopy(model)))[0]
    g = generator(seed)
    noise = torch.rand((2, *original.shape), generator=g)
    random = float(rank_correlation(noise[0], noise[1]).mean())
    progress = (same - full_abs) / max(same - random, 1e-12)
    passed = progress >= threshold and same >= 0.9
    verdict = (f"{'pass' if passed else 'FAIL'}: randomising {len(names)} layer(s) moves the |map| rank "
               f"correlation from {same:.2f} (original) to {full_abs:.2f}, {progress:.0%} of the way to "
               f"two random maps ({random:.2f}); the pass mark is {threshold:.0%}.")
    if same < 0.9:  # a method that does not reproduce its own map cannot be tested this way
        verdict = (f"FAIL: the method is not reproducible: rerun on an untouched copy, its |map| correlates "
                   f"only {same:.2f} with the original (fix its seed); randomised model: {full_abs:.2f}.")
    return RandomizationResult(steps, absolute, signed, same, full_abs, full_signed, random, progress, passed,
                               verdict)


# --- deletion and insertion curves ----------------------------------------------------------------

@dataclasses.dataclass
class DeletionInsertion:
    """Deletion/insertion curves of the attributions and of random orders, with their areas.

    Curves are means over examples at ``fractions`` (0 to 1) of the units removed (deletion) or
    restored (insertion); ``*_auc`` are trapezoid areas over ``[0, 1]``. ``deletion`` removes the
    most relevant units first (MoRF), ``lerf`` the least relevant first. ``aopc`` is Samek et al.'s
    area over the MoRF perturbation curve, ``mean_k [f(x) - f(x_k)]``. ``random_*`` average
    ``n_random`` random orders; ``random_auc_sd`` is the spread of their deletion and insertion AUCs.
    With one baseline for both curves, LeRF deletion is insertion read backwards (same area).
    """

    fractions: Tensor
    deletion: Tensor
    insertion: Tensor
    lerf: Tensor
    random_deletion: Tensor
    random_insertion: Tensor
    deletion_auc: float
    insertion_auc: float
    lerf_auc: float
    random_deletion_auc: float
    random_insertion_auc: float
    random_auc_sd: tuple[float, float]
    aopc: float
    random_aopc: float
    passed: bool
    verdict: str


def _order(scores: Tensor, descending: bool, g: torch.Generator) -> Tensor:
    """Units of each row sorted by score; ties in random order (not top-left first)."""
    perm = torch.rand(scores.shape, generator=g).argsort(1)
    idx = scores.gather(1, perm).argsort(dim=1, descending=descending, stable=True)
    return perm.gather(1, idx)


def _auc(curve: Tensor, fractions: Tensor) -> Tensor:
    return torch.trapezoid(curve, fractions, dim=-1)


def deletion_insertion_curves(
    model: nn.Module,
    inputs: Tensor,
    target,
    attributions: Tensor,
    steps: int = 20,
    baseline: float | Tensor | str = 0.0,
    blur_sigma: float | None = None,
    probabilities: bool = True,
    n_random: int = 4,
    seed: int = 0,
    batch_size: int | None = 512,
) -> DeletionInsertion:
    """Deletion and insertion curves: the target score as units are removed (or restored) in attribution order.

    Units are ranked per example by their attribution, highest first (pass ``attributions.abs()``
    to rank by magnitude). A unit is a pixel, all channels together, for ``(N, C, H, W)`` inputs,
    and a single element otherwise (``(N, D)`` rows, sequences). At ``steps + 1`` fractions
    ``k / steps`` the first units are set to ``baseline`` (deletion, and in reverse order LeRF) or
    copied from the input into the baseline (insertion), and the target's softmax probability
    (``probabilities=False``: the raw output) is recorded. ``baseline``: a number, a tensor
    broadcastable to ``inputs``, ``"mean"`` (each feature's batch mean) or ``"blur"`` (Gaussian
    blur, ``blur_sigma`` default ``max(H, W) / 8``). Petsiuk et al. delete to 0 and insert into a
    blurred image: call twice if you want both. Pixel flipping (Bach et al. 2015; Samek et al.
    2017) is the deletion curve, and AOPC is returned. The LeRF curve (least relevant first) is the
    insertion curve read backwards, since deleting the ``U - k`` least relevant units leaves the
    ``k`` most relevant ones; Rong et al. 2022 (ROAD) show that MoRF and LeRF can rank methods
    differently, so read both, and that the shape of the removed region can itself leak the
    class (ROAD's noisy linear imputation is not implemented here).

    The reference is measured in the same call: ``n_random`` random orders of the same units.
    A faithful attribution deletes faster and inserts faster than random; the verdict passes when
    the deletion AUC is below and the insertion AUC above the random ones by more than twice the
    random orders' spread. The ``(steps + 1) N`` perturbed inputs of each of the
    ``2 (n_random + 1)`` curves run in batches of ``batch_size``.

    References
    ----------
    [@petsiuk2018rise] [@samek2017evaluating] [@rong2022consistent]
    """
    n = inputs.shape[0]
    t = as_target(target, n)
    scores, to_input = _units(inputs, attributions.detach())
    u = scores.shape[1]
    base = _baseline(inputs, baseline, blur_sigma)
    fractions = torch.linspace(0, 1, steps + 1)
    counts = (fractions * u).round().long()  # units removed at each step

    g = generator(seed)
    orders = [_order(scores, True, g)] + [torch.rand(n, u, generator=g).argsort(1) for _ in range(n_random)]

    def curve(order: Tensor, insert: bool) -> Tensor:  # (S, N) scores along one order
        first = order.argsort(1)[None] < counts.view(-1, 1, 1)  # (S, N, U): unit among the first k
        gone = to_input(first).to(inputs.dtype)
        x = base * (1 - gone) + inputs * gone if insert else inputs * (1 - gone) + base * gone
        flat = x.reshape(-1, *inputs.shape[1:])
        return _scores(model, flat, t.repeat(steps + 1), probabilities, batch_size).view(steps + 1, n)

    curves = torch.stack([curve(o, False) for o in orders] + [curve(o, True) for o in orders])
    del_c, rdel_c, ins_c, rins_c = curves[0], curves[1:1 + n_random], curves[1 + n_random], curves[2 + n_random:]
    lerf_c = ins_c.flip(0)  # deleting the least relevant k = inserting the most relevant U - k
    mean = lambda c: c.mean(-1)  # noqa: E731  (over examples)
    aucs = {k: float(_auc(mean(c), fractions)) for k, c in
            {"del": del_c, "ins": ins_c, "lerf": lerf_c}.items()}
    r_del = _auc(mean(rdel_c), fractions)  # (R,)
    r_ins = _auc(mean(rins_c), fractions)
    sd = (float(r_del.std()) if n_random > 1 else 0.0, float(r_ins.std()) if n_random > 1 else 0.0)
    aopc = float((del_c[:1] - del_c).mean())
    r_aopc = float((rdel_c[:, :1] - rdel_c).mean())
    d_gap, i_gap = float(r_del.mean()) - aucs["del"], aucs["ins"] - float(r_ins.mean())
    passed = d_gap > 2 * sd[0] and i_gap > 2 * sd[1]
    verdict = (f"{'pass' if passed else 'FAIL'}: deletion AUC {aucs['del']:.3f} vs {float(r_del.mean()):.3f} "
               f"for random orders (lower is better), insertion AUC {aucs['ins']:.3f} vs "
               f"{float(r_ins.mean()):.3f} (higher is better); random orders vary by "
               f"{sd[0]:.3f} / {sd[1]:.3f} (sd); AOPC {aopc:.3f} vs {r_aopc:.3f}.")
    return DeletionInsertion(fractions, mean(del_c), mean(ins_c), mean(lerf_c), mean(rdel_c).mean(0),
                             mean(rins_c).mean(0), aucs["del"], aucs["ins"], aucs["lerf"], float(r_del.mean()),
                             float(r_ins.mean()), sd, aopc, r_aopc, passed, verdict)


# --- remove and retrain -----------------------------------------------------------------------------

@dataclasses.dataclass
class RemoveAndRetrain:
    """Test accuracy after retraining without the top ``fractions`` of units, by attribution and at random.

    ``fractions[0] == 0`` (nothing removed) is shared by both; ``chance`` is the majority-class share
    of the test rows; ``gap`` is the mean accuracy of random removal minus the attribution's over the
    fractions > 0 (positive: the attribution found features the model needs to relearn the task).
    """

    fractions: list[float]
    accuracy: list[float]
    random_accuracy: list[float]
    chance: float
    gap: float
    passed: bool
    verdict: str


def remove_and_retrain(
    train_fn: Callable[[Tensor, Tensor], Callable[[Tensor], Tensor]],
    X: Tensor,
    y: Tensor,
    attributions: Tensor,
    fractions: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
    test_fraction: float = 0.25,
    baseline: float | Tensor | str = "mean",
    seed: int = 0,
    margin: float = 0.02,
) -> RemoveAndRetrain:
    """ROAR: retrain on data whose most relevant units are replaced, and see how much accuracy is lost.

    ``X`` (``(N, C, H, W)`` images, units are pixels; or ``(N, D)`` rows, units are features) is
    split at random into training and test rows (``test_fraction``). For each fraction ``f`` the
    top ``f`` of every row's units by ``attributions`` (computed on the original model; pass
    ``.abs()`` to rank by magnitude) are replaced by ``baseline`` in training and test rows alike
    (``"mean"``: the training rows' mean, per channel for images as in Hooker et al.; or a number
    or tensor), ``train_fn(X_train, y_train)`` trains a fresh model from scratch and returns a
    predictor (``(n, C)`` scores or ``(n,)`` labels), and its test accuracy is recorded. The same is
    done with a random order of units, the reference. Each training runs under
    ``torch.manual_seed(seed)``, so both conditions see the same initialisation and batches.
    Retraining is what separates ROAR from deletion curves: the drop is not caused by
    out-of-distribution inputs the model never saw. Costs ``2 len(fractions) + 1`` trainings.

    A better attribution makes accuracy fall faster than random removal; the verdict passes when
    the mean accuracy over the fractions is lower than random removal's by more than ``margin``.

    References
    ----------
    [@hooker2019benchmark]
    """
    n = X.shape[0]
    g = generator(seed)
    perm = torch.randperm(n, generator=g)
    n_test = int(round(test_fraction * n))
    test, train = perm[:n_test], perm[n_test:]
    scores, to_input = _units(X, attributions.detach())
    if isinstance(baseline, str) and baseline == "mean":
        dims = (0, 2, 3) if X.ndim == 4 else (0,)
        base = X[train].mean(dims, keepdim=True).expand_as(X) if X.ndim == 4 else X[train].mean(0).expand_as(X)
    else:
        base = _baseline(X, baseline, None)
    orders = {"attribution": _order(scores, True, g), "random": torch.rand(scores.shape, generator=g).argsort(1)}

    def accuracy(order: Tensor, fraction: float) -> float:
        gone = to_input(order.argsort(1) < round(fraction * scores.shape[1])).to(X.dtype)
        Xm = X * (1 - gone) + base * gone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            predict = train_fn(Xm[train], y[train])
        with torch.no_grad():
            out = predict(Xm[test])
        pred = out.argmax(1) if out.ndim == 2 else out
        return float((pred == y[test]).float().mean())

    start = accuracy(orders["random"], 0.0)
    acc = [start] + [accuracy(orders["attribution"], f) for f in fractions]
    rnd = [start] + [accuracy(orders["random"], f) for f in fractions]
    chance = float(torch.bincount(y[test]).max() / n_test)
    gap = sum(rnd[1:]) / len(fractions) - sum(acc[1:]) / len(fractions)
    passed = gap > margin
    verdict = (f"{'pass' if passed else 'FAIL'}: removing the attributed units and retraining leaves "
               f"{sum(acc[1:]) / len(fractions):.3f} mean accuracy against {sum(rnd[1:]) / len(fractions):.3f} "
               f"for random removal (gap {gap:+.3f}, pass above {margin}); all units kept: {start:.3f}, "
               f"chance: {chance:.3f}.")
    return RemoveAndRetrain([0.0, *map(float, fractions)], acc, rnd, chance, gap, passed, verdict)


# --- infidelity and sensitivity -----------------------------------------------------------------------

def infidelity(
    model: nn.Module,
    inputs: Tensor,
    target,
    attributions: Tensor,
    n_perturb_samples: int = 10,
    stdev: float = 0.1,
    noise: Tensor | None = None,
    normalize: bool = False,
    seed: int = 0,
    batch_size: int | None = None,
) -> Tensor:
    """Infidelity: how badly ``attributions . I`` predicts the output change ``f(x) - f(x - I)``.

    ``INFD(a, x) = E_I [(I . a - (f_c(x) - f_c(x - I)))^2]``, estimated with ``n_perturb_samples``
    perturbations per example: ``I ~ N(0, stdev^2)`` per feature (Yeh et al.'s noisy baseline), or
    the given ``noise`` of shape ``(N * n_perturb_samples, ...)``, each example's samples
    consecutive (Captum's order; any perturbation, e.g. Yeh et al.'s square removal, can be passed
    this way). ``normalize=True`` first rescales the attributions by the optimal
    ``beta = E[(I . a) Delta] / E[(I . a)^2]`` per example (Captum's ``normalize``), so only the
    direction counts. Attributions broadcastable to ``inputs`` (a CAM's ``(N, 1, H, W)``) are
    accepted. Equals ``captum.metrics.infidelity`` given the same perturbations.

    Reading it: zero attributions score ``E[Delta^2]``, the ceiling of the normalised score; with
    ``normalize=True``, ``infidelity / E[Delta^2]`` is the share of the output change the
    attributions leave unexplained (random attributions: close to 1).

    Returns
    -------
    Tensor ``(N,)``.

    Examples
    --------
    >>> from kb.reference.models import LinearModel
    >>> w = torch.tensor([[1.0, -2.0, 0.5]])
    >>> x = torch.randn(4, 3)
    >>> float(infidelity(LinearModel(w), x, 0, w.expand(4, 3)).max()) < 1e-10  # the gradient of a linear model
    True

    References
    ----------
    [@yeh2019infidelity]
    """
    n, s = inputs.shape[0], n_perturb_samples
    t = as_target(target, n)
    if noise is None:
        noise = torch.randn((n * s, *inputs.shape[1:]), generator=generator(seed), dtype=inputs.dtype) * stdev
    noise = noise.reshape(n, s, *inputs.shape[1:])
    a = torch.broadcast_to(attributions.detach(), inputs.shape)
    with torch.no_grad():
        fx = select_target(model(inputs), t)
        perturbed = (inputs[:, None] - noise).reshape(n * s, *inputs.shape[1:])
        bs = batch_size or len(perturbed)
        fp = torch.cat([select_target(model(xb), tb) for xb, tb in
                        zip(perturbed.split(bs), t.repeat_interleave(s).split(bs))])
    delta = fx[:, None] - fp.view(n, s)  # f(x) - f(x - I)
    dot = (a[:, None] * noise).reshape(n, s, -1).sum(-1)  # I . a
    if normalize:
        den = dot.pow(2).sum(1)
        beta = (dot * delta).sum(1) / torch.where(den == 0, torch.ones_like(den), den)
        dot = beta[:, None] * dot
    return (dot - delta).pow(2).mean(1)


def max_sensitivity(
    model: nn.Module,
    inputs: Tensor,
    target,
    attribution_fn: Attribution,
    radius: float = 0.02,
    n_perturb_samples: int = 10,
    noise: Tensor | None = None,
    seed: int = 0,
    ord: float = 2,
) -> Tensor:
    """Max-sensitivity: the largest relative change of the attributions under a small input perturbation.

    ``SENS(x) = max_j ||e(x + d_j) - e(x)|| / ||e(x)||`` with ``e = attribution_fn(model, ., target)``
    and ``n_perturb_samples`` draws ``d_j ~ U[-radius, radius]`` per feature (an L-infinity ball),
    or the given ``noise`` of shape ``(N * n_perturb_samples, ...)`` in Captum's order. All
    perturbed copies go to ``attribution_fn`` as one batch. Yeh et al. define the unnormalised
    maximum; this is ``captum.metrics.sensitivity_max``'s normalised one (``ord=2`` is its ``"fro"``),
    which it equals given the same perturbations.

    Reading it: 0 for an attribution that does not move (a linear model's gradient); compare
    methods at the same ``radius``, and note that a constant map is perfectly insensitive, so read
    it together with a faithfulness score such as :func:`infidelity`.

    Returns
    -------
    Tensor ``(N,)``.

    Examples
    --------
    >>> from kb.reference.models import LinearModel
    >>> from kb.reference.attribution import saliency
    >>> model = LinearModel(torch.tensor([[1.0, -2.0, 0.5]]))
    >>> max_sensitivity(model, torch.randn(4, 3), 0, saliency).tolist()
    [0.0, 0.0, 0.0, 0.0]

    References
    ----------
    [@yeh2019infidelity]
    """
    n, s = inputs.shape[0], n_perturb_samples
    t = as_target(target, n)
    if noise is None:
        noise = (torch.rand((n * s, *inputs.shape[1:]), generator=generator(seed), dtype=inputs.dtype) * 2 - 1) * radius
    e = attribution_fn(model, inputs, t).detach()
    e_p = attribution_fn(model, inputs.repeat_interleave(s, 0) + noise.reshape(n * s, *inputs.shape[1:]),
                         t.repeat_interleave(s)).detach()
    diff = torch.linalg.vector_norm((e_p - e.repeat_interleave(s, 0)).reshape(n, s, -1), ord=ord, dim=2)
    norm = torch.linalg.vector_norm(e.reshape(n, -1), ord=ord, dim=1)
    return (diff / torch.where(norm == 0, torch.ones_like(norm), norm)[:, None]).max(1).values


# --- all three checks in one call ---------------------------------------------------------------------

@dataclasses.dataclass
class AttributionChecks:
    """The three checks of :func:`check_attributions`, each with its references and verdict."""

    randomization: RandomizationResult
    deletion: DeletionInsertion
    unexplained: float
    unexplained_random: float
    infidelity_passed: bool
    passed: bool

    def __str__(self) -> str:
        infid = (f"{'pass' if self.infidelity_passed else 'FAIL'}: the attributions leave {self.unexplained:.0%} "
                 f"of the output change under Gaussian noise unexplained (normalised infidelity over a zero map's), "
                 f"a random map {self.unexplained_random:.0%}.")
        return "\n".join([f"model randomisation  {self.randomization.verdict}",
                          f"deletion/insertion   {self.deletion.verdict}",
                          f"infidelity           {infid}"])


def check_attributions(
    model: nn.Module,
    inputs: Tensor,
    target,
    attribution_fn: Attribution,
    baseline: float | Tensor | str = 0.0,
    stdev: float = 0.1,
    seed: int = 0,
    margin: float = 0.05,
) -> AttributionChecks:
    """Run the three checks on ``attribution_fn`` for ``model``: does it depend on the weights, does it rank
    the units the output needs, does it predict the output's response to noise?

    :func:`model_randomization_test` (cascading, every layer with parameters),
    :func:`deletion_insertion_curves` (``baseline``) and :func:`infidelity` (Gaussian noise of
    ``stdev``, in input units, with the optimal scale). Infidelity is reported as the share of the
    output change a map leaves unexplained, its normalised infidelity over a zero map's; it passes
    when that share is below a random map's by more than ``margin``. ``attribution_fn(model,
    inputs, target)`` must name any layer it needs by string (see :func:`model_randomization_test`).
    ``passed`` is true when all three pass; ``print`` the result for the three verdicts.

    References
    ----------
    [@adebayo2018sanity] [@petsiuk2018rise] [@yeh2019infidelity]
    """
    t = as_target(target, inputs.shape[0])
    attr = attribution_fn(model, inputs, t).detach()
    rand = model_randomization_test(model, inputs, t, attribution_fn, seed=seed)
    di = deletion_insertion_curves(model, inputs, t, attr, baseline=baseline, seed=seed)
    noise_map = torch.randn(torch.broadcast_shapes(attr.shape, inputs.shape), generator=generator(seed + 1))
    scores = [float(infidelity(model, inputs, t, a, stdev=stdev, normalize=True, seed=seed).mean())
              for a in (attr, noise_map, torch.zeros_like(inputs))]
    ours, rnd = scores[0] / max(scores[2], 1e-12), scores[1] / max(scores[2], 1e-12)
    infid_ok = ours < rnd - margin
    return AttributionChecks(rand, di, ours, rnd, infid_ok, rand.passed and di.passed and infid_ok)
