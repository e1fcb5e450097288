"""What a question wants, learned from examples: is it about understanding a model at all, and which goal.

Interpretability shares its words with everything else: "attention span", "probe the network latency",
"gradient clipping", "feature flags". What tells the needs apart is the rest of the question (*why*
did it predict, *what* has it learned, versus *faster*, *install*, *recipe*), which weights over word
stems and word pairs capture well; the same features tell goals apart when a question avoids the goal's
own words ("which bits of the photo mattered" is explaining a prediction).

Two linear scorers over the same features: a logistic regression for "in scope", a softmax regression
over the goals. They are trained offline (tools/train_intent.py) on the handbook's own need statements
and the question bank's tune split, against a corpus of off-topic needs written blind (dev/), and
shipped as kb/data/intent_model.json; the build copies them into the query model, so the query reads
them from the store like everything else.

>>> model = {"bias": 0.0, "scale": 1.0, "weights": {"w:why": 2.0, "w:recip": -3.0}}
>>> in_scope_probability(model, "why?") > 0.5 > in_scope_probability(model, "a recipe")
True
"""
from __future__ import annotations

import functools
import math

__all__ = ["features", "in_scope_probability", "goal_probabilities", "load_intent_model"]


def features(text: str, content_pairs: bool = True) -> list[str]:
    """The question's distinct features: word stems (``w:``), adjacent stem pairs (``b:``) and, unless
    ``content_pairs`` is false, pairs of consecutive content words (``k:``). The scope scorer uses the
    content pairs; the goal scorer does not (5-fold CV on 7,799 goal-labelled dev questions: goal read
    right 88.8% without them, 87.7% with them).

    >>> features("Why did it predict cats?")
    ['b:did_it', 'b:it_predict', 'b:predict_cat', 'b:why_did', 'k:predict_cat', 'k:why_predict', 'w:cat', 'w:did', 'w:it', 'w:predict', 'w:why']
    """
    from .text import stem, tokens

    words = [t for t in tokens(text) if not t.isdigit()]
    stems = [stem(t) for t in words]
    feats = {f"w:{s}" for s in stems}
    feats.update(f"b:{a}_{b}" for a, b in zip(stems, stems[1:]))
    if content_pairs:
        # pairs of content words across function words ("interpret a neural network" -> interpret_neural):
        # a verb's object tells its senses apart ("interpret a p-value"), which the adjacent pair cannot
        function_words = _function_words()
        content = [s for t, s in zip(words, stems) if t not in function_words]
        feats.update(f"k:{a}_{b}" for a, b in zip(content, content[1:]))
    return sorted(feats)


@functools.cache
def _function_words() -> frozenset:
    from .text import STOPWORDS

    # the query's stopwords, less the nouns that name what a question is about
    return STOPWORDS - {"model", "models", "network", "networks", "neural", "method", "methods",
                        "technique", "techniques", "approach", "approaches", "tool", "tools"}


def _norm(feats: list[str]) -> float:
    # 1/sqrt(count): a long question is not more certain just for being long
    return 1.0 / math.sqrt(max(len(feats), 1))


def in_scope_probability(model: dict | None, text: str) -> float | None:
    """P(the question is about interpreting a model), or None when there is no scorer."""
    if not model or not model.get("weights"):
        return None
    feats = features(text)
    weights = model["weights"]
    z = model["bias"] + model.get("scale", 1.0) * _norm(feats) * sum(weights.get(f, 0.0) for f in feats)
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def goal_probabilities(model: dict | None, text: str) -> dict[str, float]:
    """P(goal | question) over the goals the scorer was trained on; {} without a scorer.

    ``weights`` maps a feature to one signed byte per label, as hex; ``scale`` turns a byte into a weight.

    >>> m = {"labels": ["a", "b"], "bias": [0.0, 0.0], "scale": 0.02, "weights": {"w:why": "64" "9c"}}
    >>> round(goal_probabilities(m, "why")["a"], 2)
    0.98
    """
    if not model or not model.get("labels") or not model.get("weights"):
        return {}
    feats = features(text, content_pairs=False)
    n = _norm(feats)
    z = list(model["bias"])
    scale = n * model.get("scale", 1.0)
    for f in feats:
        row = model["weights"].get(f)
        if row:
            for i, byte in enumerate(bytes.fromhex(row)):
                z[i] += scale * (byte - 256 if byte > 127 else byte)
    top = max(z)
    e = [math.exp(v - top) for v in z]
    total = sum(e)
    return {label: v / total for label, v in zip(model["labels"], e)}


def load_intent_model() -> dict:
    """The shipped weights (kb/data/intent_model.json): ``{"scope": …, "goals": …}``, {} when missing."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "intent_model.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
