"""Technique selection: read facets from a question in plain words, then rank methods with reasons.

``plan_query`` is pure (question + model -> facets); ``rank_methods`` scores every method against
the plan. All vocabulary (architecture names, modality words, goal phrasings, method aliases)
comes from the records through the query model built with the store.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .intent import goal_probabilities, in_scope_probability
from .querymodel import ROW_PREFIX, rows_of
from .text import MAX_CORRECTABLE, STOPWORDS, correct, deletes, english_words, stem, terms, tokens
from .vocab import ACCESS, ACCESS_RANK, COST_LEVELS, MODALITIES, SCOPES

__all__ = ["Plan", "plan_query", "rank_methods", "answer", "FACETS"]

FACETS = ("goal", "architecture", "modality", "access", "scope", "budget")

# Score weights. Goal fit dominates (what the user wants to do), then what the text names, then
# how well the method suits the model and data. Kept here, in one place, with the reasons text.
W_GOAL, W_TEXT, W_MENTION, W_ARCH, W_MODALITY, W_SCOPE, W_BUDGET = 1.5, 2.0, 2.5, 1.0, 1.0, 0.4, 0.5
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
    goal_evidence: float = 0.0                     # raw fit of the best real goal (0 = no goal words at all)
    method_evidence: float = 0.0                   # raw text fit of the best method
    subject: list = field(default_factory=list)    # words saying the question is about a learned model
    off_topic: tuple = ("", 0.0)                   # best off-topic need and its raw fit
    clause_goals: list = field(default_factory=list)  # the top goal of each clause of a several-part question
    in_scope: float | None = None                  # P(about interpreting a model) from kb.intent, if shipped

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
    known_stems = {t for t, row in _term_rows(model, [stem(t) for t in toks]).items() if row.get("k")}
    fixed, corrections = [], {}
    for t in toks:
        if (len(t) < 4 or len(t) > MAX_CORRECTABLE or t.isdigit() or t in vocab or stem(t) in known_stems
                or t in english_words()):
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


def _term_rows(model: dict, stems) -> dict[str, dict]:
    """stem -> its row of the query model (idfs, postings, whether it is a known stem)."""
    found = rows_of(model).get_many(ROW_PREFIX + "t:" + t for t in stems)
    return {key[len(ROW_PREFIX) + 2:]: row for key, row in found.items()}


def _candidate_phrases(toks: list[str], model: dict) -> list:
    """The phrases that can start at one of the question's words (by their first word or stem), in
    the model's order (longest first): the question is not compared with every phrase."""
    found = rows_of(model).get_many(ROW_PREFIX + "p:" + w for w in {*toks, *(stem(t) for t in toks)})
    by_position = {p[0]: p[1:] for rows in found.values() for p in rows}
    return [by_position[i] for i in sorted(by_position)]


def _find_phrases(toks: list[str], phrases: list, index: dict | None = None) -> list[tuple[str, str, str, int]]:
    """Longest-first, non-overlapping phrase matches: (kind, id, phrase, start)."""
    taken = [False] * len(toks)
    found = []
    stems = [stem(t) for t in toks]
    if index is not None:  # the same phrases in the same order, only those that can match
        wanted = sorted({i for w in (*toks, *stems) for i in index.get(w, ())})
        phrases = [phrases[i] for i in wanted]
    for ptoks, kind, ident, pst in phrases:
        n = len(ptoks)
        for i in range(len(toks) - n + 1):
            if any(taken[i:i + n]):
                continue
            if toks[i:i + n] == ptoks or (n > 1 and stems[i:i + n] == pst) or (
                    n == 1 and len(ptoks[0]) > 4 and _inflected(toks[i], ptoks[0], stems[i] == pst[0], kind)):
                found.append((kind, ident, " ".join(ptoks), i))
                for j in range(i, i + n):
                    taken[j] = True
    return found


