"""The library's front door: ``KnowledgeBase``, which every command of the CLI merely calls."""
from __future__ import annotations

import time
from pathlib import Path

from .config import Layout, find_root
from .errors import KBError

__all__ = ["KnowledgeBase"]


def _adjacency(reader) -> dict:
    """node -> [(neighbour, (source, target, relation), direction)] over every edge, both ways."""
    adj: dict[str, list] = {}
    for s, t, rel in reader.edges():
        adj.setdefault(s, []).append((t, (s, t, rel), "out"))
        adj.setdefault(t, []).append((s, (s, t, rel), "in"))
    return adj


class KnowledgeBase:
    """A knowledge base rooted at a folder holding ``content/`` and ``bib/``.

    Reading methods rebuild the store first when the content changed since the last build.

    Examples
    --------
    >>> kb = KnowledgeBase("path/to/root")          # doctest: +SKIP
    >>> kb.show("method:integrated-gradients")["links_out"][:1]   # doctest: +SKIP
    [{'relation': 'applies_to', 'ref': 'architecture:cnn'}]
    """

    STALENESS_INTERVAL = 1.0  # seconds between content checks inside one process

    def __init__(self, root: str | Path | None = None, auto_build: bool = True):
        self.layout = Layout(find_root(root))
        self.auto_build = auto_build
        self.notices: list[str] = []  # things a caller may want to show the user (e.g. a failed rebuild)
        self._reader = None
        self._close = None
        self._store_dir: Path | None = None
        self._checked_at = 0.0
        self._cache: dict = {}

    # -- building and checking -------------------------------------------------------------
    def validate(self):
        """Validate the content (not the store); a ``Report`` with ``errors`` and ``warnings``."""
        from .build import compile_content

        return compile_content(self.layout).report

    def build(self, progress=None, force: bool = False) -> dict:
        """Compile content into the store and search index (atomically). Raises KBError on content errors."""
        from .build import build_store

        summary = build_store(self.layout, progress, force)
        self._drop_reader()
        return summary

    def close(self) -> None:
        self._drop_reader()

    def _drop_reader(self) -> None:
        if self._close:
            self._close()
        self._reader = self._close = self._store_dir = None
        self._cache.clear()

    def _ensure_store(self) -> Path:
        from .build import current_store, is_stale

        now = time.monotonic()
        if self._store_dir is not None and now - self._checked_at < self.STALENESS_INTERVAL:
            return self._store_dir
        self._checked_at = now
        if self.auto_build and is_stale(self.layout):
            try:
                self.build()
            except KBError as exc:
                if current_store(self.layout) is None:
                    raise
                self.notices.append(f"content changed but the rebuild failed ({exc}); answering from the previous build")
        store = current_store(self.layout)
        if store is None:
            raise KBError(f"no knowledge base is built under {self.layout.root}; run `kb build` there "
                          "(or pass --root / set KB_ROOT)")
        if store != self._store_dir:
            self._drop_reader()
            self._store_dir = store
        return store

    @property
    def reader(self):
        """The open store Reader (see kb.store.Reader)."""
        store = self._ensure_store()
        if self._reader is None:
            from .store import open_reader

            self._reader, self._close = open_reader(self.layout.database_url or str(store / "kb.sqlite"))
        return self._reader

    def cached(self, name: str, make):
        """A value derived from the store, computed once per store generation."""
        self._ensure_store()
        if name not in self._cache:
            self._cache[name] = make(self.reader)
        return self._cache[name]

    # -- reading ---------------------------------------------------------------------------
    def list(self, kind: str | None = None) -> list[dict]:
        """``[{"kind", "id", "name"}]`` of every record (of ``kind``), papers included."""
        from .refs import KINDS

        if kind is not None and kind not in KINDS:
            raise KBError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        return [{"kind": k, "id": i, "name": n} for k, i, n in self.reader.index(kind)]

    def resolve(self, ref: str) -> str:
        """The canonical ``kind:id`` of ``ref`` (``kind:id`` or a bare id that only one kind has)."""
        from .refs import KINDS

        ref = ref.strip()
        kind, sep, ident = ref.partition(":")
        if sep:
            if kind not in KINDS:
                raise KBError(f"unknown kind {kind!r} in {ref!r}; kinds are {', '.join(KINDS)}")
            if self.reader.record(ref) is None:
                raise KBError(self._not_found(ident, ref))
            return ref
        kinds = self.reader.kinds_of(ref)
        if len(kinds) == 1:
            return f"{kinds[0]}:{ref}"
        if kinds:
            raise KBError(f"{ref!r} is ambiguous: " + ", ".join(f"{k}:{ref}" for k in kinds))
        raise KBError(self._not_found(ref, ref))

    def _not_found(self, ident: str, ref: str) -> str:
        hits = self.search(ident.replace("-", " "), limit=5)
        hint = (" Did you mean: " + ", ".join(h["ref"] for h in hits) + "?") if hits else ""
        return f"no record {ref!r}.{hint}"

    def show(self, ref: str) -> dict:
        """One record's fields plus ``links_out`` and ``links_in`` (``[{"relation", "ref"}]``)."""
        canonical = self.resolve(ref)
        data = dict(self.reader.record(canonical))
        data.pop("fields", None)
        data["links_out"], data["links_in"] = self.reader.links(canonical)
        return data

    def search(self, text: str, kind: str | None = None, limit: int = 20) -> list[dict]:
        """Full-text search (typo-tolerant) over every record."""
        from .search import search

        return search(self._ensure_store() / "index", text, kind, limit)

    def query(self, question: str, limit: int = 5, **facets) -> dict:
        """Rank methods for a question in plain words; see kb.query."""
        from .query import answer

        return answer(self, question, limit=limit, **facets)

    def neighbourhood(self, ref: str, depth: int = 1) -> dict:
        """Records within ``depth`` links of ``ref``: ``{"center", "nodes": [...], "edges": [...]}``.

        Read from the store's edge table, so it needs neither networkx nor the content files.
        """
        center = self.resolve(ref)
        adjacency = self.cached("adjacency", _adjacency)
        seen, frontier = {center}, {center}
        for _ in range(depth):
            frontier = {n for node in frontier for n, _, _ in adjacency.get(node, ())} - seen
            seen |= frontier
        names = dict(((k, i), n) for k, i, n in self.reader.index())
        nodes = [{"ref": r, "kind": r.split(":", 1)[0], "name": names.get(tuple(r.split(":", 1)), r)} for r in sorted(seen)]
        edges = sorted({e for node in seen for _, e, _ in adjacency.get(node, ()) if e[0] in seen and e[1] in seen})
        return {"center": center, "depth": depth, "nodes": nodes,
                "edges": [{"source": s, "target": t, "relation": r} for s, t, r in edges]}

    def path(self, to: str | None = None, know=(), audience: str | None = None) -> dict:
        """A learning path to ``to`` (or an audience's curated path); see kb.paths."""
        from .paths import learning_path

        return learning_path(self, to, know, audience)

    # -- the handbook, the graph and reading lists (kb.render, kb.export, kb.handbook) ---------------
    def render(self, out: str | Path, fmt: str = "markdown", progress=None) -> dict:
        """Render the handbook into ``out`` (``markdown`` for MkDocs, or ``html``); see kb.render.

        Renders from the content itself, so it works while content still has errors (the summary's
        ``errors`` counts them; links to missing records become plain text).
        """
        from .render import render_handbook

        return render_handbook(self.layout, out, fmt, progress)

    def site(self):
        """The built store as a kb.handbook.Site (records, papers, networkx graph)."""
        from .handbook import site_from_reader

        return self.cached("site", site_from_reader)

    def graph(self, around: str | None = None, depth: int = 1, fmt: str = "dot") -> str:
        """The graph, or the neighbourhood of ``around`` within ``depth`` links, as dot|mermaid|graphml|json."""
        from .export import FORMATS, export
        from .graph import neighbourhood

        if fmt not in FORMATS:
            raise KBError(f"unknown graph format {fmt!r}; formats are {', '.join(FORMATS)}")
        if depth < 0:
            raise KBError("--depth must be 0 or more")
        G = self.site().graph
        if around:
            G = neighbourhood(G, self.resolve(around), depth)
        return export(G, fmt)

    def bib(self, refs=()) -> str:
        """BibTeX of a reading list: each ref's papers in prerequisite order (a path: its steps'; a
        paper: itself); every paper when ``refs`` is empty."""
        from .bib import to_bibtex
        from .handbook import prerequisite_reading_list

        site = self.site()
        if not refs:
            keys = sorted(site.papers)
        else:
            keys = []
            for ref in refs:
                keys += prerequisite_reading_list(site, self.resolve(ref))
            keys = list(dict.fromkeys(keys))
        return to_bibtex([site.papers[k] for k in keys])

    # -- tutorials ---------------------------------------------------------------------------
    def notebook(self, ref: str, out_dir: str | Path = ".") -> Path:
        """Write tutorial ``ref`` as a Jupyter notebook ``out_dir/<id>.ipynb`` (needs nbformat); see kb.notebook."""
        from .notebook import write_notebook

        return write_notebook(self, ref, out_dir)
