"""Learning paths: properties on generated prerequisite graphs, and the command on a real tree."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from kb import KnowledgeBase
from kb.cli import cli
from kb.paths import PrerequisiteCycle, expand_curated, prerequisite_order


@st.composite
def dags(draw, max_nodes=25):
    """A random DAG: node i may require only nodes with a smaller index."""
    n = draw(st.integers(1, max_nodes))
    req = {}
    for i in range(n):
        req[f"n{i}"] = sorted({f"n{j}" for j in draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=4)) if j < i})
    return req


def closure(req, node, stop=frozenset()):
    seen, todo = set(), [node]
    while todo:
        x = todo.pop()
        if x in seen or x in stop:
            continue
        seen.add(x)
        todo.extend(req.get(x, ()))
    return seen


@settings(max_examples=300, deadline=None)
@given(dags(), st.data())
def test_order_respects_prerequisites_and_drops_known(req, data):
    nodes = sorted(req)
    target = data.draw(st.sampled_from(nodes))
    known = set(data.draw(st.lists(st.sampled_from(nodes), max_size=4)))
    order = prerequisite_order(req, target, known)
    if target in known:
        assert order == []
        return
    pos = {n: i for i, n in enumerate(order)}
    assert order[-1] == target
    assert len(order) == len(set(order))                        # nothing twice
    assert not (set(order) & known)                              # nothing known kept
    assert set(order) == closure(req, target, frozenset(known))  # nothing missing, nothing extra
    for node in order:                                           # every step after what it requires
        for pre in req.get(node, ()):
            if pre not in known:
                assert pos[pre] < pos[node]


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_cycles_are_reported_not_looped(req, data):
    nodes = sorted(req)
    a, b = data.draw(st.sampled_from(nodes)), data.draw(st.sampled_from(nodes))
    # close a cycle: a requires b and b (transitively) requires a
    req = {k: list(v) for k, v in req.items()}
    req[a] = req[a] + [b]
    req[b] = req[b] + [a]
    with pytest.raises(PrerequisiteCycle) as err:
        prerequisite_order(req, a)
    cycle = err.value.cycle
    assert cycle[0] == cycle[-1] and len(cycle) >= 2
    for u, v in zip(cycle, cycle[1:]):
        assert v in req[u]


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_curated_path_keeps_its_order_and_fills_gaps(req, data):
    nodes = sorted(req)
    steps = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=5, unique=True))
    out = expand_curated(req, steps)
    order = [n for n, _ in out]
    pos = {n: i for i, n in enumerate(order)}
    assert sorted(n for n, curated in out if curated) == sorted(steps)
    # curated steps keep their order, unless a later step is a prerequisite of an earlier one
    for i, a in enumerate(steps):
        earlier = set().union(*(closure(req, s) for s in steps[: i + 1]))
        for b in steps[i + 1:]:
            if b not in earlier:
                assert pos[a] < pos[b]
    for node in order:
        for pre in req.get(node, ()):
            assert pos[pre] < pos[node]
    assert set(order) == set().union(*(closure(req, s) for s in steps))


def test_deep_chain_does_not_hit_recursion_limit():
    req = {f"n{i}": [f"n{i - 1}"] for i in range(1, 3000)}
    assert len(prerequisite_order(req, "n2999")) == 3000


def test_path_command(minimal, runner):
    out = runner.invoke(cli, ["--root", str(minimal), "path", "--to", "method:integrated-gradients", "--format", "json"])
    data = json.loads(out.output)
    assert data["target"] == "method:integrated-gradients"
    assert [s["ref"] for s in data["steps"]] == ["concept:gradient", "method:integrated-gradients"]
    assert data["steps"][0]["why"] == "needed for Integrated Gradients"
    assert data["steps"][1]["paper"]["id"] == "sundararajan2017axiomatic"
    known = json.loads(runner.invoke(cli, ["--root", str(minimal), "path", "--to", "integrated-gradients",
                                           "--know", "gradient", "--format", "json"]).output)
    assert [s["ref"] for s in known["steps"]] == ["method:integrated-gradients"]


def test_audience_path_inserts_skipped_prerequisites(minimal):
    data = KnowledgeBase(minimal).path(audience="beginner")
    assert [s["ref"] for s in data["steps"]] == ["concept:gradient", "concept:attribution", "method:saliency-maps"]
    assert data["steps"][1]["why"] == "What attribution means."
