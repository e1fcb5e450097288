"""Distributed alignment search on a toy model whose causal variable lives in a rotated direction."""

import pytest
import torch
from torch import nn

from kb.reference.alignment import distributed_alignment_search, interchange_intervention

D = 6


class RotatedXor(nn.Module):
    """Inputs ``(a, b, n1, n2)`` with ``a, b = +-1``; the hidden layer is ``Q [a, b, n1, n2, 0, 0]`` for a
    random rotation ``Q``, and the output says whether ``a == b``. The variable ``a`` is the direction
    ``Q[:, 0]``: not any single hidden unit."""

    def __init__(self):
        super().__init__()
        self.q = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(0)))[0]
        self.hidden = nn.Identity()

    def forward(self, x):
        h = self.hidden(torch.cat([x, torch.zeros(len(x), D - x.shape[1])], 1) @ self.q.T)
        z = h @ self.q
        logit = 5 * z[:, 0] * z[:, 1]
        return torch.stack([-logit, logit], 1)


def _sample(n, g):
    return torch.cat([torch.randint(0, 2, (n, 2), generator=g).float() * 2 - 1, torch.randn(n, 2, generator=g)], 1)


@pytest.fixture(scope="module")
def pairs():
    g = torch.Generator().manual_seed(1)
    base, source = _sample(2048, g), _sample(2048, g)
    tb, ts = _sample(512, g), _sample(512, g)
    # the high-level model: y = (a == b); setting a to the source's a gives the counterfactual label
    label = lambda b, s: (s[:, 0] * b[:, 1] > 0).long()  # noqa: E731
    return base, source, label(base, source), (tb, ts, label(tb, ts))


def test_das_finds_the_rotated_variable(pairs, seed):
    model = RotatedXor()
    base, source, labels, test = pairs
    result = distributed_alignment_search(model, "hidden", base, source, labels, k=1, seed=seed, test=test)
    assert result.accuracy > 0.9  # measured 1.00 for both seeds
    assert torch.allclose(result.rotation @ result.rotation.T, torch.eye(D), atol=1e-5)
    assert float((result.subspace @ model.q[:, 0]).abs()) > 0.9  # aligned with a's direction (measured 0.93-0.95)
    assert result.losses[-1] < 0.1 * result.losses[0]


def test_unrotated_interchanges_fail(pairs):
    model = RotatedXor()
    _, _, _, (tb, ts, tl) = pairs
    iia = [float((interchange_intervention(model, "hidden", tb, ts, torch.eye(D)[j:j + 1]).argmax(1) == tl)
                 .float().mean()) for j in range(D)]
    assert max(iia) < 0.85  # measured at most 0.77: no single hidden unit is the variable
    everything = interchange_intervention(model, "hidden", tb, ts, torch.eye(D)).argmax(1)
    with torch.no_grad():
        assert torch.equal(everything, model(ts).argmax(1))  # k = D swaps the whole state: the source's output


def test_das_restores_requires_grad_and_hooks(tabular, no_hooks):
    model = tabular.model
    x = tabular.inputs[:64]
    before = [p.requires_grad for p in model.parameters()]
    labels = model(x.flip(0)).argmax(1)
    result = distributed_alignment_search(model, "3", x, x.flip(0), labels, k=32, n_steps=3)
    assert result.accuracy == 1.0  # swapping the whole last hidden layer gives the source's prediction
    assert [p.requires_grad for p in model.parameters()] == before
    with pytest.raises(IndexError):  # fails mid-training: the model's flags are restored all the same
        distributed_alignment_search(model, "3", x, x, labels + 5, k=2, n_steps=1)
    assert no_hooks(model) and [p.requires_grad for p in model.parameters()] == before
