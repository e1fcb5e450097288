"""The intent scorers (kb/intent.py) and their shipped weights (tools/train_intent.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from kb.intent import features, goal_probabilities, in_scope_probability, load_intent_model

MODEL = load_intent_model()["scope"]
GOALS = load_intent_model()["goals"]


def test_features_are_stems_and_pairs_in_order_free_form():
    assert features("Explaining predictions") == features("explaining   PREDICTIONS!")
    assert "b:explain_predict" in features("explaining predictions")
    assert "b:predict_explain" not in features("explaining predictions")
    assert features("") == [] and features("12 345") == []


def test_content_word_pairs_reach_across_function_words():
    # the verb's object tells "interpret a neural network" from "interpret a p-value"
    assert "k:interpret_neural" in features("how to interpret a neural network")
    assert "k:interpret_p" in features("how to interpret a p-value")
    assert [f for f in features("how to interpret a model") if f.startswith("k:")] == ["k:interpret_model"]


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



def test_goal_probabilities_cover_the_handbook_goals(real_kb_goals):
    probs = goal_probabilities(GOALS, "why did it say that")
    assert set(probs) == set(GOALS["labels"]) and abs(sum(probs.values()) - 1.0) < 1e-9
    # the goal scorer knows exactly the handbook's goals: after adding or removing one, run tools/train_intent.py
    assert set(GOALS["labels"]) == real_kb_goals


@pytest.mark.parametrize("question, goal", [
    ("which parts of the picture pushed the network towards 'dog'", "explain-prediction"),
    ("which of my training images taught it to do this", "attribute-to-training-data"),
    ("can I make the chatbot stop bringing up a topic by nudging its internals", "steer-behavior"),
])
def test_a_goal_is_read_from_words_its_record_does_not_use(question, goal):
    probs = goal_probabilities(GOALS, question)
    assert max(probs, key=probs.get) == goal


@pytest.fixture(scope="module")
def real_kb_goals():
    from kb import KnowledgeBase

    return {g["id"] for g in KnowledgeBase(Path(__file__).resolve().parents[1]).list("goal")}
