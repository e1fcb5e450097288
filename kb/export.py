"""The graph (or a neighbourhood of it) as DOT, Mermaid, GraphML or JSON: pure functions of the graph."""
from __future__ import annotations

import json
import re

__all__ = ["FORMATS", "to_dot", "to_mermaid", "to_graphml", "to_json", "export", "simple_edges"]

FORMATS = ("dot", "mermaid", "graphml", "json")


def _nodes(G) -> list[tuple[str, dict]]:
    return sorted(G.nodes(data=True), key=lambda nd: nd[0])


def simple_edges(G) -> list[tuple[str, str, str]]:
    """``(source, target, relation)`` once each, sorted (a relation written in two fields counts once)."""
    return sorted({(u, v, d.get("relation", "")) for u, v, d in G.edges(data=True)})


def _quote(text) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def to_dot(G, name: str = "kb") -> str:
    """Graphviz DOT; nodes are ``kind:id`` with their name as label, edges carry the relation.

    >>> import networkx as nx
    >>> G = nx.MultiDiGraph(); G.add_node("method:a", kind="method", name="A"); G.add_node("concept:b", kind="concept", name="B")
    >>> G.add_edge("method:a", "concept:b", relation="requires")
    0
    >>> print(to_dot(G), end="")
    digraph "kb" {
      "concept:b" [label="B", kind="concept"];
      "method:a" [label="A", kind="method"];
      "method:a" -> "concept:b" [label="requires"];
    }
    """
    lines = [f"digraph {_quote(name)} {{"]
    for node, data in _nodes(G):
        lines.append(f"  {_quote(node)} [label={_quote(data.get('name', node))}, kind={_quote(data.get('kind', ''))}];")
    for u, v, rel in simple_edges(G):
        lines.append(f"  {_quote(u)} -> {_quote(v)} [label={_quote(rel)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_label(text) -> str:
    # Mermaid labels are inside double quotes; it has no escape for them, so use the HTML entity.
    return re.sub(r'["\n\r]', lambda m: "#quot;" if m.group() == '"' else " ", str(text))


def to_mermaid(G, highlight: str | None = None) -> str:
    """A Mermaid flowchart (left to right); node ids are ``n0, n1, ...`` in sorted ref order.

    >>> import networkx as nx
    >>> G = nx.MultiDiGraph([("method:a", "concept:b", {"relation": "requires"})])
    >>> print(to_mermaid(G), end="")
    flowchart LR
      n0["concept:b"]
      n1["method:a"]
      n1 -->|requires| n0
    """
    ids = {node: f"n{i}" for i, (node, _) in enumerate(_nodes(G))}
    lines = ["flowchart LR"]
    for node, data in _nodes(G):
        lines.append(f'  {ids[node]}["{_mermaid_label(data.get("name", node))}"]')
    for u, v, rel in simple_edges(G):
        lines.append(f"  {ids[u]} -->|{_mermaid_label(rel).replace('|', '/')}| {ids[v]}")
    for node, data in _nodes(G):
        kind = data.get("kind")
        if kind:
            lines.append(f"  class {ids[node]} {kind.replace('_', '-')}")
    if highlight in ids:
        lines.append(f"  style {ids[highlight]} stroke-width:3px")
    return "\n".join(lines) + "\n"


def _graphml_clean(G):
    """A copy of ``G`` whose attributes GraphML can hold (no None values, scalars only)."""
    import networkx as nx

    H = nx.MultiDiGraph()
    for node, data in _nodes(G):
        H.add_node(node, **{k: v if isinstance(v, (int, float, bool)) else str(v)
                            for k, v in sorted(data.items()) if v is not None})
    for u, v, rel in simple_edges(G):
        H.add_edge(u, v, key=rel, relation=rel)
    return H


def to_graphml(G) -> str:
    """GraphML (networkx's writer), attributes without None values."""
    import networkx as nx

    return "\n".join(nx.generate_graphml(_graphml_clean(G))) + "\n"


def to_json(G) -> str:
    """node-link JSON (networkx ``node_link_data``), sorted so the output is stable."""
    import networkx as nx

    data = nx.node_link_data(_graphml_clean(G), edges="links")
    data["nodes"] = sorted(data["nodes"], key=lambda n: n["id"])
    data["links"] = sorted(data["links"], key=lambda e: (e["source"], e["target"], str(e.get("key"))))
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(G, fmt: str) -> str:
    """``G`` in ``fmt`` (one of FORMATS)."""
    writers = {"dot": to_dot, "mermaid": to_mermaid, "graphml": to_graphml, "json": to_json}
    if fmt not in writers:
        raise ValueError(f"unknown graph format {fmt!r}; formats are {', '.join(FORMATS)}")
    return writers[fmt](G)
