"""A record's neighbourhood drawn for its page: Mermaid source (MkDocs) and an inline SVG (the HTML site).

Both draw the same star: the record in the middle, its direct links around it (at most
MAX_DIAGRAM_NODES nodes, papers last), one arrow per neighbour and direction with its relations joined.
"""
from __future__ import annotations

from typing import Callable

from ..handbook import Site, sort_key

__all__ = ["MAX_DIAGRAM_NODES", "near", "mermaid", "svg"]

MAX_DIAGRAM_NODES = 30


def near(site: Site, ref: str) -> list[str]:
    """The records ``ref`` links to or is linked from, papers last, at most MAX_DIAGRAM_NODES - 1."""
    G = site.graph
    found = (set(G.successors(ref)) | set(G.predecessors(ref))) - {ref}
    return sorted(found, key=lambda r: (r.startswith("paper:"), sort_key(site.name(r), r)))[:MAX_DIAGRAM_NODES - 1]


def mermaid(site: Site, ref: str) -> str:
    """Mermaid source of ``ref``'s neighbourhood (at most MAX_DIAGRAM_NODES nodes, papers last).

    A star, as the HTML site's SVG draws it: the record's own links, one arrow per neighbour and
    direction with its relations joined (the links among the neighbours would make a hairball).
    """
    import networkx as nx

    from ..export import to_mermaid

    G = site.graph
    if ref not in G:
        return ""
    around = near(site, ref)
    star = nx.MultiDiGraph()
    for node in [ref, *around]:
        star.add_node(node, **G.nodes[node])
    relations: dict[tuple[str, str], set[str]] = {}
    keep = set(around)
    for u, v, r in site.edges(source=ref) + site.edges(target=ref):
        if (v if u == ref else u) in keep:
            relations.setdefault((u, v), set()).add(r)
    for (u, v), rels in sorted(relations.items()):
        star.add_edge(u, v, relation=", ".join(sorted(rels)))
    return to_mermaid(star, highlight=ref)


def svg(site: Site, ref: str, url_of: Callable[[str], str | None]) -> str:
    """The same neighbourhood as an inline SVG (HTML site: no Mermaid script needed offline);
    ``url_of(ref)`` is the link to a record's page, or None.

    The record sits in the middle, each neighbour is a link to its page:
    records linking to it on the left, records it links to on the right; a line's tooltip names the relations.
    """
    import math
    from html import escape

    around = near(site, ref) if ref in site.graph else []
    if not around:
        return ""
    outgoing = {v for _, v, _ in site.edges(source=ref)}
    sides = [[n for n in around if n not in outgoing], [n for n in around if n in outgoing]]  # in | out
    columns = {0: (95, 255), 1: (645, 805)}  # two columns a side when a side is long
    rows = max(1, *(math.ceil(len(side) / 2) if len(side) > 10 else len(side) for side in sides))
    width, height = 900, rows * 32 + 24
    cx, cy = width / 2, height / 2
    placed = []
    for s_i, side in enumerate(sides):
        outer, inner = columns[s_i]
        per = math.ceil(len(side) / 2) if len(side) > 10 else len(side)
        for i, other in enumerate(side):
            col, row = divmod(i, per) if per else (0, 0)
            count = min(per, len(side) - col * per)
            x = inner if col == 0 else outer
            y = cy + (row - (count - 1) / 2) * 32
            placed.append((other, x, y))
    rel: dict[str, set[str]] = {}
    for u, v, r in site.edges(source=ref) + site.edges(target=ref):
        other = v if u == ref else u
        rel.setdefault(other, set()).add(r if u == ref else f"{r} (in)")
    lines, nodes = [], []

    def node(x, y, target, cls):
        label = site.name(target)
        label = label if len(label) <= 22 else label[:21] + "…"
        href = url_of(target) or "#"
        kind = target.split(":")[0].replace("_", "-")
        return (f'<a href="{escape(href)}"><g class="node {kind} {cls}"><title>{escape(site.name(target))} '
                f'({escape(target)})</title><rect x="{x - 70:.1f}" y="{y - 12:.1f}" width="140" height="24" rx="6"/>'
                f'<text x="{x:.1f}" y="{y + 4:.1f}">{escape(label)}</text></g></a>')

    for other, x, y in placed:
        lines.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}"><title>'
                     f'{escape(", ".join(sorted(rel.get(other, ()))))}</title></line>')
        nodes.append(node(x, y, other, ""))
    nodes.append(node(cx, cy, ref, "center"))
    svg = (f'<div class="diagram"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'role="group" aria-label="Neighbourhood of {escape(site.name(ref))}">'
           + "".join(lines) + "".join(nodes) + "</svg></div>")
    return svg
