"""TCAV on a model whose concept sensitivity is known by construction."""

import torch
from torch import nn

from kb.reference import concept_activation_vector, tcav


def _model():
    # layer "h" is the identity on 4 features; the logits read +h0 (class 0) and -h0 (class 1)
    model = nn.Sequential(nn.Identity(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]]))
    return model


def test_tcav_scores_match_the_sign_of_the_sensitivity():
    g = torch.Generator().manual_seed(0)
    model = _model()
    concept = torch.randn(50, 4, generator=g) + torch.tensor([3.0, 0, 0, 0])  # concept = "h0 is large"
    random = torch.randn(50, 4, generator=g)
    inputs = torch.randn(30, 4, generator=g)
    assert tcav(model, model[0], concept, random, inputs, 0).score == 1.0
    assert tcav(model, model[0], concept, random, inputs, 1).score == 0.0


def test_tcav_orthogonal_concept_is_not_systematic():
    g = torch.Generator().manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    concept = torch.randn(40, 4, generator=g) + torch.tensor([0, 0, 0, 3.0])
    random = torch.randn(40, 4, generator=g)
    result = tcav(model, model[1], concept, random, torch.randn(30, 4, generator=g), 0, n_runs=5)
    assert result.scores.shape == (5,)
    assert 0.0 <= result.score <= 1.0


def test_cav_points_towards_the_concept():
    g = torch.Generator().manual_seed(2)
    concept = torch.randn(60, 3, generator=g) + torch.tensor([0, 2.0, 0])
    random = torch.randn(60, 3, generator=g)
    cav, acc = concept_activation_vector(concept, random)
    assert acc > 0.8 and float(cav[1]) > 0.9
    assert float(cav.norm()) == 1.0 or abs(float(cav.norm()) - 1.0) < 1e-6
