"""Render the handbook (Markdown for MkDocs, or a standalone HTML site) from the graph with jinja2.

Every page is first written as Markdown by a ``*.md.j2`` template; the HTML site converts that
Markdown with Python-Markdown and wraps it in ``_layout.html.j2``. So each page's words live in one
template, and both outputs say the same thing. Record text is escaped on its way into Markdown (the
environment's ``finalize`` escapes every plain string), so a ``<script>`` in a record stays text.
"""
from __future__ import annotations

import json
import posixpath
import re
import shutil
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .config import safe_child, templates_dir
from .errors import KBError
from .vocab import AUDIENCES, LEVELS
from .handbook import (Site, bibliography_groups, family_order, glossary, guide_steps, links_of,
                       prerequisite_reading_list, reading_list, record_papers, selection_table, sort_key,
                       tool_matrix)
from .mathml import MATHML_ATTRIBUTES, MATHML_TAGS, MathError, split_math, to_mathml
from .notebook import notebook_json
from .refs import CITATION_RE, KINDS, LINK_FIELDS, LINK_RE, citation_keys, is_citekey, is_slug
from .safety import code_span, is_safe_url, neutralise_links, split_code
from .schema import MODELS
from .signature import reference_signature

__all__ = ["FORMATS", "render_site", "reference_signature", "md_escape", "TEMPLATES"]

FORMATS = ("markdown", "html")
TEMPLATES = templates_dir()  # top-level templates/ in a checkout, kb/_handbook/templates in a wheel
MAX_DIAGRAM_NODES = 30
MKDOCS_CSS = "mkdocs.css"  # templates/static/: Material for MkDocs additions, written to docs/static/
Progress = Callable[[str, int, int], None]

# Section pages: (stem, template). Their titles and words live in the templates.
SECTIONS = (
    ("index", "index.md.j2"), ("glossary", "glossary.md.j2"), ("foundations", "foundations.md.j2"),
    ("methods", "methods.md.j2"), ("architectures", "architectures.md.j2"), ("tools", "tools.md.j2"),
    ("case-studies", "case-studies.md.j2"), ("tutorials", "tutorials.md.j2"), ("topics", "topics.md.j2"),
    ("goals", "goals.md.j2"), ("techniques", "techniques.md.j2"), ("tool-comparison", "tool-comparison.md.j2"),
    ("reading-lists", "reading-lists.md.j2"), ("bibliography", "bibliography.md.j2"),
    ("key-papers", "key-papers.md.j2"),
)
# Fields a record page shows in its own place rather than in the generic field list.
_SHOWN_APART = {"id", "name", "summary", "body", "aliases", "papers", "introduced_by", "see_also", "level",
                "kind", "file", "reference", "example", "steps", "definition"}


# -- Markdown escaping ------------------------------------------------------------------------------
def _markup():
    from markupsafe import Markup

    return Markup


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|])")


def md_escape(text) -> str:
    """Plain text made safe inside Markdown: Markdown syntax backslash-escaped, HTML as entities.

    >>> md_escape("<script>alert('x')</script> a*b [c]")
    "&lt;script&gt;alert('x')&lt;/script&gt; a\\\\*b \\\\[c\\\\]"
    """
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _finalize(value):
    """Every ``{{ }}`` in a Markdown template: Markup passes, anything else is escaped as plain text."""
    Markup = _markup()
    if value is None or isinstance(value, Markup):
        return value
    return Markup(md_escape(value))


_AUTOLINK = re.compile(r"<(https?://[^\s<>]+)>")


