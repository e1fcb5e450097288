"""The query's read model: everything ``kb query`` ranks over, precomputed at build time.

Built once by ``kb build`` (``build_query_model``) and stored in the store's metadata: a small core
(one JSON value, read by every query) and keyed rows read on use (``rows``: postings of each term,
each method, goal, case study and phrase), so a cold query on 100,000 records decodes kilobytes, not
the whole model. The query reads it without touching YAML, pydantic or the search index. The keys
and their shapes are the contract between the two sides (``QueryModel``).

>>> m = build_query_model([{"kind": "goal", "id": "g", "name": "Explain", "summary": "Why", "recommended": [],
...                          "phrasings": ["why"]}])
>>> m["off_goals"] == [ident for ident, _, _ in OFF_TOPICS] and m["rows"]["q:g:g"]["name"]
'Explain'
"""
from __future__ import annotations

import re
from typing import TypedDict

__all__ = ["QueryModel", "build_query_model", "intent_of", "with_rows", "rows_of",
           "Rows", "ROW_PREFIX", "OFF_TOPICS", "METHOD_FIELDS", "GOAL_FIELDS", "CASE_FIELDS"]


class QueryModel(TypedDict):
    """The shapes the builder writes and the query reads (JSON: lists and dicts only).

    The core, read by every query, then ``rows``: key -> value, stored as one metadata row each and
    read on use (:class:`Rows`):

    - ``q:t:<term>`` a word stem: ``{"k": 1 if a known stem, "mi"/"gi"/"ci"/"xi": its idf over methods,
      goals, cases and goal phrasings, "m": [id, tf, length, ...] (flat postings), "g": [id, tf, length,
      prior, locality, ...], "c": [ref, tf, length, ...], "x": [goal id, phrasing index, norm, ...]}``
    - ``q:p:<word>`` the phrases starting with that word or stem: ``[[position, tokens, kind, id, stems]]``
    - ``q:m:<id>`` a method's scoring and display fields, its ``paper`` and the ``cases`` that use it
    - ``q:g:<id>`` a goal: ``{id, name, recommended, why, prior, locality, off?, served}``
    - ``q:c:<ref>`` a case study or tutorial: ``{ref, name, methods, architectures}``
    - ``q:goal-ids``, ``q:method-ids``: every id, for error messages and exhaustive ranking
    """

    avg: dict              # mean term weight of a method, a goal and a case (BM25's average length)
    counts: dict           # methods, goals (off-topic needs included) and cases
    off_goals: list        # the off-topic needs' ids (always scored: the best one is reported)
    common_goals: list     # [[id, name]] of the most commonly served goals, most common first
    architectures: dict    # id -> {name, parent, modalities, components, words, recommended}
    implies: dict          # concept id -> {facet: value}
    vocabulary: dict       # word -> count in the records' prose (spelling targets)
    intent: dict           # the learned scorers (kb.intent) without their weights (rows q:i:<feature>; see
                           # intent_of): {"scope": …, "goals": …, "features": n}
    subject_words: dict
    rows: dict             # key -> value, as above; a Rows reading the store once the API injected it


ROW_PREFIX = "q:"  # the query model's store metadata rows


class Rows:
    """The query model's rows, read on use through ``fetch(keys) -> {key: value}`` (or from a dict)
    and kept: a question reads a few dozen, a long-running server at most ``bound``."""

    def __init__(self, source, bound: int = 200_000):
        self._fetch = source if callable(source) else (lambda keys: {k: source[k] for k in keys if k in source})
        self._rows: dict = {}
        self._bound = bound

    def get_many(self, keys) -> dict:
        keys = list(dict.fromkeys(keys))
        missing = [k for k in keys if k not in self._rows]
        if missing:
            if len(self._rows) + len(missing) > self._bound:
                self._rows.clear()
            found = self._fetch(missing)
            for k in missing:
                self._rows[k] = found.get(k)
        rows = self._rows
        return {k: rows.get(k) for k in keys if rows.get(k) is not None}

    def get(self, key: str, default=None):
        return self.get_many([key]).get(key, default)


