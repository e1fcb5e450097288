"""Influence functions against leave-one-out retraining; TracIn against one SGD step and on mislabelled data."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kb.reference.influence import influence_functions, per_example_gradients, tracin
from kb.reference.models import make_tabular_data, tabular_mlp

LAM = 0.01


def _fit_logistic(model, x, y, keep):
    """L2-regularised logistic regression ``1/n sum_i keep_i CE_i + lam/2 |theta|^2``, L-BFGS to convergence."""
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (F.cross_entropy(model(x), y, reduction="none") * keep).sum() / len(x)
        loss = loss + LAM / 2 * sum(p.square().sum() for p in model.parameters())
        loss.backward()
        return loss

    opt.step(closure)
    return model


@pytest.fixture(scope="module")
def logistic():
    g = torch.Generator().manual_seed(0)
    n, d = 100, 5
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    y = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(2 * x @ w)).long()
    xt = torch.randn(20, d, generator=g, dtype=torch.float64)
    yt = (xt @ w > 0).long()
    model = _fit_logistic(nn.Linear(d, 2).double(), x, y, torch.ones(n, dtype=torch.float64))
    return model, x, y, xt, yt


def test_influence_matches_leave_one_out_retraining(logistic):
    model, x, y, xt, yt = logistic
    n = len(x)
    infl = influence_functions(model, x, y, xt, yt, damping=LAM)  # the L2 term is the damping
    assert infl.shape == (20, n)
    with torch.no_grad():
        base = F.cross_entropy(model(xt), yt, reduction="none")
    loo = []
    for i in range(n):  # retrain from the optimum without example i
        keep = torch.ones(n, dtype=torch.float64)
        keep[i] = 0
        retrained = _fit_logistic(copy.deepcopy(model), x, y, keep)
        with torch.no_grad():
            loo.append(F.cross_entropy(retrained(xt), yt, reduction="none") - base)
    loo = torch.stack(loo, 1)  # (n_test, n_train)
    predicted = -infl / n  # removing z_i = up-weighting it by -1/n
    r = [float(torch.corrcoef(torch.stack([p, a]))[0, 1]) for p, a in zip(predicted, loo)]
    assert min(r) > 0.9  # measured: min 0.98, overall 0.996
    assert float(torch.corrcoef(torch.stack([predicted.flatten(), loo.flatten()]))[0, 1]) > 0.98


def test_influence_on_a_parameter_subset(tabular):
    x, y = make_tabular_data(64, seed=4)
    last = ["4.weight", "4.bias"]
    infl = influence_functions(tabular.model, x, y, tabular.inputs[:3], tabular.labels[:3], damping=1e-2,
                               params=last)
    assert infl.shape == (3, 64) and torch.isfinite(infl).all()
    # the loss is convex in the last layer (H is PSD), so self-influence -g^T H^-1 g is never positive
    self_infl = influence_functions(tabular.model, x, y, x[:8], y[:8], damping=1e-2, params=last)
    assert (self_infl[:, :8].diagonal() <= 0).all() and self_infl[:, :8].diagonal().min() < 0


def test_per_example_gradients_match_a_loop(tabular):
    x, y = tabular.inputs[:5], tabular.labels[:5]
    fast = per_example_gradients(tabular.model, x, y)
    for i in range(5):
        model = copy.deepcopy(tabular.model)
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        slow = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert torch.allclose(fast[i], slow, atol=1e-6)


def test_tracin_is_the_first_order_effect_of_one_sgd_step():
    model = tabular_mlp(seed=1, hidden=16)
    x, y = make_tabular_data(4, seed=3)
    xt, yt = make_tabular_data(5, seed=9)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    eta = 1e-3
    scores = tracin(model, [state], x, y, xt, yt, lr=eta)
    for i in range(4):
        stepped = copy.deepcopy(model)
        F.cross_entropy(stepped(x[i:i + 1]), y[i:i + 1]).backward()
        with torch.no_grad():
            for p in stepped.parameters():
                p -= eta * p.grad
            drop = F.cross_entropy(model(xt), yt, reduction="none") - F.cross_entropy(stepped(xt), yt, reduction="none")
        assert torch.allclose(scores[:, i], drop, rtol=0.02, atol=1e-6)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # the model is untouched


def test_tracin_self_influence_finds_mislabelled_examples():
    x, y = make_tabular_data(300, seed=3)
    g = torch.Generator().manual_seed(0)
    flipped = torch.randperm(300, generator=g)[:30]
    noisy = y.clone()
    noisy[flipped] = (y[flipped] + 1) % 3
    model = tabular_mlp(seed=0, hidden=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpoints = []
    for epoch in range(20):
        for batch in torch.randperm(300, generator=g).split(30):
            loss = F.cross_entropy(model(x[batch]), noisy[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % 5 == 4:
            checkpoints.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    self_influence = tracin(model, checkpoints, x, noisy, x, noisy, lr=0.1).diagonal()
    recall = torch.isin(self_influence.topk(30).indices, flipped).float().mean()
    assert recall > 0.5  # chance 0.1; measured 0.73
    with pytest.raises(ValueError, match="learning rates"):
        tracin(model, checkpoints, x, noisy, x, noisy, lr=[0.1])
