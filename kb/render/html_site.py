"""The standalone HTML site: each page's Markdown converted with Python-Markdown, sanitised (nh3) and
wrapped in ``_layout.html.j2``; then the offline search index and the static files."""
from __future__ import annotations

import json
from pathlib import Path

from ..config import safe_child
from ..mathml import MATHML_ATTRIBUTES, MATHML_TAGS
from .markdown_site import MKDOCS_CSS
from .markup import markup
from .output import write_file

__all__ = ["HtmlSite", "sanitise_html"]


class HtmlSite:
    """Writes the pages of the HTML site into ``out`` (kb.render.pages.PageWriter calls ``page``)."""

    ext = ".html"

    def __init__(self, out: Path, templates: Path, html_env):
        import markdown

        self.docs, self.templates = out, templates
        self.converter = markdown.Markdown(extensions=["tables", "fenced_code", "toc", "attr_list", "sane_lists"],
                                           output_format="html")
        self.layout = html_env.get_template("_layout.html.j2")

    def page(self, r, stem: str, text: str, title: str) -> None:
        """Page ``stem`` from its Markdown ``text`` (``r``: the kb.render.context.Renderer)."""
        self.converter.reset()
        # a code block scrolls sideways: it takes keyboard focus so it can be scrolled without a mouse
        body = sanitise_html(self.converter.convert(text)).replace("<pre>", '<pre tabindex="0">')
        html = self.layout.render(content=markup()(body), title=title, page=stem, root=r.root(stem),
                                  url=lambda target, anchor=None: r.url(stem, target, anchor),
                                  has_page=lambda target: r.stem(target) is not None)
        write_file(self.docs, stem + ".html", html)

    def finish(self, r, env, shared: dict, search_docs: list[dict]) -> None:
        """The search index (as JSON and as a script) and the static files."""
        import shutil

        index = json.dumps(search_docs, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        write_file(self.docs, "search-index.json", index + "\n")
        # A script, not only JSON: browsers refuse fetch() of file:// URLs, and the site must work offline.
        write_file(self.docs, "search-index.js", "window.KB_SEARCH_INDEX = " + index.replace("</", "<\\/") + ";\n")
        static = safe_child(self.docs, "static")
        static.mkdir(exist_ok=True)
        for src in sorted((self.templates / "static").iterdir()):
            if src.is_file() and src.name != MKDOCS_CSS:
                shutil.copyfile(src, safe_child(static, src.name))


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
