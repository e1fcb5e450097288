"""The rendering context: what a page's template may call (kb.render.context.Renderer) and the names
every page sees. Record text goes through ``prose``: code verbatim, everything else escaped, with
``[[kind:id]]`` and ``[@key]`` made links."""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..handbook import Site, links_of, record_papers
from ..mathml import split_math
from ..refs import CITATION_RE, LINK_FIELDS, LINK_RE, citation_keys
from ..safety import neutralise_links, split_code
from ..schema import MODELS
from ..vocab import LEVELS
from . import diagrams
from .figures import figure_html
from .markup import AUTOLINK, fence, markup, math_span, md_escape, relative
from .pageplan import record_stem

__all__ = ["Renderer", "page_context", "short_name"]

# Fields a record page shows in its own place rather than in the generic field list.
_SHOWN_APART = {"id", "name", "summary", "body", "aliases", "papers", "introduced_by", "see_also", "level",
                "kind", "file", "reference", "example", "steps", "definition"}


@dataclass
class Renderer:
    """What a page's template may call: URLs, links, citations, prose, field lists, diagrams, figures."""

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
            return record_stem(self.site, target)
        return target if target in self.pages else None

    def url(self, page: str, target: str, anchor: str | None = None) -> str | None:
        stem = self.stem(target)
        if stem is None:
            return None
        return relative(posixpath.dirname(page) or ".", stem + self.ext) + (f"#{anchor}" if anchor else "")

    def root(self, page: str) -> str:
        depth = page.count("/")
        return "../" * depth or "./"

    # Markdown helpers -----------------------------------------------------------------------------
    def link(self, page: str, ref: str | None, label=None, missing: str | None = None):
        Markup = markup()
        text = label if label is not None else (self.site.name(ref) if ref else missing or "")
        shown = text if isinstance(text, Markup) else md_escape(text)
        href = self.url(page, ref) if ref else None
        return Markup(f"[{shown}]({href})" if href else shown)

    def cite(self, page: str, key: str):
        Markup = markup()
        paper = self.site.papers.get(key)
        if paper is None:
            return Markup(md_escape(f"[@{key}]"))
        return Markup(f"[{md_escape(paper.short_authors())} {paper.year or ''}]({self.url(page, 'bibliography', key)})")

    def prose(self, page: str, text, inline: bool = False):
        """Record Markdown: code kept verbatim, raw HTML escaped, [[kind:id]] and [@key] made links."""
        Markup = markup()
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
                       else keep(math_span(piece, kind == "display")) for kind, piece in split_math(text))
        text = LINK_RE.sub(wiki, text)
        text = CITATION_RE.sub(citation, text)
        text = AUTOLINK.sub(lambda m: keep(f"<{m.group(1)}>"), text)
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
        return markup()(fence(str(text or ""), lang))

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
        """Mermaid source of ``ref``'s neighbourhood (kb.render.diagrams.mermaid), made once per record."""
        if ref not in self._diagrams:
            self._diagrams[ref] = diagrams.mermaid(self.site, ref)
        return self._diagrams[ref]

    def diagram_svg(self, page: str, ref: str):
        """The same neighbourhood as an inline SVG whose nodes link to their pages (the HTML site)."""
        return markup()(diagrams.svg(self.site, ref, lambda target: self.url(page, target)))

    def figure(self, page: str, ref: str):
        """The record's figure as a captioned ``<figure>``, or "" (kb.render.figures)."""
        path = self.figures.get(ref)
        return markup()(figure_html(path, self.site.name(ref), page, ref) if path else "")

    def diagram_source(self, ref: str):
        """The Mermaid source of the neighbourhood, folded away under the drawing (HTML site)."""
        from html import escape

        graph = self.diagram(ref)
        if not graph:
            return markup()("")
        return markup()(f'<details class="source"><summary>Mermaid source (as <code>kb graph --around '
                         f'{escape(ref)} --format mermaid</code> prints it)</summary><pre><code>{escape(graph)}'
                         "</code></pre></details>")


def short_name(site: Site, ref: str) -> str:
    """A record's name, or its shortest alias when the name is long (table headers: "CNN", "GRU")."""
    rec = site.get(ref) or {}
    name = site.name(ref)
    m = re.search(r"\(([^()]{1,12})\)$", name)
    if m:
        return m.group(1)
    short = sorted((a for a in rec.get("aliases") or [] if len(a) <= 12), key=lambda a: (len(a), a))
    return short[0] if short and len(name) > 16 else name


def page_context(r: Renderer, page: str) -> dict:
    from ..bib import to_bibtex

    """The names every template sees on ``page``: the helpers of ``r`` bound to the page."""
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
        "short_name": lambda ref: short_name(site, ref),
        "notebook_url": lambda ident: posixpath.relpath(f"tutorial/{ident}.ipynb", posixpath.dirname(page) or "."),
        "resolved": lambda values, fixed=None: [x for x in (site.resolve(v, fixed) for v in values or []) if x],
        "bibtex": lambda key: to_bibtex([site.papers[key]]),
    }