def _inflected(word: str, phrase: str, same_stem: bool, kind: str) -> bool:
    """Whether one word is another's inflection. A method's name matches by stem ("probes", "probing");
    a word that sets a facet only as a plural or singular, because Porter joins words of other
    meanings ("generalizes" and "generator" share the stem "gener").

    >>> _inflected("generalizes", "generator", True, "architecture"), _inflected("transformers", "transformer", True, "architecture")
    (False, True)
    """
    if kind == "method":
        return same_stem
    return same_stem and (word in (phrase + "s", phrase + "es") or phrase in (word + "s", word + "es")
                          or (phrase.endswith("y") and word == phrase[:-1] + "ies"))


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
    original = _split_model_names(tokens(question.replace("'s", "")))
    toks, plan.corrected = _correct_tokens(original, model, cache)
    intent = model.get("intent") or {}
    plan.in_scope = in_scope_probability(intent.get("scope"), question)
    archs = model["architectures"]
    facet_words: set[int] = set()  # words naming the model or data say nothing of the goal
    named_archs: list[tuple[str, str]] = []  # (architecture id, phrase) in the order the phrases were found
    method_words: set[int] = set()  # words inside a method's name ("sparse autoencoder") set no facet
    for kind, ident, phrase, start in _find_phrases(toks, _candidate_phrases(toks, model)):
        if kind == "method":
            method_words.update(range(start, start + len(phrase.split())))
            # a method named only after spelling correction is too weak a signal to put it first
            if toks[start:start + len(phrase.split())] == original[start:start + len(phrase.split())]:
                plan.mentioned.setdefault(ident, phrase)
            continue
        implied = model["implies"].get(ident, {}) if kind == "concept" else {}
        if implied and _contrasted(toks, start):
            continue  # "instead of a black box" names what the user wants to avoid, not their access
        if kind == "architecture" or "modality" in implied:
            facet_words.update(range(start, start + len(phrase.split())))
        if kind == "architecture":
            named_archs.append((ident, phrase))
        else:
            for facet, value in implied.items():
                if facet not in plan.facets:
                    plan.facets[facet], plan.source[facet] = value, f"the words '{phrase}'"
    chosen = _named_architecture(named_archs, archs)
    if chosen:
        plan.facets["architecture"], plan.source["architecture"] = chosen[0], f"the words '{chosen[1]}'"
    subject = cache.get("subject")
    if subject is None:
        words = model.get("subject_words", {})
        # generic words match by stem ("heatmaps"); the handbook's jargon only as written, because
        # its stems are often plain English ("interpretability" -> "interpret")
        subject = cache["subject"] = (frozenset(words.get("exact", ())), frozenset(words.get("stems", ())))
    plan.subject = sorted({t for t in toks if t in subject[0] or stem(t) in subject[1]} | ({"(architecture)"} if "architecture" in plan.facets else set()))
    if "architecture" not in plan.facets:
        guess = _architecture_from_words([t for i, t in enumerate(toks) if i not in method_words], model)
        if guess:
            plan.facets["architecture"], plan.source["architecture"] = guess
    arch = plan.facets.get("architecture")
    if arch and "modality" not in plan.facets:
        mods = archs.get(arch, {}).get("modalities") or []
        if len(mods) == 1:
            plan.facets["modality"], plan.source["modality"] = mods[0], f"the architecture ({archs[arch]['name']})"
    negated = _negated(toks)
    plan.terms = terms(" ".join(t for i, t in enumerate(toks) if i not in negated))
    plan.words = {stem(t): o for t, o in zip(toks, original)}
    goal_terms = terms(" ".join(t for i, t in enumerate(toks) if i not in facet_words | negated))
    scope = plan.facets.get("scope")
    if model["counts"]["goals"]:
        off = set(model["off_goals"])
        every = _goal_scores(goal_terms, question, model, scope)
        scored = [(s, gid) for s, gid in every if gid not in off]
        plan.off_topic = next(((gid, s) for s, gid in every if gid in off), ("", 0.0))
        best = scored[0][0] if scored else 0.0
        plan.goal_evidence = best
        if best > 0:
            plan.goals = [(gid, s / best) for s, gid in scored if s >= 0.5 * best][:3]
            plan.facets["goal"], plan.source["goal"] = plan.goals[0][0], "the question's wording"
        plan.clause_goals = _clause_goals(toks, facet_words | negated, off, model, scope, best)
    for facet, value in (given or {}).items():
        if value:
            plan.facets[facet], plan.source[facet] = value, "given"
            if facet == "goal":
                plan.goals = [(value, 1.0)]
    return plan


def _goal_scores(goal_terms: list[str], text: str, model: dict, scope: str | None) -> list[tuple[float, str]]:
    """Every goal's fit to the question (real and off-topic needs alike), best first: the bag-of-words
    fit, plus how close the question is to the goal's closest single phrasing, plus what the learned
    scorer reads in words the goal's own text does not use.

    Only goals with some evidence are scored: every other goal's score is 0 (its words, its closest
    phrasing and the learned scorer all give it nothing); the off-topic needs always are, since the
    best of them is reported even at 0."""
    avg = model["avg"]["goals"]

    def bag_of_words(bm25, prior, locality):
        score = bm25 * (1 + GOAL_PRIOR * prior)
        if scope in ("local", "global"):  # a question about one prediction favours local goals
            fit = locality if scope == "local" else 1 - locality
            score *= 1 + SCOPE_FIT * (fit - 0.5)
        return score

    fits = _bm25_postings(goal_terms, _term_rows(model, set(goal_terms)), "g", "gi", avg, 5)
    raw = {gid: 0.0 for gid in model["off_goals"]}
    raw.update((gid, bag_of_words(bm25, *extra)) for gid, (bm25, extra) in fits.items())
    top_raw = max(raw.values()) or 1.0
    near = _nearest_from_rows(goal_terms, model)
    learned = goal_probabilities((model.get("intent") or {}).get("goals"), text)
    known = rows_of(model).get_many(ROW_PREFIX + "g:" + gid for gid in learned)
    for gid in [*near, *(key[len(ROW_PREFIX) + 2:] for key in known)]:
        raw.setdefault(gid, 0.0)
    blended = {gid: s + top_raw * (W_EXAMPLE * near.get(gid, 0.0) + W_INTENT * learned.get(gid, 0.0))
               for gid, s in raw.items()}
    return sorted(((s, gid) for gid, s in blended.items()), reverse=True)


