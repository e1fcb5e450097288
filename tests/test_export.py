"""kb graph and kb bib: the graph as DOT, Mermaid, GraphML and JSON; reading lists as BibTeX."""
from __future__ import annotations

import json

import networkx as nx
import pytest

from kb.cli import cli
from kb.export import FORMATS, export, to_dot, to_graphml, to_json, to_mermaid


@pytest.fixture
def G():
    g = nx.MultiDiGraph()
    g.add_node("method:a", kind="method", id="a", name='A "quoted" method', level="beginner")
    g.add_node("concept:b", kind="concept", id="b", name="B", level=None)
    g.add_node("paper:k", kind="paper", id="k", name="K", level=None, year=2020)
    g.add_edge("method:a", "concept:b", key="requires:prerequisites", relation="requires", field="prerequisites")
    g.add_edge("method:a", "concept:b", key="mentions:body", relation="mentions", field="body")
    g.add_edge("method:a", "paper:k", key="cites:papers", relation="cites", field="papers")
    g.add_edge("method:a", "paper:k", key="cites:body", relation="cites", field="body")  # same relation twice
    return g


def test_dot_escapes_quotes_and_lists_each_relation_once(G):
    text = to_dot(G)
    assert r'label="A \"quoted\" method"' in text
    assert text.count('"method:a" -> "paper:k"') == 1
    assert '"method:a" -> "concept:b" [label="mentions"];' in text


def test_mermaid_ids_labels_and_highlight(G):
    text = to_mermaid(G, highlight="method:a")
    assert text.startswith("flowchart LR\n")
    assert 'n1["A #quot;quoted#quot; method"]' in text
    assert "n1 -->|requires| n0" in text and "style n1 stroke-width:3px" in text


def test_graphml_round_trips(G):
    H = nx.parse_graphml(to_graphml(G), force_multigraph=True)
    assert set(H.nodes) == set(G.nodes)
    assert H.nodes["method:a"]["name"] == 'A "quoted" method' and "level" not in H.nodes["concept:b"]
    assert sorted(d["relation"] for _, _, d in H.edges(data=True)) == ["cites", "mentions", "requires"]


def test_json_is_node_link_and_stable(G):
    data = json.loads(to_json(G))
    assert [n["id"] for n in data["nodes"]] == ["concept:b", "method:a", "paper:k"]
    H = nx.node_link_graph(data, edges="links")
    assert H.number_of_edges() == 3
    assert to_json(G) == to_json(G.copy())


def test_export_rejects_unknown_formats(G):
    assert set(FORMATS) == {"dot", "mermaid", "graphml", "json"}
    with pytest.raises(ValueError):
        export(G, "svg")


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_graph_neighbourhood(minimal, runner, fmt):
    result = runner.invoke(cli, ["--root", str(minimal), "graph", "--around", "saliency-maps", "--depth", "1", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert "Saliency maps" in result.output and "Superposition" not in result.output  # two links away
    if fmt == "json":
        refs = {n["ref"] for n in json.loads(result.output)["nodes"]}
        assert "method:saliency-maps" in refs and "concept:gradient" in refs and "topic:superposition" not in refs


def test_cli_graph_whole_and_depth_two(minimal, runner):
    whole = runner.invoke(cli, ["--root", str(minimal), "graph", "--format", "json"])
    nodes = {n["ref"] for n in json.loads(whole.output)["nodes"]}
    assert "topic:superposition" in nodes and "paper:sundararajan2017axiomatic" in nodes
    wider = runner.invoke(cli, ["--root", str(minimal), "graph", "--around", "saliency-maps", "--depth", "3", "--format", "dot"])
    assert "topic:superposition" in wider.output
    bad = runner.invoke(cli, ["--root", str(minimal), "graph", "--around", "no-such-record"])
    assert bad.exit_code != 0 and "no record" in bad.output


def test_cli_bib_reading_list(minimal, runner):
    import bibtexparser

    result = runner.invoke(cli, ["--root", str(minimal), "bib", "method:integrated-gradients"])
    assert result.exit_code == 0, result.output
    keys = [e.key for e in bibtexparser.parse_string(result.output).entries]
    assert keys == ["sundararajan2017axiomatic"]
    everything = runner.invoke(cli, ["--root", str(minimal), "bib"])
    assert [e.key for e in bibtexparser.parse_string(everything.output).entries] == ["simonyan2014deep", "sundararajan2017axiomatic"]
    path = runner.invoke(cli, ["--root", str(minimal), "bib", "path:beginner"])
    assert [e.key for e in bibtexparser.parse_string(path.output).entries] == ["simonyan2014deep"]