def _fence(code: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{code.rstrip()}\n{ticks}"


@lru_cache(maxsize=None)
def _relative(here: str, target: str) -> str:
    return posixpath.relpath(target, here)


# -- the rendering context -----------------------------------------------------------------------
@dataclass
class Renderer:
    site: Site
    fmt: str
    env: object = None
    pages: dict[str, str] = field(default_factory=dict)  # stem -> template (every page written)
    figures: dict[str, Path] = field(default_factory=dict)  # ref -> its figure (find_figures)
    _diagrams: dict[str, str] = field(default_factory=dict, repr=False)  # ref -> Mermaid source, made once

    @property
    def ext(self) -> str:
        return ".md" if self.fmt == "markdown" else ".html"

    # paths ---------------------------------------------------------------------------------------
    def stem(self, target: str) -> str | None:
        """The page stem of a ref (``method:pca`` -> ``method/pca``) or of a section (``glossary``)."""
        if ":" in target:
            kind, ident = target.split(":", 1)
            if target not in self.site.records or kind not in KINDS:
                return None
            ok = is_citekey(ident) if kind == "paper" else is_slug(ident)
            return f"{kind}/{ident}" if ok else None
        return target if target in self.pages else None

    def url(self, page: str, target: str, anchor: str | None = None) -> str | None:
        stem = self.stem(target)
        if stem is None:
            return None
        return _relative(posixpath.dirname(page) or ".", stem + self.ext) + (f"#{anchor}" if anchor else "")

    def root(self, page: str) -> str:
        depth = page.count("/")
        return "../" * depth or "./"

    # Markdown helpers -----------------------------------------------------------------------------
    def link(self, page: str, ref: str | None, label=None, missing: str | None = None):
        Markup = _markup()
        text = label if label is not None else (self.site.name(ref) if ref else missing or "")
        shown = text if isinstance(text, Markup) else md_escape(text)
        href = self.url(page, ref) if ref else None
        return Markup(f"[{shown}]({href})" if href else shown)

    def cite(self, page: str, key: str):
        Markup = _markup()
        paper = self.site.papers.get(key)
        if paper is None:
            return Markup(md_escape(f"[@{key}]"))
        return Markup(f"[{md_escape(paper.short_authors())} {paper.year or ''}]({self.url(page, 'bibliography', key)})")

    def prose(self, page: str, text, inline: bool = False):
        """Record Markdown: code kept verbatim, raw HTML escaped, [[kind:id]] and [@key] made links."""
        Markup = _markup()
        if not text:
            return Markup("")
        text = str(text).strip()
        if inline:
            text = re.sub(r"\s*\n\s*", " ", text)
        # code as Markdown reads it stays verbatim; everything else is prose, escaped (kb.safety)
        return Markup("".join(piece if is_code else self._prose_text(page, piece)
                              for is_code, _, piece in split_code(text)))

    def _prose_text(self, page: str, text: str) -> str:
        links: list[str] = []

        def keep(markdown: str) -> str:
            links.append(markdown)
            return f"\x00{len(links) - 1}\x00"

        def wiki(m: re.Match) -> str:
            ref = f"{m.group(1)}:{m.group(2)}"
            label = m.group(3).strip() if m.group(3) else None
            return keep(str(self.link(page, ref if ref in self.site.records else None, label, missing=label or m.group(2))))

        def citation(m: re.Match) -> str:
            keys = citation_keys(m)
            return keep("(" + "; ".join(str(self.cite(page, k)) for k in keys) + ")")

        text = text.replace("\x00", "")  # the placeholder's marker: never from record text
        # math first: its TeX is never Markdown, so "_" or "*" in it cannot become emphasis (kb.mathml)
        text = "".join(re.sub(r"\\\$", lambda _: keep("&#36;"), piece) if kind == "text"  # \$: a dollar
                       else keep(_math(piece, kind == "display")) for kind, piece in split_math(text))
        text = LINK_RE.sub(wiki, text)
        text = CITATION_RE.sub(citation, text)
        text = _AUTOLINK.sub(lambda m: keep(f"<{m.group(1)}>"), text)
        # Record text is Markdown, never HTML: links to unsafe URLs become text; "&" is escaped so no
        # entity can spell "javascript:" inside a link; "<" so no tag opens; "{" so attr_list never
        # reads an attribute ({: onclick=...}) from it; a backtick outside code so Markdown cannot
        # pair it into a code span we did not see (and so read our escaped text as raw).
        text = neutralise_links(text)
        text = (text.replace("&", "&amp;").replace("<", "&lt;").replace("{", "&#123;").replace("}", "&#125;")
                .replace("`", "&#96;"))
        for _ in range(3):  # a kept link may hold a kept formula (a label with math in it)
            if "\x00" not in text:
                break
            text = re.sub("\x00(\\d+)\x00", lambda m: links[int(m.group(1))], text)
        return text.replace("\x00", "")

    def code(self, text, lang: str = "python"):
        return _markup()(_fence(str(text or ""), lang))

    # record views --------------------------------------------------------------------------------
    def fields(self, rec: dict) -> list[dict]:
        """The record's fields in schema order, each shaped for the template (links resolved)."""
        model = MODELS.get(rec["kind"])
        order = list(model.model_fields) if model else sorted(rec)
        rows = []
        for name in order:
            value = rec.get(name)
            if name in _SHOWN_APART or value in (None, "", [], {}):
                continue
            fixed = LINK_FIELDS[name][1] if name in LINK_FIELDS else None
            if name in LINK_FIELDS and isinstance(value, (str, list)):
                items = value if isinstance(value, list) else [value]
                if all(isinstance(i, str) for i in items):
                    rows.append({"name": name, "type": "links",
                                 "items": [{"ref": self.site.resolve(i, fixed), "text": i} for i in items]})
                    continue
                shaped = []
                for item in items:
                    key = next((k for k in ("method", "tool", "ref") if k in item), None)
                    target_kind = {"method": "method", "tool": "tool"}.get(key, fixed)
                    shaped.append({"ref": self.site.resolve(item.get(key), target_kind), "text": item.get(key),
                                   "extra": [(k, v) for k, v in item.items() if k != key]})
                rows.append({"name": name, "type": "uses", "items": shaped})
            elif isinstance(value, list) and all(isinstance(i, str) for i in value):
                tags = all(re.fullmatch(r"[a-z0-9-]+", i) for i in value)
                rows.append({"name": name, "type": "tags" if tags else "list", "items": value})
            elif isinstance(value, list):
                rows.append({"name": name, "type": "records", "items": [sorted(i.items()) if isinstance(i, dict) else [("", i)] for i in value]})
            elif isinstance(value, dict):
                rows.append({"name": name, "type": "pairs", "items": [(k, v) for k, v in value.items() if v not in (None, "")]})
            elif name == "url":
                rows.append({"name": name, "type": "url", "value": value})
            elif isinstance(value, str) and "\n" in value.strip() and name in ("install", "quick_start"):
                rows.append({"name": name, "type": "code", "value": value})
            else:
                rows.append({"name": name, "type": "text", "value": value})
        return rows

    def diagram(self, ref: str) -> str:
        """Mermaid source of ``ref``'s neighbourhood (at most MAX_DIAGRAM_NODES nodes, papers last).

        A star, as the HTML site's SVG draws it: the record's own links, one arrow per neighbour and
        direction with its relations joined (the links among the neighbours would make a hairball).
        """
        if ref in self._diagrams:
            return self._diagrams[ref]
        import networkx as nx

        from .export import to_mermaid

        G = self.site.graph
        if ref not in G:
            return ""
        near = self._near(ref)
        star = nx.MultiDiGraph()
        for node in [ref, *near]:
            star.add_node(node, **G.nodes[node])
        relations: dict[tuple[str, str], set[str]] = {}
        keep = set(near)
        for u, v, r in self.site.edges(source=ref) + self.site.edges(target=ref):
            if (v if u == ref else u) in keep:
                relations.setdefault((u, v), set()).add(r)
        for (u, v), rels in sorted(relations.items()):
            star.add_edge(u, v, relation=", ".join(sorted(rels)))
        self._diagrams[ref] = to_mermaid(star, highlight=ref)
        return self._diagrams[ref]

    def _near(self, ref: str) -> list[str]:
        G = self.site.graph
        near = (set(G.successors(ref)) | set(G.predecessors(ref))) - {ref}
        return sorted(near, key=lambda r: (r.startswith("paper:"), sort_key(self.site.name(r), r)))[:MAX_DIAGRAM_NODES - 1]

    def diagram_svg(self, page: str, ref: str):
        """The same neighbourhood as an inline SVG (HTML site: no Mermaid script needed offline).

        The record sits in the middle, each neighbour is a link to its page:
        records linking to it on the left, records it links to on the right; a line's tooltip names the relations.
        """
        import math
        from html import escape

        near = self._near(ref) if ref in self.site.graph else []
        if not near:
            return _markup()("")
        outgoing = {v for _, v, _ in self.site.edges(source=ref)}
        sides = [[n for n in near if n not in outgoing], [n for n in near if n in outgoing]]  # in | out
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
        for u, v, r in self.site.edges(source=ref) + self.site.edges(target=ref):
            other = v if u == ref else u
            rel.setdefault(other, set()).add(r if u == ref else f"{r} (in)")
        lines, nodes = [], []

        def node(x, y, target, cls):
            label = self.site.name(target)
            label = label if len(label) <= 22 else label[:21] + "…"
            href = self.url(page, target) or "#"
            kind = target.split(":")[0].replace("_", "-")
            return (f'<a href="{escape(href)}"><g class="node {kind} {cls}"><title>{escape(self.site.name(target))} '
                    f'({escape(target)})</title><rect x="{x - 70:.1f}" y="{y - 12:.1f}" width="140" height="24" rx="6"/>'
                    f'<text x="{x:.1f}" y="{y + 4:.1f}">{escape(label)}</text></g></a>')

        for other, x, y in placed:
            lines.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}"><title>'
                         f'{escape(", ".join(sorted(rel.get(other, ()))))}</title></line>')
            nodes.append(node(x, y, other, ""))
        nodes.append(node(cx, cy, ref, "center"))
        svg = (f'<div class="diagram"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
               f'role="group" aria-label="Neighbourhood of {escape(self.site.name(ref))}">'
               + "".join(lines) + "".join(nodes) + "</svg></div>")
        return _markup()(svg)


    def figure(self, page: str, ref: str):
        """The record's figure (``figures/<kind>/<id>.png``, see :func:`find_figures`) as a captioned
        ``<figure>``, or "" when it has none. The caption comes from the JSON beside the image (what
        ``kb run --format json`` or ``kb reproduce --format json`` printed) and is escaped text."""
        from html import escape

        path = self.figures.get(ref)
        if path is None:
            return _markup()("")
        kind, ident = ref.split(":", 1)
        info = _figure_info(path.with_suffix(".json"))
        name = self.site.name(ref)
        if kind == "method":
            command, alt = f"kb run {ident}", f"{name} on its demo model"
            words = [str(info.get("reading") or "")]
        else:
            command, alt = f"kb reproduce {ident}", f"{name}: the finding reproduced at small scale"
            measured = info.get("measured") if isinstance(info.get("measured"), dict) else {}
            head = info.get("headline")
            words = [f"Claim: {info['claim']}" if info.get("claim") else "",
                     f"Measured: {head} = {measured[head]}" if head in measured else "",
                     {True: "(reproduced)", False: "(not reproduced)"}.get(info.get("passed"), ""),
                     str(info.get("tolerance") or "")]
        caption = " ".join(w.strip() for w in words if w and str(w).strip())
        src = _relative(posixpath.dirname(page) or ".", f"figures/{kind}/{ident}{path.suffix}")
        html = (f'<figure class="kb-figure"><img src="{escape(src)}" alt="{escape(alt)}" loading="lazy">'
                f'<figcaption>{escape(caption[:1200])}{" " if caption else ""}Made by <code>{escape(command)}</code>.'
                "</figcaption></figure>")
        return _markup()(html)

    def diagram_source(self, ref: str):
        """The Mermaid source of the neighbourhood, folded away under the drawing (HTML site)."""
        from html import escape

        graph = self.diagram(ref)
        if not graph:
            return _markup()("")
        return _markup()(f'<details class="source"><summary>Mermaid source (as <code>kb graph --around '
                         f'{escape(ref)} --format mermaid</code> prints it)</summary><pre><code>{escape(graph)}'
                         "</code></pre></details>")