W_EXAMPLE = 0.5  # weight of the closest-phrasing similarity against the best bag-of-words goal fit
# weight of the learned goal probability (kb.intent), on the same scale; chosen on each half of the bank's
# tune split with the scorer trained on the other half (tools/train_intent.py's examples otherwise):
# top-3 right 207-208/222 for weights 1-4 and 205-206 above; goals right 1 -> 135, 2 -> 143, 3 -> 146,
# 4 -> 148, 5 -> 145, 8 -> 143
W_INTENT = 4.0


def _nearest_examples(query_terms: list[str], goals: list[dict], idf: dict) -> dict[str, float]:
    """Per goal, the idf-weighted cosine between the question's terms and its closest phrasing."""
    import math

    q = set(query_terms)
    qn = math.sqrt(sum(idf.get(t, 0.0) ** 2 for t in q)) or 1.0
    out = {}
    for g in goals:
        best = 0.0
        for ex in g.get("examples", ()):
            shared = q.intersection(ex)
            if shared:
                num = sum(idf.get(t, 0.0) ** 2 for t in shared)
                den = qn * (math.sqrt(sum(idf.get(t, 0.0) ** 2 for t in ex)) or 1.0)
                best = max(best, num / den)
        if best:
            out[g["id"]] = best
    return out


def _bm25_postings(query_terms: list[str], rows: dict, part: str, idf_key: str, avg_len: float, width: int = 3,
                   k1: float = 1.2, b: float = 0.5) -> dict:
    """:func:`_bm25` of every document in the terms' postings (flat [doc, tf, length, extra...]):
    doc -> (score, extra). The same sums in the same order as _bm25 over each document."""
    out: dict = {}
    for t in set(query_terms):
        row = rows.get(t)
        if not row or part not in row:
            continue
        idf, post = row.get(idf_key, 0.0), row[part]
        for i in range(0, len(post), width):
            doc, tf, length = post[i], post[i + 1], post[i + 2]
            score = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
            prev = out.get(doc)
            out[doc] = (score if prev is None else prev[0] + score, tuple(post[i + 3:i + width]))
    return out


def _nearest_from_rows(query_terms: list[str], model: dict) -> dict[str, float]:
    """:func:`_nearest_examples` over the phrasings that share a term with the question, read from
    the terms' postings (the same sums, over the same sets, as over every goal's phrasings)."""
    import math

    q = set(query_terms)
    rows = _term_rows(model, q)
    idf = {t: row["xi"] for t, row in rows.items() if "xi" in row}
    qn = math.sqrt(sum(idf.get(t, 0.0) ** 2 for t in q)) or 1.0
    shared: dict[tuple, list] = {}
    norms: dict[tuple, float] = {}
    for t in q:
        post = rows.get(t, {}).get("x", ())
        for i in range(0, len(post), 3):
            key = (post[i], post[i + 1])
            shared.setdefault(key, []).append(t)
            norms[key] = post[i + 2]
    out: dict[str, float] = {}
    for key, words in shared.items():
        # a phrasing's terms are sorted: the intersection is built in the same order as over the phrasing
        common = q.intersection(sorted(words))
        num = sum(idf.get(t, 0.0) ** 2 for t in common)
        value = num / (qn * norms[key])
        if value > out.get(key[0], 0.0):
            out[key[0]] = value
    return out


def _split_model_names(toks: list[str]) -> list[str]:
    """'gpt2' and 'resnet50' are written as one word but named with two: ('gpt', '2')."""
    out = []
    for t in toks:
        m = re.fullmatch(r"([a-z]{3,})([0-9]+)", t)
        out.extend(m.groups() if m else (t,))
    return out


CLAUSE_BREAKS = {"and", "also", "then", "plus", "but"}


CLAUSE_SHARE = 0.6  # a part's goal counts only when it fits that part about as well as the question's goal


