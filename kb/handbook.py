"""What the handbook shows, computed from the graph: guides, tables, glossary, reading lists, bibliography.

Pure functions over a ``Site`` (records as dicts, papers, the graph). No jinja2 and no files here:
kb.render turns these answers into pages, and ``kb bib`` exports the reading lists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields as dc_fields
from typing import Iterable

from .bib import Paper
from .paths import PrerequisiteCycle, by_level, curated_steps, path_steps, prerequisite_order
from .refs import KINDS, parse_ref, resolve_ref

__all__ = [
    "Site", "site_from_reader", "requires_map", "guide_steps", "record_papers", "reading_list",
    "prerequisite_reading_list", "family_order", "selection_table", "tool_matrix", "glossary",
    "bibliography_groups", "paper_group", "links_of", "sort_key",
]

_ABBREVIATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]{0,11}$")


def sort_key(name: str, ref: str = "") -> tuple:
    """Alphabetical order readers expect: case-insensitive, accents after plain letters, ref breaks ties."""
    return (name.casefold(), name, ref)


@dataclass
class Site:
    """The content as the handbook sees it: ``records`` (``kind:id`` -> fields, papers included), ``papers``, ``graph``."""

    records: dict[str, dict]
    papers: dict[str, Paper]
    graph: object
    _kinds: dict[str, set[str]] = field(default_factory=dict, init=False, repr=False)  # id -> kinds having it

    def __post_init__(self):
        for ref in self.records:
            kind, _, ident = ref.partition(":")
            self._kinds.setdefault(ident, set()).add(kind)

    def get(self, ref: str) -> dict | None:
        return self.records.get(ref)

    def name(self, ref: str) -> str:
        rec = self.records.get(ref)
        return rec["name"] if rec else ref.split(":", 1)[-1]

    def of_kind(self, kind: str) -> list[dict]:
        """Records of ``kind``, sorted by name."""
        found = [r for ref, r in self.records.items() if r["kind"] == kind]
        return sorted(found, key=lambda r: sort_key(r["name"], r["id"]))

    def resolve(self, text: str | None, fixed: str | None = None) -> str | None:
        """The ``kind:id`` a link-field value names, or None when it names no record."""
        if not text:
            return None
        try:
            kind, ident = parse_ref(text, fixed)
        except ValueError:
            return None
        return resolve_ref(kind, ident, self._kinds.get(ident, ()))[0]

    def edges(self, relation: str | None = None, source: str | None = None, target: str | None = None):
        """``(source, target, relation)`` triples, deduplicated and sorted."""
        G = self.graph
        if source is not None:
            it = ((source, v, d) for _, v, d in G.out_edges(source, data=True)) if source in G else ()
        elif target is not None:
            it = ((u, target, d) for u, _, d in G.in_edges(target, data=True)) if target in G else ()
        else:
            it = G.edges(data=True)
        return sorted({(u, v, d["relation"]) for u, v, d in it if relation is None or d["relation"] == relation})


def site_from_reader(reader) -> Site:
    """A Site from a built store (kb.store.Reader)."""
    import networkx as nx

    records = {f"{r['kind']}:{r['id']}": r for r in reader.records()}
    names = {f.name for f in dc_fields(Paper)}
    papers = {r["id"]: Paper(**{k: r[k] for k in names}) for r in records.values() if r["kind"] == "paper"}
    G = nx.MultiDiGraph()
    for ref, r in sorted(records.items()):
        G.add_node(ref, kind=r["kind"], id=r["id"], name=r["name"], level=r.get("level"), file=r.get("file"))
    for source, target, relation in sorted(reader.edges()):
        G.add_edge(source, target, key=relation, relation=relation, field="")
    return Site(records, papers, G)


# -- links and papers ----------------------------------------------------------------------------
def links_of(site: Site, ref: str) -> dict:
    """``{"out": [(relation, ref)], "in": [(relation, ref)]}``, deduplicated, papers last."""
    def order(pair):
        rel, other = pair
        return (other.startswith("paper:"), rel, sort_key(site.name(other), other))

    out = sorted({(rel, v) for _, v, rel in site.edges(source=ref)}, key=order)
    inn = sorted({(rel, u) for u, _, rel in site.edges(target=ref)}, key=order)
    return {"out": out, "in": inn}


def record_papers(site: Site, ref: str) -> list[str]:
    """Citekeys a record cites, in reading order: what introduced it, its papers, then prose citations."""
    rec = site.get(ref) or {}
    keys = [rec.get("introduced_by")] + list(rec.get("papers") or [])
    keys += [v.split(":", 1)[1] for _, v, rel in site.edges(source=ref) if v.startswith("paper:")]
    return [k for k in dict.fromkeys(keys) if k and k in site.papers]


def requires_map(site: Site) -> dict[str, list[str]]:
    """``ref -> [refs it requires]`` from the graph's ``requires`` edges."""
    out: dict[str, list[str]] = {}
    for u, v, _ in site.edges("requires"):
        out.setdefault(u, []).append(v)
    return out