FIGURE_KINDS = ("method", "case_study")
FIGURE_TYPES = (".png", ".jpg", ".jpeg", ".webp")


def find_figures(folder: Path | None, refs) -> dict[str, Path]:
    """``{ref: image}`` for each record of ``refs`` with an image at ``folder/<kind>/<id>.<png|jpg|webp>``.

    The convention the figure makers follow: ``kb run METHOD --out figures/method`` writes
    ``figures/method/METHOD.png`` (its ``--format json`` answer, saved as ``METHOD.json`` beside it,
    becomes the caption); ``kb reproduce CASE`` writes ``figures/case_study/CASE.png`` likewise.
    """
    found: dict[str, Path] = {}
    if folder is None or not Path(folder).is_dir():
        return found
    for ref in refs:
        kind, ident = ref.split(":", 1)
        if kind not in FIGURE_KINDS or not is_slug(ident):
            continue
        for ext in FIGURE_TYPES:
            path = Path(folder) / kind / f"{ident}{ext}"
            if path.is_file() and not path.is_symlink():
                found[ref] = path
                break
    return found


def _figure_info(path: Path) -> dict:
    """The JSON beside a figure, or {} when it is missing, too large or not a JSON object."""
    try:
        if not path.is_file() or path.stat().st_size > 256_000:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- the environment -------------------------------------------------------------------------------
