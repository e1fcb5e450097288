"""Activation/path patching, causal tracing, ablation, attention, lenses, circuits; the induction case study."""

import pytest
import torch
from torch import nn

from kb.reference import (ablation, activation_patching, attention_patterns, attention_rollout, causal_tracing,
                          circuit_analysis, logit_lens, models, path_patching, patching_sweep,
                          prefix_matching_chance, prefix_matching_score, previous_token_score, tuned_lens)
from kb.reference._common import forward_hooks


def test_patching_every_position_restores_the_clean_output(runs):
    model, clean, corrupted, logprob, _ = runs
    with torch.no_grad():
        clean_out = model(clean)
    for layer in ["embed", "blocks.0", model.blocks[1]]:
        restored = activation_patching(model, clean, corrupted, layer, lambda out: (out - clean_out).abs().max())
        assert restored < 1e-5
    assert activation_patching(model, clean, corrupted, "blocks.1", logprob) == pytest.approx(float(logprob(clean_out)))


def test_patching_nothing_keeps_the_corrupted_output(runs):
    model, clean, corrupted, logprob, _ = runs
    with torch.no_grad():
        corrupt = float(logprob(model(corrupted)))
    empty = (slice(None), slice(0, 0))
    assert activation_patching(model, clean, corrupted, "blocks.0", logprob, index=empty) == pytest.approx(corrupt)


def test_patching_sweep_grid(runs):
    model, clean, corrupted, logprob, _ = runs
    grid = patching_sweep(model, clean, corrupted, ["blocks.0", "blocks.1"], logprob,
                          indices=[(slice(None), p) for p in range(4)])
    assert grid.shape == (2, 4)


def test_hooks_are_removed_after_an_exception(runs, no_hooks):
    model, clean, corrupted, _, _ = runs

    def failing_metric(_):
        raise ValueError("boom")

    with pytest.raises(ValueError):
        activation_patching(model, clean, corrupted, "blocks.0", failing_metric)
    with pytest.raises(ValueError):
        with forward_hooks([(model.blocks[0], lambda *a: None)]):
            raise ValueError("inside")
    with pytest.raises(RuntimeError):
        activation_patching(model, clean, corrupted[:, :5], "blocks.0", lambda o: o.sum(),
                            index=(slice(None), slice(None)))  # shape mismatch inside the hook
    with pytest.raises(ValueError):
        path_patching(model, clean, corrupted, "blocks.0.attn.head_out", "blocks.1.attn", failing_metric)
    assert no_hooks(model)


def test_path_patching_equals_activation_patching_on_a_direct_path(runs):
    model, clean, corrupted, logprob, _ = runs
    # receiver = the unembedding: every path from block 1 ends there, nothing to freeze
    via = path_patching(model, clean, corrupted, "blocks.1", "unembed", logprob)
    assert via == pytest.approx(activation_patching(model, clean, corrupted, "blocks.1", logprob), abs=1e-5)


def test_path_patching_isolates_one_path():
    # y = a + b(a), with a -> b -> out and a -> out; patching a only through b
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.out = nn.Identity(), nn.Identity(), nn.Identity()

        def forward(self, x):
            a = self.a(x)
            return self.out(a + 10 * self.b(a))

    net, clean, corrupted = Net(), torch.ones(1, 1), torch.zeros(1, 1)
    assert path_patching(net, clean, corrupted, "a", "b", lambda o: o.sum()) == pytest.approx(10.0)
    assert activation_patching(net, clean, corrupted, "a", lambda o: o.sum()) == pytest.approx(11.0)
    assert path_patching(net, clean, corrupted, "a", "out", lambda o: o.sum(), freeze=["b"]) == pytest.approx(1.0)


def test_causal_tracing_restores_at_the_last_layer(runs):
    model, clean, _, _, half = runs
    tok = clean[:8]

    def prob(logits):
        return logits[:, half - 1:-1].softmax(-1).gather(-1, tok[:, half:, None]).mean()

    grid = causal_tracing(model, tok, "embed", ["embed", "blocks.1"], prob, noise=3.0, subject=slice(0, half))
    assert grid.shape == (2, 2 * half)
    with torch.no_grad():
        clean_p = float(prob(model(tok)))
    # restoring the embedding at an uncorrupted position changes nothing; the best restoration helps
    full = causal_tracing(model, tok, "embed", ["embed"], prob, positions=[2 * half - 1], subject=slice(None))
    assert float(grid[0, -1]) < clean_p and float(grid.max()) > float(grid[0, -1])
    assert full.shape == (1, 1)


