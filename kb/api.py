"""The library's front door: ``KnowledgeBase``, which every command of the CLI merely calls."""
from __future__ import annotations

import time
from pathlib import Path

from .config import Layout, locate
from .errors import KBError, NotFound, StoreMissing
from .freshness import FORK_FROM  # here too, so that a caller may set kb.api.FORK_FROM

__all__ = ["KnowledgeBase"]


def as_list(value, what: str = "value") -> list[str]:
    """A list of strings from a list/tuple, or from one comma-separated string (a convenience for callers
    who write ``know="pca,neuron"``): never the string's letters.

    >>> as_list("pca, neuron")
    ['pca', 'neuron']
    >>> as_list(["pca", " neuron "])
    ['pca', 'neuron']
    >>> as_list(None)
    []
    """
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    elif not isinstance(value, (list, tuple, set, frozenset)):
        raise KBError(f"{what} must be a list of record refs or a comma-separated string, not {type(value).__name__}")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise KBError(f"{what} must hold record refs (strings), not {type(item).__name__}")
        if item.strip():
            out.append(item.strip())
    return out


def with_ids(item: dict) -> dict:
    """``item`` with ``kind`` and ``id`` beside its ``ref`` (one naming everywhere; see kb.contract).

    >>> with_ids({"ref": "method:pca", "name": "PCA"})
    {'ref': 'method:pca', 'kind': 'method', 'id': 'pca', 'name': 'PCA'}
    """
    kind, _, ident = item["ref"].partition(":")
    return {"ref": item["ref"], "kind": item.get("kind") or kind, "id": item.get("id") or ident,
            **{k: v for k, v in item.items() if k not in ("ref", "kind", "id")}}


def on_your_model(reference: str) -> dict | None:
    """How to call a method's reference implementation on your own model: the import, the signature
    and its summary, read from the source with ast (no torch).

    >>> on_your_model("kb.reference.attribution:integrated_gradients")["import"]
    'from kb.reference import integrated_gradients'
    """
    from .signature import reference_signature

    sig = reference_signature(reference)
    if sig is None:
        return None
    return {"import": f"from kb.reference import {sig['function']}", "signature": sig["signature"],
            "doc": sig["doc"],
            "note": "your model is any torch.nn.Module; inputs are batched tensors shaped as the model takes them"}