def _clause_goals(toks, skip, off, model, scope, whole_best) -> list[tuple[str, float]]:
    """The best goal of each part of a question such as 'explain this prediction, and can I trust it?'.

    Only parts long enough to carry a need of their own count, and only when their goal fits them
    nearly as well as the question's goal fits the question: a part that gives context ("my chess
    network says black is winning") asks for nothing. The caller keeps both goals when two parts want
    different things."""
    clauses, current = [], []
    for i, t in enumerate(toks):
        if t in CLAUSE_BREAKS and len(current) >= 3:
            clauses.append(current)
            current = []
        elif i not in skip:
            current.append(t)
    clauses.append(current)
    if len(clauses) < 2:
        return []
    found = []
    for words in clauses:
        scored = [(s, gid) for s, gid in _goal_scores(terms(" ".join(words)), " ".join(words), model, scope)
                  if gid not in off]
        if scored and scored[0][0] > 0 and scored[0][0] >= CLAUSE_SHARE * whole_best:
            found.append((scored[0][1], scored[0][0]))
    return found


CONTRASTS = {("instead", "of"), ("rather", "than"), ("than",), ("avoid",), ("avoiding",), ("replace",),
             ("replacing",), ("vs",), ("versus",), ("unlike",), ("not",), ("over",)}


def _contrasted(toks: list[str], start: int) -> bool:
    """Whether the phrase at ``start`` is what the question contrasts against ('instead of a black
    box', 'rather than post-hoc explanations'); up to two words may sit between."""
    for i in range(start - 1, max(start - 4, -1), -1):  # up to two words between ('instead of explaining a')
        if any(tuple(toks[max(0, i - len(c) + 1):i + 1]) == c for c in CONTRASTS):
            return True
    return False


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


def _named_architecture(named: list[tuple[str, str]], archs: dict) -> tuple[str, str] | None:
    """Which of the architectures a question names is its model's. One used as a block inside another
    that is named too is a part ("the MLP neurons of GPT-2" is about a transformer); then the more
    specific wins (resnet over cnn: a child names its parent), else the first found.

    >>> archs = {"transformer": {"components": ["feedforward"]}, "feedforward": {}, "cnn": {}, "resnet": {"parent": "cnn"}}
    >>> _named_architecture([("feedforward", "mlp"), ("transformer", "gpt 2")], archs)
    ('transformer', 'gpt 2')
    >>> _named_architecture([("cnn", "cnn"), ("resnet", "resnet")], archs)
    ('resnet', 'resnet')
    """
    def parts(ident: str) -> set[str]:
        return {c for a in _arch_chain(ident, archs) for c in archs.get(a, {}).get("components", ())}

    ids = {ident for ident, _ in named}
    whole = [(ident, phrase) for ident, phrase in named if not any(ident in parts(o) for o in ids if o != ident)]
    chosen = None
    for ident, phrase in whole:
        if chosen is None or archs.get(ident, {}).get("parent") == chosen[0]:
            chosen = (ident, phrase)
    return chosen


MODEL_NOUNS = frozenset("model models network networks net nets architecture architectures layer layers".split())


