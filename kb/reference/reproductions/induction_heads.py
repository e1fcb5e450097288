"""Induction heads form in the second layer of a two-layer attention-only transformer [@olsson2022context].

The runnable form of ``tests/reference/test_mechanistic.py``'s reproduction: train the demo
transformer (``kb.reference.models.train_induction_transformer``) and score every head's
prefix matching on repeated random sequences (``kb.reference.prefix_matching_score``).
"""

from __future__ import annotations

from ..attention import attention_patterns, prefix_matching_chance, prefix_matching_score
from ..models import train_induction_transformer
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "run", "figure"]

CLAIM = """A two-layer attention-only transformer trained on sequences with repeated segments forms an
induction head in its second layer: on a repeated random sequence it attends from each token to the
token after that token's earlier occurrence, far above chance (Olsson et al. 2022)."""

QUICK: dict = {}


def run(seed: int = 0, n_steps: int = 600) -> dict:
    """Train the demo transformer; prefix-matching score per head against uniform causal attention."""
    demo = train_induction_transformer(seed, n_steps=n_steps)
    half = demo.info["half"]
    score = prefix_matching_score(attention_patterns(demo.model, demo.inputs), half)  # (L, H)
    chance = prefix_matching_chance(half)
    best2, best1 = float(score[1].max()), float(score[0].max())
    passed = best2 > 0.5 > 5 * chance and best2 > 2 * best1
    return result(
        CLAIM,
        f"The demo transformer (2 attention-only layers, 2 heads each, d_model 32) trained {n_steps} Adam steps on "
        f"random tokens with a repeated segment; prefix-matching score on 64 sequences of {half} distinct random "
        f"tokens repeated twice.",
        {"best_layer2_score": best2, "best_layer1_score": best1, "chance": chance,
         "second_half_accuracy": demo.info["second_half_accuracy"]},
        "best_layer2_score",
        "passes when the best layer-2 head scores above 0.5 (more than 5 times chance) and more than twice the best "
        "layer-1 head",
        passed,
        {"score": score, "chance": chance},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, width=4.5) as (fig, ax):
        labels, values = [], []
        for layer, row in enumerate(c["score"]):
            for head, v in enumerate(row):
                labels.append(f"L{layer + 1}H{head}"), values.append(v)
        ax.bar(labels, values, color=["tab:grey"] * len(c["score"][0]) + ["tab:blue"] * (len(values) - len(c["score"][0])))
        ax.axhline(c["chance"], color="k", ls=":", lw=1, label="uniform attention")
        ax.set_ylabel("prefix-matching score"), ax.set_ylim(0, 1), ax.legend(fontsize=7)
