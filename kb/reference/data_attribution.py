"""Training-data attribution beyond influence functions: TRAK, datamodels, representer points, and the LDS."""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from ._common import generator
from .influence import per_example_gradients
from .similarity import spearman

__all__ = ["correct_class_margin", "trak", "Datamodels", "datamodels", "linear_datamodeling_score",
           "Representers", "representer_points"]


def correct_class_margin(output: Tensor, target: Tensor) -> Tensor:
    """Summed ``log(p_y / (1 - p_y)) = z_y - logsumexp_{c != y} z_c``: TRAK's model output for classification."""
    own = torch.arange(output.shape[-1]) == target[:, None]
    correct = (output * own).sum(-1)
    others = torch.where(own, -torch.inf, output).logsumexp(-1)
    return (correct - others).sum()


def trak(
    model: nn.Module,
    train_inputs: Tensor,
    train_targets: Tensor,
    test_inputs: Tensor,
    test_targets: Tensor,
    checkpoints: Sequence[Mapping[str, Tensor]] | None = None,
    proj_dim: int | None = 512,
    damping: float = 0.0,
    params: Sequence[str] | None = None,
    seed: int = 0,
) -> Tensor:
    """TRAK: attribution by a kernel regression on randomly projected gradients of the model output.

    For each model ``theta_m`` (the given ``checkpoints``, independently trained models, or the
    model's own weights): ``Phi = G P`` stacks each training example's gradient of the output
    ``f(z) = log(p_y / (1 - p_y))`` (:func:`correct_class_margin`), projected to ``proj_dim``
    dimensions by a Gaussian ``P / sqrt(k)`` (``proj_dim=None``: no projection); ``phi(z)`` is the
    same for a test example and ``Q = diag(1 - p_y(z_i))`` holds the training examples'
    probability of being wrong. Then
    ``tau(z) = phi(z)^T (Phi^T Phi + damping I)^+ Phi^T Q``, averaged over the models (the paper
    also soft-thresholds the average; left out). ``tau[j, i] > 0``: training example ``i`` raises
    test example ``j``'s correct-class margin. It is a one-step Newton estimate of retraining
    without ``i`` for the linearised model, hence exact in spirit for logistic regression.

    Returns
    -------
    Tensor ``(n_test, n_train)``.

    References
    ----------
    [@park2023trak]
    """
    states = list(checkpoints) if checkpoints else [None]
    g = generator(seed)
    scores = torch.zeros(len(test_inputs), len(train_inputs), dtype=train_inputs.dtype)
    for state in states:
        g_train = per_example_gradients(model, train_inputs, train_targets, correct_class_margin, params, state)
        g_test = per_example_gradients(model, test_inputs, test_targets, correct_class_margin, params, state)
        if proj_dim is not None:
            proj = torch.randn(g_train.shape[1], proj_dim, generator=g, dtype=g_train.dtype) / proj_dim ** 0.5
            g_train, g_test = g_train @ proj, g_test @ proj
        with torch.no_grad():
            out = model(train_inputs) if state is None else functional_call(model, dict(state), (train_inputs,))
            q = 1 - out.softmax(-1).gather(1, train_targets[:, None]).squeeze(1)
        kernel = g_train.T @ g_train + damping * torch.eye(g_train.shape[1], dtype=g_train.dtype)
        scores += (g_test @ torch.linalg.pinv(kernel, hermitian=True) @ g_train.T * q).detach()
    return scores / len(states)


@dataclasses.dataclass
class Datamodels:
    """``weights (n_test, n_train)``: each training example's effect on each test margin; ``bias (n_test,)``;
    the ``masks (M, n_train)`` and ``margins (M, n_test)`` of the retrained models they were fitted on."""

    weights: Tensor
    bias: Tensor
    masks: Tensor
    margins: Tensor


def datamodels(
    train_and_evaluate: Callable[[Tensor], Tensor],
    n_train: int,
    n_models: int = 1000,
    fraction: float = 0.5,
    ridge: float = 1e-3,
    l1: float = 0.0,
    seed: int = 0,
) -> Datamodels:
    """Datamodels: regress test margins on which training examples were in the training set.

    Draw ``n_models`` random subsets ``S`` of ``fraction * n_train`` training examples (masks
    ``1_S``), retrain on each and record each test example's correct-class margin ``f(z; S)``
    (``train_and_evaluate(masks) -> (M, n_test)``, called once with all masks so it can train in
    a batch). Fit per test example ``f(z; S) ~ theta^T 1_S + b``: ridge in closed form, then, with
    ``l1 > 0``, proximal gradient steps on ``1/2M |M theta - f|² + l1 |theta|_1`` (the paper's
    sparse fit, with ``l1`` chosen on held-out subsets). ``theta_i`` is the expected change of the
    margin when example ``i`` joins a random training set of that size. Costly by design: the paper
    trains hundreds of thousands of models; it is the yardstick the cheaper methods are judged by.

    References
    ----------
    [@ilyas2022datamodels]
    """
    g = generator(seed)
    k = round(fraction * n_train)
    masks = torch.zeros(n_models, n_train, dtype=torch.bool)
    masks[torch.arange(n_models)[:, None], torch.rand(n_models, n_train, generator=g).argsort(1)[:, :k]] = True
    margins = train_and_evaluate(masks).detach().double()  # (M, n_test)
    a = masks.double()
    a_mean, f_mean = a.mean(0), margins.mean(0)
    ac, fc = a - a_mean, margins - f_mean
    theta = torch.linalg.solve(ac.T @ ac + ridge * n_models * torch.eye(n_train, dtype=torch.float64), ac.T @ fc)
    if l1 > 0:  # ISTA from the ridge solution
        step = n_models / float(torch.linalg.matrix_norm(ac, 2) ** 2)
        for _ in range(500):
            theta = theta - step * ac.T @ (ac @ theta - fc) / n_models
            theta = theta.sign() * (theta.abs() - step * l1).clamp(min=0)
    bias = f_mean - a_mean @ theta
    return Datamodels(theta.T.contiguous(), bias, masks, margins)