def _architecture_from_words(toks: list[str], model: dict) -> tuple[str, str] | None:
    """A weaker signal than a full name: a word that belongs to one architecture's names only
    (e.g. 'convolutional'), or to a family whose members share one parent (rnn for 'recurrent')."""
    archs = model["architectures"]
    owners: dict[str, set[str]] = {}
    for ident, arch in archs.items():
        for t in arch.get("words", ()):
            owners.setdefault(t, set()).add(ident)
    for i, t in enumerate(toks):
        found = owners.get(t)
        if not found or len(t) < 4 or t in STOPWORDS:
            continue
        # an everyday word from a name ("memory", "residual", "adversarial", "vision") names the
        # architecture only before a model noun ("recurrent net"): "residual stream" is a transformer's
        if (i + 1 >= len(toks) or toks[i + 1] not in MODEL_NOUNS) and t in english_words():
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
    """Score the methods against ``plan``; best first, each with reasons, caveats and score parts.

    Only candidates are read and scored: methods the question's goals recommend or serve, that it
    names, whose words it uses, or that its architecture recommends, best bound first. A method with
    none of these can only score its facet parts (at most FACET_BOUND, less when the question sets
    fewer facets), so the rest are scored only
    when fewer than ``limit`` + 1 candidates score above every unscored method's bound: the ranking
    is exactly that of scoring every method.
    """
    archs, f, rows = model["architectures"], plan.facets, rows_of(model)
    avg = model["avg"]["methods"]
    fits = _bm25_postings(plan.terms, _term_rows(model, set(plan.terms)), "m", "mi", avg)
    text_scores = {mid: score for mid, (score, _) in fits.items()}
    terms_in = _matched_terms(plan.terms, model)
    top_text = max(text_scores.values(), default=0.0) or 1.0
    plan.method_evidence = max(text_scores.values(), default=0.0)
    chain = _arch_chain(f.get("architecture"), archs)
    goals = list(plan.goals)
    for gid, _ in plan.clause_goals:  # a second part of the question keeps its own goal
        if gid not in dict(goals):
            goals.append((gid, 0.9))
    found = rows.get_many(ROW_PREFIX + "g:" + gid for gid, _ in goals)
    goal_map = {key[len(ROW_PREFIX) + 2:]: g for key, g in found.items()}
    # the most the facet parts can add for this question: only the facets it has count
    facet_bound = ((W_ARCH if chain else 0.0) + (W_MODALITY if f.get("modality") else 0.0)
                   + (W_SCOPE if f.get("scope") else 0.0) + (W_BUDGET if f.get("budget") == "low" else 0.0)) + 1e-9

    def score(m):
        parts, reasons, caveats = {}, [], []
        # The best goal fit counts, not the sum: a method recommended for three loosely matched
        # goals is not three times as relevant as the first choice for the goal the user asked.
        fits = []
        for gid, strength in goals:
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
        parts["goal"] = max(fits, default=0.0)
        if m["id"] in plan.mentioned:
            parts["named"] = W_MENTION
            reasons.insert(0, f"your question names it ('{plan.mentioned[m['id']]}')")
        text = text_scores.get(m["id"], 0.0) / top_text
        parts["words"] = W_TEXT * text
        if text >= 0.5 and m["id"] not in plan.mentioned:
            matched = sorted({plan.words.get(t, t) for t in plan.terms if t in terms_in.get(m["id"], ())})[:5]
            reasons.append("matches your words: " + ", ".join(matched))
        if chain:
            name = archs[chain[0]]["name"]
            rec = next((archs[a]["recommended"] for a in chain if m["id"] in archs[a]["recommended"]), None)
            if rec is not None:
                pos = rec.index(m["id"])
                parts["architecture"] = W_ARCH * (1.0 - 0.5 * pos / max(len(rec), 1))
                reasons.append(f"recommended for {name} models")
            elif set(chain) & set(m["architectures"]):
                parts["architecture"] = W_ARCH * 0.7
                reasons.append(f"applies to {name} models")
            elif not m["architectures"]:
                parts["architecture"] = W_ARCH * 0.4
            else:
                parts["architecture"] = -W_ARCH * 0.5
                caveats.append(f"written for {', '.join(m['architectures'])}, not {name}; check it transfers")
        mod = f.get("modality")
        if mod:
            if mod in m["modalities"] or "any" in m["modalities"]:
                parts["modality"] = W_MODALITY * (0.6 if "any" in m["modalities"] else 1.0)
                if mod in m["modalities"]:
                    reasons.append(f"works on {mod} inputs")
            else:
                parts["modality"] = -W_MODALITY
                caveats.append(f"made for {', '.join(m['modalities'])} inputs, not {mod}")
        access = f.get("access")
        excluded = None
        if access and ACCESS_RANK[m["access"]] > ACCESS_RANK[access]:
            parts["access"] = -HARD_PENALTY
            excluded = f"needs {m['access']} access, but you have {access} access"
            caveats.insert(0, excluded)
        elif access:
            reasons.append(f"needs only {m['access']} access")
        scope = f.get("scope")
        if scope and m["scope"] != "both":
            parts["scope"] = W_SCOPE if m["scope"] == scope else -W_SCOPE
        budget = f.get("budget")
        if budget == "low" and m["cost"]["level"] == "high":
            parts["budget"] = -W_BUDGET
            caveats.append(f"expensive: {m['cost']['note']}")
        elif budget == "low" and m["cost"]["level"] == "low":
            parts["budget"] = W_BUDGET
            reasons.append("cheap: " + m["cost"]["note"])
        caveats.extend(m["pitfalls"][:2])
        return (sum(parts.values()), m, reasons, caveats, parts, excluded)

    # an upper bound of each candidate's score: its goal, name and word parts, plus the most its facets add
    bound: dict[str, float] = {}
    for gid, strength in goals:
        goal = goal_map.get(gid)
        if not goal:
            continue
        n = len(goal["recommended"])
        for pos, mid in enumerate(goal["recommended"]):
            bound[mid] = max(bound.get(mid, 0.0), W_GOAL * strength * (1.0 - 0.6 * pos / max(n, 1)))
        for mid in goal.get("served", ()):
            bound[mid] = max(bound.get(mid, 0.0), W_GOAL * strength * 0.35)
    for mid in [*plan.mentioned, *text_scores, *(m for a in chain for m in archs[a]["recommended"])]:
        bound.setdefault(mid, 0.0)
    for mid in bound:
        bound[mid] += (W_MENTION if mid in plan.mentioned else 0.0) + W_TEXT * text_scores.get(mid, 0.0) / top_text
        bound[mid] += facet_bound
    # named methods and the methods of every goal are placed by the reordering below: always scored
    first = [*plan.mentioned, *(m for g in goal_map.values() for m in g["recommended"])]
    order = list(dict.fromkeys([*first, *sorted(bound, key=lambda mid: (-bound[mid], mid))]))
    results, scored = [], set()

    def score_all(ids):
        for i in range(0, len(ids), 200):
            found = rows.get_many(ROW_PREFIX + "m:" + mid for mid in ids[i:i + 200])
            for key, m in found.items():
                scored.add(m["id"])
                results.append(score(m))

    score_all(order[:len(first)])
    rest = order[len(first):]
    done = 0
    while True:  # candidates in batches, best bound first, until the next bound cannot reach the top
        best = sorted((r[0] for r in results), reverse=True)
        kth = best[limit] if len(best) > limit else None
        while done < len(rest) and rest[done] in scored:
            done += 1
        next_bound = bound[rest[done]] if done < len(rest) else facet_bound  # rest is sorted by bound
        if kth is not None and kth > next_bound:
            break
        if done >= len(rest):  # every candidate is scored and the bound still not beaten: score the rest
            score_all([mid for mid in rows.get(ROW_PREFIX + "method-ids", []) if mid not in scored])
            break
        score_all([mid for mid in rest[done:done + 64] if mid not in scored])
        done += 64
    results.sort(key=lambda r: (-r[0], r[1]["id"]))
    results = _named_first(results, plan)
    results = _each_part_answered(results, plan, goal_map)
    return [_result(s, m, reasons, caveats, parts, model) for s, m, reasons, caveats, parts, _ in results[:limit]]