def rows_of(model: dict) -> Rows:
    """The model's :class:`Rows` (rows built in memory are wrapped on first use)."""
    rows = model["rows"]
    if not isinstance(rows, Rows):
        rows = model["rows"] = Rows(rows)
    return rows


def with_rows(model: dict, fetch_many) -> dict:
    """``model`` with its rows read through ``fetch_many(keys) -> {key: value}`` (the store's metadata)."""
    model["rows"] = Rows(fetch_many)
    return model


# Needs that share interpretability's words but are not about understanding a model. They compete
# with the real goals under the same scoring, so "how do I speed up training of my CNN" finds its
# match here and is answered as out of scope instead of with three attribution methods.
OFF_TOPICS = [
    ("train-faster", "Make training faster or fit in memory", [
        "speed up training", "training is too slow", "reduce training time", "train faster on multiple GPUs",
        "mixed precision training", "CUDA out of memory error", "reduce GPU memory usage", "increase batch size",
        "data loader is the bottleneck", "distributed data parallel", "faster inference latency"]),
    ("improve-accuracy", "Improve accuracy or tune hyperparameters", [
        "improve the accuracy of my model", "tune hyperparameters", "choose a learning rate schedule",
        "which optimizer should I use", "validation accuracy is low", "data augmentation to improve performance",
        "handle class imbalance", "reduce overfitting with regularization", "early stopping patience",
        "get a higher score on the benchmark"]),
    ("debug-training", "Fix a training run that fails", [
        "loss is nan", "loss is not decreasing", "exploding gradients during training", "gradient clipping value",
        "model does not converge", "training diverges", "training crashes with an error", "weights become nan",
        "shape mismatch error"]),
    ("build-deploy", "Build, fine-tune, install or deploy a model", [
        "fine tune bert for text classification", "deploy my model to production", "export the model to onnx",
        "install pytorch with cuda", "quantize the model for mobile", "serve the model behind an api",
        "convert tensorflow model to pytorch", "write a custom layer", "which gpu or laptop to buy",
        "which architecture should I use for my dataset", "how many layers or units should my network have", "build a chatbot", "prompt engineering tips",
        "generate images with stable diffusion", "set up a cluster for model serving"]),
]

# Words that say the question is about a learned model at all. With a method's name, an architecture's
# name or the handbook's own jargon (words it uses that everyday English does not), they are the
# "subject" an interpretability question needs; "what is the capital of Australia" has none.
SUBJECT_WORDS = frozenset("""
model models network networks neural net nets classifier classifiers regressor predictor detector embedding
embeddings layer layers neuron neurons weights activation activations logit logits trained llm llms agent agents
policy encoder decoder attention transformer transformers feature features latent prediction predictions predict
predicts predicted classify classifies classified ai ml deep learned learns learning representation representations
circuit circuits token tokens checkpoint gradients saliency heatmap interpretability interpretable explainability
explainable xai
""".split())

# How much each field of a record counts in text matching: names and aliases say what it *is*;
# when_to_use says what people use it for; the body adds context but mostly noise.
METHOD_FIELDS = {"name": 3.0, "aliases": 3.0, "summary": 1.5, "when_to_use": 1.5, "family": 1.0, "body": 0.3,
                 "implementation_notes": 0.2, "assumptions": 0.2}
GOAL_FIELDS = {"name": 2.0, "aliases": 2.0, "phrasings": 1.5, "summary": 1.0}
CASE_FIELDS = {"name": 2.0, "aliases": 2.0, "summary": 1.5, "problem": 1.0, "domain": 1.0, "relevance": 0.5,
               "findings": 0.3}
