"""The records as a networkx MultiDiGraph: nodes are ``kind:id`` refs, edges carry their relation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from .bib import Paper
from .load import Loaded
from .refs import LINK_FIELDS, find_citations, find_links, parse_ref, resolve_ref

__all__ = ["Link", "record_links", "resolve_links", "build_graph", "PROSE_FIELDS"]

# Fields whose text is Markdown and may hold [[kind:id]] links and [@citekey] citations.
PROSE_FIELDS = ("body", "summary", "implementation_notes", "problem", "approach", "relevance",
                "why_it_matters", "when_to_use", "when_not_to_use", "assumptions", "pitfalls",
                "considerations", "common_findings", "findings", "strengths", "gotchas", "questions")


@dataclass(frozen=True)
class Link:
    """One reference written in a record: where it is, what it names, and the relation it makes."""

    source: str            # "kind:id" of the record holding it
    relation: str
    kind: str | None       # None: any kind (resolved by a unique id)
    target: str            # id (citekey for papers)
    file: str
    line: int | None
    field: str
    expected: str | None = None  # the kind the field requires, when fixed

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.target}"


def _items(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ref_of(item):
    """The ref text inside a link-field item (plain string or a {method|tool|ref: ...} object)."""
    if isinstance(item, str):
        return item
    values = getattr(item, "__dict__", {})
    return next((values[a] for a in ("ref", "method", "tool") if a in values), None)


def record_links(rec: Loaded) -> Iterator[Link]:
    """Every link and citation ``rec`` writes, from its link fields and from its prose.

    >>> from pathlib import Path
    >>> from kb.load import load_yaml, Loaded
    >>> from kb.schema import Concept
    >>> m = Concept(id="kl", name="KL", summary="s", level="beginner", area="information-theory",
    ...             definition="d", prerequisites=["concept:entropy"], body="see [@kullback1951information]")
    >>> [(l.relation, l.kind, l.target) for l in record_links(Loaded("concept", "kl", m, "f.yaml"))]
    [('requires', 'concept', 'entropy'), ('cites', 'paper', 'kullback1951information')]
    """
    # model.__dict__ rather than getattr: a missing attribute on a pydantic model takes a slow path
    fields, src = rec.model.__dict__, rec.ref
    for fld, (relation, fixed) in LINK_FIELDS.items():
        if rec.kind == "tutorial" and fld == "steps":
            continue
        for i, item in enumerate(_items(fields.get(fld))):
            text = _ref_of(item)
            if not text:
                continue
            kind, ident = parse_ref(text, fixed)
            yield Link(src, relation, kind, ident, rec.file, rec.line(fld, i), fld, fixed)
    for i, key in enumerate(fields.get("papers") or []):
        yield Link(src, "cites", "paper", key, rec.file, rec.line("papers", i), "papers")
    intro = fields.get("introduced_by")
    if intro:
        yield Link(src, "introduced_by", "paper", intro, rec.file, rec.line("introduced_by"), "introduced_by")
    for fld in PROSE_FIELDS:
        value = fields.get(fld)
        texts = value if isinstance(value, list) else [value]
        for i, text in enumerate(texts):
            if not isinstance(text, str) or "[" not in text:
                continue
            base = rec.body_line if (fld == "body" and rec.body_line) else rec.line(fld, i) if isinstance(value, list) else rec.line(fld)
            for kind, ident, offset in find_links(text):
                yield Link(src, "mentions", kind, ident, rec.file, (base or 0) + offset or None, fld)
            for key, offset in find_citations(text):
                yield Link(src, "cites", "paper", key, rec.file, (base or 0) + offset or None, fld)


def resolve_links(links: Iterable[Link], known: dict[str, set[str]]) -> tuple[list[tuple[Link, str]], list[tuple[Link, str]]]:
    """Split links into resolved ``(link, "kind:id")`` and failed ``(link, code)``.

    ``known`` maps each id to the kinds that have it. A bare id in an open field resolves when
    exactly one non-paper kind has it.
    """
    resolved, failed = [], []
    for link in links:
        ref, code = resolve_ref(link.kind, link.target, known.get(link.target, ()), link.expected)
        if ref:
            resolved.append((link, ref))
        else:
            failed.append((link, code))
    return resolved, failed


def build_graph(records: list[Loaded], papers: list[Paper], declared: Iterable[tuple[str, str]] = ()):
    """Build the MultiDiGraph of ``records`` and ``papers``; return ``(graph, failed_links)``.

    ``declared`` lists ``(kind, id)`` of records that exist but failed to load: links to them are
    neither edges nor failures. Node attributes: kind, id, name, level, file. Edge attributes:
    relation, field, line.
    """
    import networkx as nx

    G = nx.MultiDiGraph()
    known: dict[str, set[str]] = {}
    for rec in records:
        if rec.kind == "paper":
            continue  # notes merge into their paper's node below
        G.add_node(rec.ref, kind=rec.kind, id=rec.id, name=rec.model.name, level=rec.model.level, file=rec.file)
        known.setdefault(rec.id, set()).add(rec.kind)
    for p in papers:
        G.add_node(p.ref, kind="paper", id=p.id, name=p.title, level=None, file=p.file, year=p.year)
        known.setdefault(p.id, set()).add("paper")
    for kind, ident in declared:
        known.setdefault(ident, set()).add(kind)
    links = [link for rec in records for link in record_links(rec)]
    resolved, failed = resolve_links(links, known)
    for link, target in resolved:
        if link.source != target and target in G:
            G.add_edge(link.source, target, key=f"{link.relation}:{link.field}", relation=link.relation,
                       field=link.field, line=link.line)
    return G, failed
