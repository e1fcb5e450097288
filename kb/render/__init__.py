"""Render the handbook (Markdown for MkDocs, or a standalone HTML site) from the store with jinja2.

A render is a page plan (kb.render.pageplan: which pages, with which template and data), written by
one output format's writer (kb.render.markdown_site, kb.render.html_site). Every page is first
written as Markdown by a ``*.md.j2`` template; the HTML site converts that Markdown with
Python-Markdown and wraps it in ``_layout.html.j2``. So each page's words live in one template, and
both outputs say the same thing. Record text is escaped on its way into Markdown (the environment's
``finalize`` escapes every plain string, kb.render.markup), so a ``<script>`` in a record stays text.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from ..config import safe_child, templates_dir
from ..errors import KBError
from ..handbook import Site
from ..signature import reference_signature
from .context import Renderer
from .figures import find_figures
from .html_site import HtmlSite, sanitise_html
from .markdown_site import MarkdownSite
from .markup import environments, md_escape
from .output import MARKER, clear_output
from .pageplan import SECTIONS, plan_pages, section_data
from .pages import PageWriter, workers_for, write_pages

__all__ = ["FORMATS", "WRITERS", "render_site", "reference_signature", "md_escape", "TEMPLATES", "SECTIONS",
           "Renderer", "sanitise_html", "find_figures"]

WRITERS = {"markdown": MarkdownSite, "html": HtmlSite}  # output format -> its writer
FORMATS = tuple(WRITERS)
TEMPLATES = templates_dir()  # top-level templates/ in a checkout, kb/_handbook/templates in a wheel
Progress = Callable[[str, int, int], None]


def render_site(site: Site, out: str | Path, fmt: str = "markdown", progress: Progress | None = None,
                templates: Path = TEMPLATES, figures: Path | None = None, workers: int | None = None) -> dict:
    """Write the handbook of ``site`` into ``out``; return ``{"pages", "format", "out", "seconds"}``.

    ``out`` is emptied of a previous render first (only files this function writes are there after).
    ``figures``: a folder of method and case-study figures (:func:`find_figures`), shown on their pages.
    ``workers``: processes that write the pages (default: see kb.render.pages.workers_for); the bytes
    written are the same for any number.
    """
    if fmt not in FORMATS:
        raise KBError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    started = time.perf_counter()
    out = Path(out)
    env, html_env = environments(templates)
    plan = plan_pages(site)
    r = Renderer(site, fmt, env, pages={stem: tpl for stem, tpl, _ in plan})
    n_workers = workers_for(workers, len(plan))  # a bad $KB_RENDER_WORKERS: before any write
    shared = section_data(site)
    clear_output(out)
    site_writer = WRITERS[fmt](out, templates, html_env)
    site_writer.docs.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("kb render output; `kb render` may replace everything it wrote here\n")
    r.figures = _copy_figures(find_figures(figures, [ref for _, _, ref in plan if ref]), site_writer.docs)
    search_docs = write_pages(PageWriter(r, env, site_writer, shared), plan, n_workers, progress)
    site_writer.finish(r, env, shared, search_docs)
    return {"pages": len(plan), "format": fmt, "out": str(out), "seconds": round(time.perf_counter() - started, 3)}


def _copy_figures(found: dict[str, Path], docs: Path) -> dict[str, Path]:
    """Copy each record's figure to ``docs/figures/<kind>/<id>.<ext>``; returns ``found``."""
    for ref, path in sorted(found.items()):
        kind, ident = ref.split(":", 1)
        target = safe_child(safe_child(docs, "figures"), kind)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, safe_child(target, ident + path.suffix))
    return found