def _environment(templates: Path):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    # Markdown templates autoescape too: plain strings are escaped by _finalize (Markdown + HTML),
    # Markup (helpers' output, macros) passes untouched.
    env = Environment(loader=FileSystemLoader(str(templates)), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "html.j2", "md.j2", "yml.j2"], default=False),
                      finalize=_finalize, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                      auto_reload=False)
    html_env = Environment(loader=FileSystemLoader(str(templates)), undefined=StrictUndefined,
                           autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                           auto_reload=False)
    return env, html_env


def _href(url) -> str:
    """A URL made safe to stand inside Markdown's ``(...)``: spaces, quotes, brackets percent-encoded;
    a scheme other than http(s) or mailto (``javascript:``, ``data:``) gives ``#`` instead."""
    from urllib.parse import quote

    if not is_safe_url(str(url)):
        return _markup()("#")
    return _markup()(quote(str(url), safe=":/?#@!$&'*+,;=%~._-[]"))


def _math(tex: str, display: bool) -> str:
    """A ``$…$`` span as MathML (kb.mathml: allow-listed, text as character references); TeX that
    does not convert stays visible as code (``kb validate`` reports it)."""
    try:
        mathml = to_mathml(tex, display)
    except MathError:
        return code_span(tex)
    # in a span: Python-Markdown reads a line that starts with <math> as a raw HTML block; a display
    # formula's span scrolls sideways on a small screen, so it takes keyboard focus (to scroll it)
    if display:
        return f'<span class="math display" tabindex="0">{mathml}</span>'
    return f'<span class="math">{mathml}</span>'



