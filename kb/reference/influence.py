"""Training-data attribution: influence functions (exact Hessian) and TracIn (gradient dot products over checkpoints)."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vmap
from torch.nn import functional as F

__all__ = ["per_example_gradients", "influence_functions", "tracin"]

Loss = Callable[[Tensor, Tensor], Tensor]


def _split(model: nn.Module, params: Sequence[str] | None, state: Mapping[str, Tensor] | None = None
           ) -> tuple[dict, dict]:
    """The parameters to differentiate (``params`` names, default all) and the rest, held fixed;
    values from ``state`` (a checkpoint's state dict) when given, else the model's own."""
    named = {k: v.detach() for k, v in model.named_parameters()}
    named.update({k: v.detach() for k, v in model.named_buffers()})
    if state is not None:
        named = {k: state[k].detach() for k in named}
    chosen = list(params) if params is not None else [k for k, _ in model.named_parameters()]
    return {k: named[k] for k in chosen}, {k: v for k, v in named.items() if k not in chosen}


def _flat_loss(model, theta, fixed, loss_fn):
    """``loss(flat_theta, x, y)``: the loss of ``model`` with its chosen parameters read from one vector."""
    shapes = [(k, v.shape, v.numel()) for k, v in theta.items()]

    def loss(flat, x, y):
        chunks = flat.split([n for _, _, n in shapes])
        params = {k: c.view(s) for (k, s, _), c in zip(shapes, chunks)} | fixed
        return loss_fn(functional_call(model, params, (x,)), y)

    return loss


def per_example_gradients(model: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: Loss = F.cross_entropy,
                          params: Sequence[str] | None = None, state: Mapping[str, Tensor] | None = None
                          ) -> Tensor:
    """``(N, P)``: the gradient of each example's loss w.r.t. the (chosen) parameters, flattened; one ``vmap``.

    ``state`` evaluates the model at a checkpoint's tensors without loading them into it."""
    theta, fixed = _split(model, params, state)
    loss = _flat_loss(model, theta, fixed, loss_fn)
    flat = torch.cat([v.flatten() for v in theta.values()])
    one = lambda x, y: grad(loss)(flat, x[None], y[None])  # noqa: E731  (a batch of one)
    return vmap(one)(inputs, targets)


def influence_functions(
    model: nn.Module,
    train_inputs: Tensor,
    train_targets: Tensor,
    test_inputs: Tensor,
    test_targets: Tensor,
    loss_fn: Loss = F.cross_entropy,
    damping: float = 0.0,
    params: Sequence[str] | None = None,
) -> Tensor:
    """Koh & Liang's influence of up-weighting each training example on each test loss.

    ``I(z, z_test) = - grad L(z_test)^T (H + damping I)^{-1} grad L(z)``, with ``H`` the exact
    Hessian of the mean training loss ``1/n sum_i L(z_i)`` w.r.t. the parameters (all, or the
    ``params`` names, e.g. only the last layer), computed with ``torch.func.jacrev`` twice — for
    small models (``P`` parameters make a ``P x P`` matrix). An L2 penalty ``lam/2 |theta|^2`` in
    the training objective is ``damping=lam``; damping also makes a non-convex ``H`` invertible.
    Removing ``z_i`` is up-weighting it by ``-1/n``: the test loss changes by about
    ``-I(z_i, z_test) / n``. Negative influence = the example helps (lowers the test loss).

    Returns
    -------
    Tensor ``(n_test, n_train)``.

    References
    ----------
    [@koh2017understanding]
    """
    theta, fixed = _split(model, params)
    flat = torch.cat([v.flatten() for v in theta.values()])
    loss = _flat_loss(model, theta, fixed, loss_fn)
    h = jacrev(jacrev(loss))(flat, train_inputs, train_targets)  # reverse-over-reverse: no forward-mode AD
    h = h + damping * torch.eye(len(flat), dtype=h.dtype)
    g_train = per_example_gradients(model, train_inputs, train_targets, loss_fn, params)  # (n, P)
    g_test = per_example_gradients(model, test_inputs, test_targets, loss_fn, params)  # (m, P)
    return -g_test @ torch.linalg.solve(h, g_train.T)


def tracin(
    model: nn.Module,
    checkpoints: Sequence[Mapping[str, Tensor]],
    train_inputs: Tensor,
    train_targets: Tensor,
    test_inputs: Tensor,
    test_targets: Tensor,
    lr: float | Sequence[float] = 1.0,
    loss_fn: Loss = F.cross_entropy,
    params: Sequence[str] | None = None,
) -> Tensor:
    """TracInCP: ``TracIn(z, z_test) = sum_k eta_k grad L(theta_k, z) . grad L(theta_k, z_test)``.

    The sum runs over the saved ``checkpoints`` (state dicts, read through
    ``torch.func.functional_call``; the model itself is not changed), ``eta_k`` the learning rate in force at checkpoint ``k``
    (one float for all). It approximates the total drop of the test loss caused by the SGD
    steps taken on ``z``: one step ``theta - eta grad L(z)`` changes the test loss by
    ``-eta grad L(z) . grad L(z_test) + O(eta^2)``. Positive = proponent (it helped), negative =
    opponent; ``tracin(..., train, train)``'s diagonal is the self-influence, high for
    mislabelled examples.

    Returns
    -------
    Tensor ``(n_test, n_train)``.

    References
    ----------
    [@pruthi2020estimating]
    """
    lrs = [float(lr)] * len(checkpoints) if isinstance(lr, (int, float)) else [float(v) for v in lr]
    if len(lrs) != len(checkpoints):
        raise ValueError(f"{len(lrs)} learning rates for {len(checkpoints)} checkpoints")
    scores = None
    for eta, state in zip(lrs, checkpoints):
        # functional_call reads the checkpoint's tensors: the model's own parameters are never written
        g_train = per_example_gradients(model, train_inputs, train_targets, loss_fn, params, state)
        g_test = per_example_gradients(model, test_inputs, test_targets, loss_fn, params, state)
        term = eta * g_test @ g_train.T
        scores = term if scores is None else scores + term
    return scores
