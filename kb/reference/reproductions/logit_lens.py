"""The logit lens: predictions read from intermediate layers build up towards the output [@nostalgebraist2020logit].

Decode the residual stream after every layer of a small transformer with its own unembedding
(``kb.reference.lens.logit_lens``). On the predictable half of repeated random sequences, measure
how often each layer's decoded top token is the correct next token, and how far each layer's
distribution is from the final one; an untrained copy of the model is the control, because in any
residual network the partial sums approach the final sum (so KL to the final output falls with
depth even without training).
"""

from __future__ import annotations

import torch

from ..lens import logit_lens
from ..models import AttentionOnlyTransformer, _fit, _next_token_loss, make_induction_batch, make_repeated_sequences
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "lens_profile", "run", "figure"]

CLAIM = """Decoded with the model's own unembedding, the residual stream after successive layers gives
better and better next-token predictions: the correct token's accuracy rises layer by layer and is
largely in place before the last layer, while the distribution converges on the final output
(nostalgebraist 2020)."""

QUICK = {"n_steps": 300, "lr": 1e-2}


def lens_profile(model, tokens, half: int, n_layers: int) -> dict:
    """Per layer: accuracy on the second copy, KL(final || lens) and top-1 agreement with the final output."""
    layers = ["embed"] + [f"blocks.{i}" for i in range(n_layers)]
    logits = logit_lens(model, tokens, layers, model.unembed)  # (L, B, T, V)
    logp = logits.log_softmax(-1)
    final = logp[-1]
    return {
        "layer": layers,
        "accuracy": [float((lg[:, half - 1:-1].argmax(-1) == tokens[:, half:]).float().mean()) for lg in logits],
        "kl": [float((final.exp() * (final - lp)).sum(-1).mean()) for lp in logp],
        "agreement": [float((lg.argmax(-1) == logits[-1].argmax(-1)).float().mean()) for lg in logits],
    }


def run(seed: int = 0, n_layers: int = 4, n_steps: int = 600, vocab: int = 32, half: int = 10, lr: float = 3e-3) -> dict:
    """Train on sequences with repeated segments; logit lens on held-out repeated sequences, trained vs untrained."""
    untrained = AttentionOnlyTransformer(vocab=vocab, n_layers=n_layers, seed=seed)
    model = AttentionOnlyTransformer(vocab=vocab, n_layers=n_layers, seed=seed)
    batches = lambda s: (make_induction_batch(64, 2 * half + 4, vocab, seed * 100003 + s),) * 2  # noqa: E731
    _fit(model, batches, n_steps, lr, seed, loss_fn=_next_token_loss)
    tokens = make_repeated_sequences(256, half, vocab, seed + 999)
    trained, control = lens_profile(model, tokens, half, n_layers), lens_profile(untrained, tokens, half, n_layers)
    acc, kl = trained["accuracy"], trained["kl"]
    rises = all(b >= a - 0.01 for a, b in zip(acc, acc[1:]))  # non-decreasing, up to sampling noise
    built_before_last = acc[-2] >= 0.5 * acc[-1]
    falls = all(a > b for a, b in zip(kl, kl[1:]))
    control_gain = control["accuracy"][-1] - control["accuracy"][0]
    learned = acc[-1] >= 4 / vocab  # the model copies well above chance (1 / vocab)
    passed = rises and built_before_last and falls and learned and acc[0] <= 2 / vocab and control_gain < 0.05
    return result(
        CLAIM,
        f"An attention-only transformer ({n_layers} layers, d_model 32, 2 heads) trained {n_steps} Adam steps on "
        f"random tokens with a repeated segment; logit lens on the second half of 256 held-out sequences of "
        f"{half} random tokens repeated twice (vocabulary {vocab}, chance {1 / vocab:.3f}); an untrained copy as control.",
        {"accuracy_by_layer": acc, "kl_by_layer": kl, "agreement_by_layer": trained["agreement"],
         "accuracy_final": acc[-1], "accuracy_penultimate": acc[-2], "accuracy_embedding": acc[0],
         "control_accuracy_by_layer": control["accuracy"], "control_kl_by_layer": control["kl"]},
        "accuracy_penultimate",
        f"passes when the lens accuracy never falls from one layer to the next (0.01 slack), rises from at most "
        f"twice chance ({2 / vocab:.3f}) at the embedding to at least four times chance ({4 / vocab:.3f}) at the "
        "output, is at least half the final accuracy one layer before the end, the KL to the final output falls at "
        "every layer, and the untrained control's accuracy gains less than 0.05 over its layers",
        passed,
        {"trained": trained, "untrained": control},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, ncols=2, width=4.0) as (fig, (a, b)):
        for key, style in (("trained", "-"), ("untrained", ":")):
            a.plot(c[key]["layer"], c[key]["accuracy"], marker="o", ls=style, label=key)
            b.plot(c[key]["layer"], c[key]["kl"], marker="o", ls=style, label=key)
        a.set_ylabel("lens accuracy on the second copy"), a.set_ylim(0, 1)
        b.set_ylabel("KL(final || lens)")
        for ax in (a, b):
            ax.set_xlabel("residual stream after"), ax.tick_params(axis="x", labelsize=7), ax.legend(fontsize=7)
