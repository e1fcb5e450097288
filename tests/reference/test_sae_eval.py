"""SAE evaluation metrics against hand-computed values on a tiny hand-built SAE; spliced-in loss limits."""

import math

import pytest
import torch

from kb.reference.sae import SparseAutoencoder, train_sae
from kb.reference.sae_eval import dictionary_metrics, evaluate_sae, feature_absorption, spliced_loss


def _sae(w_enc, b_enc, w_dec):
    w_enc, w_dec = torch.tensor(w_enc), torch.tensor(w_dec)
    sae = SparseAutoencoder(w_dec.shape[0], w_dec.shape[1])
    with torch.no_grad():
        sae.W_enc.copy_(w_enc), sae.b_enc.copy_(torch.tensor(b_enc)), sae.W_dec.copy_(w_dec), sae.b_dec.zero_()
    return sae


def test_core_metrics_match_hand_computed_values():
    # latents 0, 1 read x1, x2; latent 2 never fires; latent 1 decodes at half length
    sae = _sae([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [0.0, 0.0, -1.0], [[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [3.0, 0.0]])
    m = dictionary_metrics(sae, x, dense_threshold=0.3)
    # errors: only row 2, x_hat = (0, 1): |err|^2 = 1; total variance around (1, 0.5) = 9
    assert m["mse"] == pytest.approx(0.25)
    assert m["fve"] == pytest.approx(1 - 1 / 9)
    assert m["l0"] == pytest.approx(0.75)
    assert m["firing"].tolist() == [0.5, 0.25, 0.0]
    assert m["dead_fraction"] == pytest.approx(1 / 3) and m["dense_fraction"] == pytest.approx(1 / 3)


def test_absorption_probe_on_a_hand_built_absorbing_latent():
    # concept direction e1 ("starts with S"); latent 1 = "short" (e1 + e2)/sqrt 2 takes over when e2 is present
    r = 1 / math.sqrt(2)
    sae = _sae([[1.0, -2.0], [0.0, math.sqrt(2)]], [0.0, 0.0], [[1.0, r], [0.0, r]])
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([1, 1, 1, 0])
    with torch.no_grad():
        torch.testing.assert_close(sae(x)[0][:3], x[:3])  # the concept rows reconstruct exactly
    res = feature_absorption(sae, x, labels, torch.tensor([1.0, 0.0]))
    assert res["main_latents"].tolist() == [0]
    assert res["false_negative_rate"] == pytest.approx(1 / 3) and res["absorption_rate"] == pytest.approx(1 / 3)


class _Identity(torch.nn.Module):
    def encode(self, x):
        return torch.relu(torch.cat([x, -x], -1))

    def decode(self, f):
        d = f.shape[-1] // 2
        return f[..., :d] - f[..., d:]


class _Nothing(_Identity):
    def decode(self, f):
        return torch.zeros_like(f[..., : f.shape[-1] // 2])


def _next_token_loss(tokens):
    def loss(logits):
        return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    return loss


def test_spliced_loss_limits(runs):
    model, tokens, _, _, _ = runs
    loss = _next_token_loss(tokens)
    perfect = spliced_loss(model, tokens, "blocks.0", _Identity(), loss)
    assert perfect["recovered"] == pytest.approx(1.0, abs=1e-5) and perfect["kl"] == pytest.approx(0.0, abs=1e-6)
    nothing = spliced_loss(model, tokens, "blocks.0", _Nothing(), loss)
    assert nothing["recovered"] == pytest.approx(0.0, abs=1e-6) and nothing["spliced"] == pytest.approx(nothing["zero"])


def test_evaluate_a_trained_sae_on_the_residual_stream(runs):
    """An SAE on the residual stream after layer 1 of the induction transformer (measured: FVE 0.94,
    L0 10.3 of 64, no dead latents, 97% dense (> 10% of tokens), CE recovered 0.78: a reconstruction
    that explains 94% of the variance still loses a fifth of the loss gap)."""
    from kb.reference._common import capture_outputs
    model, tokens, _, _, _ = runs
    with torch.no_grad(), capture_outputs([model.blocks[0]], detach=True) as store:
        model(tokens)
    acts = store[0][-1].reshape(-1, 32)
    sae = train_sae(acts, 64, l1_coeff=1.0, n_steps=600)
    ev = evaluate_sae(sae, acts, model, tokens, "blocks.0", _next_token_loss(tokens))
    s = ev.summary()
    assert 0 < s["fve"] < 1 and 0 < s["l0"] < 64 and s["ce_clean"] < s["ce_spliced"] < s["ce_zero"]
    assert 0.85 < s["fve"] < 1 and 0.5 < s["ce_recovered"] < s["fve"]
