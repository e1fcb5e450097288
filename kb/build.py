"""Compile content into the store: load -> graph -> validate -> write aside -> rename into place."""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from . import freshness
from .config import Layout
from .errors import KBError

__all__ = ["Compiled", "compile_content", "fingerprint", "start_fingerprint", "claim_fingerprint", "build_store", "current_store", "is_stale", "build_lock",
           "records_for_store", "PREVIEW"]

Progress = Callable[[str, int, int], None]  # (phase, done, total)
KEEP_STORES = 2  # the current one and its predecessor, which readers that started earlier may still hold
PREVIEW = "preview"  # <store>/preview/: builds of content with errors, which only `kb render` reads


@dataclass
class Compiled:
    records: list
    papers: list
    graph: object
    report: object


def compile_content(layout: Layout, progress: Progress | None = None) -> Compiled:
    """Load, link and validate everything under ``layout``; never raises for bad content."""
    from .bib import load_bib
    from .graph import build_graph
    from .errors import Problem
    from .load import declared_refs, load_records, scan_content
    from .store import STORE_VERSION
    from .validate import Content, run_checks

    files, skipped = scan_content(layout.content)  # walked once: loading and declared ids share it
    total = len(files)

    def on_file(done: int) -> None:
        if progress and (done % 25 == 0 or done == total):
            progress("load", done, total)

    if progress:
        progress("load", 0, total)
    cache = _read_json(layout.store / "parse-cache.json", {})
    if cache.get("version") != STORE_VERSION or cache.get("root") != str(layout.root):
        cache = {"version": STORE_VERSION, "root": str(layout.root), "files": {}}
    known = set(cache["files"])
    records, problems = load_records(layout.content, layout.root, cache["files"], on_file, files)
    present = {r.file for r in records}
    for rel in known - present:  # deleted or now broken files
        cache["files"].pop(rel, None)
    _write_json(layout.store / "parse-cache.json", cache)
    declared_keys: set[str] = set()
    papers, bib_problems = load_bib(layout.bib, layout.root, declared_keys)
    declared = declared_refs(layout.content, files) | {("paper", k) for k in declared_keys}
    graph, failed = build_graph(records, papers, declared)
    # The bundled handbook was validated with its tests before it shipped; an installed copy has no
    # tests/ for the reproduction check to find, so checks that need the source tree are skipped.
    problems += [Problem("skipped-file", str(path.relative_to(layout.root)), None, None, f"skipped: {why}", "warning")
                 for path, why in skipped]
    report = run_checks(Content(records, papers, graph, failed, problems + bib_problems,
                                None if layout.bundled else layout.root))
    return Compiled(records, papers, graph, report)


def _read_json(path: Path, default):
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _write_json(path: Path, data) -> None:
    """Write atomically, and quietly give up on a read-only checkout: caches are an optimisation."""
    import json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError:
        try:  # a full disk leaves a partial temp file: never leave it behind
            tmp.unlink()
        except (OSError, UnboundLocalError):
            pass


def _prefix(layout: Layout) -> str:
    """What the fingerprint holds besides the files: the store format and the database."""
    from .store import STORE_VERSION

    return f"{STORE_VERSION}|{layout.database_url or ''}"


def fingerprint(layout: Layout) -> str:
    """A cheap hash of every content and bib file's path, size and mtime, plus the store format; see
    kb.freshness (it takes the file names from the current store's manifest where folders are unchanged)."""
    return freshness.fingerprint(layout.sources, _prefix(layout), current_store(layout))


def _survey_for_build(layout: Layout) -> tuple[str, bytes]:
    """The fingerprint of the content as a build finds it (every folder listed), and its MANIFEST."""
    folders = freshness.survey(layout.sources, listed_at=time.time_ns())
    try:
        return freshness.digest(layout.sources, folders, _prefix(layout)), freshness.manifest_text(folders)
    finally:
        freshness.close(folders)


def start_fingerprint(layout: Layout, store: Path | None = None) -> Callable[[], str | None] | None:
    """Start computing :func:`fingerprint` in forked children (kb.freshness.start); return a function
    that waits for them and returns it, or None when a child failed (then compute it inline).

    Returns None where there is no fork (Windows) or it fails. Call it only in a process with one
    thread: forking a threaded process can deadlock the child.
    """
    pending = freshness.start(layout.sources, store if store is not None else current_store(layout))
    return None if pending is None else (lambda: pending.result(_prefix(layout)))