# the most a method's facet parts add (architecture, modality, scope, budget; access only subtracts)
FACET_BOUND = W_ARCH + W_MODALITY + W_SCOPE + W_BUDGET


def _matched_terms(query_terms: list[str], model: dict) -> dict[str, set]:
    """method id -> the question's terms in its text (from the terms' postings)."""
    out: dict[str, set] = {}
    for t, row in _term_rows(model, set(query_terms)).items():
        post = row.get("m", ())
        for i in range(0, len(post), 3):
            out.setdefault(post[i], set()).add(t)
    return out


def _named_first(results: list, plan: Plan) -> list:
    """A method the question names is in the top 3 unless a hard constraint excludes it (the answer
    then says which): people who name a method want to hear about it."""
    named = [r for r in results if r[1]["id"] in plan.mentioned and r[5] is None][:3]
    missing = [r for r in named if results.index(r) >= 3]
    if not missing:
        return results
    top = results[:3]
    keep = [r for r in top if r in named] + [r for r in top if r not in named]
    new_top = sorted(keep[:3 - len(missing)] + missing, key=lambda r: -r[0])
    return new_top + [r for r in results if r not in new_top]


def _each_part_answered(results: list, plan: Plan, goal_map: dict) -> list:
    """In a several-part question ('explain it, and can I trust it?') each part's goal gets a method
    in the top 3: the best method its goal recommends moves up to third place if it is lower."""
    wanted = [gid for gid, _ in plan.clause_goals]
    if len(set(wanted)) < 2:
        return results
    top3 = results[:3]
    for gid in dict.fromkeys(wanted):
        rec = goal_map.get(gid, {}).get("recommended", [])
        if any(r[1]["id"] in rec for r in top3):
            continue
        best = next((r for r in results[3:] if r[1]["id"] in rec and r[5] is None), None)
        if best is not None:
            results.remove(best)
            results.insert(2, best)
            top3 = results[:3]
    return results


def _result(score: float, m: dict, reasons: list, caveats: list, parts: dict, model: dict) -> dict:
    paper = m.get("paper") or {}
    return {
        "ref": f"method:{m['id']}", "id": m["id"], "name": m["name"], "score": round(score, 3),
        "summary": m["summary"], "reasons": reasons or ["general fit for the question"], "caveats": caveats,
        "access": m["access"], "cost": m["cost"],
        "paper": {"id": m.get("introduced_by"), **paper} if m.get("introduced_by") else None,
        "tools": m["tools"], "reference": m.get("reference"),
        "run": f"kb run {m['id']}" if m.get("reference") else None,
        "score_parts": {k: round(v, 3) for k, v in parts.items() if v},
    }


# Calibration of the answer's confidence (bench/calibrate_query.py fits and reports these on the
# question bank's tune split and a development set of off-topic questions; never on the hold-out).
MIN_GOAL_EVIDENCE = 1.0   # below this raw goal fit, and with no method named, nothing in the question asks for interpretability
STRONG_GOAL_EVIDENCE = 8.0  # several of a goal's words: about interpretability even with no model named
OFF_TOPIC_MARGIN = 0.9    # an off-topic need must fit nearly as well as the best goal to win
HIGH, MEDIUM = 0.87, 0.68  # thresholds on the fit score below


SURE_FRACTION = 0.5  # below half of the scorer's threshold, a matched method name is a homonym