def _code_span(text):
    """Any value as one inline code span (kb.safety.code_span); never marked safe unescaped."""
    return _markup()(code_span(text))


def _attrs(anchor: str):
    """``{#anchor}`` (attr_list) after a heading or link: the id a link elsewhere points to."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", anchor):
        raise KBError(f"{anchor!r} cannot be an anchor")
    return _markup()("{#" + anchor + "}")


def _short_name(site: Site, ref: str) -> str:
    """A record's name, or its shortest alias when the name is long (table headers: "CNN", "GRU")."""
    rec = site.get(ref) or {}
    name = site.name(ref)
    m = re.search(r"\(([^()]{1,12})\)$", name)
    if m:
        return m.group(1)
    short = sorted((a for a in rec.get("aliases") or [] if len(a) <= 12), key=lambda a: (len(a), a))
    return short[0] if short and len(name) > 16 else name


def _humanize(text) -> str:
    text = str(text).replace("_", " ").replace("-", " ")
    return text[:1].upper() + text[1:]


def _page_context(r: Renderer, page: str) -> dict:
    from .bib import to_bibtex

    site = r.site
    return {
        "page": page, "fmt": r.fmt, "ext": r.ext, "site": site, "levels": LEVELS, "root": r.root(page),
        "url": lambda target, anchor=None: r.url(page, target, anchor),
        "link": lambda ref, label=None, missing=None: r.link(page, ref, label, missing),
        "cite": lambda key: r.cite(page, key),
        "prose": lambda text: r.prose(page, text),
        "inline": lambda text: r.prose(page, text, inline=True),
        "code": r.code,
        "fields": r.fields,
        "links_of": lambda ref: links_of(site, ref),
        "record_papers": lambda ref: record_papers(site, ref),
        "paper": site.papers.get,
        "diagram": r.diagram,
        "diagram_svg": lambda ref: r.diagram_svg(page, ref),
        "diagram_source": r.diagram_source,
        "figure": lambda ref: r.figure(page, ref),
        "has_page": lambda target: r.stem(target) is not None,
        "short_name": lambda ref: _short_name(site, ref),
        "notebook_url": lambda ident: posixpath.relpath(f"tutorial/{ident}.ipynb", posixpath.dirname(page) or "."),
        "resolved": lambda values, fixed=None: [x for x in (site.resolve(v, fixed) for v in values or []) if x],
        "bibtex": lambda key: to_bibtex([site.papers[key]]),
    }


