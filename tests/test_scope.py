"""The in-scope scorer (kb/scope.py) and its shipped weights (tools/train_scope.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from kb.scope import features, in_scope_probability, load_scope_model

MODEL = load_scope_model()


def test_features_are_stems_and_pairs_in_order_free_form():
    assert features("Explaining predictions") == features("explaining   PREDICTIONS!")
    assert "b:explain_predict" in features("explaining predictions")
    assert "b:predict_explain" not in features("explaining predictions")
    assert features("") == [] and features("12 345") == []


@given(st.text(max_size=300))
def test_any_text_gets_a_probability(text):
    p = in_scope_probability(MODEL, text)
    assert 0.0 <= p <= 1.0


def test_no_model_means_no_verdict():
    assert in_scope_probability(None, "why did my model predict this") is None
    assert in_scope_probability({"weights": {}}, "why") is None


def test_shipped_weights_are_complete():
    assert MODEL is not None and 0.0 < MODEL["threshold"] < 1.0
    assert MODEL["trained_on"]["in_scope"] > 500 and MODEL["trained_on"]["out_of_scope"] > 300


@pytest.mark.parametrize("question", [
    "why did my image classifier say this photo is a wolf",
    "which training examples made the model predict this",
    "what does this neuron in layer 3 respond to",
])
def test_intent_to_understand_scores_high(question):
    assert in_scope_probability(MODEL, question) >= MODEL["threshold"]


@pytest.mark.parametrize("question", [
    "how do I make my transformer train faster on one GPU",
    "recipe for sourdough bread with a stiff starter",
    "my circuit breaker trips when the kettle is on",
])
def test_other_needs_score_low(question):
    assert in_scope_probability(MODEL, question) < MODEL["threshold"]

