"""Linear probes with control tasks, mutual information estimators, nullspace projection."""

import math

import pytest
import torch

from kb.reference import (causal_probing, control_labels, inlp, linear_probe, mutual_information_binned,
                          mutual_information_ksg, train_linear_probe)


def _planted(seed, n=800, d=20):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, generator=g)
    return x, (x @ w > 0).long(), g


def test_probe_recovers_a_planted_linear_feature(seed):
    x, y, _ = _planted(seed)
    result = linear_probe(x, y)
    assert result.accuracy > 0.9
    assert result.selectivity > 0.3


def test_probe_fails_on_shuffled_labels(seed):
    x, y, g = _planted(seed)
    result = linear_probe(x, y[torch.randperm(len(y), generator=g)])
    assert abs(result.accuracy - 0.5) < 0.1


def test_control_task_assigns_one_label_per_type():
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    types = torch.tensor([5, 5, 7, 7, 9, 9, 5, 7])
    ctrl = control_labels(labels, types, seed=3)
    for t in types.unique():
        assert len(ctrl[types == t].unique()) == 1


def test_control_task_with_types_is_memorisable_but_not_generalisable():
    # each type has its own random vector: a probe can memorise the control labels of seen types
    g = torch.Generator().manual_seed(0)
    types = torch.randint(0, 40, (1000,), generator=g)
    emb = torch.randn(40, 30, generator=g)
    x = emb[types] + 0.05 * torch.randn(1000, 30, generator=g)
    ctrl = control_labels(torch.randint(0, 2, (1000,), generator=g), types)
    probe = train_linear_probe(x, ctrl)
    assert (probe(x).argmax(1) == ctrl).float().mean() > 0.95


def test_ksg_matches_gaussian_mutual_information():
    g = torch.Generator().manual_seed(0)
    for rho in (0.0, 0.6, 0.9):
        z = torch.randn(2000, 2, generator=g, dtype=torch.float64)
        x, y = z[:, :1], rho * z[:, :1] + math.sqrt(1 - rho**2) * z[:, 1:]
        assert mutual_information_ksg(x, y, k=3) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.03)


def test_binned_mutual_information_known_values():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (20000,), generator=g)
    x = torch.stack([y.double() + 0.01 * torch.randn(20000, generator=g, dtype=torch.float64),  # determined by y
                     torch.randn(20000, generator=g, dtype=torch.float64)], 1)  # independent
    mi = mutual_information_binned(x, y, n_bins=4)
    p = torch.bincount(y).double() / len(y)
    entropy = float(-(p * p.log()).sum())
    assert float(mi[0]) == pytest.approx(entropy, abs=1e-3)
    assert float(mi[1]) < 0.01
    assert mutual_information_binned(x[:, 0], y).ndim == 0


def test_inlp_removes_the_linear_concept(seed):
    x, y, _ = _planted(seed)
    result = inlp(x, y, n_iter=5)
    assert result.accuracies[0] > 0.9
    xp = x @ result.projection
    probe = train_linear_probe(xp, y)
    assert (probe(xp).argmax(1) == y).float().mean() < 0.6
    torch.testing.assert_close(result.projection @ result.projection, result.projection, atol=1e-5, rtol=0)


def test_causal_probing_separates_used_from_unused_concepts():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(1000, 10, generator=g)
    readout = torch.nn.Linear(10, 2)
    with torch.no_grad():
        readout.weight.copy_(torch.stack([-torch.eye(10)[0], torch.eye(10)[0]]))  # uses h0 only
        readout.bias.zero_()
    task = (h[:, 0] > 0).long()
    acc = lambda logits: (logits.argmax(1) == task).float().mean()  # noqa: E731
    used = causal_probing(readout, h, task, acc)
    unused = causal_probing(readout, h, (h[:, 5] > 0).long(), acc)
    assert used.metric_before == 1.0 and used.metric_after < 0.65
    assert unused.metric_after > 0.95
    assert used.probe_accuracy_after < 0.65
