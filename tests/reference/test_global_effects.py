"""ALE, H-statistic, global surrogate and EBM against the known shapes of f = x0 + x1² + 2 x2 x3."""

import pytest
import torch
from torch import nn

from kb.reference.global_effects import accumulated_local_effects, global_surrogate, h_statistic, train_ebm


def planted(x):
    """Additive in x0 and x1, one pure interaction between x2 and x3; x4 is unused."""
    return x[:, 0] + x[:, 1] ** 2 + 2 * x[:, 2] * x[:, 3]


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2000, 5, generator=g, dtype=torch.float64) * 2 - 1


def test_ale_of_x1_is_the_centred_quadratic(data):
    ale = accumulated_local_effects(planted, data, feature=1, n_bins=20)
    z = ale.edges[0]
    truth = z ** 2
    truth = truth - (ale.counts * (truth[1:] + truth[:-1]) / 2).sum() / ale.counts.sum()  # same centring
    assert torch.allclose(ale.values, truth, atol=1e-12)  # exact: the model is the function
    assert ale.counts.sum() == len(data) and ale.counts.min() >= 90


def test_ale_of_x0_is_linear_and_of_x4_is_zero(data):
    lin = accumulated_local_effects(planted, data, feature=0, n_bins=10)
    assert torch.allclose(lin.values[1:] - lin.values[:-1], lin.edges[0][1:] - lin.edges[0][:-1], atol=1e-12)
    assert accumulated_local_effects(planted, data, feature=4).values.abs().max() < 1e-12


def test_second_order_ale_is_the_interaction_alone(data):
    pair = accumulated_local_effects(planted, data, feature=(2, 3), n_bins=10)
    z, w = pair.edges
    zc, wc = z - data[:, 2].mean(), w - data[:, 3].mean()
    truth = 2 * zc[:, None] * wc[None]
    r = torch.corrcoef(torch.stack([pair.values.flatten(), truth.flatten()]))[0, 1]
    assert r > 0.999  # measured 0.9996
    assert (pair.values - (truth - truth.mean())).abs().max() < 0.12  # measured 0.074 on a range of ±2
    additive = accumulated_local_effects(planted, data, feature=(0, 1), n_bins=10)
    assert additive.values.abs().max() < 1e-12  # no interaction between x0 and x1


def test_h_statistic_finds_the_planted_interaction(data):
    x = data[:300]
    h23 = h_statistic(planted, x, features=(2, 3))
    # exact for this f: PD_23 - PD_2 - PD_3 = 2 (x2 - m2)(x3 - m3) + const
    joint = 2 * x[:, 2] * x[:, 3]
    inter = 2 * (x[:, 2] - x[:, 2].mean()) * (x[:, 3] - x[:, 3].mean())
    expected = ((inter - inter.mean()) ** 2).sum() / ((joint - joint.mean()) ** 2).sum()
    assert h23 == pytest.approx(float(expected), rel=1e-9) and h23 > 0.95  # measured 0.984
    assert h_statistic(planted, x, features=(0, 1)) < 1e-20
    assert h_statistic(planted, x, features=(1, 3)) < 1e-20
    assert h_statistic(planted, x, features=0) < 1e-20  # x0 interacts with nothing
    assert h_statistic(planted, x, features=2) > 0.3  # measured 0.48: half of f's variance is x2 x3's


def test_h_statistic_on_a_trained_network(data):
    """On an MLP fitted to f the statistic ranks the pairs the same way (H² 0.9+ vs below 0.1)."""
    x = data[:600].float()
    y = planted(x)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(200):
        opt.zero_grad()
        loss = ((model(x)[:, 0] - y) ** 2).mean()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.02
    h = {p: h_statistic(model, x[:100], features=p) for p in [(2, 3), (0, 1), (0, 2)]}
    assert h[(2, 3)] > 0.8 and max(h[(0, 1)], h[(0, 2)]) < 0.1, h


def test_global_surrogate_fidelity(data):
    """A greedy tree sees the additive part of f and misses the pure interaction x2 x3 entirely: no single
    split on x2 or x3 reduces the error of a product, so fidelity stays near the additive share of
    the variance, Var(x0 + x1²) / Var(f) = (1/3 + 4/45) / (1/3 + 4/45 + 4/9) = 0.49, at any depth."""
    share = (1 / 3 + 4 / 45) / (1 / 3 + 4 / 45 + 4 / 9)
    fid = {}
    for depth in (3, 6):
        s = global_surrogate(planted, data[:1500], max_depth=depth, test_inputs=data[1500:])
        fid[depth] = (s.fidelity, s.test_fidelity)
        assert 0.35 < s.test_fidelity < share + 0.03, (depth, s.test_fidelity)  # measured 0.43, 0.46
    assert fid[6][0] > fid[3][0]  # deeper fits the training rows better (0.59 vs 0.44), not held-out ones
    assert "x0 <=" in s.rules
    additive = global_surrogate(lambda x: x[:, 0] + x[:, 1] ** 2, data[:1500], max_depth=6, test_inputs=data[1500:])
    assert additive.test_fidelity > 0.95  # measured 0.97
    linear = global_surrogate(planted, data[:1500], kind="linear", test_inputs=data[1500:])
    assert linear.coef[0] == pytest.approx(1.0, abs=0.05)  # the additive x0 term is found
    assert linear.test_fidelity < share  # measured 0.39


def test_ebm_recovers_the_additive_shapes(data):
    x = data[:, :4]
    shapes = [torch.sin(3 * x[:, 0]), x[:, 1] ** 2, torch.zeros(len(x), dtype=x.dtype), x[:, 3].abs()]
    g = torch.Generator().manual_seed(1)
    y = sum(shapes) + 0.1 * torch.randn(len(x), generator=g, dtype=x.dtype)
    ebm = train_ebm(x, y, n_rounds=150, learning_rate=0.1)
    contrib = ebm.contributions(x)
    for j in (0, 1, 3):
        r = torch.corrcoef(torch.stack([contrib[:, j], shapes[j]]))[0, 1]
        assert r > 0.99, (j, float(r))  # measured 0.998, 0.997, 0.996
    assert contrib[:, 2].std() < 0.05  # the unused feature stays flat
    assert torch.allclose(ebm(x), ebm.intercept + contrib.sum(1))


def test_ebm_pair_term_captures_the_interaction(data):
    x = data[:, :3]
    y = x[:, 0] + 2 * x[:, 1] * x[:, 2]
    ebm = train_ebm(x, y, n_rounds=100, learning_rate=0.1, interactions=[(1, 2)])
    pair = ebm.contributions(x)[:, 3]
    assert torch.corrcoef(torch.stack([pair, 2 * x[:, 1] * x[:, 2]]))[0, 1] > 0.95  # measured 0.98
    r2 = 1 - ((ebm(x) - y) ** 2).mean() / y.var()
    assert r2 > 0.95