def _level_key(site: Site):
    return by_level(lambda ref: (site.get(ref) or {}).get("level"))


def guide_steps(site: Site, path_ref: str) -> list[dict]:
    """A path record's steps with the prerequisites they skip inserted first (prerequisite order).

    Each step: ``{"ref", "note" (None for inserted ones), "curated", "needed_for": [refs]}``
    (kb.paths.curated_steps); a cycle among the prerequisites leaves the curated steps as written.
    """
    notes: dict[str, str] = {}
    for step in (site.get(path_ref) or {}).get("steps") or []:
        ref = site.resolve(step["ref"])
        if ref and ref not in notes:
            notes[ref] = step["note"]
    requires = requires_map(site)
    try:
        return curated_steps(requires, notes, (), _level_key(site))
    except PrerequisiteCycle:
        return path_steps(requires, [(n, True) for n in notes], notes)


def reading_list(site: Site, refs: Iterable[str]) -> list[str]:
    """The papers of ``refs`` in their order, each once (papers among ``refs`` count as themselves)."""
    keys: list[str] = []
    for ref in refs:
        if ref.startswith("paper:"):
            keys.append(ref.split(":", 1)[1])
        else:
            keys.extend(record_papers(site, ref))
    return [k for k in dict.fromkeys(keys) if k in site.papers]


def prerequisite_reading_list(site: Site, ref: str) -> list[str]:
    """Papers for learning ``ref``: its prerequisites' papers first, then its own, then papers about it."""
    if ref.startswith("path:"):
        order = [s["ref"] for s in guide_steps(site, ref)]
    else:
        try:
            order = prerequisite_order(requires_map(site), ref, (), _level_key(site))
        except PrerequisiteCycle:
            order = [ref]
    about = sorted(u for u, _, rel in site.edges("about", target=ref))
    return reading_list(site, order + about)


def family_order(site: Site, records: list[dict]) -> list[str]:
    """Methods of one family in reading order: easier levels first, each after the methods of the
    family it requires."""
    refs = [f"method:{r['id']}" for r in records]
    inside = set(refs)
    req = {u: [v for v in vs if v in inside] for u, vs in requires_map(site).items() if u in inside}
    order: list[str] = []
    for ref in sorted(refs, key=_level_key(site)):
        try:
            order += [n for n in prerequisite_order(req, ref, order) if n not in order]
        except PrerequisiteCycle:
            order.append(ref)
    return order


# -- tables --------------------------------------------------------------------------------------
def _ancestors(site: Site, arch: str) -> list[str]:
    seen = [arch]
    while True:
        parents = [v for _, v, _ in site.edges("parent", source=seen[-1]) if v not in seen]
        if not parents:
            return seen
        seen.append(parents[0])


def selection_table(site: Site) -> dict:
    """Goal x architecture -> methods, from ``serves``/``recommends``/``applies_to``/``parent`` edges.

    A method fits a cell when it serves the goal (or the goal recommends it) and it applies to the
    architecture, to one of its ancestors (gru -> rnn), or the architecture recommends it.
    Architecture-agnostic methods (no ``applies_to`` edge) go to ``agnostic[goal]``.
    Returns ``{"goals": [ref], "architectures": [ref], "cells": {goal: {arch: [method]}}, "agnostic": {goal: [method]}}``.
    """
    goals = [f"goal:{g['id']}" for g in site.of_kind("goal")]
    archs = [f"architecture:{a['id']}" for a in site.of_kind("architecture")]
    applies: dict[str, set[str]] = {}
    for m, a, _ in site.edges("applies_to"):
        if m.startswith("method:"):
            applies.setdefault(m, set()).add(a)
    for a, m, _ in site.edges("recommends"):
        if a.startswith("architecture:"):
            applies.setdefault(m, set()).add(a)
    explicit = {m for m, a, _ in site.edges("applies_to") if m.startswith("method:")}
    cells, agnostic = {}, {}
    for goal in goals:
        recommended = [site.resolve(r["method"], "method") for r in (site.get(goal) or {}).get("recommended") or []]
        serving = {m for m, _, _ in site.edges("serves", target=goal) if m.startswith("method:")}
        serving |= {m for _, m, _ in site.edges("recommends", source=goal)}
        rank = {m: i for i, m in enumerate(r for r in recommended if r)}
        methods = sorted(serving, key=lambda m: (rank.get(m, len(rank)), sort_key(site.name(m), m)))
        cells[goal] = {a: [m for m in methods if applies.get(m, set()) & set(_ancestors(site, a))] for a in archs}
        agnostic[goal] = [m for m in methods if m not in explicit and m not in applies]
    return {"goals": goals, "architectures": archs, "cells": cells, "agnostic": agnostic}