def _unambiguous_method_phrases(phrases: list, methods: list[dict]) -> list:
    """One method per phrase: when an alias of one method reads like another method's own name
    ("Grad-CAM++" and "Grad-CAM" are both the words 'grad cam'), the method named so keeps it;
    a phrase that is only an alias of several methods names none of them."""
    from .text import tokens

    own = {}
    for m in methods:
        for phrase in (m["name"], m["id"]):
            toks = tokens(phrase)
            own.setdefault(tuple(toks), set()).add(m["id"])
            own.setdefault(("".join(toks),), set()).add(m["id"])  # its name run together ("gradcam")
    claims: dict[tuple, set] = {}
    for toks, kind, ident in phrases:
        if kind == "method":
            claims.setdefault(tuple(toks), set()).add(ident)
    out = []
    for p in phrases:
        toks, kind, ident = p
        if kind == "method" and len(claims[tuple(toks)]) > 1:
            owners = own.get(tuple(toks), set()) & claims[tuple(toks)]
            if ident not in owners or len(owners) > 1:
                continue
        out.append(p)
    return out


def _examples(texts: list[str]) -> list[list[str]]:
    """Each text's distinct stemmed terms (one goal phrasing each)."""
    from .text import terms

    out = []
    for text in texts:
        ts = sorted(set(terms(text.replace("-", " "))))
        if ts:
            out.append(ts)
    return out


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


INTENT_PREFIX = ROW_PREFIX + "i:"  # one row per feature: [in-scope weight, goal weights as hex]


def _intent_rows(intent: dict) -> dict[str, list]:
    """The intent scorers' weights as one row per feature. A question reads only its own ~30
    features; loading all 35,000 with the query model cost every cold query 15 ms."""
    scope = intent.get("scope", {}).get("weights", {})
    goals = intent.get("goals", {}).get("weights", {})
    return {INTENT_PREFIX + f: [scope.get(f, 0.0), goals.get(f, "")] for f in sorted(set(scope) | set(goals))}


class _Column:
    """One scorer's weights (a mapping with ``get``): a column of the feature rows, read through the
    model's :class:`Rows`. Its length is the number of features, as a dict of the weights would have."""

    def __init__(self, rows: Rows, column: int, size: int):
        self._rows, self._column, self._size = rows, column, size

    def __len__(self) -> int:
        return self._size

    def get(self, feature: str, default=None):
        row = self._rows.get(INTENT_PREFIX + feature)
        value = row[self._column] if row else None
        return value if value else default


def intent_of(model: dict, text: str | None = None) -> dict:
    """The learned scorers as kb.intent takes them, ``{"scope": …, "goals": …}``, their weights read
    from the model's rows; with ``text``, its features' rows are fetched first, in one read."""
    from .intent import features

    rows = rows_of(model)
    if text is not None:
        rows.get_many(INTENT_PREFIX + f for f in features(text))
    core = model.get("intent") or {}
    return {part: {**core[part], "weights": _Column(rows, column, core.get("features", 0))}
            for column, part in enumerate(("scope", "goals")) if part in core}


def build_query_model(records: list[dict]) -> QueryModel:
    """Everything `kb query` needs, precomputed at build time: the core and its rows."""
    return _shard(_whole_model(records))


