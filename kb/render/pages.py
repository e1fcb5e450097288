"""Writing the pages of a page plan: each page's template rendered to Markdown with its context, handed
to the output format's writer (kb.render.markdown_site or kb.render.html_site), in one or several
forked processes; the answer is each page's search-index entry, in plan order."""
from __future__ import annotations

import re
from typing import Callable

from ..handbook import links_of
from ..notebook import notebook_json
from ..signature import reference_signature
from .context import Renderer, page_context
from ..workers import PARALLEL_FROM, workers_for  # noqa: F401  (kb.render's names for them)
from .output import write_file

__all__ = ["PageWriter", "write_pages", "workers_for", "page_title", "PARALLEL_FROM"]

Progress = Callable[[str, int, int], None]


class PageWriter:
    """Writes one page (and a tutorial's notebook) and answers its search-index entry; the jinja2
    templates are compiled once per render and the format's writer is reused, page after page."""

    def __init__(self, r: Renderer, env, site_writer, shared: dict):
        self.r, self.env, self.site_writer, self.shared = r, env, site_writer, shared
        for name in env.list_templates(filter_func=lambda n: n.endswith(".md.j2")):
            env.get_template(name)  # compiled once, here, before any worker is forked

    def __call__(self, job: tuple[str, str, str | None]) -> dict:
        stem, tpl, ref = job
        r, site = self.r, self.r.site
        ctx = {**page_context(r, stem), **self.shared}
        rec = site.records[ref] if ref else None
        if rec:
            ctx.update(ref=ref, rec=rec, links=links_of(site, ref),
                       signature=reference_signature(rec.get("reference")) if rec["kind"] == "method" else None)
            if rec["kind"] == "path":
                ctx["steps"] = self.shared["guides"][ref]
        text = self.env.get_template(tpl).render(ctx)
        title = page_title(text)
        self.site_writer.page(r, stem, text, title)
        if rec and rec["kind"] == "tutorial":
            write_file(self.site_writer.docs, stem + ".ipynb", notebook_json(rec))
        return {"url": stem + r.ext, "title": title, "kind": rec["kind"] if rec else "page",
                "ref": ref or "", "aliases": (rec or {}).get("aliases") or [],
                "summary": ((rec or {}).get("summary") or (rec or {}).get("definition") or "")[:300]}


_FORKED_WRITER: PageWriter | None = None  # the writer a forked worker inherits (set before the fork)


def _write_chunk(chunk: list[tuple[int, tuple]]) -> list[tuple[int, dict]]:
    return [(i, _FORKED_WRITER(job)) for i, job in chunk]


def write_pages(writer: PageWriter, jobs: list[tuple], workers: int, progress: Progress | None) -> list[dict]:
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


def page_title(markdown_text: str) -> str:
    """The text of a page's first ``# `` heading, unescaped (its title and search entry)."""
    m = re.search(r"(?m)^# (.+?)(?:\s*\{[^}]*\})?\s*$", markdown_text)
    if not m:
        return "Handbook"
    text = re.sub(r"\\(.)", r"\1", m.group(1))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
