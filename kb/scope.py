"""Is a question about understanding a model at all? A small logistic-regression scorer over words.

Interpretability shares its words with everything else: "attention span", "probe the network latency",
"gradient clipping", "feature flags". What tells the needs apart is the rest of the question (*why*
did it predict, *what* has it learned, versus *faster*, *install*, *recipe*), which a weighted bag of
word stems and word pairs captures well. The weights are trained offline (tools/train_scope.py) on the
handbook's own in-scope sentences and the question bank's tune split against a corpus of off-topic
needs, and shipped as kb/data/scope_model.json; the build copies them into the query model, so the
query reads them from the store like everything else.

>>> model = {"bias": 0.0, "scale": 1.0, "weights": {"w:why": 2.0, "w:recip": -3.0}}
>>> in_scope_probability(model, "why?") > 0.5 > in_scope_probability(model, "a recipe")
True
"""
from __future__ import annotations

import math

__all__ = ["features", "in_scope_probability", "load_scope_model"]


def features(text: str) -> list[str]:
    """The question's distinct features: word stems (``w:``) and adjacent stem pairs (``b:``).

    >>> features("Why did it predict cats?")
    ['b:did_it', 'b:it_predict', 'b:predict_cat', 'b:why_did', 'w:cat', 'w:did', 'w:it', 'w:predict', 'w:why']
    """
    from .text import stem, tokens

    stems = [stem(t) for t in tokens(text) if not t.isdigit()]
    feats = {f"w:{s}" for s in stems}
    feats.update(f"b:{a}_{b}" for a, b in zip(stems, stems[1:]))
    return sorted(feats)


def score(model: dict, feats: list[str]) -> float:
    """The logit: the bias plus the weights of the features present, scaled by 1/sqrt(count) so that
    a long question is not more certain just for being long."""
    weights = model["weights"]
    hits = [weights.get(f, 0.0) for f in feats]
    return model["bias"] + model.get("scale", 1.0) * sum(hits) / math.sqrt(max(len(feats), 1))


def in_scope_probability(model: dict | None, text: str) -> float | None:
    """P(the question is about interpreting a model), or None when there is no scorer."""
    if not model or not model.get("weights"):
        return None
    z = score(model, features(text))
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def load_scope_model() -> dict | None:
    """The shipped weights (kb/data/scope_model.json), or None when the file is missing."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "scope_model.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
