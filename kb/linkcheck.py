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


def _scan(path: str) -> tuple[list[tuple[str, int]], set[str] | None]:
    """A page's links and, for HTML, its anchors (one parse gives both)."""
    page = Path(path)
    text = page.read_text(encoding="utf-8", errors="replace")
    if page.suffix == ".html":
        scan = _html_scan(text)
        return scan.links, scan.ids
    return page_links(page, text), None


def _scan_all(paths: list[str]) -> list[tuple[list, set | None]]:
    """Every page scanned; in worker processes when there are many (parsing is most of the check)."""
    from .workers import workers_for

    workers = workers_for(None, len(paths))
    if workers < 2:
        return [_scan(p) for p in paths]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(_scan, paths, chunksize=max(1, len(paths) // (workers * 8)))


def check_rendered(folder: str | os.PathLike) -> list[Problem]:
    """A ``broken-link`` Problem for every relative link or ``#anchor`` in ``folder`` that does not resolve.

    ``file`` is the page (as ``folder``/relative path) and ``line`` the line of the link. Links are
    resolved against the files the walk found (as relative paths, with no file-system call per link:
    a 10,000-page site has ~500,000 links).
    """
    import posixpath

    base = Path(folder)
    root = base.resolve()
    pages: list[str] = []  # relative posix paths
    files: set[str] = set()
    dirs: set[str] = {""}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        dirs.update(posixpath.join(rel, d) for d in dirnames)
        files.update(posixpath.join(rel, f) for f in filenames)
        # A 404 page is served at whatever URL was missed, so its links are root-absolute by design
        # (MkDocs writes one into site/); it is not part of the handbook's link graph.
        pages += [posixpath.join(rel, f) for f in sorted(filenames) if f.endswith((".html", ".md")) and f != "404.html"]
    scanned = _scan_all([str(root / p) for p in pages])
    links = {p: found for p, (found, _) in zip(pages, scanned)}
    anchors = {p: ids for p, (_, ids) in zip(pages, scanned) if ids is not None}

    def anchors_of(rel: str) -> set[str]:
        if rel not in anchors:  # Markdown anchors (heading slugs) only for pages linked with #anchor
            anchors[rel] = page_anchors(root / rel)
        return anchors[rel]

    problems: list[Problem] = []
    for page in pages:
        shown = str(base / page)
        here = posixpath.dirname(page)
        for target, line in links[page]:
            if _is_external(target) or target.startswith(("mailto:", "javascript:", "data:")):
                continue
            parts = urlsplit(target)
            path_part, anchor = unquote(parts.path), unquote(parts.fragment)
            if path_part.startswith("/"):
                problems.append(Problem("broken-link", shown, line, None,
                                        f"link {target!r} is absolute; rendered pages link relatively"))
                continue
            dest = page if not path_part else posixpath.normpath(posixpath.join(here, path_part))
            if dest == ".." or dest.startswith("../"):
                problems.append(Problem("broken-link", shown, line, None, f"link {target!r} leaves the rendered folder"))
                continue
            dest = "" if dest == "." else dest
            if dest in dirs:
                dest = next((posixpath.join(dest, n) for n in ("index.html", "index.md")
                             if posixpath.join(dest, n) in files), dest)
            if dest not in files:
                problems.append(Problem("broken-link", shown, line, None, f"link {target!r}: no such file"))
                continue
            if anchor and dest.endswith((".html", ".md")):
                if anchor not in anchors_of(dest):
                    problems.append(Problem("broken-link", shown, line, None,
                                            f"link {target!r}: no anchor #{anchor} in {posixpath.basename(dest)}"))
    return problems