def _section_data(site: Site) -> dict:
    """Data the section pages share, computed once."""
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


class _PageWriter:
    """Writes one page (and a tutorial's notebook) and answers its search-index entry; the jinja2
    templates are compiled once per render and the Markdown converter is reused, page after page."""

    def __init__(self, r: Renderer, env, html_env, shared: dict, docs: Path):
        self.r, self.env, self.shared, self.docs = r, env, shared, docs
        self.converter = self.layout = None
        for name in env.list_templates(filter_func=lambda n: n.endswith(".md.j2")):
            env.get_template(name)  # compiled once, here, before any worker is forked
        if r.fmt == "html":
            import markdown

            self.converter = markdown.Markdown(extensions=["tables", "fenced_code", "toc", "attr_list", "sane_lists"],
                                               output_format="html")
            self.layout = html_env.get_template("_layout.html.j2")

    def __call__(self, job: tuple[str, str, str | None]) -> dict:
        stem, tpl, ref = job
        r, site = self.r, self.r.site
        ctx = {**_page_context(r, stem), **self.shared}
        rec = site.records[ref] if ref else None
        if rec:
            ctx.update(ref=ref, rec=rec, links=links_of(site, ref),
                       signature=reference_signature(rec.get("reference")) if rec["kind"] == "method" else None)
            if rec["kind"] == "path":
                ctx["steps"] = self.shared["guides"][ref]
        text = self.env.get_template(tpl).render(ctx)
        title = _title(text)
        if r.fmt == "markdown":
            _write(self.docs, stem + ".md", text)
        else:
            self.converter.reset()
            # a code block scrolls sideways: it takes keyboard focus so it can be scrolled without a mouse
            body = sanitise_html(self.converter.convert(text)).replace("<pre>", '<pre tabindex="0">')
            html = self.layout.render(content=_markup()(body), title=title, page=stem, root=r.root(stem),
                                      url=lambda target, anchor=None: r.url(stem, target, anchor),
                                      has_page=lambda target: r.stem(target) is not None)
            _write(self.docs, stem + ".html", html)
        if rec and rec["kind"] == "tutorial":
            _write(self.docs, stem + ".ipynb", notebook_json(rec))
        return {"url": stem + r.ext, "title": title, "kind": rec["kind"] if rec else "page",
                "ref": ref or "", "aliases": (rec or {}).get("aliases") or [],
                "summary": ((rec or {}).get("summary") or (rec or {}).get("definition") or "")[:300]}


PARALLEL_FROM = 400  # pages; below this a second process costs more than it saves


