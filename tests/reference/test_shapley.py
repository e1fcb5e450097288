"""KernelSHAP and LIME: exact Shapley values, linear-model answers, agreement with Captum."""

import warnings

import pytest
import torch
from torch import nn

from kb.reference import kernel_shap, lime, models, shapley_values_exact

captum_attr = pytest.importorskip("captum.attr")
from captum._utils.models.model import Model  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning)


class WeightedLeastSquares(Model):
    """Closed-form weighted linear regression with intercept (Captum's default needs scikit-learn)."""

    def fit(self, train_data, **kwargs):
        x, y, w = (torch.cat(parts) for parts in zip(*train_data))
        x = torch.cat([torch.ones(len(x), 1), x.double()], 1)
        xw = x.T * w.double().view(-1)
        beta = torch.linalg.lstsq(xw @ x, xw @ y.double().view(-1, 1)).solution
        self.coef = beta[1:].T.float()

    def representation(self):
        return self.coef

    def __call__(self, x):
        return x @ self.coef.T


@pytest.fixture()
def small_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    return model, x


def test_shapley_values_of_a_known_game():
    # f(x) = x0 * x1 + x2 with baseline 0 at x = 1: phi = (1/2, 1/2, 1)
    class Game(nn.Module):
        def forward(self, x):
            return (x[:, 0] * x[:, 1] + x[:, 2]).unsqueeze(1)

    x = torch.ones(1, 3)
    expected = torch.tensor([[0.5, 0.5, 1.0]])
    torch.testing.assert_close(shapley_values_exact(Game(), x, 0, 0.0), expected)
    torch.testing.assert_close(kernel_shap(Game(), x, 0, 0.0, n_samples=8), expected)


def test_kernel_shap_exact_when_all_coalitions_enumerated(small_mlp):
    model, x = small_mlp
    base = torch.full_like(x, -0.5)
    exact = shapley_values_exact(model, x, 2, base)
    torch.testing.assert_close(kernel_shap(model, x, 2, base, n_samples=2**5), exact, atol=1e-5, rtol=1e-5)


def test_kernel_shap_sampled_is_efficient_and_close(small_mlp):
    model, x = small_mlp
    exact = shapley_values_exact(model, x, 1, 0.0)
    approx = kernel_shap(model, x, 1, 0.0, n_samples=400, seed=3)
    torch.testing.assert_close(approx.sum(1), exact.sum(1), atol=1e-5, rtol=1e-5)  # efficiency is exact
    assert (approx - exact).abs().max() < 0.1 * exact.abs().max()


def test_kernel_shap_feature_groups(small_mlp):
    model, x = small_mlp
    mask = torch.tensor([0, 0, 1, 1, 2])
    attr = kernel_shap(model, x, 0, 0.0, n_samples=8, feature_mask=mask)
    assert torch.equal(attr[:, 0], attr[:, 1]) and torch.equal(attr[:, 2], attr[:, 3])


def test_kernel_shap_matches_captum(small_mlp):
    model, x = small_mlp
    exact = kernel_shap(model, x[:2], 1, 0.0, n_samples=2**5)
    ks = captum_attr.KernelShap(model)
    ks.interpretable_model = WeightedLeastSquares()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        theirs = torch.cat([ks.attribute(x[i:i + 1], baselines=0.0, target=1, n_samples=3000) for i in range(2)])
    assert (theirs - exact).abs().max() < 0.05 * exact.abs().max()


def test_lime_on_linear_model_recovers_weight_times_input():
    w = torch.tensor([[2.0, -1.0, 0.5, 0.0, 3.0]])
    model = models.LinearModel(w, torch.tensor([0.3]))
    x = torch.tensor([[1.0, 2.0, -2.0, 5.0, 0.5]])
    torch.testing.assert_close(lime(model, x, 0, n_samples=200, alpha=0.0), x * w, atol=1e-5, rtol=1e-5)


def test_lime_agrees_with_captum_on_linear_model():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 8, generator=g)
    model, x = models.LinearModel(w), torch.randn(1, 8, generator=g)
    ours = lime(model, x, 0, n_samples=300)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        theirs = captum_attr.Lime(model, interpretable_model=WeightedLeastSquares()).attribute(
            x, target=0, n_samples=300, baselines=0.0)
    assert torch.equal(ours.sign(), theirs.sign())
    assert torch.equal(ours.argsort(), theirs.argsort())


def test_lime_ranks_relevant_features_first(tabular):
    # the tabular task ignores features 4-7
    attr = lime(tabular.model, tabular.inputs[:32], tabular.labels[:32], n_samples=300).abs().mean(0)
    assert attr[:4].min() > attr[4:].max()
