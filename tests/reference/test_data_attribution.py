"""TRAK and datamodels against leave-one-out and subset retraining of logistic regression; representer points exactly."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kb.reference.data_attribution import (correct_class_margin, datamodels, linear_datamodeling_score,
                                           representer_points, trak)
from kb.reference.models import fit_logistic_subsets

N, D = 100, 5


@pytest.fixture(scope="module")
def task():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    w = torch.randn(D, generator=g, dtype=torch.float64)
    y = (torch.rand(N, generator=g, dtype=torch.float64) < torch.sigmoid(1.5 * x @ w)).double()
    xt = torch.randn(20, D, generator=g, dtype=torch.float64)
    yt = (xt @ w > 0).long()

    def margins(theta):  # (M, n_test) correct-class margins
        z = theta[:, :-1] @ xt.T + theta[:, -1:]
        return torch.where(yt.bool(), z, -z)

    full = fit_logistic_subsets(x, y, torch.ones(1, N, dtype=torch.bool))[0]
    model = nn.Linear(D, 2).double()  # softmax over (0, z) is the sigmoid of z
    with torch.no_grad():
        model.weight.copy_(torch.stack([torch.zeros(D, dtype=torch.float64), full[:-1]]))
        model.bias.copy_(torch.tensor([0.0, float(full[-1])]))
    loo = margins(full[None]) - margins(fit_logistic_subsets(x, y, ~torch.eye(N, dtype=torch.bool)))  # (N, n_test)
    g = torch.Generator().manual_seed(9)
    held = torch.zeros(500, N, dtype=torch.bool)  # held-out subsets for the LDS, half the data each
    held[torch.arange(500)[:, None], torch.rand(500, N, generator=g).argsort(1)[:, :N // 2]] = True
    return {"x": x, "y": y.long(), "xt": xt, "yt": yt, "model": model, "margins": margins, "loo": loo.T,
            "held": held, "held_margins": margins(fit_logistic_subsets(x, y, held)),
            "fit": lambda masks: margins(fit_logistic_subsets(x, y, masks))}


def _corr(a, b):
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def test_margin_is_the_log_odds_of_the_correct_class():
    out = torch.tensor([[1.0, 2.0, 0.5]])
    p = out.softmax(1)[0, 1]
    assert float(correct_class_margin(out, torch.tensor([1]))) == pytest.approx(float(torch.log(p / (1 - p))))


def test_trak_matches_leave_one_out(task):
    tau = trak(task["model"], task["x"], task["y"], task["xt"], task["yt"], proj_dim=None)
    assert tau.shape == (20, N)
    assert _corr(tau, task["loo"]) > 0.95  # measured 0.966
    lds = linear_datamodeling_score(tau, task["held"], task["held_margins"])
    assert lds > 0.9  # measured 0.95


def test_trak_random_projection_keeps_most_of_the_signal(task):
    """Projecting the 12 gradient dimensions to 4 loses information; with 3 models averaged, less."""
    one = trak(task["model"], task["x"], task["y"], task["xt"], task["yt"], proj_dim=4, seed=0)
    assert 0.6 < _corr(one, task["loo"]) < 0.95  # measured 0.84 (LDS 0.78)
    state = task["model"].state_dict()
    avg = trak(task["model"], task["x"], task["y"], task["xt"], task["yt"], checkpoints=[state] * 3, proj_dim=4)
    assert _corr(avg, task["loo"]) > _corr(one, task["loo"])  # measured 0.89 (LDS 0.84): projections average out


def test_datamodels_match_leave_one_out_and_predict_subsets(task):
    dm = datamodels(task["fit"], N, n_models=2000, fraction=0.5, seed=0)
    assert dm.weights.shape == (20, N) and dm.masks.sum(1).eq(N // 2).all()
    assert _corr(dm.weights, task["loo"]) > 0.95  # measured 0.98
    lds = linear_datamodeling_score(dm.weights, task["held"], task["held_margins"])
    assert lds > 0.95  # measured 0.97
    predicted = task["held"].double() @ dm.weights.T + dm.bias
    assert (predicted - task["held_margins"]).abs().mean() < 0.08 * task["held_margins"].abs().mean()  # measured 0.056


def test_sparse_datamodels_zero_out_weights(task):
    dm = datamodels(task["fit"], N, n_models=500, fraction=0.5, l1=0.01, seed=1)
    assert (dm.weights == 0).float().mean() > 0.3  # measured 0.57
    assert linear_datamodeling_score(dm.weights, task["held"], task["held_margins"]) > 0.85  # measured 0.93


def test_lds_of_random_scores_is_near_zero(task):
    noise = torch.randn(20, N, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(linear_datamodeling_score(noise, task["held"], task["held_margins"])) < 0.15  # measured 0.04
    # leave-one-out itself scores 0.958: the ceiling the cheap estimates are compared with


def test_representer_decomposition_reproduces_the_logits_exactly():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(200, 8, generator=g)
    labels = (feats[:, 0] + 0.5 * feats[:, 1] + 0.3 * torch.randn(200, generator=g) > 0).long()
    test = torch.randn(10, 8, generator=g)
    rep = representer_points(feats, labels, test, lam=1e-2)
    assert rep.values.shape == (10, 200, 2)
    logits = test.double() @ rep.weight.T
    assert torch.allclose(rep.values.sum(1), logits, atol=1e-8)  # analytic: exact at the stationary point
    # cross-entropy gradients sum to zero over classes, so every row's alphas do too
    assert torch.allclose(rep.alpha.sum(1), torch.zeros(200, dtype=torch.float64), atol=1e-12)
    # alpha_ic = (1[y_i = c] - p_ic) / (2 lam n): positive exactly for the points labelled c
    assert torch.equal(rep.alpha[:, 1] > 0, labels == 1)


def test_representer_points_accept_a_fitted_head():
    g = torch.Generator().manual_seed(1)
    feats, y = torch.randn(60, 3, generator=g), torch.randn(60, 2, generator=g)
    lam = 0.05
    # ridge regression with loss 1/2 |o - y|²: the closed-form head is a stationary point
    w = torch.linalg.solve(feats.T.double() @ feats.double() + 2 * lam * 60 * torch.eye(3, dtype=torch.float64),
                           feats.T.double() @ y.double()).T
    loss = lambda o, t, reduction: 0.5 * F.mse_loss(o, t, reduction="sum")  # noqa: E731
    rep = representer_points(feats, y, feats[:5], lam=lam, weight=w, loss_fn=loss)
    assert torch.allclose(rep.values.sum(1), feats[:5].double() @ w.T, atol=1e-10)
