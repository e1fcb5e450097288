"""The MkDocs output: each page's Markdown as ``docs/<stem>.md``, then ``mkdocs.yml`` (Material theme,
navigation) and the theme's stylesheet additions."""
from __future__ import annotations

from pathlib import Path

from ..config import safe_child
from .output import write_file

__all__ = ["MarkdownSite", "MKDOCS_CSS"]

MKDOCS_CSS = "mkdocs.css"  # templates/static/: Material for MkDocs additions, written to docs/static/


class MarkdownSite:
    """Writes the pages of the MkDocs project ``out`` into ``out/docs`` (kb.render.pages.PageWriter calls ``page``)."""

    ext = ".md"

    def __init__(self, out: Path, templates: Path, html_env=None):
        self.out, self.docs, self.templates = out, out / "docs", templates

    def page(self, r, stem: str, text: str, title: str) -> None:
        write_file(self.docs, stem + ".md", text)

    def finish(self, r, env, shared: dict, search_docs: list[dict]) -> None:
        """``mkdocs.yml`` and the stylesheet (MkDocs builds its own search index)."""
        import shutil

        from .context import page_context

        yml = env.get_template("mkdocs.yml.j2").render({**page_context(r, "mkdocs"), **shared})
        write_file(self.out, "mkdocs.yml", yml)
        static = safe_child(self.docs, "static")
        static.mkdir(exist_ok=True)
        shutil.copyfile(self.templates / "static" / MKDOCS_CSS, safe_child(static, MKDOCS_CSS))