def _reference_digest() -> str:
    """A digest of the reference implementations' source: figures drawn by older code are redrawn."""
    import hashlib

    here = Path(__file__).resolve().parent / "reference"
    h = hashlib.blake2b(digest_size=8)
    for path in sorted(here.rglob("*.py")):
        h.update(path.relative_to(here).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def within(adjacency: dict, center: str, depth: int) -> set[str]:
    """The refs within ``depth`` links of ``center``, following links either way (``adjacency``: see
    :func:`_adjacency`). The one neighbourhood: ``kb graph --around``, HTTP and MCP all use it.

    >>> adj = _adjacency_of([("a", "b", "uses"), ("b", "c", "uses"), ("d", "a", "uses")])
    >>> sorted(within(adj, "a", 1)), sorted(within(adj, "a", 2))
    (['a', 'b', 'd'], ['a', 'b', 'c', 'd'])
    """
    seen, frontier = {center}, {center}
    for _ in range(depth):
        frontier = {n for node in frontier for n, _, _ in adjacency.get(node, ())} - seen
        seen |= frontier
    return seen


def _requires(reader) -> dict[str, list[str]]:
    """ref -> [refs it requires], from the store's ``requires`` edges."""
    requires: dict[str, list[str]] = {}
    for source, target, _ in reader.edges("requires"):
        requires.setdefault(source, []).append(target)
    return requires


def _large(store: Path) -> bool:
    """Whether the store's content is large enough for its check to run in forked children
    (FORK_FROM records: below it, stat-ing the content inline, ~2 µs a file, costs less than forking)."""
    from .freshness import large

    return large(store, FORK_FROM)


def _adjacency(reader) -> dict:
    return _adjacency_of(reader.edges())


def _adjacency_of(edges) -> dict:
    """node -> [(neighbour, (source, target, relation), direction)] over every edge, both ways."""
    adj: dict[str, list] = {}
    for s, t, rel in edges:
        adj.setdefault(s, []).append((t, (s, t, rel), "out"))
        adj.setdefault(t, []).append((s, (s, t, rel), "in"))
    return adj


class KnowledgeBase:
    """A knowledge base rooted at a folder holding ``content/`` and ``bib/``.

    ``root`` is that folder (it must hold ``content/``), or a kb.config.Layout; without it the knowledge
    base is found as the command line finds it: ``$KB_ROOT``, else the nearest folder upward from the
    current one that holds ``content/``, else the handbook bundled with the package (see kb.config.locate).
    Reading methods rebuild the store first when the content changed since the last build.

    Examples
    --------
    >>> kb = KnowledgeBase("path/to/root")          # doctest: +SKIP
    >>> kb.show("method:integrated-gradients")["links_out"][:1]   # doctest: +SKIP
    [{'relation': 'applies_to', 'ref': 'architecture:cnn'}]
    """

    STALENESS_INTERVAL = 1.0  # seconds between content checks inside one process

    def __init__(self, root: str | Path | Layout | None = None, auto_build: bool = True):
        self.layout = locate(root)
        self.auto_build = auto_build
        self.notices: list[str] = []  # things a caller may want to show the user (e.g. a failed rebuild)
        self._reader = None
        self._close = None
        self._store_dir: Path | None = None
        self._checked_at = 0.0
        self._cache: dict = {}

    # -- which knowledge base ----------------------------------------------------------------
    def info(self) -> dict:
        """Which knowledge base this is and why, its record counts and where its store lives.

        Builds the store first when it is missing or stale (as every reading method does)."""
        from . import __version__

        layout = self.layout
        data = {"root": str(layout.root), "source": layout.source, "reason": layout.reason,
                "bundled": layout.bundled, "version": __version__,
                "store": layout.database_url_redacted if layout.database_url else str(layout.store),
                "database": "server" if layout.database_url else "sqlite"}
        store = self._ensure_store()
        counts = self.reader.meta("counts", None)
        if counts is None:
            counts = {}
            for kind, _, _ in self.reader.index():
                counts[kind] = counts.get(kind, 0) + 1
        data.update(current=str(store), records=sum(counts.values()), counts=dict(sorted(counts.items())))
        from .freshness import watched

        data["watched"] = watched(layout.sources) is not None  # a `kb watch` answers its content check
        return data

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

    def _ensure_store(self, stamp: str | None = None) -> Path:
        """The current store, rebuilt first when the content changed (checked at most once per
        STALENESS_INTERVAL); ``stamp``: the content's fingerprint, when already computed."""
        from .build import current_store, is_stale

        now = time.monotonic()
        if self._store_dir is not None and now - self._checked_at < self.STALENESS_INTERVAL:
            return self._store_dir
        stale = self.auto_build and is_stale(self.layout, stamp)
        # the interval runs from the end of the check: on a large tree the check itself can take
        # longer than the interval, and one command should not pay for it twice
        self._checked_at = time.monotonic()
        if stale:
            try:
                self.build()
            except KBError as exc:
                if current_store(self.layout) is None:
                    raise
                self.notices.append(f"content changed but the rebuild failed ({exc}); answering from the previous build")
        store = current_store(self.layout)
        if store is None:
            raise StoreMissing(f"no knowledge base is built under {self.layout.root}; build it first (kb build)")
        if store != self._store_dir:
            self._drop_reader()
            self._store_dir = store
        return store

    def _while_checking(self, work):
        """``work()``, with the content check of a single-threaded process run beside it.

        The check stats every content file (most of a cold query on a large knowledge base), so
        forked children compute the fingerprint while ``work`` runs on the current store; if the
        content changed, the store is rebuilt and ``work`` runs again. Without fork, with threads
        (a server: forking a threaded process is unsafe, and it checks at most once a second
        anyway), or when a child fails, the check runs inline as everywhere else.
        """
        import sys

        from .build import claim_fingerprint, current_store, start_fingerprint

        threading = sys.modules.get("threading")  # not imported: no thread was started with it
        one_thread = threading is None or threading.active_count() == 1
        due = self._store_dir is None or time.monotonic() - self._checked_at >= self.STALENESS_INTERVAL
        store = current_store(self.layout) if due and self.auto_build and one_thread else None
        pending = None
        if store is not None:  # the check the kb launcher started for this store, else one started here
            pending = claim_fingerprint(self.layout, store)
            if pending is None and _large(store):
                pending = start_fingerprint(self.layout, store)
        if pending is None:
            return work()
        result = failure = None
        try:
            if store != self._store_dir:
                self._drop_reader()
                self._store_dir = store
            self._checked_at = time.monotonic()  # the check is under way: work reads this store
            result = work()
        except Exception as exc:  # a store of an older format may fail to answer: the check decides
            failure = exc
        finally:
            stamp = pending()  # always wait for the children
            self._checked_at = 0.0  # the check is due now, with the children's answer
        if self._ensure_store(stamp) != store:
            return work()  # the content changed (and was rebuilt), or another build replaced the store
        if failure is not None:
            raise failure
        return result

    @property
    def reader(self):
        """The open store Reader (see kb.store.Reader)."""
        store = self._ensure_store()
        if self._reader is None:
            from .store import open_reader

            self._reader, self._close = open_reader(self.layout.database_url or str(store / "kb.sqlite"))
            if self.layout.database_url:
                self._check_shared_database(store)
        return self._reader

    def _check_shared_database(self, store: Path) -> None:
        """A database named by KB_DATABASE_URL holds one knowledge base's store: refuse another's,
        whose records would not match this knowledge base's search index."""
        held = self._reader.meta("root")
        if held is None:  # a store written before roots were recorded: compare the builds instead
            try:
                local = (store / "FINGERPRINT").read_text().strip()
            except OSError:
                local = None
            if self._reader.meta("fingerprint") == local:
                return
            held = "another build"
        if held != str(self.layout.root):
            self._drop_reader()
            raise KBError(f"the database in KB_DATABASE_URL holds the store of another knowledge base ({held}), "
                          f"not of {self.layout.root}; give each knowledge base its own database, "
                          "or rebuild this one there with `kb build --force`")

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
        return [{"ref": f"{k}:{i}", "kind": k, "id": i, "name": n} for k, i, n in self.reader.index(kind)]

    def resolve(self, ref: str) -> str:
        """The canonical ``kind:id`` of ``ref`` (``kind:id`` or a bare id that only one kind has)."""
        from .refs import KINDS, resolve_ref

        ref = ref.strip()
        kind, sep, ident = ref.partition(":")
        if not sep:
            kind, ident = None, ref
        elif kind not in KINDS:
            raise KBError(f"unknown kind {kind!r} in {ref!r}; kinds are {', '.join(KINDS)}")
        kinds = self.reader.kinds_of(ident)
        canonical, code = resolve_ref(kind, ident, kinds, papers=True)
        if canonical:
            return canonical
        if code == "ambiguous-ref":
            raise KBError(f"{ref!r} is ambiguous: " + ", ".join(f"{k}:{ref}" for k in kinds))
        raise NotFound(self._not_found(ident, ref), param="ref")

    def _not_found(self, ident: str, ref: str) -> str:
        from .refs import is_citekey, is_slug

        # "Did you mean" only for what could be an id (a slug or citekey of at most 120 characters):
        # a fuzzy search over anything else costs work and cannot find a record.
        hits = self.search(ident.replace("-", " "), limit=5) if is_slug(ident) or is_citekey(ident) else []
        hint = (" Did you mean: " + ", ".join(h["ref"] for h in hits) + "?") if hits else ""
        return f"no record {ref if len(ref) <= 80 else ref[:77] + '...'!r}.{hint}"

    def show(self, ref: str) -> dict:
        """One record's fields plus ``links_out`` and ``links_in`` (``[{"relation", "ref"}]``)."""
        canonical = self.resolve(ref)
        data = {"ref": canonical, **self.reader.record(canonical)}
        data.pop("fields", None)
        data["links_out"], data["links_in"] = self.reader.links(canonical)
        if data.get("kind") == "method" and data.get("reference"):
            data["on_your_model"] = on_your_model(data["reference"])
        return data

    def search(self, text: str, kind: str | None = None, limit: int = 20, operators: bool = False) -> list[dict]:
        """Full-text search (typo-tolerant) over every record: ``[{"ref", "kind", "id", "name", "score"}]``.

        The words are words; ``operators=True`` reads AND, OR, NOT and "phrases" as a query language.
        """
        from .search import search

        return [with_ids(h) for h in search(self._ensure_store() / "index", text, kind, limit, operators)]

    def query(self, question: str, limit: int = 5, **facets) -> dict:
        """Rank methods for a question in plain words; see kb.query."""
        from .query import answer

        from .querymodel import with_rows

        def work():
            model = self.cached("query_model", lambda reader: with_rows(reader.meta("query_model"), reader.meta_many))
            cache = self.cached("query_cache", lambda reader: {})  # typo index and stems, per store generation
            return answer(model, question, limit=limit, cache=cache, **facets)

        result = self._while_checking(work)
        for key in ("results", "related"):  # every record named with ref, kind and id (kb.contract)
            if isinstance(result.get(key), list):
                result[key] = [with_ids(r) if isinstance(r, dict) and "ref" in r else r for r in result[key]]
        return result

    def neighbourhood(self, ref: str, depth: int = 1) -> dict:
        """Records within ``depth`` links of ``ref``: ``{"center", "nodes": [...], "edges": [...]}``.

        Read from the store's edge table, so it needs neither networkx nor the content files.
        """
        if depth < 0:
            raise KBError("depth must be 0 or more", param="depth")
        center = self.resolve(ref)
        adjacency = self.cached("adjacency", _adjacency)
        seen = within(adjacency, center, depth)
        names = dict(((k, i), n) for k, i, n in self.reader.index())
        nodes = [with_ids({"ref": r, "name": names.get(tuple(r.split(":", 1)), r)}) for r in sorted(seen)]
        edges = sorted({e for node in seen for _, e, _ in adjacency.get(node, ()) if e[0] in seen and e[1] in seen})
        return {"center": center, "depth": depth, "nodes": nodes,
                "edges": [{"source": s, "target": t, "relation": r} for s, t, r in edges]}

    def graph_data(self, around: str | None = None, depth: int = 1) -> dict:
        """The graph as ``{"center", "depth", "nodes", "edges"}`` (kb.contract.Graph): the neighbourhood
        of ``around`` within ``depth`` links, or every record and link when ``around`` is None."""
        if around:
            return self.neighbourhood(around, depth)
        nodes = [{"ref": f"{k}:{i}", "kind": k, "id": i, "name": n} for k, i, n in self.reader.index()]
        edges = sorted(set(self.reader.edges()))
        return {"center": None, "depth": None, "nodes": nodes,
                "edges": [{"source": s, "target": t, "relation": r} for s, t, r in edges]}

    def path(self, to: str | None = None, know=(), audience: str | None = None) -> dict:
        """A learning path to ``to`` (or an audience's curated path); see kb.paths.

        ``know`` lists the records already known: a list, or a comma-separated string."""
        from .paths import learning_path

        requires = self.cached("requires", _requires)
        result = learning_path(requires, self.reader.record, self.resolve, to, as_list(know, "know"), audience)
        result["steps"] = [with_ids(step) for step in result["steps"]]
        return result

    # -- the handbook, the graph and reading lists (kb.render, kb.export, kb.handbook) ---------------
    def render(self, out: str | Path, fmt: str = "markdown", progress=None) -> dict:
        """Render the handbook into ``out`` (``markdown`` for MkDocs, or ``html``); see kb.render.

        Renders the store, as :meth:`preview` finds it: content with errors still renders (the summary's
        ``errors`` counts them; links to missing records become plain text).
        """
        from .render import render_site

        started = time.perf_counter()
        site, errors = self.preview()
        summary = render_site(site, out, fmt, progress, figures=self.layout.root / "figures")
        summary["errors"] = errors
        summary["seconds"] = round(time.perf_counter() - started, 3)  # building changed content included
        return summary

    def preview(self):
        """``(site, errors)``: the content as it stands, as a kb.handbook.Site, and its error count.

        Changed content is built first. Content with errors is built into a preview store
        (kb.build.build_store with ``preview=True``), which no other reader sees, so writers can
        render their work before it validates; ``kb validate`` is what gates.
        """
        from .build import build_store, is_stale

        if not (self.auto_build and is_stale(self.layout)):
            return self.site(), 0
        try:
            built = build_store(self.layout, preview=True)
        except KBError:  # the store cannot be written now (another build, a read-only folder): as every reader
            return self.site(), 0
        self._drop_reader()
        if not built["errors"]:
            return self.site(), 0
        from .handbook import site_from_reader
        from .store import open_reader

        reader, close = open_reader(str(Path(built["store"]) / "kb.sqlite"))
        try:
            return site_from_reader(reader), built["errors"]
        finally:
            close()

    def site(self):
        """The built store as a kb.handbook.Site (records, papers, networkx graph)."""
        from .handbook import site_from_reader

        return self.cached("site", site_from_reader)

    def graph(self, around: str | None = None, depth: int = 1, fmt: str = "dot") -> str:
        """The graph, or the neighbourhood of ``around`` within ``depth`` links, as dot|mermaid|graphml|json."""
        from .export import FORMATS, export

        if fmt not in FORMATS:
            raise KBError(f"unknown graph format {fmt!r}; formats are {', '.join(FORMATS)}")
        if depth < 0:
            raise KBError("depth must be 0 or more", param="depth")
        G = self.site().graph
        if around:
            G = G.subgraph(node["ref"] for node in self.neighbourhood(around, depth)["nodes"])
        return export(G, fmt)

    def bib(self, refs=()) -> str:
        """BibTeX of a reading list: each ref's papers in prerequisite order (a path: its steps'; a
        paper: itself); every paper when ``refs`` is empty. ``refs``: a list, or a comma-separated string."""
        from .bib import to_bibtex
        from .handbook import prerequisite_reading_list

        refs = as_list(refs, "refs")
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

        ref = ref.strip()
        # a bare id names the tutorial even when a record of another kind shares it
        canonical = f"tutorial:{ref}" if ":" not in ref and "tutorial" in self.reader.kinds_of(ref) else self.resolve(ref)
        kind = canonical.split(":", 1)[0]
        if kind != "tutorial":
            tutorials = [r["id"] for r in self.list("tutorial")]
            raise KBError(f"{canonical} is a {kind}, not a tutorial; tutorials are: {', '.join(tutorials) or 'none'}")
        return write_notebook(self.show(canonical), out_dir)

    # -- reproductions -----------------------------------------------------------------------
    def reproductions(self) -> list[dict]:
        """``[{"case", "name", "shows", "run", "test", "measured"}]`` of every case study with a runnable
        reproduction (``reproduction.run``); reads the store only, never imports torch."""
        rows = []
        for item in self.list("case_study"):
            repro = (self.reader.record(item["ref"]) or {}).get("reproduction") or {}
            if repro.get("run"):
                rows.append({"case": item["id"], "name": item["name"], "shows": repro["shows"], "run": repro["run"],
                             "test": repro["test"], "measured": repro.get("measured")})
        return rows

    def figures(self, out: str | Path | None = None, only=(), force: bool = False, progress=None) -> dict:
        """Draw the figures the handbook shows: each method's ``kb run`` demo and each case study's
        reproduction, as ``<out>/<kind>/<id>.png`` with the run's JSON beside it (the caption).

        ``out`` defaults to ``figures/`` under the knowledge base root, where ``kb render`` looks.
        A figure is redrawn only when the reference code that made it changed (a digest of
        kb/reference is kept in its JSON) or ``force`` is given. Needs the reference extra.
        Returns ``{"written": [ref], "kept": [ref], "failed": {ref: message}}``.
        """
        import json

        from .reference.demo import list_runnable, run_method

        out = Path(out) if out is not None else self.layout.root / "figures"
        digest = _reference_digest()
        wanted = {r if ":" in r else f"method:{r}" for r in as_list(only, "only")}
        jobs = [(f"method:{r['method']}", r["available"]) for r in list_runnable()]
        jobs += [(f"case_study:{r['case']}", True) for r in self.reproductions()]
        done: dict = {"written": [], "kept": [], "failed": {}}
        cache: dict = {}
        for ref, available in jobs:
            if wanted and ref not in wanted or not available:
                continue
            kind, _, ident = ref.partition(":")
            folder = out / kind
            meta = folder / f"{ident}.json"
            try:
                if not force and (folder / f"{ident}.png").is_file() and json.loads(meta.read_text()).get("digest") == digest:
                    done["kept"].append(ref)
                    continue
            except (OSError, ValueError):
                pass
            try:
                result = run_method(ident, folder, cache) if kind == "method" else self.reproduce(ref, folder)
            except Exception as exc:  # one failing demo must not stop the others; it is reported
                done["failed"][ref] = f"{type(exc).__name__}: {exc}"
                continue
            # the figure named relative to its JSON: the folder may be committed or moved
            meta.write_text(json.dumps({**result, "figure": f"{ident}.png", "digest": digest}, indent=2, default=str))
            done["written"].append(ref)
            if progress:
                progress(ref)
        return done

    def reproduce(self, ref: str, out_dir: str | Path | None = None, seed: int = 0) -> dict:
        """Run case study ``ref``'s reproduction (needs the reference extra: torch, matplotlib).

        Returns the run's dict (``claim``, ``setup``, ``measured``, ``headline``, ``tolerance``,
        ``passed``, ``seconds``, ``figure``; see kb.reference.reproductions) plus ``case`` and ``shows``;
        the figure is written to ``out_dir/<case id>.png`` when ``out_dir`` is given.
        """
        canonical = self.resolve(ref if ":" in ref else f"case_study:{ref}")
        kind, _, ident = canonical.partition(":")
        repro = (self.reader.record(canonical) or {}).get("reproduction") or {}
        if kind != "case_study" or not repro.get("run"):
            runnable = ", ".join(r["case"] for r in self.reproductions())
            raise NotFound(f"{canonical} has no runnable reproduction; runnable: {runnable}", param="case")
        from .reference.reproductions import reproduce

        result = reproduce(repro["run"], out_dir, seed=seed, name=ident)
        return {"case": ident, "shows": repro["shows"], **result}
