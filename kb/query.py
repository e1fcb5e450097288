"""Technique selection: read facets from a question in plain words, then rank methods with reasons.

``plan_query`` is pure (question + model -> facets); ``rank_methods`` scores every method against
the plan. All vocabulary (architecture names, modality words, goal phrasings, method aliases)
comes from the records through the query model built with the store.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .text import STOPWORDS, correct, deletes, stem, terms, tokens
from .vocab import ACCESS, ACCESS_RANK, COST_LEVELS, MODALITIES, SCOPES

__all__ = ["Plan", "plan_query", "rank_methods", "answer", "FACETS"]

FACETS = ("goal", "architecture", "modality", "access", "scope", "budget")

# Score weights. Goal fit dominates (what the user wants to do), then what the text names, then
# how well the method suits the model and data. Kept here, in one place, with the reasons text.
W_GOAL, W_TEXT, W_MENTION, W_ARCH, W_MODALITY, W_SCOPE, W_BUDGET = 3.0, 1.5, 2.5, 1.0, 1.0, 0.4, 0.5
SCOPE_FIT = 0.5   # how much the question's scope (one prediction vs the whole model) steers the goal
GOAL_PRIOR = 0.15  # how much a commonly served goal is preferred when the wording is ambiguous
HARD_PENALTY = 10.0  # below every method that respects a hard constraint


@dataclass
class Plan:
    """What the question asks: facets (with how each was found), goal scores and matched words."""

    question: str
    facets: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)     # facet -> "question words ..." | "given" | "from architecture"
    goals: list = field(default_factory=list)      # [(goal id, strength 0..1)]
    mentioned: dict = field(default_factory=dict)  # method id -> matched phrase
    terms: list = field(default_factory=list)
    words: dict = field(default_factory=dict)      # stem -> the word as the user wrote it
    corrected: dict = field(default_factory=dict)  # typo -> correction

    def to_dict(self) -> dict:
        out = {k: self.facets.get(k) for k in FACETS}
        out["goals"] = [{"id": g, "strength": round(s, 3)} for g, s in self.goals[:3]]
        out["detected_from"] = self.source
        if self.corrected:
            out["corrected"] = self.corrected
        if self.mentioned:
            out["mentioned"] = sorted(self.mentioned)
        return out


def _typo_index(model: dict) -> dict:
    index: dict[str, list[str]] = {}
    for word in model["vocabulary"]:
        for d in deletes(word, 1 if len(word) <= 6 else 2):
            index.setdefault(d, []).append(word)
    return index


def _correct_tokens(toks: list[str], model: dict, cache: dict) -> tuple[list[str], dict]:
    vocab = model["vocabulary"]
    known_stems = cache.get("stems")
    if known_stems is None:
        known_stems = cache["stems"] = set(model["known_stems"])
    fixed, corrections = [], {}
    for t in toks:
        if len(t) < 4 or t.isdigit() or t in vocab or stem(t) in known_stems:
            fixed.append(t)
            continue
        if "typo_index" not in cache:
            cache["typo_index"] = _typo_index(model)
        c = correct(t, cache["typo_index"], vocab)
        if c and c != t:
            corrections[t] = c
            fixed.append(c)
        else:
            fixed.append(t)
    return fixed, corrections


def _find_phrases(toks: list[str], phrases: list) -> list[tuple[str, str, str, int]]:
    """Longest-first, non-overlapping phrase matches: (kind, id, phrase, start)."""
    taken = [False] * len(toks)
    found = []
    stems = [stem(t) for t in toks]
    for ptoks, kind, ident, pst in phrases:
        n = len(ptoks)
        for i in range(len(toks) - n + 1):
            if any(taken[i:i + n]):
                continue
            if toks[i:i + n] == ptoks or (n > 1 or len(ptoks[0]) > 4) and stems[i:i + n] == pst:
                found.append((kind, ident, " ".join(ptoks), i))
                for j in range(i, i + n):
                    taken[j] = True
    return found


def _bm25(query_terms: list[str], doc_tf: dict, idf: dict, avg_len: float, k1: float = 1.2, b: float = 0.5) -> float:
    length = sum(doc_tf.values()) or 1.0
    score = 0.0
    for t in set(query_terms):
        tf = doc_tf.get(t)
        if tf:
            score += idf.get(t, 0.0) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
    return score


def plan_query(question: str, model: dict, given: dict | None = None, cache: dict | None = None) -> Plan:
    """Read the facets of ``question``; ``given`` facets (from the user's flags) override detection."""
    cache = {} if cache is None else cache
    plan = Plan(question)
    original = tokens(question.replace("'s", ""))
    toks, plan.corrected = _correct_tokens(original, model, cache)
    archs = model["architectures"]
    facet_words: set[int] = set()  # words naming the model or data say nothing of the goal
    for kind, ident, phrase, start in _find_phrases(toks, model["phrases"]):
        if kind == "method":
            # a method named only after spelling correction is too weak a signal to put it first
            if toks[start:start + len(phrase.split())] == original[start:start + len(phrase.split())]:
                plan.mentioned.setdefault(ident, phrase)
            continue
        implied = model["implies"].get(ident, {}) if kind == "concept" else {}
        if kind == "architecture" or "modality" in implied:
            facet_words.update(range(start, start + len(phrase.split())))
        if kind == "architecture":
            current = plan.facets.get("architecture")
            # the more specific architecture wins (resnet over cnn): a child names its parent
            if current is None or archs.get(ident, {}).get("parent") == current:
                plan.facets["architecture"], plan.source["architecture"] = ident, f"the words '{phrase}'"
        else:
            for facet, value in implied.items():
                if facet not in plan.facets:
                    plan.facets[facet], plan.source[facet] = value, f"the words '{phrase}'"
    if "architecture" not in plan.facets:
        guess = _architecture_from_words(toks, model)
        if guess:
            plan.facets["architecture"], plan.source["architecture"] = guess
    arch = plan.facets.get("architecture")
    if arch and "modality" not in plan.facets:
        mods = archs.get(arch, {}).get("modalities") or []
        if len(mods) == 1:
            plan.facets["modality"], plan.source["modality"] = mods[0], f"the architecture ({archs[arch]['name']})"
    goals = model["goals"]
    negated = _negated(toks)
    plan.terms = terms(" ".join(t for i, t in enumerate(toks) if i not in negated))
    plan.words = {stem(t): o for t, o in zip(toks, original)}
    goal_terms = terms(" ".join(t for i, t in enumerate(toks) if i not in facet_words | negated))
    scope = plan.facets.get("scope")
    if goals:
        avg = sum(sum(g["tf"].values()) for g in goals) / len(goals)

        def goal_score(g):
            score = _bm25(goal_terms, g["tf"], model["goal_idf"], avg) * (1 + GOAL_PRIOR * g.get("prior", 0))
            if scope in ("local", "global"):  # a question about one prediction favours local goals
                fit = g.get("locality", 0.5) if scope == "local" else 1 - g.get("locality", 0.5)
                score *= 1 + SCOPE_FIT * (fit - 0.5)
            return score

        scored = sorted(((goal_score(g), g["id"]) for g in goals), reverse=True)
        best = scored[0][0]
        if best > 0:
            plan.goals = [(gid, s / best) for s, gid in scored if s >= 0.5 * best][:3]
            plan.facets["goal"], plan.source["goal"] = plan.goals[0][0], "the question's wording"
    for facet, value in (given or {}).items():
        if value:
            plan.facets[facet], plan.source[facet] = value, "given"
            if facet == "goal":
                plan.goals = [(value, 1.0)]
    return plan


NEGATIONS = {"no", "not", "without", "never", "cannot", "dont", "don", "doesn", "isn", "aren", "won", "avoid", "nor"}


def _negated(toks: list[str], reach: int = 2) -> set[int]:
    """Positions of the content words a negation governs ("no training data", "without gradients"):
    they must not count as what the user wants. Facet phrases were matched before, so
    "no gradients" still says black-box."""
    out: set[int] = set()
    for i, t in enumerate(toks):
        if t in NEGATIONS:
            taken, j = 0, i + 1
            while j < len(toks) and taken < reach:
                # fillers, and "or"/"and", which carry the negation on ("cannot backprop or change it")
                if toks[j] in ("any", "a", "the", "t", "want", "need", "have", "use", "to", "of", "much", "or", "and",
                               "nor"):
                    j += 1
                    continue
                out.add(j)
                taken += 1
                j += 1
    return out


def _architecture_from_words(toks: list[str], model: dict) -> tuple[str, str] | None:
    """A weaker signal than a full name: a word that belongs to one architecture's names only
    (e.g. 'convolutional'), or to a family whose members share one parent (rnn for 'recurrent')."""
    archs = model["architectures"]
    owners: dict[str, set[str]] = {}
    for ident, arch in archs.items():
        for t in arch.get("words", ()):
            owners.setdefault(t, set()).add(ident)
    for t in toks:
        found = owners.get(t)
        if not found or len(t) < 4 or t in STOPWORDS:
            continue
        if len(found) == 1:
            return next(iter(found)), f"the word '{t}'"
        roots = {a for a in found if archs.get(a, {}).get("parent") not in found}
        if len(roots) == 1:
            return next(iter(roots)), f"the word '{t}'"
    return None


def _arch_chain(arch: str | None, archs: dict) -> list[str]:
    chain = []
    while arch and arch not in chain:
        chain.append(arch)
        arch = archs.get(arch, {}).get("parent")
    return chain


def rank_methods(plan: Plan, model: dict, limit: int = 5) -> list[dict]:
    """Score every method against ``plan``; best first, each with reasons and caveats."""
    methods, archs, f = model["methods"], model["architectures"], plan.facets
    goal_map = {g["id"]: g for g in model["goals"]}
    avg = (sum(sum(m["tf"].values()) for m in methods) / len(methods)) if methods else 1.0
    text_scores = {m["id"]: _bm25(plan.terms, m["tf"], model["method_idf"], avg) for m in methods}
    top_text = max(text_scores.values(), default=0.0) or 1.0
    chain = _arch_chain(f.get("architecture"), archs)
    results = []
    for m in methods:
        score, reasons, caveats = 0.0, [], []
        # The best goal fit counts, not the sum: a method recommended for three loosely matched
        # goals is not three times as relevant as the first choice for the goal the user asked.
        fits = []
        for gid, strength in plan.goals:
            goal = goal_map.get(gid)
            if not goal:
                continue
            if m["id"] in goal["recommended"]:
                pos, n = goal["recommended"].index(m["id"]), len(goal["recommended"])
                fits.append(W_GOAL * strength * (1.0 - 0.6 * pos / max(n, 1)))
                reasons.append(f"recommended for '{goal['name']}' (#{pos + 1}): {goal['why'][m['id']]}")
            elif gid in m["goals"]:
                fits.append(W_GOAL * strength * 0.35)
                reasons.append(f"serves '{goal['name']}'")
        score += max(fits, default=0.0)
        if m["id"] in plan.mentioned:
            score += W_MENTION
            reasons.insert(0, f"your question names it ('{plan.mentioned[m['id']]}')")
        text = text_scores[m["id"]] / top_text
        score += W_TEXT * text
        if text >= 0.5 and m["id"] not in plan.mentioned:
            matched = sorted({plan.words.get(t, t) for t in plan.terms if t in m["tf"]})[:5]
            reasons.append("matches your words: " + ", ".join(matched))
        if chain:
            name = archs[chain[0]]["name"]
            rec = next((archs[a]["recommended"] for a in chain if m["id"] in archs[a]["recommended"]), None)
            if rec is not None:
                pos = rec.index(m["id"])
                score += W_ARCH * (1.0 - 0.5 * pos / max(len(rec), 1))
                reasons.append(f"recommended for {name} models")
            elif set(chain) & set(m["architectures"]):
                score += W_ARCH * 0.7
                reasons.append(f"applies to {name} models")
            elif not m["architectures"]:
                score += W_ARCH * 0.4
            else:
                score -= W_ARCH * 0.5
                caveats.append(f"written for {', '.join(m['architectures'])}, not {name}; check it transfers")
        mod = f.get("modality")
        if mod:
            if mod in m["modalities"] or "any" in m["modalities"]:
                score += W_MODALITY * (0.6 if "any" in m["modalities"] else 1.0)
                if mod in m["modalities"]:
                    reasons.append(f"works on {mod} inputs")
            else:
                score -= W_MODALITY
                caveats.append(f"made for {', '.join(m['modalities'])} inputs, not {mod}")
        access = f.get("access")
        if access and ACCESS_RANK[m["access"]] > ACCESS_RANK[access]:
            score -= HARD_PENALTY
            caveats.insert(0, f"needs {m['access']} access, but you have {access} access")
        elif access:
            reasons.append(f"needs only {m['access']} access")
        scope = f.get("scope")
        if scope and m["scope"] != "both":
            score += W_SCOPE if m["scope"] == scope else -W_SCOPE
        budget = f.get("budget")
        if budget == "low" and m["cost"]["level"] == "high":
            score -= W_BUDGET
            caveats.append(f"expensive: {m['cost']['note']}")
        elif budget == "low" and m["cost"]["level"] == "low":
            score += W_BUDGET
            reasons.append("cheap: " + m["cost"]["note"])
        caveats.extend(m["pitfalls"][:2])
        results.append((score, m, reasons, caveats))
    results.sort(key=lambda r: (-r[0], r[1]["id"]))
    return [_result(s, m, reasons, caveats, model) for s, m, reasons, caveats in results[:limit]]


def _result(score: float, m: dict, reasons: list, caveats: list, model: dict) -> dict:
    paper = model["papers"].get(m.get("introduced_by") or "", {})
    return {
        "ref": f"method:{m['id']}", "id": m["id"], "name": m["name"], "score": round(score, 3),
        "summary": m["summary"], "reasons": reasons or ["general fit for the question"], "caveats": caveats,
        "access": m["access"], "cost": m["cost"],
        "paper": {"id": m.get("introduced_by"), **paper} if m.get("introduced_by") else None,
        "tools": m["tools"], "reference": m.get("reference"),
        "run": f"kb run {m['id']}" if m.get("reference") else None,
    }


def answer(kb, question: str, limit: int = 5, **given) -> dict:
    """The full answer of ``kb query``: question, facets read from it and ranked results."""
    from .errors import KBError

    if not question or not question.strip():
        raise KBError("ask a question, e.g. kb query \"which method to explain my CNN's prediction?\"")
    if len(question) > 2000:
        raise KBError("the question is longer than 2,000 characters; shorten it")
    model = kb.cached("query_model", lambda reader: reader.meta("query_model"))
    cache = kb.cached("query_cache", lambda reader: {})  # typo index and stems, per store generation
    for facet, value in given.items():
        _check_facet(facet, value, model)
    plan = plan_query(question, model, {k: v for k, v in given.items() if v}, cache)
    return {"question": question, "facets": plan.to_dict(), "results": rank_methods(plan, model, limit)}


def _check_facet(facet: str, value, model: dict) -> None:
    from .errors import KBError

    if not value:
        return
    allowed = {
        "architecture": sorted(model["architectures"]),
        "goal": sorted(g["id"] for g in model["goals"]),
        "modality": MODALITIES, "access": ACCESS, "scope": SCOPES, "budget": COST_LEVELS,
    }.get(facet)
    if allowed is None:
        raise KBError(f"unknown facet {facet!r}; facets are {', '.join(FACETS)}")
    if value not in allowed:
        raise KBError(f"{facet} {value!r} is not one of: {', '.join(allowed)}", param=facet)
