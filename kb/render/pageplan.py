"""The page plan: which pages the handbook has (the sections, then one page per record), each with
its template, and the data the section pages share. No output format here: see kb.render.markdown_site
and kb.render.html_site."""
from __future__ import annotations

from ..handbook import (Site, bibliography_groups, family_order, glossary, guide_steps, prerequisite_reading_list,
                        reading_list, selection_table, tool_matrix)
from ..refs import KINDS, is_citekey, is_slug
from ..signature import reference_signature
from ..vocab import AUDIENCES

__all__ = ["SECTIONS", "RECORD_TEMPLATES", "Page", "record_stem", "plan_pages", "section_data"]

# Section pages: (stem, template). Their titles and words live in the templates.
SECTIONS = (
    ("index", "index.md.j2"), ("glossary", "glossary.md.j2"), ("foundations", "foundations.md.j2"),
    ("methods", "methods.md.j2"), ("architectures", "architectures.md.j2"), ("tools", "tools.md.j2"),
    ("case-studies", "case-studies.md.j2"), ("tutorials", "tutorials.md.j2"), ("topics", "topics.md.j2"),
    ("goals", "goals.md.j2"), ("techniques", "techniques.md.j2"), ("tool-comparison", "tool-comparison.md.j2"),
    ("reading-lists", "reading-lists.md.j2"), ("bibliography", "bibliography.md.j2"),
    ("key-papers", "key-papers.md.j2"),
)
# A record's page template by kind; every other kind uses record.md.j2.
RECORD_TEMPLATES = {"path": "guide.md.j2", "paper": "paper.md.j2"}
Page = tuple[str, str, "str | None"]  # (stem, template, ref of the record shown, None for a section)


def record_stem(site: Site, ref: str) -> str | None:
    """The page stem of a record (``method:pca`` -> ``method/pca``); None when ``ref`` has no page
    (no such record, or an id that cannot be a file name)."""
    kind, _, ident = ref.partition(":")
    if ref not in site.records or kind not in KINDS:
        return None
    ok = is_citekey(ident) if kind == "paper" else is_slug(ident)
    return f"{kind}/{ident}" if ok else None


def plan_pages(site: Site) -> list[Page]:
    """Every page of the handbook: the sections in their order, then each record's page by stem."""
    records: dict[str, tuple[str, str]] = {}
    for ref, rec in sorted(site.records.items()):
        stem = record_stem(site, ref)
        if stem is not None:
            records[stem] = (RECORD_TEMPLATES.get(rec["kind"], "record.md.j2"), ref)
    return [(stem, tpl, None) for stem, tpl in SECTIONS] + [(stem, tpl, ref) for stem, (tpl, ref) in sorted(records.items())]


def section_data(site: Site) -> dict:
    """The data the section pages share (audience guides, tables, reading lists...), computed once."""
    def grouped(kind: str, key: str) -> list[dict]:
        groups: dict[str, list[dict]] = {}
        for rec in site.of_kind(kind):
            groups.setdefault(rec.get(key) or "", []).append(rec)
        return [{"value": v, "anchor": f"{kind.replace('_', '-')}-{v}" if v else kind, "records": recs}
                for v, recs in sorted(groups.items())]

    paths = {a: [p for p in site.of_kind("path") if p.get("audience") == a] for a in AUDIENCES}
    topics = [f"topic:{t['id']}" for t in site.of_kind("topic")]
    return {
        "paths": paths,
        "guides": {ref: guide_steps(site, ref) for ref in (f"path:{p['id']}" for p in site.of_kind("path"))},
        "methods_by_family": grouped("method", "family"),
        "concepts_by_area": grouped("concept", "area"),
        "cases_by_domain": grouped("case_study", "domain"),
        "architectures_by_family": grouped("architecture", "family"),
        "selection": selection_table(site),
        "tools_table": tool_matrix(site),
        "glossary": glossary(site),
        "bibliography": bibliography_groups(site),
        "topic_lists": [{"ref": t, "papers": prerequisite_reading_list(site, t)} for t in topics],
        "family_lists": [{"value": g["value"], "anchor": g["anchor"],
                          "papers": reading_list(site, family_order(site, g["records"]))}
                         for g in grouped("method", "family")],
        "audience_lists": {ref: reading_list(site, [s["ref"] for s in steps])
                           for ref, steps in ((f"path:{p['id']}", guide_steps(site, f"path:{p['id']}"))
                                              for p in site.of_kind("path"))},
        "key_papers": sorted((k for k in site.papers if (site.get(f"paper:{k}") or {}).get("key")),
                             key=lambda k: (site.papers[k].year or 0, k)),
        "tutorials": site.of_kind("tutorial"),
        "implementations": [{"ref": f"method:{m['id']}", "reference": m["reference"],
                             "signature": reference_signature(m["reference"])}
                            for m in site.of_kind("method") if m.get("reference")],
        "counts": {k: len([r for r in site.records.values() if r["kind"] == k]) for k in KINDS},
    }