def linear_datamodeling_score(scores: Tensor, masks: Tensor, margins: Tensor) -> float:
    """LDS: how well summed attribution scores rank the margins of models retrained on random subsets.

    For each test example ``j``, the Spearman correlation over the subsets ``S_m`` between the
    prediction ``sum_{i in S_m} scores[j, i]`` and the measured margin ``margins[m, j]``; averaged
    over test examples. Use subsets (and retrained models) not used to fit ``scores``.

    References
    ----------
    [@park2023trak]
    """
    predicted = masks.to(scores.dtype) @ scores.T  # (M, n_test)
    return float(torch.tensor([spearman(predicted[:, j], margins[:, j]) for j in range(scores.shape[0])]).mean())


@dataclasses.dataclass
class Representers:
    """``values (n_test, n_train, C)``: ``alpha_ic * f_i . f_t``; summed over training rows they give the
    test pre-activations. ``alpha (n_train, C)``; ``weight (C, d)`` the L2-regularised head."""

    values: Tensor
    alpha: Tensor
    weight: Tensor


def _fit_l2_head(f: Tensor, target: Tensor, n_classes: int, lam: float, loss_fn) -> Tensor:
    """``W (C, d)`` minimising ``1/n sum_i L(W f_i, y_i) + lam |W|²`` in float64: L-BFGS, then (for up to
    2,000 parameters) Newton steps, because the representer decomposition is exact only at a stationary point."""
    w = torch.zeros(n_classes * f.shape[1], dtype=torch.float64, requires_grad=True)

    def objective(v):
        return loss_fn(f @ v.view(n_classes, -1).T, target, reduction="sum") / len(f) + lam * v.pow(2).sum()

    opt = torch.optim.LBFGS([w], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = objective(w)
        loss.backward()
        return loss

    opt.step(closure)
    v = w.detach()
    for _ in range(3 if len(v) <= 2000 else 0):
        g = torch.autograd.functional.jacobian(objective, v)
        v = v - torch.linalg.solve(torch.autograd.functional.hessian(objective, v), g)
    return v.view(n_classes, -1)


def representer_points(
    train_features: Tensor,
    train_targets: Tensor,
    test_features: Tensor,
    lam: float = 1e-2,
    weight: Tensor | None = None,
    loss_fn: Callable[..., Tensor] = F.cross_entropy,
    n_classes: int | None = None,
) -> Representers:
    """Representer points: a last-layer prediction written as a sum over training points.

    With a linear head ``o = W f`` (no bias: append a constant feature instead) at a stationary
    point of ``1/n sum_i L(W f_i, y_i) + lam |W|²``, setting the gradient to zero gives
    ``W = sum_i alpha_i f_i^T`` with ``alpha_i = -1/(2 lam n) dL/do_i``, hence for any test features
    ``W f_t = sum_i alpha_i (f_i . f_t)``: training point ``i`` contributes
    ``alpha_ic (f_i . f_t)`` to class ``c``'s pre-activation (excitatory if positive). ``weight``:
    a head already at such a stationary point; ``None`` fits one in float64 (L-BFGS and Newton). The
    features are the network's penultimate activations.

    Examples
    --------
    For ridge regression (squared loss) the decomposition is exact:

    >>> g = torch.Generator().manual_seed(0)
    >>> f, y, t = torch.randn(50, 4, generator=g), torch.randn(50, 1, generator=g), torch.randn(3, 4, generator=g)
    >>> r = representer_points(f, y, t, lam=0.1, loss_fn=lambda o, y, reduction: 0.5 * (o - y).pow(2).sum())
    >>> bool(torch.allclose(r.values.sum(1), t.double() @ r.weight.T, atol=1e-8))
    True

    References
    ----------
    [@yeh2018representer]
    """
    f, ft = train_features.double(), test_features.double()
    n = len(f)
    target = train_targets.double() if train_targets.is_floating_point() else train_targets
    if weight is None:
        c = n_classes or (int(target.max()) + 1 if not target.is_floating_point() else target.shape[1])
        weight = _fit_l2_head(f, target, c, lam, loss_fn)
    weight = weight.double()
    out = (f @ weight.T).requires_grad_(True)
    grad_o, = torch.autograd.grad(loss_fn(out, target, reduction="sum"), out)  # dL_i/do_i, (n, C)
    alpha = -grad_o / (2 * lam * n)
    values = alpha[None] * (ft @ f.T)[..., None]
    return Representers(values, alpha, weight)