def _shard(full: dict) -> QueryModel:
    """Split the whole model into the core and keyed rows. Every number the query computes with is
    the whole model's, in the same order (lengths summed over the same term weights), so scores
    come out bit for bit the same."""
    import math

    rows: dict = {}

    def term(t: str) -> dict:
        return rows.setdefault(ROW_PREFIX + "t:" + t, {})

    for key, idf in (("mi", full["method_idf"]), ("gi", full["goal_idf"]), ("ci", full["case_idf"]),
                     ("xi", full["example_idf"])):
        for t, v in idf.items():
            term(t)[key] = v
    for t in full["known_stems"]:
        term(t)["k"] = 1

    def post(part: str, doc: str, tf: dict, *extra) -> None:
        # a document in its terms' postings, flat [doc, tf, length, *extra] (read by kb.question._bm25_postings)
        length = sum(tf.values()) or 1.0
        for t, w in tf.items():
            term(t).setdefault(part, []).extend((doc, w, length, *extra))

    used_by: dict[str, list] = {}
    for c in full["cases"]:
        post("c", c["ref"], c["tf"])
        for mid in c["methods"]:
            used_by.setdefault(mid, []).append(c["ref"])
        rows[ROW_PREFIX + "c:" + c["ref"]] = {k: c[k] for k in ("ref", "name", "methods", "architectures")}
    served: dict[str, list] = {}
    for m in full["methods"]:
        post("m", m["id"], m["tf"])
        for gid in m["goals"]:
            served.setdefault(gid, []).append(m["id"])
        row = {k: v for k, v in m.items() if k != "tf"}
        paper = full["papers"].get(m.get("introduced_by") or "")
        if paper is not None:
            row["paper"] = paper
        row["cases"] = used_by.get(m["id"], [])
        rows[ROW_PREFIX + "m:" + m["id"]] = row
    example_idf = full["example_idf"]
    for g in full["goals"]:
        post("g", g["id"], g["tf"], g.get("prior", 0), g.get("locality", 0.5))
        for i, ex in enumerate(g["examples"]):
            norm = math.sqrt(sum(example_idf.get(t, 0.0) ** 2 for t in ex)) or 1.0
            for t in ex:
                term(t).setdefault("x", []).extend((g["id"], i, norm))
        row = {k: v for k, v in g.items() if k not in ("tf", "examples")}
        row["served"] = served.get(g["id"], [])
        rows[ROW_PREFIX + "g:" + g["id"]] = row
    for pos, (toks, kind, ident, stems) in enumerate(full["phrases"]):
        for key in {toks[0], stems[0]}:
            rows.setdefault(ROW_PREFIX + "p:" + key, []).append([pos, toks, kind, ident, stems])
    intent_rows = _intent_rows(full["intent"])
    rows.update(intent_rows)
    rows[ROW_PREFIX + "goal-ids"] = sorted(g["id"] for g in full["goals"])
    rows[ROW_PREFIX + "method-ids"] = [m["id"] for m in full["methods"]]
    methods, goals, cases = full["methods"], full["goals"], full["cases"]
    real = {g["id"]: g for g in goals if not g.get("off")}
    common = sorted(real, key=lambda gid: -real[gid].get("prior", 0))[:8]
    return {"avg": {"methods": (sum(sum(m["tf"].values()) for m in methods) / len(methods)) if methods else 1.0,
                    "goals": sum(sum(g["tf"].values()) for g in goals) / len(goals) if goals else 1.0,
                    "cases": (sum(sum(c["tf"].values()) for c in cases) / len(cases) or 1.0) if cases else 1.0},
            "counts": {"methods": len(methods), "goals": len(goals), "cases": len(cases)},
            "off_goals": [g["id"] for g in goals if g.get("off")],
            "common_goals": [[gid, real[gid]["name"]] for gid in common],
            **{k: full[k] for k in ("architectures", "implies", "vocabulary", "subject_words")},
            "intent": _intent_core(full["intent"], len(intent_rows)), "rows": rows}


def _intent_core(intent: dict, features: int) -> dict:
    """The intent scorers without their weights (those are rows), and how many features have weights."""
    core = {part: {k: v for k, v in intent[part].items() if k != "weights"} for part in ("scope", "goals") if part in intent}
    return {**core, "features": features} if core else {}