def tool_matrix(site: Site) -> dict:
    """Tools x methods from ``implemented_by`` and ``implements`` edges, with each tool's API name.

    Returns ``{"tools": [ref], "methods": [ref], "cells": {method: {tool: [api, ...]}}}`` (methods
    that no tool implements are left out).
    """
    pairs: set[tuple[str, str]] = set()
    for m, t, _ in site.edges("implemented_by"):
        if m.startswith("method:") and t.startswith("tool:"):
            pairs.add((m, t))
    for t, m, _ in site.edges("implements"):
        pairs.add((m, t))
    apis: dict[tuple[str, str], list[str]] = {}
    for m, t in pairs:
        names = [u["api"] for u in (site.get(m) or {}).get("tools") or [] if site.resolve(u["tool"], "tool") == t]
        names += [u["api"] for u in (site.get(t) or {}).get("implements") or [] if site.resolve(u["method"], "method") == m]
        apis[(m, t)] = list(dict.fromkeys(names))
    tools = sorted({t for _, t in pairs}, key=lambda r: sort_key(site.name(r), r))
    methods = sorted({m for m, _ in pairs}, key=lambda r: ((site.get(r) or {}).get("family", ""), sort_key(site.name(r), r)))
    cells = {m: {t: apis.get((m, t), []) for t in tools if (m, t) in apis} for m in methods}
    return {"tools": tools, "methods": methods, "cells": cells}


# -- glossary and bibliography --------------------------------------------------------------------
def glossary(site: Site) -> list[dict]:
    """A-Z entries: every concept (definition), method and topic (summary), plus abbreviations as pointers.

    Each entry: ``{"term", "ref", "text" (None for an alias), "alias_of" (ref or None), "letter"}``,
    sorted case-insensitively.
    """
    entries = []
    names = set()
    for kind, field in (("concept", "definition"), ("method", "summary"), ("topic", "summary")):
        for rec in site.of_kind(kind):
            ref = f"{kind}:{rec['id']}"
            entries.append({"term": rec["name"], "ref": ref, "text": rec.get(field) or rec["summary"], "alias_of": None})
            names.add(rec["name"].casefold())
    for entry in list(entries):
        for alias in (site.get(entry["ref"]) or {}).get("aliases") or []:
            upper = sum(c.isupper() for c in alias)
            if _ABBREVIATION.match(alias) and upper >= 2 and alias.casefold() not in names:
                names.add(alias.casefold())
                entries.append({"term": alias, "ref": entry["ref"], "text": None, "alias_of": entry["ref"]})
    entries.sort(key=lambda e: sort_key(e["term"], e["ref"]))
    for e in entries:
        first = e["term"][:1].upper()
        e["letter"] = first if "A" <= first <= "Z" else "#"
    return entries


def paper_group(site: Site, key: str) -> tuple[str, str]:
    """The ``(kind, value)`` a paper is filed under in the bibliography.

    The method it introduced (by family), else the first record its note is about, else the first
    record citing it: a method files under its family, a concept under its area, a case study under
    its domain, a topic under itself, anything else under its kind.
    """
    ref = f"paper:{key}"
    introduced = sorted(u for u, _, rel in site.edges("introduced_by", target=ref))
    about = [site.resolve(t) for t in (site.get(ref) or {}).get("topics") or []]
    kind_rank = {k: i for i, k in enumerate(KINDS)}
    citing = sorted({u for u, _, _ in site.edges(target=ref)}, key=lambda r: (kind_rank[r.split(":")[0]], r))
    for owner in introduced + [a for a in about if a] + citing:
        rec = site.get(owner) or {}
        kind = rec.get("kind")
        if kind == "method":
            return ("method", rec["family"])
        if kind == "concept":
            return ("concept", rec["area"])
        if kind == "case_study":
            return ("case_study", rec["domain"])
        if kind == "topic":
            return ("topic", owner)
        if kind:
            return (kind, "")
    return ("other", "")


def bibliography_groups(site: Site) -> list[dict]:
    """``[{"kind", "value", "anchor", "papers": [citekey]}]``: every paper exactly once, grouped by topic."""
    groups: dict[tuple[str, str], list[str]] = {}
    for key in site.papers:
        groups.setdefault(paper_group(site, key), []).append(key)
    rank = {k: i for i, k in enumerate(("method", "concept", "architecture", "topic", "case_study", "tool",
                                        "goal", "path", "tutorial", "paper", "other"))}

    def paper_order(key):
        p = site.papers[key]
        first = (p.authors[0].split(",")[0] if p.authors and "," in p.authors[0] else
                 (p.authors[0].split() or [""])[-1] if p.authors else "")
        return (first.casefold(), p.year or 0, key)

    out = []
    for (kind, value), keys in sorted(groups.items(), key=lambda kv: (rank.get(kv[0][0], 99), kv[0][1])):
        anchor = "-".join(x for x in ("papers", kind.replace("_", "-"), value.split(":")[-1]) if x)
        out.append({"kind": kind, "value": value, "anchor": anchor, "papers": sorted(keys, key=paper_order)})
    return out