def assess(plan: Plan, results: list[dict], scope_threshold: float = 0.5) -> dict:
    """How well anything fits: a confidence (high|medium|low) from a score in [0, 1], whether the
    question is about interpretability at all, and the goals to choose from when it is vague."""
    named = bool(plan.mentioned)
    off_score = plan.off_topic[1]
    # what the question asks of interpretability: its goal's words, and (half as much) methods' words
    evidence = plan.goal_evidence + 0.5 * plan.method_evidence
    # out of scope: nothing names a method, and either nothing says the question is about a learned
    # model, or no goal's words are there, or an ML-engineering need fits better than any goal
    about_a_model = bool(plan.subject) or plan.goal_evidence >= STRONG_GOAL_EVIDENCE
    # the scorer reads the whole question's intent ("why did it predict" vs "how do I make it faster")
    unlike = plan.in_scope is not None and plan.in_scope < scope_threshold
    # A method's name keeps a question in scope, unless the scorer is sure it is not: many names are
    # also everyday words ("circuit breaker", "patch a hole", "cardiac ablation", "feature rollout").
    sure_unlike = plan.in_scope is not None and plan.in_scope < SURE_FRACTION * scope_threshold
    # ...but a name no everyday sentence contains ("deep dream", "Grad-CAM", "gradcam") always does
    distinct = any(len(p.split()) > 1 or p not in english_words() for p in plan.mentioned.values())
    out_of_scope = (not named or (sure_unlike and not distinct)) and (not about_a_model or plan.goal_evidence < MIN_GOAL_EVIDENCE
                                                   or off_score > OFF_TOPIC_MARGIN * evidence or unlike)
    if out_of_scope or not results:
        return {"fit": 0.0, "confidence": "low", "out_of_scope": bool(out_of_scope)}
    scores = [r["score"] for r in results]
    margin = scores[0] - (scores[3] if len(scores) > 3 else 0.0)
    # three signals, each squashed to [0, 1]: how well the best method fits, how far the top answers
    # stand above the fourth, and how strongly the question's words match methods at all
    # (bench/calibrate_query.py: on the bank's tune split, low answers had the expected method in the
    # top 3 78% of the time, medium 91%, high 96%)
    fit = (0.4 * min(scores[0] / 5.0, 1.0) + 0.3 * min(max(margin, 0.0) / 1.5, 1.0)
           + 0.3 * min(plan.method_evidence / 12.0, 1.0))
    if named:
        fit = min(1.0, fit + 0.1)
    if off_score > 0.5 * evidence:  # an ML-engineering need competes with the interpretability reading
        fit *= 0.7
    confidence = "high" if fit >= HIGH else "medium" if fit >= MEDIUM else "low"
    return {"fit": round(fit, 3), "confidence": confidence, "out_of_scope": False}


def choices(plan: Plan, model: dict, limit: int = 3) -> list[dict]:
    """The goals a vague question could mean, as choices: [{id, name, strength}]."""
    found = rows_of(model).get_many(ROW_PREFIX + "g:" + gid for gid, _ in plan.goals[:limit])
    names = {g["id"]: g["name"] for g in found.values() if not g.get("off")}
    return [{"id": gid, "ref": f"goal:{gid}", "name": names.get(gid, gid), "strength": round(s, 3)}
            for gid, s in plan.goals[:limit]]


def nearest_goals(plan: Plan, model: dict, limit: int = 3) -> list[dict]:
    """The real goals closest to an out-of-scope question: those its words matched, then the most
    common ones (when nothing matches at all)."""
    found = rows_of(model).get_many(ROW_PREFIX + "g:" + gid for gid, _ in plan.goals)
    names = {g["id"]: g["name"] for g in found.values() if not g.get("off")}
    matched = [gid for gid, _ in plan.goals if gid in names]
    names.update(model["common_goals"])  # the most common goals, most common first
    common = [gid for gid, _ in model["common_goals"]]
    return [{"id": gid, "ref": f"goal:{gid}", "name": names[gid]}
            for gid in list(dict.fromkeys(matched + common))[:limit]]


def related_records(plan: Plan, results: list[dict], model: dict, limit: int = 3) -> list[dict]:
    """Case studies and tutorials that match the question's situation: their words, the methods
    ranked first and the architecture asked about."""
    if not model["counts"]["cases"]:
        return []
    rows = rows_of(model)
    avg = model["avg"]["cases"]
    top = [r["id"] for r in results[:3]]
    arch = plan.facets.get("architecture")
    # only cases with some of the question's words can qualify; each one's bound adds its methods
    # among the top ones (known from the methods' rows) and the architecture, read from its row
    using = {mid: set(m.get("cases", ())) for mid, m in
             ((key[len(ROW_PREFIX) + 2:], m) for key, m in rows.get_many(ROW_PREFIX + "m:" + mid for mid in top).items())}
    words_of = {ref: w for ref, (w, _) in _bm25_postings(plan.terms, _term_rows(model, set(plan.terms)), "c", "ci", avg).items()}
    bound = {}
    for ref, words in words_of.items():
        uses = [m for m in top if ref in using.get(m, ())]
        if words > 0 and (uses or words >= 3.0):
            bound[ref] = words + 1.5 * len(uses) + (1.0 if arch else 0.0) + 1e-9
    order = sorted((ref for ref in bound if bound[ref] >= 2.0), key=lambda ref: (-bound[ref], ref))
    scored = []
    for i in range(0, len(order), 32):
        if len(scored) >= limit and scored[limit - 1][0] > bound[order[i]]:
            break
        for c in rows.get_many(ROW_PREFIX + "c:" + ref for ref in order[i:i + 32]).values():
            words = words_of[c["ref"]]
            uses = [m for m in top if m in c["methods"]]
            score = words + 1.5 * len(uses) + (1.0 if arch and arch in c.get("architectures", []) else 0.0)
            # a case must share the question's situation: a method it uses, or several of its words
            if words > 0 and (uses or words >= 3.0) and score >= 2.0:
                why = f"uses {', '.join(uses)}" if uses else "matches your question's words"
                scored.append((score, c["ref"], c["name"], why))
        scored.sort(key=lambda s: (-s[0], s[1]))
    return [{"ref": ref, "name": name, "why": why} for _, ref, name, why in scored[:limit]]