def claim_fingerprint(layout: Layout, store: Path) -> Callable[[], str | None] | None:
    """The check the ``kb`` launcher started before the command's imports (kb.launch), as
    :func:`start_fingerprint` returns it, when it is of this knowledge base and ``store``."""
    pending = freshness.claim(layout.sources, store)
    return None if pending is None else (lambda: pending.result(_prefix(layout)))


def current_store(layout: Layout) -> Path | None:
    """The folder of the store readers should use, or None before the first build."""
    found = freshness.current_store(layout.store)
    return None if found is None else Path(found)


def is_stale(layout: Layout, stamp: str | None = None) -> bool:
    """Whether the content changed since the current store was built; ``stamp``: the content's
    fingerprint when already computed (by :func:`start_fingerprint`)."""
    current = current_store(layout)
    if current is None:
        return True
    try:
        return (current / "FINGERPRINT").read_text().strip() != (stamp or fingerprint(layout))
    except OSError:
        return True


@contextmanager
def build_lock(layout: Layout):
    """Hold the build lock; a second build at the same time gets a clear KBError."""
    import fcntl

    path = layout.store / "build.lock"
    try:
        layout.store.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only checkout, a full disk: readers answer from the previous build
        raise KBError(f"cannot write the store in {layout.store}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise KBError(f"another build is running (pid {holder}); wait for it to finish and retry") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def records_for_store(compiled: Compiled) -> list[dict]:
    """The records as the store holds them: each record's fields plus ``kind`` and ``file``; papers
    with their BibTeX fields, citation and link, merged with their note."""
    notes = {r.id: r.model for r in compiled.records if r.kind == "paper"}
    out = []
    for rec in compiled.records:
        if rec.kind == "paper":
            continue
        data = rec.model.model_dump(mode="json")
        data.update(kind=rec.kind, file=rec.file)
        out.append(data)
    for p in compiled.papers:
        data = p.to_dict()
        data.update(kind="paper", name=p.title, link=p.link, citation=p.citation(), summary="", key=False,
                    topics=[], level=None, why_it_matters="")
        note = notes.get(p.id)
        if note is not None:
            data.update(note.model_dump(mode="json"))
        out.append(data)
    return out


def build_store(layout: Layout, progress: Progress | None = None, force: bool = False, preview: bool = False) -> dict:
    """Build the store and search index atomically; return a summary.

    The search index is patched from the previous build when few records changed; ``force``
    rebuilds it from scratch.

    Raises KBError (carrying the problems) when the content has errors: the previous store stays.
    With ``preview``, content with errors is built all the same, into a preview store
    (``<store>/preview/``, always SQLite) that never replaces the store readers use, so the handbook
    of unfinished content can be rendered; the summary then adds ``errors`` and ``preview``.
    """
    from .querymodel import build_query_model
    from .store import write_store

    # the files as they are before they are read: an edit made while compiling leaves the store stale
    stamp, manifest = _survey_for_build(layout)
    compiled = compile_content(layout, progress)
    errors = compiled.report.errors
    if errors and not preview:
        raise KBError(f"the content has {len(errors)} error(s); run `kb validate` to see them", errors)
    home = replace(layout, store_dir=layout.store / PREVIEW) if errors else layout
    records = records_for_store(compiled)
    edges = sorted({(u, v, d["relation"], d["field"]) for u, v, d in compiled.graph.edges(data=True)})
    counts: dict[str, int] = {}
    for r in records:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    with build_lock(layout):
        tmp = home.store / f"store-{time.time_ns()}-{os.getpid()}.tmp"
        final = tmp.with_suffix("")
        try:
            tmp.mkdir(parents=True)
            url = (None if errors else layout.database_url) or f"sqlite:///{tmp / 'kb.sqlite'}"
            if progress:
                progress("store", 0, 1)
            # the root says which knowledge base a shared database (KB_DATABASE_URL) holds
            model = build_query_model(records)
            write_store(url, records, edges, {"fingerprint": stamp, "counts": counts, "root": str(layout.root),
                                              **model.pop("rows"), "query_model": model})
            if progress:
                progress("store", 1, 1)
                progress("index", 0, 1)
            digests = _index_records(home, tmp / "index", records, incremental=not force)
            _write_json(tmp / "DIGESTS.json", digests)
            (tmp / "FINGERPRINT").write_text(stamp + "\n")
            (tmp / freshness.MANIFEST).write_bytes(manifest)  # the names it hashed (kb.freshness)
            (tmp / "RECORDS").write_text(f"{len(records)}\n")  # how big a content check is (kb.api)
            os.rename(tmp, final)
            _point_current(home, final)
            if progress:
                progress("index", 1, 1)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if current_store(home) != final:
                shutil.rmtree(final, ignore_errors=True)
            if isinstance(exc, OSError) or type(exc).__module__.startswith("sqlalchemy"):
                # a full disk, a read-only folder, a database that went away: one line, no traceback
                raise KBError(f"could not write the store in {layout.store}: {_os_message(exc)}; "
                              "any previous build still answers") from None
            raise
        _collect_old_stores(home, final)
    summary = {"records": len(records), "edges": len(edges), "counts": counts,
               "warnings": len(compiled.report.warnings), "store": str(final)}
    if preview:
        summary.update(errors=len(errors), preview=bool(errors))
    return summary


def _os_message(exc: BaseException) -> str:
    """The one line that says what went wrong (SQLAlchemy wraps the driver's error with its SQL)."""
    inner = getattr(exc, "orig", None) or exc
    text = getattr(inner, "strerror", None) or str(inner)
    return text.strip().splitlines()[0] if text.strip() else type(inner).__name__


INCREMENTAL_SHARE = 0.3  # past this share of changed records a fresh index is faster than patching


def _index_records(layout: Layout, folder: Path, records: list[dict], incremental: bool = True) -> dict[str, str]:
    """Index ``records`` into ``folder``: patch a copy of the previous index when little changed."""
    import json

    from .search import build_index, update_index

    digests = {f"{r['kind']}:{r['id']}": hashlib.blake2b(json.dumps(r, sort_keys=True).encode(), digest_size=12).hexdigest()
               for r in records}
    previous = current_store(layout)
    old = _read_json(previous / "DIGESTS.json", None) if previous else None
    if incremental and old and (previous / "index").is_dir():
        changed = [r for r in records if old.get(f"{r['kind']}:{r['id']}") != digests[f"{r['kind']}:{r['id']}"]]
        removed = set(old) - set(digests)
        if len(changed) + len(removed) <= INCREMENTAL_SHARE * max(len(records), 1):
            shutil.copytree(previous / "index", folder)
            update_index(folder, changed, removed)
            return digests
    build_index(folder, records)
    return digests


def _point_current(layout: Layout, folder: Path) -> None:
    tmp_link = layout.store / f"current.{os.getpid()}.tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(folder.name, tmp_link)
    current = layout.store / "current"
    if current.is_dir() and not current.is_symlink():  # e.g. a copy made by a tool that follows links
        shutil.rmtree(current)
    os.replace(tmp_link, layout.store / "current")  # atomic: readers see the old store or the new one


# A reader (a server thread, a long command) keeps using the store it opened until its next
# staleness check (KnowledgeBase.STALENESS_INTERVAL, 1 s) plus the request in flight. So a store is
# removed only once it has been replaced for READER_GRACE seconds, a wide margin over that: two
# builds within a second must not delete the store that readers of the first one still read.
READER_GRACE = 60.0


def _created(store: Path) -> float:
    """When a store was built, from its name (store-<time_ns>-<pid>), else its mtime."""
    try:
        return int(store.name.split("-")[1]) / 1e9
    except (IndexError, ValueError):
        try:
            return store.stat().st_mtime
        except OSError:
            return 0.0


def _collect_old_stores(layout: Layout, keep: Path, now: float | None = None) -> None:
    """Remove stores no reader can still use: older than the KEEP_STORES newest, and replaced for
    at least READER_GRACE seconds (by the store built after them)."""
    now = time.time() if now is None else now
    stores = sorted((p for p in layout.store.glob("store-*") if p.is_dir() and p.suffix != ".tmp"), key=_created)
    for i, old in enumerate(stores[:-KEEP_STORES]):
        replaced_at = _created(stores[i + 1])
        if old != keep and now - replaced_at >= READER_GRACE:
            shutil.rmtree(old, ignore_errors=True)
    for stale_tmp in layout.store.glob("store-*.tmp"):  # left by a build that was killed
        try:
            pid = int(stale_tmp.stem.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue
        except ProcessLookupError:
            shutil.rmtree(stale_tmp, ignore_errors=True)
        except PermissionError:
            pass
