"""Check a rendered handbook: every relative link and ``#anchor`` in its .html and .md files must resolve."""
from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import Problem

__all__ = ["check_rendered", "page_links", "page_anchors"]

_SKIP_DIRS = {".git", "__pycache__"}


class _HTMLScan(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, int]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id",) + (("name",) if tag == "a" else ()):
            if a.get(key):
                self.ids.add(a[key])
        attr = {"a": "href", "link": "href", "area": "href", "script": "src", "img": "src",
                "iframe": "src", "source": "src"}.get(tag)
        if attr and a.get(attr):
            self.links.append((a[attr], self.getpos()[0]))

    handle_startendtag = handle_starttag


def _html_scan(text: str) -> _HTMLScan:
    scan = _HTMLScan()
    scan.feed(text)
    return scan


_FENCE = re.compile(r"(?ms)^(`{3,}|~{3,})[^\n]*\n.*?^\1[ \t]*$")
_CODESPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)")
_MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_MD_ATTR_ID = re.compile(r"\{:?\s*[^}]*?#([A-Za-z0-9_][\w.:-]*)[^}]*\}")
_HTML_ID = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")
_HEADING = re.compile(r"(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$")


def _blank(m: re.Match) -> str:
    """Replace a code block or span by blanks of the same shape, so line numbers stay right."""
    return re.sub(r"[^\n]", " ", m.group(0))


def _markdown_text(text: str) -> str:
    return _CODESPAN.sub(_blank, _FENCE.sub(_blank, text))


def _slug(heading: str) -> str:
    from markdown.extensions.toc import slugify

    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    heading = re.sub(r"[*_`]|\\(?=.)", "", heading)
    return slugify(heading, "-")


def page_anchors(path: Path, text: str | None = None) -> set[str]:
    """The ids a page defines: HTML ``id``/``name``; in Markdown also ``{#id}`` and heading slugs."""
    text = path.read_text(encoding="utf-8", errors="replace") if text is None else text
    if path.suffix == ".html":
        return _html_scan(text).ids
    body = _markdown_text(text)
    ids = set(_MD_ATTR_ID.findall(body)) | set(_HTML_ID.findall(body))
    seen: dict[str, int] = {}
    for m in _HEADING.finditer(body):
        heading = m.group(1)
        if _MD_ATTR_ID.search(heading):
            continue
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f"{slug}_{n}")
    return ids


def page_links(path: Path, text: str | None = None) -> list[tuple[str, int]]:
    """``(target, line)`` of every link a page writes (in Markdown: outside code)."""
    text = path.read_text(encoding="utf-8", errors="replace") if text is None else text
    if path.suffix == ".html":
        return _html_scan(text).links
    body = _markdown_text(text)
    found = [(m.group(1), body.count("\n", 0, m.start(1)) + 1) for m in _MD_LINK.finditer(body)]
    found += [(m.group(1), body.count("\n", 0, m.start(1)) + 1)
              for m in re.finditer(r"""<a\s[^>]*href\s*=\s*["']([^"']+)["']""", body)]
    return sorted(found, key=lambda x: x[1])


def _is_external(target: str) -> bool:
    parts = urlsplit(target)
    return bool(parts.scheme or parts.netloc) or target.startswith("//")


def check_rendered(folder: str | os.PathLike) -> list[Problem]:
    """A ``broken-link`` Problem for every relative link or ``#anchor`` in ``folder`` that does not resolve.

    ``file`` is the page (as ``folder``/relative path) and ``line`` the line of the link.
    """
    base = Path(folder)
    root = base.resolve()
    pages: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        # A 404 page is served at whatever URL was missed, so its links are root-absolute by design
        # (MkDocs writes one into site/); it is not part of the handbook's link graph.
        pages += [Path(dirpath) / f for f in sorted(filenames) if f.endswith((".html", ".md")) and f != "404.html"]
    anchors: dict[Path, set[str]] = {}
    links: dict[Path, list[tuple[str, int]]] = {}
    texts: dict[Path, str] = {}
    for page in pages:
        text = page.read_text(encoding="utf-8", errors="replace")
        if page.suffix == ".html":  # one parse gives both the links and the anchors of a page
            scan = _html_scan(text)
            links[page], anchors[page] = scan.links, scan.ids
        else:  # Markdown anchors (heading slugs) are worked out only for pages linked with #anchor
            links[page], texts[page] = page_links(page, text), text

    def anchors_of(path: Path) -> set[str]:
        if path not in anchors:
            anchors[path] = page_anchors(path, texts.get(path))
        return anchors[path]

    problems: list[Problem] = []
    for page in pages:
        shown = str(base / page.relative_to(root))
        for target, line in links[page]:
            if _is_external(target) or target.startswith(("mailto:", "javascript:", "data:")):
                continue
            parts = urlsplit(target)
            path_part, anchor = unquote(parts.path), unquote(parts.fragment)
            dest = page if not path_part else (page.parent / path_part).resolve()
            if path_part.startswith("/"):
                problems.append(Problem("broken-link", shown, line, None,
                                        f"link {target!r} is absolute; rendered pages link relatively"))
                continue
            if root != dest and root not in dest.parents:
                problems.append(Problem("broken-link", shown, line, None, f"link {target!r} leaves the rendered folder"))
                continue
            if dest.is_dir():
                dest = next((dest / n for n in ("index.html", "index.md") if (dest / n).is_file()), dest)
            if not dest.is_file():
                problems.append(Problem("broken-link", shown, line, None, f"link {target!r}: no such file"))
                continue
            if anchor and dest.suffix in (".html", ".md"):
                if anchor not in anchors_of(dest):
                    problems.append(Problem("broken-link", shown, line, None,
                                            f"link {target!r}: no anchor #{anchor} in {dest.name}"))
    return problems