def test_ablation_zero_and_mean(tabular):
    model, x = tabular.model, tabular.inputs[:32]
    out = ablation(model, x, model[1])
    with torch.no_grad():
        torch.testing.assert_close(out, model[2:](torch.zeros(32, 32)))
        partial = ablation(model, x, model[1], units=(..., [0, 1]), method="mean")
        h = model[:2](x)
        h_abl = h.clone()
        h_abl[:, [0, 1]] = h[:, [0, 1]].mean(0)
        torch.testing.assert_close(partial, model[2:](h_abl))


def test_attention_patterns_and_rollout(runs):
    model, tokens, _, _, _ = runs
    pats = attention_patterns(model, tokens[:4])
    assert pats.shape == (2, 4, 2, 20, 20)
    torch.testing.assert_close(pats.sum(-1), torch.ones(2, 4, 2, 20))
    assert torch.all(pats.triu(1) == 0)  # causal
    roll = attention_rollout(pats)
    torch.testing.assert_close(roll.sum(-1), torch.ones(4, 20))
    eye = torch.eye(5).expand(3, 1, 2, 5, 5)
    torch.testing.assert_close(attention_rollout(eye), torch.eye(5).expand(1, 5, 5))


def test_prefix_matching_score_on_a_perfect_induction_pattern():
    half = 6
    t = 2 * half
    perfect = torch.zeros(1, 1, 1, t, t)
    for i in range(half, t):
        perfect[0, 0, 0, i, i - half + 1] = 1.0
    assert float(prefix_matching_score(perfect, half)) == 1.0
    uniform = torch.ones(t, t).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(1, 1, 1, t, t)
    assert float(prefix_matching_score(uniform, half)) == pytest.approx(prefix_matching_chance(half))


def test_induction_head_forms_in_layer_two(runs):
    """Case study [@olsson2022context]: a layer-2 head matches prefixes far above chance and above layer 1."""
    model, tokens, _, _, half = runs
    score = prefix_matching_score(attention_patterns(model, tokens), half)
    chance = prefix_matching_chance(half)
    assert float(score[1].max()) > 0.5 > 5 * chance
    assert float(score[1].max()) > 2 * float(score[0].max())
    assert previous_token_score(attention_patterns(model, tokens)).shape == (2, 2)


def test_logit_lens_last_layer_is_the_output(runs):
    model, tokens, _, _, half = runs
    lens = logit_lens(model, tokens[:8], ["blocks.0", "blocks.1"], model.unembed)
    with torch.no_grad():
        torch.testing.assert_close(lens[-1], model(tokens[:8]))
    acc = (lens[:, :, half - 1:-1].argmax(-1) == tokens[:8, half:]).float().mean((1, 2))
    assert float(acc[1]) > 0.6 > float(acc[0])


def test_tuned_lens_fits_better_than_the_logit_lens(runs, no_hooks):
    model, tokens, _, _, _ = runs
    layers = ["embed", "blocks.0"]
    tuned = tuned_lens(model, tokens, layers, model.unembed, n_steps=100)
    plain = logit_lens(model, tokens, layers, model.unembed)
    with torch.no_grad():
        final = model(tokens).log_softmax(-1)
    kl_plain = torch.stack([torch.nn.functional.kl_div(p.log_softmax(-1), final, log_target=True,
                                                       reduction="sum") / (final.numel() / final.shape[-1]) for p in plain])
    assert (tuned.kl < kl_plain).all()
    assert all(p.grad is None for p in model.parameters())
    assert no_hooks(model)


def test_circuit_analysis_finds_the_induction_heads(runs):
    model, clean, corrupted, logprob, _ = runs
    heads = [(f"blocks.{l}.attn.head_out", (slice(None), slice(None), h)) for l in range(2) for h in range(2)]
    result = circuit_analysis(model, clean, corrupted, heads, logprob)
    assert result.circuit, "no component selected"
    assert all(name.startswith("blocks.1") for name, _ in result.circuit)
    assert result.faithfulness > 0.8 and result.ablated < result.faithfulness - 0.3
