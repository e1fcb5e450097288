"""Full-text search over every record, behind two functions (build_index, search) so the engine can change."""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["build_index", "update_index", "search", "document_text"]


def document_text(record: dict) -> str:
    from .refs import LINK_RE

    """Every prose value of a record, flattened to one string (links reduced to their ids)."""
    parts: list[str] = []

    def walk(value):
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for k, v in value.items():
                if k not in ("kind", "file", "fields"):
                    walk(v)

    walk({k: v for k, v in record.items() if k not in ("name", "aliases", "summary", "id")})
    text = " ".join(parts)
    return LINK_RE.sub(lambda m: m.group(2), text)


def _schema():
    from whoosh.analysis import StemmingAnalyzer
    from whoosh.fields import ID, KEYWORD, STORED, TEXT, Schema

    analyzer = StemmingAnalyzer()
    return Schema(
        ref=ID(stored=True, unique=True), kind=KEYWORD(stored=True), name=STORED,
        title=TEXT(analyzer=analyzer, field_boost=4.0), aliases=TEXT(analyzer=analyzer, field_boost=3.0),
        summary=TEXT(analyzer=analyzer, field_boost=2.0), text=TEXT(analyzer=analyzer),
    )


def _document(r: dict) -> dict:
    return dict(ref=f"{r['kind']}:{r['id']}", kind=r["kind"], name=r.get("name") or r["id"],
                title=f"{r.get('name', '')} {r['id'].replace('-', ' ')}", aliases=" ; ".join(r.get("aliases") or []),
                summary=r.get("summary") or r.get("definition") or "", text=document_text(r))


def build_index(folder: Path, records: list[dict]) -> None:
    """Write a fresh whoosh index of ``records`` into ``folder`` (which must be new)."""
    from whoosh import index

    folder.mkdir(parents=True, exist_ok=True)
    ix = index.create_in(str(folder), _schema())
    writer = ix.writer(limitmb=256)
    for r in records:
        writer.add_document(**_document(r))
    writer.commit()


def update_index(folder: Path, changed: list[dict], removed: set[str]) -> None:
    """Apply an incremental change to an existing index: drop ``removed`` refs, replace ``changed`` records."""
    from whoosh import index

    ix = index.open_dir(str(folder))
    writer = ix.writer(limitmb=256)
    for ref in sorted(removed):
        writer.delete_by_term("ref", ref)
    for r in changed:
        writer.update_document(**_document(r))
    writer.commit()


# Bounds on the work of one search, whatever its text: a request may name at most MAX_WORDS
# distinct words; when nothing matches exactly, at most MAX_FUZZY of them, each of plausible length,
# are retried as fuzzy terms whose first FUZZY_PREFIX letters must match (a fuzzy term's cost grows
# with its length and with the number of index terms it is compared with: bench/hostile.py).
MAX_WORDS = 32
MAX_FUZZY = 4
FUZZY_LENGTHS = (3, 16)
FUZZY_PREFIX = 2


def search(folder: Path, text: str, kind: str | None = None, limit: int = 20, operators: bool = False) -> list[dict]:
    """Records matching ``text``, best first: ``[{"ref", "kind", "name", "score"}]``.

    The user's words are words: OR-ed, case folded, so "NOT x" finds "not" and "x" (with
    ``operators=True`` the text is read as a whoosh query: AND, OR, NOT, "phrases", field:value).
    When nothing matches exactly, the words are retried as fuzzy terms (edit distance 1, or 2 for
    long words) so typos still find their record.
    """
    from whoosh import index, qparser, query as Q

    words = list(dict.fromkeys(w.lower() for w in re.findall(r"[A-Za-z0-9]+", text or "")))[:MAX_WORDS]
    if not words:
        return []
    ix = index.open_dir(str(folder))
    with ix.searcher() as searcher:
        fields = ["title", "aliases", "summary", "text"]
        parser = qparser.MultifieldParser(fields, ix.schema, group=qparser.OrGroup.factory(0.9))
        parser.remove_plugin_class(qparser.WildcardPlugin)
        parser.add_plugin(qparser.FuzzyTermPlugin())
        restrict = Q.Term("kind", kind) if kind else None

        def run(qtext):
            q = parser.parse(qtext)
            if restrict is not None:
                q = Q.And([q, restrict])
            return [{"ref": h["ref"], "kind": h["kind"], "name": h["name"], "score": round(h.score, 3)}
                    for h in searcher.search(q, limit=limit)]

        hits = run(text[:2000] if operators else " ".join(words))
        if not hits:
            low, high = FUZZY_LENGTHS
            fuzzy = [w for w in words if low <= len(w) <= high][:MAX_FUZZY]
            hits = run(" ".join(f"{w}~{2 if len(w) > 7 else 1}/{FUZZY_PREFIX}" for w in fuzzy)) if fuzzy else []
        return hits
