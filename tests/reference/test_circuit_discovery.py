"""Attribution patching against exact activation patching; ACDC-style pruning on a planted model and the induction demo."""

import pytest
import torch
from torch import nn

from kb.reference.attention import attention_patterns, prefix_matching_score
from kb.reference.circuit_discovery import acdc, attribution_patching, kl_to_clean
from kb.reference.patching import activation_patching

HEADS = [(f"blocks.{layer}.attn.head_out", (slice(None), slice(None), head)) for layer in range(2) for head in range(2)]


def test_attribution_patching_is_exact_for_a_linear_metric(runs):
    model, clean, corrupted, _, half = runs
    target = clean[:, half:]

    def logit_sum(logits):  # linear in the final residual stream (the unembedding is linear)
        return logits[:, half - 1:-1].gather(-1, target[..., None]).mean()

    with torch.no_grad():
        base = float(logit_sum(model(corrupted)))
    (estimate,) = attribution_patching(model, clean, corrupted, ["blocks.1"], logit_sum)
    assert estimate.shape == (64, 2 * half, 32)
    exact = activation_patching(model, clean, corrupted, "blocks.1", logit_sum) - base
    assert float(estimate.sum()) == pytest.approx(exact, rel=1e-4)
    for p in (half, half + 3):  # also per position
        exact_p = activation_patching(model, clean, corrupted, "blocks.1", logit_sum, (slice(None), p)) - base
        assert float(estimate[:, p].sum()) == pytest.approx(exact_p, rel=1e-3, abs=1e-5)


def test_attribution_patching_matches_small_perturbations(tabular):
    model = tabular.model
    x = tabular.inputs[:32]
    nearby = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))

    def metric(out):
        return out[:, 0].mean()

    with torch.no_grad():
        base = float(metric(model(nearby)))
    estimates = attribution_patching(model, x, nearby, ["1", "3"], metric)
    # layer 3 feeds the logits linearly: exact; layer 1 passes a ReLU: first order (measured 2.9% off)
    for layer, est, rel in zip(["1", "3"], estimates, [0.05, 1e-4]):
        exact = activation_patching(model, x, nearby, layer, metric) - base
        assert float(est.sum()) == pytest.approx(exact, rel=rel)


def test_attribution_patching_ranks_the_induction_heads_first(runs):
    model, clean, corrupted, logprob, _ = runs
    with torch.no_grad():
        base = float(logprob(model(corrupted)))
    per_layer = attribution_patching(model, clean, corrupted, [f"blocks.{l}.attn.head_out" for l in range(2)], logprob)
    estimate = torch.stack([a.sum((0, 1, 3)) for a in per_layer]).flatten()  # (layer, head)
    exact = torch.tensor([activation_patching(model, clean, corrupted, m, logprob, i) - base for m, i in HEADS])
    # measured: estimate (-0.11, 0.28, 1.73, 2.26) vs exact (-0.18, -0.69, 1.35, 1.72)
    assert int(estimate.argmax()) == int(exact.argmax()) == 3
    assert set(estimate.topk(2).indices.tolist()) == set(exact.topk(2).indices.tolist()) == {2, 3}


def test_attribution_patching_removes_its_hooks(runs, no_hooks):
    model, clean, corrupted, _, _ = runs

    def failing(_):
        raise ValueError("boom")

    with pytest.raises(ValueError):
        attribution_patching(model, clean, corrupted, ["blocks.0", "blocks.1"], failing)
    with pytest.raises(ValueError):
        acdc(model, clean, corrupted, HEADS, metric=failing)
    assert no_hooks(model)


class ThreeBranches(nn.Module):
    """``out = a(x) + 0.001 b(x) + c(x)``: component b barely matters."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        return self.a(x) + 0.001 * self.b(x) + self.c(x)


def test_acdc_prunes_the_irrelevant_branch():
    model = ThreeBranches()
    g = torch.Generator().manual_seed(1)
    clean, corrupted = torch.randn(32, 4, generator=g), torch.randn(32, 4, generator=g)
    result = acdc(model, clean, corrupted, [("a", None), ("b", None), ("c", None)], threshold=0.01)
    assert result.kept == [("a", None), ("c", None)] and result.removed == [("b", None)]
    assert [step[0][0] for step in result.trace] == ["c", "b", "a"]  # from the output backwards
    assert result.metric < 1e-4


def test_acdc_keeps_the_induction_head(runs):
    model, clean, corrupted, logprob, half = runs
    score = prefix_matching_score(attention_patterns(model, clean), half)  # (layer, head)
    layer, head = divmod(int(score.argmax()), 2)
    result = acdc(model, clean, corrupted, HEADS, threshold=0.3)
    kept = [(m, i[2]) for m, i in result.kept]
    assert (f"blocks.{layer}.attn.head_out", head) in kept
    assert len(kept) < len(HEADS)  # measured: keeps layer-1 head 1 and layer-0 head 1
    with torch.no_grad():
        everything = kl_to_clean(model(clean))(model(corrupted))
    assert result.metric < 0.5 * float(everything)  # the circuit keeps most of the clean behaviour
