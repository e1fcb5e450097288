"""Checks over the loaded content; each a small function registered with @check, yielding Problems."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from .bib import Paper
from .errors import CODES, Problem
from .graph import Link
from .load import Loaded

__all__ = ["Content", "Report", "check", "CHECKS", "run_checks", "reference_functions"]


@dataclass
class Content:
    """Everything validation looks at: records, papers, the graph and the links that did not resolve."""

    records: list[Loaded]
    papers: list[Paper]
    graph: object
    failed_links: list[tuple[Link, str]]
    load_problems: list[Problem] = field(default_factory=list)
    root: Path | None = None  # the knowledge base's root folder, when known


@dataclass
class Report:
    errors: list[Problem]
    warnings: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"ok": self.ok, "errors": [p.to_dict() for p in self.errors],
                "warnings": [p.to_dict() for p in self.warnings]}


CHECKS: list[Callable[[Content], Iterator[Problem]]] = []


def check(fn):
    """Register a check: a function of Content yielding Problems."""
    CHECKS.append(fn)
    return fn


def run_checks(content: Content) -> Report:
    problems = list(content.load_problems)
    for fn in CHECKS:
        problems.extend(fn(content))
    for p in problems:
        assert p.code in CODES, p.code  # a new code must be documented in errors.CODES
    unique = sorted(set(problems), key=lambda p: (p.file or "", p.line or 0, p.code, p.message))
    return Report([p for p in unique if p.severity == "error"], [p for p in unique if p.severity != "error"])


_HINTS = {
    "dangling-ref": "no record {ref} exists",
    "ambiguous-ref": "{target!r} names records of several kinds; write it as kind:{target}",
    "wrong-kind-ref": "field {field!r} takes {expected} ids, not {ref}",
    "unknown-citekey": "citekey {target!r} is not in bib/*.bib",
}


@check
def unresolved_links(content: Content) -> Iterator[Problem]:
    for link, code in content.failed_links:
        message = _HINTS[code].format(ref=link.ref if link.kind else link.target, target=link.target,
                                      field=link.field, expected=link.expected)
        yield Problem(code, link.file, link.line, link.source, f"{link.field}: {message}")


@check
def paper_notes_have_entries(content: Content) -> Iterator[Problem]:
    keys = {p.id for p in content.papers}
    for rec in content.records:
        if rec.kind == "paper" and rec.id not in keys:
            yield Problem("paper-note-without-entry", rec.file, 1, rec.ref,
                          f"no BibTeX entry {rec.id!r} in bib/*.bib for this note")


@check
def prerequisite_cycles(content: Content) -> Iterator[Problem]:
    import networkx as nx

    G = content.graph
    req = nx.DiGraph((u, v) for u, v, d in G.edges(data=True) if d["relation"] == "requires")
    for component in nx.strongly_connected_components(req):
        if len(component) < 2:
            continue
        cycle = [u for u, _ in nx.find_cycle(req.subgraph(component), source=min(component))]
        start = cycle.index(min(cycle))  # the same cycle is always named from the same record
        names = cycle[start:] + cycle[:start] + [cycle[start]]
        first = G.nodes[names[0]]
        edge = G.get_edge_data(names[0], names[1]) or {}
        line = next((d.get("line") for d in edge.values() if d["relation"] == "requires"), None)
        yield Problem("prerequisite-cycle", first.get("file"), line, names[0],
                      "prerequisites form a cycle: " + " -> ".join(names))


@lru_cache(maxsize=None)
def reference_functions(module_file: str, mtime: float) -> frozenset[str]:
    """Top-level function names of a module, read with ast so checking never imports torch."""
    tree = ast.parse(Path(module_file).read_text(encoding="utf-8"))
    return frozenset(n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def resolve_reference(dotted: str) -> str | None:
    """None when ``kb.reference.<module>:<function>`` names a top-level def; else why not."""
    module, _, func = dotted.partition(":")
    parts = module.split(".")
    if parts[:2] != ["kb", "reference"] or not func:
        return "only functions inside kb.reference may be named"
    base = Path(__file__).resolve().parent.joinpath(*parts[1:])
    path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    if not path.is_file():
        return f"module {module} does not exist"
    if func.startswith("_"):
        return f"{func} is private"
    if func not in reference_functions(str(path), path.stat().st_mtime):
        return f"{module} has no top-level function {func}"
    return None


@check
def references_resolve(content: Content) -> Iterator[Problem]:
    for rec in content.records:
        if rec.kind != "method":
            continue
        dotted = rec.model.reference
        if dotted is None:
            yield Problem("reference-missing", rec.file, rec.line("reference"), rec.ref,
                          "reference: null — the reference implementation is still to be written", "warning")
            continue
        why = resolve_reference(dotted)
        if why:
            yield Problem("reference-unresolved", rec.file, rec.line("reference"), rec.ref, f"reference {dotted!r}: {why}")


@check
def reproductions_exist(content: Content) -> Iterator[Problem]:
    """A case study's ``reproduction.test`` names a real test and its ``reproduction.run`` a top-level
    function of a module in kb.reference.reproductions (both read with ast; nothing is imported)."""
    for rec in content.records:
        repro = getattr(rec.model, "reproduction", None) if rec.kind == "case_study" else None
        if repro is not None and repro.run is not None:
            why = ("only kb.reference.reproductions.<module>:run may be named"
                   if not repro.run.startswith("kb.reference.reproductions.") else resolve_reference(repro.run))
            if why:
                yield Problem("reproduction-missing", rec.file, rec.line("reproduction", "run"), rec.ref,
                              f"reproduction.run {repro.run!r}: {why}")
        if repro is None or content.root is None:
            continue
        path, _, func = repro.test.partition("::")
        target = content.root / path
        line = rec.line("reproduction", "test")
        if not target.is_file() or not path.endswith(".py"):
            yield Problem("reproduction-missing", rec.file, line, rec.ref, f"reproduction.test: no test file {path!r}")
        elif func not in reference_functions(str(target), target.stat().st_mtime):
            yield Problem("reproduction-missing", rec.file, line, rec.ref,
                          f"reproduction.test: {path} has no test function {func!r}")


@check
def orphans(content: Content) -> Iterator[Problem]:
    G = content.graph
    for rec in content.records:
        if rec.kind in ("path", "paper") or rec.ref not in G:
            continue
        if not any(u != rec.ref for u in G.predecessors(rec.ref)):
            yield Problem("orphan", rec.file, 1, rec.ref, f"nothing links to {rec.ref}", "warning")


@check
def uncited_papers(content: Content) -> Iterator[Problem]:
    G = content.graph
    for p in content.papers:
        if p.ref in G and not any(G.nodes[u]["kind"] != "paper" for u in G.predecessors(p.ref)):
            yield Problem("uncited-paper", p.file, p.line, p.ref, f"no record cites {p.id!r}", "warning")


@check
def reference_docstring_citations(content: Content) -> Iterator[Problem]:
    """Citekeys in kb.reference docstrings must be in bib/. Checked only when validating this
    repository, whose bib/ the reference implementations cite; another knowledge base need not."""
    from .refs import find_citations

    package = Path(__file__).resolve().parent / "reference"
    if content.root is None or content.root.resolve() != package.parent.parent:
        return
    keys = {p.id for p in content.papers}
    for module in sorted(package.rglob("*.py")):  # subpackages too (kb.reference.reproductions)
        for key, offset in find_citations(module.read_text(encoding="utf-8")):
            if key not in keys:
                yield Problem("unknown-citekey", f"kb/reference/{module.relative_to(package).as_posix()}", offset + 1, None,
                              f"docstring cites {key!r}, which is not in bib/*.bib")


# Fields rendered as code (fenced blocks or code spans), where markup is shown, never run.
_CODE_FIELDS = {"example", "quick_start", "install", "code", "api", "check", "reference", "file", "test", "run"}


def _strings(value, loc=()):
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, loc + (i,))
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in _CODE_FIELDS:
                yield from _strings(v, loc + (k,))


@check
def hostile_markup(content: Content) -> Iterator[Problem]:
    """No script in the handbook: unsafe URLs and active HTML in record text and BibTeX fields."""
    from .safety import active_html, find_hazards, url_scheme

    for rec in content.records:
        for loc, text in _strings(rec.model.model_dump(mode="json")):
            if not loc or not any(c in text for c in "<:{&"):
                continue
            hazards = find_hazards(text)
            if not hazards:
                continue
            if loc == ("body",) and rec.body_line:
                first = rec.body_line
            else:
                first = (rec.line(*loc) or 1) + (1 if "\n" in text.strip() else 0)
            field = ".".join(str(p) for p in loc)
            for offset, message in hazards:
                code = "unsafe-url" if message.startswith("link") else "unsafe-html"
                yield Problem(code, rec.file, first + offset, rec.ref, f"{field}: {message}")
    for paper in content.papers:
        for name, value in paper.fields.items():
            if name == "url" and url_scheme(value) not in ("http", "https"):
                yield Problem("unsafe-url", paper.file, paper.line, paper.ref,
                              f"url {value[:60]!r}: a paper's url must be an http(s) address")
            for _, what in active_html(value):
                yield Problem("unsafe-html", paper.file, paper.line, paper.ref,
                              f"{name}: active HTML ({what}); BibTeX fields hold plain text")
                break


@check
def formulas(content: Content) -> Iterator[Problem]:
    """Every ``$…$``/``$$…$$`` formula in record text converts to MathML (kb.mathml), command by command."""
    from .mathml import math_problems

    for rec in content.records:
        for loc, text in _strings(rec.model.model_dump(mode="json")):
            if not loc or "$" not in text:
                continue
            found = math_problems(text)
            if not found:
                continue
            first = rec.body_line if loc == ("body",) and rec.body_line else (
                (rec.line(*loc) or 1) + (1 if "\n" in text.strip() else 0))
            field = ".".join(str(p) for p in loc)
            for offset, message in found:
                yield Problem("bad-math", rec.file, first + offset, rec.ref, f"{field}: {message}")