def _workers(requested: int | None, pages: int) -> int:
    """Processes to write pages with: ``requested``, else $KB_RENDER_WORKERS, else one per core (at
    most 8) for a large handbook; 1 where processes cannot be forked (they inherit the read model)."""
    import multiprocessing
    import os

    if requested is None:
        env = os.environ.get("KB_RENDER_WORKERS", "").strip()
        if env:
            try:
                requested = int(env)
            except ValueError:
                raise KBError(f"KB_RENDER_WORKERS must be a whole number, not {env!r}") from None
        else:
            requested = min(os.cpu_count() or 1, 8) if pages >= PARALLEL_FROM else 1
    if requested > 1 and "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(requested, pages))


_FORKED_WRITER: _PageWriter | None = None  # the writer a forked worker inherits (set before the fork)


def _write_chunk(chunk: list[tuple[int, tuple]]) -> list[tuple[int, dict]]:
    return [(i, _FORKED_WRITER(job)) for i, job in chunk]


def _write_pages(writer: _PageWriter, jobs: list[tuple], workers: int, progress: Progress | None) -> list[dict]:
    """Every page of ``jobs`` written by ``writer``, in ``workers`` processes; the search-index entries
    in the order of ``jobs`` (so the output is the same bytes, however many processes wrote it)."""
    global _FORKED_WRITER
    total = len(jobs)
    if workers <= 1:
        docs = []
        for i, job in enumerate(jobs):
            docs.append(writer(job))
            if progress:
                progress("render", i + 1, total)
        return docs
    import multiprocessing

    # pages differ in cost (a hub's page is long): small interleaved chunks keep the processes even
    size = max(1, min(64, total // (workers * 8)))
    indexed = list(enumerate(jobs))
    chunks = [indexed[k:k + size] for k in range(0, total, size)]
    found: dict[int, dict] = {}
    _FORKED_WRITER = writer
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for part in pool.imap_unordered(_write_chunk, chunks):
                found.update(part)
                if progress:
                    progress("render", len(found), total)
    finally:
        _FORKED_WRITER = None
    return [found[i] for i in range(total)]


def render_site(site: Site, out: str | Path, fmt: str = "markdown", progress: Progress | None = None,
                templates: Path = TEMPLATES, figures: Path | None = None, workers: int | None = None) -> dict:
    """Write the handbook of ``site`` into ``out``; return ``{"pages", "files", "seconds", "out"}``.

    ``out`` is emptied of a previous render first (only files this function writes are there after).
    ``figures``: a folder of method and case-study figures (:func:`find_figures`), shown on their pages.
    ``workers``: processes that write the pages (default: see :func:`_workers`); the bytes written are
    the same for any number.
    """
    if fmt not in FORMATS:
        raise KBError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    started = time.perf_counter()
    out = Path(out)
    env, html_env = _environment(templates)
    for e in (env, html_env):
        e.filters.update(humanize=_humanize, href=_href, code_span=_code_span)
        e.globals.update(attrs=_attrs)
    r = Renderer(site, fmt, env)
    r.pages = {stem: tpl for stem, tpl in SECTIONS}
    record_pages: dict[str, tuple[str, str]] = {}
    for ref, rec in sorted(site.records.items()):
        stem = r.stem(ref)
        if stem is None:
            continue
        tpl = {"path": "guide.md.j2", "paper": "paper.md.j2"}.get(rec["kind"], "record.md.j2")
        record_pages[stem] = (ref, tpl)
        r.pages[stem] = tpl
    n_workers = _workers(workers, len(SECTIONS) + len(record_pages))  # a bad $KB_RENDER_WORKERS: before any write
    shared = _section_data(site)
    docs = out / "docs" if fmt == "markdown" else out
    _clear(out)
    docs.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("kb render output; `kb render` may replace everything it wrote here\n")
    r.figures = find_figures(figures, [ref for _, (ref, _) in record_pages.items()])
    for ref, path in sorted(r.figures.items()):
        kind, ident = ref.split(":", 1)
        target = safe_child(safe_child(docs, "figures"), kind)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, safe_child(target, ident + path.suffix))

    jobs = [(stem, tpl, None) for stem, tpl in SECTIONS] + [(stem, tpl, ref) for stem, (ref, tpl) in sorted(record_pages.items())]
    writer = _PageWriter(r, env, html_env, shared, docs)
    search_docs = _write_pages(writer, jobs, n_workers, progress)
    written = len(jobs)

    if fmt == "markdown":
        yml = env.get_template("mkdocs.yml.j2").render({**_page_context(r, "mkdocs"), **shared})
        _write(out, "mkdocs.yml", yml)
        static = safe_child(docs, "static")
        static.mkdir(exist_ok=True)
        shutil.copyfile(templates / "static" / MKDOCS_CSS, safe_child(static, MKDOCS_CSS))
    else:
        index = json.dumps(search_docs, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        _write(docs, "search-index.json", index + "\n")
        # A script, not only JSON: browsers refuse fetch() of file:// URLs, and the site must work offline.
        _write(docs, "search-index.js", "window.KB_SEARCH_INDEX = " + index.replace("</", "<\\/") + ";\n")
        static = safe_child(docs, "static")
        static.mkdir(exist_ok=True)
        for src in sorted((templates / "static").iterdir()):
            if src.is_file() and src.name != MKDOCS_CSS:
                shutil.copyfile(src, safe_child(static, src.name))
    return {"pages": written, "format": fmt, "out": str(out), "seconds": round(time.perf_counter() - started, 3)}


# The HTML a page body may hold: what Python-Markdown writes for the templates' Markdown, plus the
# inline SVG of the neighbourhood diagram and the MathML of formulas (kb.mathml's allow-list: no
# href, style or colour). Everything else (script, event handlers, javascript: and data: URLs, style)
# is dropped, whatever got past validation and escaping.
_SVG_TAGS = {"svg", "g", "rect", "line", "text", "title"}
_ATTRIBUTES = {
    **{tag: set(MATHML_ATTRIBUTES) | {"xmlns"} for tag in MATHML_TAGS},
    "*": {"id", "class", "title", "lang"}, "span": {"tabindex"},
    "a": {"href", "title"}, "img": {"src", "alt", "title", "width", "height", "loading"}, "ol": {"start"},
    "th": {"style", "align"}, "td": {"style", "align"}, "code": {"class"},
    "svg": {"xmlns", "viewBox", "role", "aria-label"}, "rect": {"x", "y", "width", "height", "rx"},
    "line": {"x1", "y1", "x2", "y2"}, "text": {"x", "y"},
}


def sanitise_html(body: str) -> str:
    """``body`` through an allow-list HTML sanitiser (nh3): only known tags, attributes and URL schemes.

    >>> sanitise_html('<p onclick="x()">a <a href="javascript:alert(1)">b</a><script>c</script></p>')
    '<p>a <a>b</a></p>'
    """
    import nh3

    return nh3.clean(body, tags=set(nh3.ALLOWED_TAGS) | _SVG_TAGS | MATHML_TAGS, attributes=_ATTRIBUTES, link_rel=None,
                     url_schemes={"http", "https", "mailto"}, strip_comments=True,
                     filter_style_properties={"text-align"})


def _title(markdown_text: str) -> str:
    m = re.search(r"(?m)^# (.+?)(?:\s*\{[^}]*\})?\s*$", markdown_text)
    if not m:
        return "Handbook"
    text = re.sub(r"\\(.)", r"\1", m.group(1))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _write(folder: Path, name: str, text: str) -> None:
    path = safe_child(folder, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


MARKER = ".kb-render"  # written into every output folder; a folder without it is never emptied


def _clear(out: Path) -> None:
    """Remove a previous render from ``out`` (only what a render writes), keeping anything else.

    Refuses a non-empty folder that no render wrote, so ``--out`` cannot wipe someone's docs/.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise KBError(f"{out} exists and is not a folder")
    if not (out / MARKER).is_file() and any(out.iterdir()):
        raise KBError(f"{out} is not empty and holds no earlier render; choose a new or empty --out folder")
    for name in ("docs", "static", "figures", "mkdocs.yml", "search-index.json", "search-index.js", *KINDS,
                 *(stem + ext for stem, _ in SECTIONS for ext in (".md", ".html"))):
        target = safe_child(out, name)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
