"""Layer-wise relevance propagation: conservation, a hand-computed case, agreement with Captum."""

import warnings

import pytest
import torch
from torch import nn

from kb.reference import lrp

captum_attr = pytest.importorskip("captum.attr")
warnings.filterwarnings("ignore", category=UserWarning)


def _bias_free(module):
    for m in module.modules():
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    return module


def test_lrp_hand_computed():
    # one linear layer: R_i = x_i w_i (z-rule), exactly gradient x input
    model = nn.Sequential(nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
    x = torch.tensor([[2.0, 1.0, 4.0]])
    torch.testing.assert_close(lrp(model, x, 0), torch.tensor([[2.0, -2.0, 2.0]]))


def test_lrp_conserves_relevance_without_biases(shapes):
    torch.manual_seed(0)
    model = _bias_free(type(shapes.model)(*[m for m in __import__("copy").deepcopy(shapes.model)]))
    x = shapes.inputs[:4]
    with torch.no_grad():
        logits = model(x).gather(1, shapes.labels[:4, None])[:, 0]
    rel = lrp(model, x, shapes.labels[:4])
    torch.testing.assert_close(rel.flatten(1).sum(1), logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("epsilon", [1e-9, 0.1])
def test_lrp_matches_captum_on_mlp(tabular, epsilon):
    from captum.attr._utils.lrp_rules import EpsilonRule
    model, x, t = tabular.model, tabular.inputs[:8], tabular.labels[:8]
    for m in model:
        if isinstance(m, nn.Linear):
            m.rule = EpsilonRule(epsilon)
    try:
        theirs = captum_attr.LRP(model).attribute(x, target=t)
    finally:
        for m in model:
            m.__dict__.pop("rule", None)
    torch.testing.assert_close(lrp(model, x, t, epsilon=epsilon), theirs.detach(), atol=1e-4, rtol=1e-4)


def test_lrp_gamma_matches_captum_on_mlp(tabular):
    from captum.attr._utils.lrp_rules import GammaRule
    model, x, t = tabular.model, tabular.inputs[:8], tabular.labels[:8]
    for m in model:
        if isinstance(m, nn.Linear):
            m.rule = GammaRule(0.25)
    try:
        theirs = captum_attr.LRP(model).attribute(x, target=t)
    finally:
        for m in model:
            m.__dict__.pop("rule", None)
    torch.testing.assert_close(lrp(model, x, t, rule="gamma", gamma=0.25), theirs.detach(), atol=1e-4, rtol=1e-3)


def test_lrp_rejects_unknown_layers():
    with pytest.raises(TypeError):
        lrp(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)), torch.ones(1, 2), 0)