def answer(model: dict, question: str, limit: int = 5, cache: dict | None = None, explain: bool = False,
           **given) -> dict:
    """The full answer of ``kb query`` from the query model: facets, confidence and ranked results.

    A question that is not about understanding a model gets ``out_of_scope: true`` and the nearest
    goals instead of methods; a vague one gets ``choices``; ``explain`` keeps each result's score
    parts and how the question was read."""
    from .errors import KBError

    if not question or not question.strip():
        raise KBError("ask a question, e.g. kb query \"which method to explain my CNN's prediction?\"")
    if len(question) > 2000:
        raise KBError("the question is longer than 2,000 characters; shorten it")
    for facet, value in given.items():
        _check_facet(facet, value, model)
    plan = plan_query(question, model, {k: v for k, v in given.items() if v}, cache)
    threshold = ((model.get("intent") or {}).get("scope") or {}).get("threshold", 0.5)
    # whether the question is in scope does not depend on the ranking (only on the best method's
    # words): a question out of scope is not ranked at all
    fits = _bm25_postings(plan.terms, _term_rows(model, set(plan.terms)), "m", "mi", model["avg"]["methods"])
    plan.method_evidence = max((score for score, _ in fits.values()), default=0.0)
    if not given.get("goal") and assess(plan, [], threshold)["out_of_scope"]:
        ranked = []
    else:
        ranked = rank_methods(plan, model, max(limit, 4))  # the confidence compares the top with the fourth
    results = ranked[:limit]
    verdict = assess(plan, ranked, threshold) if not given.get("goal") else {
        "fit": 1.0, "confidence": "high", "out_of_scope": False}
    out = {"question": question, "facets": plan.to_dict(), "confidence": verdict["confidence"],
           "out_of_scope": verdict["out_of_scope"]}
    if verdict["out_of_scope"]:
        out["results"] = []
        out["nearest_goals"] = nearest_goals(plan, model)
        out["message"] = "this does not look like a question about interpreting a model"
    else:
        out["results"] = results
        out["related"] = related_records(plan, results, model)
        if verdict["confidence"] == "low" and len(plan.goals) > 1:
            out["choices"] = choices(plan, model)
    if explain:
        out["explain"] = {"fit": verdict["fit"], "goal_evidence": round(plan.goal_evidence, 3),
                          "method_evidence": round(plan.method_evidence, 3),
                          "off_topic": {"id": plan.off_topic[0] or None, "score": round(plan.off_topic[1], 3)},
                          "clause_goals": [{"id": g, "score": round(s, 3)} for g, s in plan.clause_goals],
                          "subject_words": plan.subject, "terms": plan.terms,
                          "in_scope": None if plan.in_scope is None else round(plan.in_scope, 3),
                          # what the learned goal scorer read in the whole question (kb.intent)
                          "learned_goals": [{"id": g, "p": round(p, 3)} for g, p in sorted(
                              goal_probabilities(((model.get("intent") or {}).get("goals")), question).items(),
                              key=lambda x: -x[1])[:3]]}
    else:
        for r in out["results"]:
            r.pop("score_parts", None)
    return out


def _check_facet(facet: str, value, model: dict) -> None:
    from .errors import KBError

    if not value:
        return
    if facet == "goal" and rows_of(model).get(ROW_PREFIX + "g:" + value) is not None:
        return
    allowed = {
        "architecture": sorted(model["architectures"]),
        "goal": rows_of(model).get(ROW_PREFIX + "goal-ids") or [] if facet == "goal" else None,
        "modality": MODALITIES, "access": ACCESS, "scope": SCOPES, "budget": COST_LEVELS,
    }.get(facet)
    if allowed is None:
        raise KBError(f"unknown facet {facet!r}; facets are {', '.join(FACETS)}")
    if value not in allowed:
        raise KBError(f"{facet} {value!r} is not one of: {', '.join(allowed)}", param=facet)
