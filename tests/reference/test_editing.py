"""Steering vectors (activation addition) and ROME's rank-one edit: exact identities and the demo models."""

import copy

import pytest
import torch
from torch import nn

from kb.reference.editing import add_steering, key_covariance, rome_edit, steering_vector, steering_vectors
from kb.reference.models import make_tabular_data


def test_steering_a_linear_readout_shifts_the_output_by_w_v():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    x, pos, neg = torch.randn(5, 3), torch.randn(10, 3) + 1, torch.randn(12, 3)
    v = steering_vector(model, pos, neg, "0")
    with torch.no_grad():
        assert torch.allclose(v, model[0](pos).mean(0) - model[0](neg).mean(0), atol=1e-6)
        shifted = steering_vectors(model, x, pos, neg, "0", coefficient=2.5) - model(x)
    assert torch.allclose(shifted, (2.5 * model[1].weight @ v).expand(5, 2), atol=1e-5)


@pytest.fixture(scope="module")
def prompts():
    """Contexts holding tokens a=3 and b=7 once each, followed by other tokens; the prompt ends in b
    (induction predicts the token after the earlier b, Y) or in a (predicts the token after a, X)."""
    g = torch.Generator().manual_seed(0)
    a, b = 3, 7
    others = torch.tensor([t for t in range(32) if t not in (a, b)])
    rows = []
    for _ in range(64):
        rest = iter(others[torch.randperm(30, generator=g)[:8]].tolist())
        pa, pb = torch.randperm(9, generator=g)[:2].tolist()  # never last: each has a successor
        rows.append([a if i == pa else b if i == pb else next(rest) for i in range(10)])
    first = torch.tensor(rows)
    ends_b = torch.cat([first, torch.full((64, 1), b)], 1)
    ends_a = torch.cat([first, torch.full((64, 1), a)], 1)
    after = lambda tok: first[torch.arange(64), (first == tok).float().argmax(1) + 1]  # noqa: E731
    return ends_a, ends_b, after(a), after(b)


def test_steering_the_induction_model_towards_another_token(induction, prompts):
    model = induction.model
    ends_a, ends_b, x_tok, y_tok = prompts
    with torch.no_grad():
        plain, target = model(ends_b)[:, -1], model(ends_a)[:, -1]
    assert (plain.argmax(1) == y_tok).float().mean() > 0.8  # measured 0.89: copies the token after b
    # at the embedding the mean difference is exactly emb(a) - emb(b): steering = running the a-prompt
    steered = steering_vectors(model, ends_b, ends_a, ends_b, "embed", position=-1)[:, -1]
    assert torch.allclose(steered, target, atol=1e-4)
    gaps = []
    for c in (0.0, 0.5, 1.0):
        out = steering_vectors(model, ends_b, ends_a, ends_b, "embed", coefficient=c, position=-1)[:, -1]
        gaps.append(float((out.gather(1, x_tok[:, None]) - out.gather(1, y_tok[:, None])).mean()))
    assert gaps[0] < 0 < gaps[1] < gaps[2]  # measured -3.2, 2.1, 3.5: logit(X) - logit(Y) rises
    assert (steered.argmax(1) == x_tok).float().mean() > 0.8  # measured 0.94


def test_steering_hooks_are_removed(induction, prompts, no_hooks):
    model = induction.model
    ends_a, ends_b, _, _ = prompts
    v = steering_vector(model, ends_a, ends_b, "blocks.0", position=-1)
    with pytest.raises(RuntimeError):
        with add_steering(model, "blocks.0", torch.zeros(5)):  # wrong size: fails inside the hook
            model(ends_a)
    with pytest.raises(ValueError):
        with add_steering(model, "blocks.0", v):
            raise ValueError("inside the block")
    assert no_hooks(model)
    with torch.no_grad():
        before = model(ends_a)
        steering_vectors(model, ends_b, ends_a, ends_b, "blocks.0", coefficient=3.0)
        assert torch.equal(model(ends_a), before)  # nothing persists after the call


@pytest.fixture()
def edit_problem():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(8, 8, generator=g)
    keys = torch.randn(300, 8, generator=g) @ mix  # correlated keys
    w = torch.randn(5, 8, generator=g, dtype=torch.float32)
    k_star, v_star = keys[0] + 1.0, torch.randn(5, generator=g)
    return w.double(), keys.double(), k_star.double(), v_star.double()


def test_rome_writes_the_new_value_and_spares_c_orthogonal_keys(edit_problem):
    w, keys, k_star, v_star = edit_problem
    c = key_covariance(keys)
    assert torch.allclose(c, keys.T @ keys / 300)
    new = rome_edit(w, k_star, v_star, c)
    assert torch.allclose(new @ k_star, v_star, atol=1e-10)
    assert torch.linalg.matrix_rank(new - w) == 1
    u = torch.linalg.solve(c, k_star)
    others = torch.randn(20, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    others = others - (others @ u)[:, None] * u / (u @ u)  # k^T C^-1 k* = 0
    assert torch.allclose(others @ new.T, others @ w.T, atol=1e-10)


def test_rome_is_the_least_disturbing_feasible_edit(edit_problem):
    w, keys, k_star, v_star = edit_problem
    c = key_covariance(keys)
    new = rome_edit(w, k_star, v_star, c)
    disturbance = lambda m: float(((m - w) @ c * (m - w)).sum())  # noqa: E731  mean |W'k - Wk|^2 over keys
    g = torch.Generator().manual_seed(2)
    for _ in range(10):  # any other W' with W' k* = v* differs by some D with D k* = 0
        d = torch.randn(5, 8, generator=g, dtype=torch.float64)
        d = d - torch.outer(d @ k_star, k_star) / (k_star @ k_star)
        assert disturbance(new + 0.1 * d) > disturbance(new)
    naive = rome_edit(w, k_star, v_star, torch.eye(8, dtype=torch.float64))  # ignores the key statistics
    assert torch.allclose(naive @ k_star, v_star) and disturbance(naive) > disturbance(new)


def test_rome_edits_one_prediction_of_the_tabular_mlp(tabular):
    model = copy.deepcopy(tabular.model)
    body, head = model[:4], model[4]
    with torch.no_grad():
        c = key_covariance(body(make_tabular_data(1024)[0])) + 1e-4 * torch.eye(32)  # ridge: dead units
        x_star = tabular.inputs[:1]
        k_star, logits = body(x_star)[0], model(x_star)[0]
        before = model(tabular.inputs).argmax(1)
        new_class = (int(logits.argmax()) + 1) % 3
        v_star = logits.clone()
        v_star[new_class] = logits.max() + 5
        head.weight.copy_(rome_edit(head.weight, k_star, v_star - head.bias, c))
        assert int(model(x_star).argmax()) == new_class
        assert torch.allclose(model(x_star)[0], v_star, atol=1e-3)
        assert (model(tabular.inputs).argmax(1) == before).float().mean() > 0.85  # measured 0.94
