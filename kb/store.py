"""The compiled store: records, edges and metadata in SQL (SQLite by default, any SQLAlchemy URL).

Writing goes through sqlmodel. Reading the embedded SQLite store uses the standard library's
sqlite3, because importing SQLAlchemy alone costs ~190 ms and a query's whole budget is 200 ms.
"""
from __future__ import annotations

import json
import os
import sqlite3
from typing import Any, Iterable

__all__ = ["write_store", "Reader", "open_reader", "STORE_VERSION"]

def _store_version() -> str:
    """The store format: a digest of the modules that decide what a build writes. A store or parse
    cache written by other code is stale, so upgrading interp-kb rebuilds instead of misreading.

    The modules are found, not listed: kb/build.py and every package module it imports, directly or
    through others (a regex over the import lines, so reading stays cheap), plus the package's data.
    Changing the query, the renderer or the server rebuilds nothing.
    """
    import hashlib
    import re
    from pathlib import Path

    here = Path(__file__).resolve().parent
    # the embedding table is represented by its small sha256 sidecar: hashing 8 MB on every import is slow
    data = [p for p in here.glob("data/*") if p.suffix != ".sqlite"]
    # Reading and hashing ~1.5 MB cost every command a few ms, so the version is kept beside the
    # compiled modules, keyed by the sizes and mtimes of every module and data file (a stat each),
    # and worked out again when any of them changes.
    stats = [(p.name, st.st_size, st.st_mtime_ns) for p in sorted([*here.glob("*.py"), *data]) for st in [p.stat()]]
    key = hashlib.blake2b(repr(stats).encode(), digest_size=8).hexdigest()
    cache = here / "__pycache__" / "store_version.txt"
    try:
        cached_key, version = cache.read_text().split()
        if cached_key == key:
            return version
    except (OSError, ValueError):
        pass
    imports = re.compile(r"^\s*from \.(\w*) import ([\w, ()]+)", re.M)
    seen, todo = set(), ["build"]
    while todo:
        name = todo.pop()
        path = here / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        for module, names in imports.findall(path.read_text()):
            todo.extend([module] if module else re.findall(r"\w+", names))
    paths = sorted([*(here / f"{n}.py" for n in seen), *data])
    h = hashlib.blake2b(digest_size=8)
    for path in paths:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    version = "3-" + h.hexdigest()
    try:  # a read-only install simply hashes every time
        cache.parent.mkdir(exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(f"{key} {version}\n")
        os.replace(tmp, cache)
    except OSError:
        pass
    return version


STORE_VERSION = _store_version()


def _tables():
    """The sqlmodel table classes, defined on first use so reading never imports SQLAlchemy."""
    global _TABLES
    try:
        return _TABLES
    except NameError:
        pass
    from sqlmodel import Field, SQLModel

    class RecordRow(SQLModel, table=True):
        __tablename__ = "record"
        ref: str = Field(primary_key=True)
        kind: str = Field(index=True)
        id: str = Field(index=True)
        name: str
        summary: str = ""
        level: str | None = None
        file: str | None = None
        data: str  # the record's fields as JSON

    class EdgeRow(SQLModel, table=True):
        __tablename__ = "edge"
        pk: int | None = Field(default=None, primary_key=True)
        source: str = Field(index=True)
        target: str = Field(index=True)
        relation: str
        field: str

    class MetaRow(SQLModel, table=True):
        __tablename__ = "meta"
        key: str = Field(primary_key=True)
        value: str

    _TABLES = (SQLModel, RecordRow, EdgeRow, MetaRow)
    return _TABLES


def write_store(url: str, records: Iterable[dict], edges: Iterable[tuple[str, str, str, str]], meta: dict[str, Any]) -> None:
    """Write a complete store at ``url`` in one transaction, replacing what was there.

    On SQLite the caller writes a fresh file and renames it into place; on a server database the
    single transaction is what keeps readers from seeing a half-written store.
    """
    from sqlalchemy import delete, insert
    from sqlmodel import create_engine

    SQLModel, RecordRow, EdgeRow, MetaRow = _tables()
    engine = create_engine(url)
    meta = {**meta, "store_version": STORE_VERSION}
    try:
        SQLModel.metadata.create_all(engine)
        # Core bulk inserts: ORM objects cost ~80 µs each, which is most of a 10k-record build.
        with engine.begin() as conn:
            for table in (RecordRow, EdgeRow, MetaRow):
                conn.execute(delete(table))
            rows = [{"ref": f"{r['kind']}:{r['id']}", "kind": r["kind"], "id": r["id"], "name": r["name"],
                     "summary": r.get("summary") or "", "level": r.get("level"), "file": r.get("file"),
                     # top-level keys sorted (kb show's order); values as compiled, so a nested object
                     # and a paper's BibTeX fields keep the order they were written in (the handbook shows it)
                     "data": json.dumps(dict(sorted(r.items())))} for r in records]
            if rows:
                conn.execute(insert(RecordRow.__table__), rows)
            edge_rows = [{"source": s, "target": t, "relation": rel, "field": f} for s, t, rel, f in edges]
            if edge_rows:
                conn.execute(insert(EdgeRow.__table__), edge_rows)
            # one encoder for every row: json.dumps with separators builds a new one per call, which
            # was a third of writing the query model's ~230,000 rows
            encode = json.JSONEncoder(separators=(",", ":")).encode
            conn.execute(insert(MetaRow.__table__), [{"key": k, "value": encode(v)} for k, v in meta.items()])
    finally:
        engine.dispose()


class Reader:
    """Read access to a built store over a DB-API connection (sqlite3) or a SQLAlchemy connection."""

    def __init__(self, execute):
        self._execute = execute  # (sql, params) -> list of tuples

    def meta(self, key: str, default=None):
        rows = self._execute("SELECT value FROM meta WHERE key = :key", {"key": key})
        return json.loads(rows[0][0]) if rows else default

    def meta_many(self, keys) -> dict:
        """``{key: value}`` of the metadata rows among ``keys`` that exist (a few queries, not one each)."""
        keys, out = list(keys), {}
        for i in range(0, len(keys), 500):  # SQLite's default limit on bound parameters is 999
            params = {f"k{j}": k for j, k in enumerate(keys[i:i + 500])}
            sql = "SELECT key, value FROM meta WHERE key IN (" + ", ".join(":" + p for p in params) + ")"
            out.update((k, json.loads(v)) for k, v in self._execute(sql, params))
        return out

    def records(self, kind: str | None = None) -> list[dict]:
        sql = "SELECT data FROM record" + (" WHERE kind = :kind" if kind else "") + " ORDER BY kind, id"
        return [json.loads(row[0]) for row in self._execute(sql, {"kind": kind} if kind else {})]

    def index(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        """(kind, id, name) of every record, without decoding their fields."""
        sql = "SELECT kind, id, name FROM record" + (" WHERE kind = :kind" if kind else "") + " ORDER BY kind, id"
        return [tuple(row) for row in self._execute(sql, {"kind": kind} if kind else {})]

    def record(self, ref: str) -> dict | None:
        rows = self._execute("SELECT data FROM record WHERE ref = :ref", {"ref": ref})
        return json.loads(rows[0][0]) if rows else None

    def kinds_of(self, ident: str) -> list[str]:
        return [row[0] for row in self._execute("SELECT kind FROM record WHERE id = :id ORDER BY kind", {"id": ident})]

    def links(self, ref: str) -> tuple[list[dict], list[dict]]:
        out = self._execute("SELECT relation, target FROM edge WHERE source = :ref ORDER BY relation, target", {"ref": ref})
        inn = self._execute("SELECT relation, source FROM edge WHERE target = :ref ORDER BY relation, source", {"ref": ref})
        dedupe = lambda rows: [{"relation": r, "ref": x} for r, x in dict.fromkeys((r, x) for r, x in rows)]
        return dedupe(out), dedupe(inn)

    def edges(self, relation: str | None = None) -> list[tuple[str, str, str]]:
        sql = "SELECT source, target, relation FROM edge" + (" WHERE relation = :rel" if relation else "")
        return [tuple(r) for r in self._execute(sql, {"rel": relation} if relation else {})]


def open_reader(url_or_path: str) -> tuple[Reader, callable]:
    """A Reader and its close function. A filesystem path opens SQLite read-only with the stdlib."""
    if "://" not in url_or_path:
        conn = sqlite3.connect(f"file:{url_or_path}?mode=ro", uri=True, check_same_thread=False)
        return Reader(lambda sql, params: conn.execute(sql, params).fetchall()), conn.close
    from sqlalchemy import create_engine, text

    engine = create_engine(url_or_path)
    conn = engine.connect()

    def execute(sql, params):
        return [tuple(r) for r in conn.execute(text(sql), params).fetchall()]

    def close():
        conn.close()
        engine.dispose()

    return Reader(execute), close
