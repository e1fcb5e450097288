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


def search(folder: Path, text: str, kind: str | None = None, limit: int = 20) -> list[dict]:
    """Records matching ``text``, best first: ``[{"ref", "kind", "name", "score"}]``.

    Terms are OR-ed; when nothing matches exactly, every term is retried as a fuzzy term
    (edit distance 1, or 2 for long words) so typos still find their record.
    """
    from whoosh import index, qparser, query as Q

    words = re.findall(r"[A-Za-z0-9]+", text or "")
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

        hits = run(" ".join(words))
        if not hits:
            hits = run(" ".join(f"{w}~{2 if len(w) > 7 else 1}" for w in words if len(w) > 2))
        return hits


# ---- the compact read model the query ranks over -----------------------------------------------

# How much each field of a method counts in text matching: names and aliases say what it *is*;
# when_to_use says what people use it for; the body adds context but mostly noise.
METHOD_FIELDS = {"name": 3.0, "aliases": 3.0, "summary": 1.5, "when_to_use": 1.5, "family": 1.0, "body": 0.3,
                 "implementation_notes": 0.2, "assumptions": 0.2}
GOAL_FIELDS = {"name": 2.0, "aliases": 2.0, "phrasings": 1.5, "summary": 1.0}


def _flat(value) -> str:
    if isinstance(value, list):
        return " ; ".join(_flat(v) for v in value)
    return value if isinstance(value, str) else ""


def _weighted_terms(record: dict, fields: dict[str, float]) -> dict[str, float]:
    from .text import terms

    tf: dict[str, float] = {}
    for fld, weight in fields.items():
        for term in terms(_flat(record.get(fld)).replace("-", " ")):
            tf[term] = tf.get(term, 0.0) + weight
    return {t: round(w, 2) for t, w in tf.items()}  # rounded: the model is read on every cold query


def build_query_model(records: list[dict]) -> dict:
    """Everything `kb query` needs, precomputed at build time and read as one JSON value."""
    import math

    from .text import STOPWORDS, stem, tokens

    by_kind: dict[str, list[dict]] = {}
    for r in records:
        by_kind.setdefault(r["kind"], []).append(r)
    methods, goals = [], []
    for m in by_kind.get("method", []):
        methods.append({
            "id": m["id"], "name": m["name"], "family": m["family"], "goals": m["goals"],
            "architectures": m["architectures"], "modalities": m["modalities"], "access": m["access"],
            "scope": m["scope"], "cost": m["cost"], "reference": m.get("reference"),
            "introduced_by": m.get("introduced_by"), "tools": m.get("tools", []), "pitfalls": m.get("pitfalls", [])[:3],
            "when_not_to_use": m.get("when_not_to_use", [])[:2], "summary": m["summary"],
            "tf": _weighted_terms(m, METHOD_FIELDS),
        })
    served: dict[str, int] = {}
    for m in by_kind.get("method", []):
        for gid in m["goals"]:
            served[gid] = served.get(gid, 0) + 1
    most = max(served.values(), default=1)
    method_scope = {m["id"]: {"local": 1.0, "both": 0.5, "global": 0.0}[m["scope"]] for m in by_kind.get("method", [])}
    for g in by_kind.get("goal", []):
        rec = [x["method"] for x in g["recommended"] if x["method"] in method_scope]
        goals.append({"id": g["id"], "name": g["name"], "recommended": [x["method"] for x in g["recommended"]],
                      # how local the goal is, read from the scope of the methods it recommends
                      "locality": round(sum(method_scope[m] for m in rec) / len(rec), 3) if rec else 0.5,
                      "why": {x["method"]: x["why"] for x in g["recommended"]}, "tf": _weighted_terms(g, GOAL_FIELDS),
                      # a goal that many methods serve is a common need: a tie-breaker between goals
                      "prior": round(math.log1p(served.get(g["id"], 0)) / math.log1p(most), 3)})

    def idf(docs):
        df: dict[str, int] = {}
        for d in docs:
            for t in d["tf"]:
                df[t] = df.get(t, 0) + 1
        n = len(docs)
        return {t: round(math.log(1 + (n - c + 0.5) / (c + 0.5)), 4) for t, c in df.items()}

    # distinctive words come from names and ids only: aliases such as "multi-layer perceptron" would
    # make a generic word ("layer") name an architecture
    architectures = {a["id"]: {"name": a["name"], "parent": a.get("parent"), "modalities": a.get("modalities", []),
                               "words": sorted(set(tokens(a["name"])) | set(tokens(a["id"]))),
                               "recommended": [x["method"] for x in a.get("recommended_methods", [])]}
                     for a in by_kind.get("architecture", [])}
    implies = {c["id"]: {k: v for k, v in c["implies"].items() if v} for c in by_kind.get("concept", []) if c.get("implies")}
    phrases: list[list] = []  # [tokens, kind, id, stems]
    for kind, ids in (("architecture", architectures), ("concept", implies)):
        for r in by_kind.get(kind, []):
            if r["id"] in ids:
                for phrase in {r["name"], r["id"], *r.get("aliases", [])}:
                    toks = tokens(phrase)
                    if toks:
                        phrases.append([toks, kind, r["id"]])
    for m in by_kind.get("method", []):
        for phrase in {m["name"], m["id"], *m.get("aliases", [])}:
            toks = tokens(phrase)
            if toks and not (len(toks) == 1 and toks[0] in STOPWORDS):
                phrases.append([toks, "method", m["id"]])
    phrases.sort(key=lambda p: (-len(p[0]), p[1], p[2], p[0]))
    for p in phrases:  # stems precomputed: every query compares against every phrase
        p.append([stem(t) for t in p[0]])

    vocabulary: dict[str, int] = {}
    acronyms: set[str] = set()
    for r in records:
        if r["kind"] in ("method", "goal", "architecture", "concept", "tool"):
            text = " ".join(_flat(r.get(f)) for f in ("name", "aliases", "summary", "phrasings", "when_to_use", "definition"))
            # acronyms (SAEs, LSTMs) make poor spelling targets: "sales" is not a misspelt "SAEs"
            acronyms.update(w.lower() for w in re.findall(r"\b[A-Za-z]*[A-Z][A-Za-z]*[A-Z][A-Za-z]*\b", text))
            for t in tokens(text):
                if len(t) >= 4 and not t.isdigit():
                    vocabulary[t] = vocabulary.get(t, 0) + 1
    for word in acronyms:
        vocabulary.pop(word, None)
    # every stem the query can recognise, so a question's word needs no spelling correction
    known = {stem(w) for w in vocabulary} | {t for m in methods for t in m["tf"]} | {t for g in goals for t in g["tf"]}
    known.update(t for p in phrases for t in p[0])
    for w in STOPWORDS:
        vocabulary.setdefault(w, 1)
    return {"methods": methods, "method_idf": idf(methods), "goals": goals, "goal_idf": idf(goals),
            "architectures": architectures, "implies": implies, "phrases": phrases, "vocabulary": vocabulary,
            "known_stems": sorted(known),
            "papers": {r["id"]: {"citation": r.get("citation"), "link": r.get("link")} for r in by_kind.get("paper", [])}}