def _whole_model(records: list[dict]) -> dict:
    """The whole model, as one value (what the query read before it was split into rows)."""
    import math

    from .intent import load_intent_model
    from .text import STOPWORDS, english_words, stem, tokens

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
                      # each way people say it, on its own: a question close to one phrasing matches
                      # the goal even when the goal's other phrasings dilute the bag of words
                      "examples": _examples([g["name"], g["summary"], *g.get("phrasings", []), *g.get("aliases", [])]),
                      # a goal that many methods serve is a common need: a tie-breaker between goals
                      "prior": round(math.log1p(served.get(g["id"], 0)) / math.log1p(most), 3)})
    for ident, name, phrasings in OFF_TOPICS:
        goals.append({"id": ident, "name": name, "recommended": [], "why": {}, "locality": 0.5, "prior": 0.0,
                      "off": True, "tf": _weighted_terms({"name": name, "phrasings": phrasings}, GOAL_FIELDS),
                      "examples": _examples([name, *phrasings])})
    cases = []
    for r in by_kind.get("case_study", []) + by_kind.get("tutorial", []):
        cases.append({"ref": f"{r['kind']}:{r['id']}", "name": r["name"], "summary": r["summary"],
                      "methods": [m.split(":")[-1] for m in r.get("methods", [])],
                      "architectures": r.get("architectures", []), "tf": _weighted_terms(r, CASE_FIELDS)})

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
                               "components": a.get("components", []),
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
    api_owner: dict[str, set[str]] = {}  # a library's class name ("LayerIntegratedGradients") names a method
    for m in by_kind.get("method", []):
        for t in m.get("tools", []):
            api_owner.setdefault(t["api"].rsplit(".", 1)[-1], set()).add(m["id"])
    for tool in by_kind.get("tool", []):
        for x in tool.get("implements", []):
            api_owner.setdefault(x["api"].rsplit(".", 1)[-1], set()).add(x["method"])
    for m in by_kind.get("method", []):
        names = {m["name"], m["id"], *m.get("aliases", [])}
        names |= {api for api, owners in api_owner.items() if owners == {m["id"]} and re.search(r"[a-z][A-Z]", api)}
        for phrase in names:
            toks = tokens(phrase)
            if toks and not (len(toks) == 1 and toks[0] in STOPWORDS):
                phrases.append([toks, "method", m["id"]])
            camel = tokens(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", phrase))
            if len(camel) > 1 and camel != toks:
                phrases.append([camel, "method", m["id"]])
            # people write a short name run together ("gradcam", "logitlens") as a search-box word
            if 1 < len(toks) <= 3 and len("".join(toks)) >= 6 and not any(t.isdigit() for t in toks):
                phrases.append([["".join(toks)], "method", m["id"]])
    phrases = _unambiguous_method_phrases(phrases, by_kind.get("method", []))
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
    english = english_words()
    subject = set(SUBJECT_WORDS)
    for a in by_kind.get("architecture", []):
        for phrase in (a["name"], a["id"], *a.get("aliases", [])):
            subject.update(t for t in tokens(phrase) if t not in english and not t.isdigit())
    subject.update(w for w, n in vocabulary.items() if n >= 2 and w not in english)
    for w in STOPWORDS:
        vocabulary.setdefault(w, 1)
    example_df: dict[str, int] = {}
    for g in goals:
        for ex in g["examples"]:
            for term in ex:
                example_df[term] = example_df.get(term, 0) + 1
    n_examples = sum(len(g["examples"]) for g in goals) or 1
    example_idf = {term: round(math.log(1 + n_examples / c), 4) for term, c in example_df.items()}
    introducing = {m.get("introduced_by") for m in by_kind.get("method", [])}
    return {"methods": methods, "method_idf": idf(methods), "goals": goals, "goal_idf": idf(goals),
            "example_idf": example_idf,
            "cases": cases, "case_idf": idf(cases),
            "architectures": architectures, "implies": implies, "phrases": phrases, "vocabulary": vocabulary,
            "known_stems": sorted(known), "intent": load_intent_model(),
            "subject_words": {"exact": sorted(subject), "stems": sorted({stem(w) for w in SUBJECT_WORDS})},
            # only the papers an answer shows: each method's introducing paper
            "papers": {r["id"]: {"citation": r.get("citation"), "link": r.get("link")} for r in by_kind.get("paper", [])
                       if r["id"] in introducing}}
