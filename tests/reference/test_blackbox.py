"""RISE, Anchors, permutation feature importance, partial dependence: analytic answers on planted models."""

import pytest
import torch
from torch import nn

from kb.reference.blackbox import anchors, partial_dependence, permutation_feature_importance, rise, rise_masks
from kb.reference.models import LinearModel


class BoxSum(nn.Module):
    """Score = mean of the pixels inside a planted box (rows 2-5, cols 8-13); class 1 is its negative."""

    def forward(self, x):
        s = x[:, :, 2:6, 8:14].mean((1, 2, 3))
        return torch.stack([s, -s], 1)


def test_rise_masks_are_smooth_bernoulli_p():
    masks = rise_masks(4000, (16, 16), grid=4, p=0.3, seed=0)
    assert masks.shape == (4000, 1, 16, 16) and 0 <= masks.min() and masks.max() <= 1
    assert masks.mean() == pytest.approx(0.3, abs=0.01)  # E[M] = p at every pixel
    assert ((masks > 0) & (masks < 1)).float().mean() > 0.3  # bilinear upsampling, not a hard grid


def test_rise_of_a_constant_model_is_the_constant():
    model = LinearModel(torch.zeros(2, 256), torch.tensor([2.0, -1.0]))
    flat = nn.Sequential(nn.Flatten(), model)
    sal = rise(flat, torch.ones(1, 1, 16, 16), 0, n_masks=4000, probs=False)
    assert sal.mean() == pytest.approx(2.0, abs=0.05)  # S = f * E[M] / p


def test_rise_finds_the_planted_box(seed):
    x = torch.ones(2, 1, 16, 16)
    sal = rise(BoxSum(), x, 0, n_masks=2000, grid=8, seed=seed, probs=False)
    assert sal.shape == x.shape
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[2:6, 8:14] = True
    top = sal[0, 0].flatten().topk(int(inside.sum())).indices
    assert inside.flatten()[top].float().mean() >= 0.9  # measured 0.96 / 0.92
    assert sal[0, 0][inside].mean() > sal[0, 0][~inside].mean() + 0.05  # measured 0.57 vs 0.50
    again = rise(BoxSum(), x, 0, n_masks=2000, grid=8, seed=seed, probs=False, batch_size=7)
    assert torch.allclose(sal, again, atol=1e-6)  # seeded, and independent of the batching


def test_anchor_of_a_threshold_model_is_its_one_feature():
    data = torch.randn(2000, 6, generator=torch.Generator().manual_seed(0))
    model = LinearModel(torch.tensor([[0.0] * 6, [3.0, 0, 0, 0, 0, 0]]))  # class 1 iff x0 > 0
    x = torch.tensor([[1.5, 0.3, -0.2, 0.0, 1.0, -1.0], [-1.2, 0.0, 0.5, 0.1, -0.3, 2.0]])
    res = anchors(model, x, data=data, n_bins=4, seed=0)
    assert res.mask.tolist() == [[True] + [False] * 5] * 2
    assert res.precision.tolist() == [1.0, 1.0]
    assert res.coverage.tolist() == pytest.approx([0.25, 0.25], abs=0.01)  # one quartile bin
    assert res.lower[0, 0] <= 1.5 < res.upper[0, 0] and res.lower[0, 0] > 0
    assert res.target.tolist() == [1, 0]


def test_anchors_on_the_tabular_mlp_use_informative_features(tabular):
    data = torch.randn(2000, 8, generator=torch.Generator().manual_seed(1))
    res = anchors(tabular.model, tabular.inputs[:6], data=data, n_samples=300, seed=0)
    found = res.precision >= 0.95
    assert found.float().mean() >= 0.8
    assert (res.coverage > 0).all()
    # features 4-7 are noise: rules are made of the informative features 0-3 (sampling noise may add one)
    informative = res.mask[found, :4].sum() / res.mask[found].sum()
    assert informative >= 0.85
    assert (res.mask[found, :4].sum(1) >= 2).all()


def test_permutation_importance_of_a_linear_model_is_2_w2_var():
    w = torch.tensor([[2.0, -1.0, 0.5, 0.0]])
    x = torch.randn(4000, 4, generator=torch.Generator().manual_seed(0))
    model = LinearModel(w)
    y = model(x).squeeze(1)
    imp = permutation_feature_importance(model, x, y, n_repeats=5, seed=0)
    assert imp.tolist() == pytest.approx((2 * w[0] ** 2).tolist(), rel=0.08, abs=1e-6)


def test_permutation_importance_on_the_tabular_mlp(tabular):
    imp = permutation_feature_importance(tabular.model, tabular.inputs, tabular.labels, n_repeats=5)
    assert imp.shape == (8,)
    assert (imp[:4] > 0.1).all() and (imp[4:].abs() < 0.03).all()
    # a literal loop over features and repeats, with the same permutations
    g = torch.Generator().manual_seed(0)
    perms = [torch.randperm(len(tabular.inputs), generator=g) for _ in range(5)]
    with torch.no_grad():
        base = (tabular.model(tabular.inputs).argmax(1) == tabular.labels).float().mean()
        slow = []
        for j in range(8):
            drops = []
            for p in perms:
                x = tabular.inputs.clone()
                x[:, j] = x[p, j]
                drops.append(base - (tabular.model(x).argmax(1) == tabular.labels).float().mean())
            slow.append(torch.stack(drops).mean())
    assert torch.allclose(imp, torch.stack(slow), atol=1e-6)


def test_partial_dependence_of_an_additive_model():
    class Additive(nn.Module):
        def forward(self, x):
            return (x[:, 0] ** 2 + 3 * x[:, 1]).unsqueeze(1)

    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    grid = torch.linspace(-2, 2, 9)
    pd = partial_dependence(Additive(), x, 0, feature=0, grid=grid)
    assert torch.allclose(pd.average, grid ** 2 + 3 * x[:, 1].mean(), atol=1e-5)
    assert pd.ice.shape == (50, 9)
    assert torch.allclose(pd.ice - pd.ice[:, :1], (grid ** 2 - 4).expand(50, 9), atol=1e-5)  # parallel ICE
    default = partial_dependence(Additive(), x, 0, feature=1, n_grid=5)
    assert len(default.grid) == 5 and torch.allclose(default.average.diff(), 3 * default.grid.diff(), atol=1e-5)


def test_partial_dependence_on_the_tabular_mlp(tabular):
    # class 2 is decided by 1.5 * x3: its probability rises with x3 and ignores the noise feature x5
    up = partial_dependence(tabular.model, tabular.inputs, 2, feature=3, probs=True)
    flat = partial_dependence(tabular.model, tabular.inputs, 2, feature=5, probs=True)
    assert up.average[-1] - up.average[0] > 0.5
    assert (flat.average.max() - flat.average.min()) < 0.05
