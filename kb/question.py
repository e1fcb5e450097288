"""Reading a question: its facets, goals, named methods and whether it is in scope at all (a Plan).

``plan_query`` is pure (question + query model -> Plan). All vocabulary (architecture names, modality
words, goal phrasings, method aliases) comes from the records through the query model built with the
store (kb.querymodel); the learned intent scorers come from kb.intent. kb.query ranks methods for a Plan.

>>> from kb.querymodel import build_query_model
>>> plan = plan_query("explain my cnn", build_query_model([]))
>>> plan.facets, plan.terms
({}, ['explain', 'cnn'])
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .intent import goal_probabilities, in_scope_probability
from .querymodel import ROW_PREFIX, intent_of, rows_of
from .text import MAX_CORRECTABLE, STOPWORDS, correct, deletes, english_words, stem, terms, tokens

__all__ = ["Plan", "plan_query", "FACETS"]

FACETS = ("goal", "architecture", "modality", "access", "scope", "budget")
SCOPE_FIT = 0.5   # how much the question's scope (one prediction vs the whole model) steers the goal
GOAL_PRIOR = 0.15  # how much a commonly served goal is preferred when the wording is ambiguous


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


def _read_for_scorers(question: str, corrected: dict, intent: dict) -> str:
    """The question as the learned scorers (kb.intent) read it: a misspelt word they have no weight
    for ("pretraning") is read as its correction; one they learned from examples ("weigth",
    "unpruned") stays as written, since the correction may be another word."""
    if not corrected:
        return question
    learned = [m.get("weights", {}) for m in (intent.get("scope"), intent.get("goals")) if m]
    return " ".join(corrected[t] if t in corrected and not any(w.get("w:" + stem(t)) for w in learned) else t
                    for t in tokens(question))


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
    # a phrase can only start where the question has its first word or that word's stem (every test
    # below compares the first words): a model's phrases often share a first word ("method 000123")
    starts: dict[str, list[int]] = {}
    for i, (t, s) in enumerate(zip(toks, stems)):
        starts.setdefault(t, []).append(i)
        if s != t:
            starts.setdefault(s, []).append(i)
    for ptoks, kind, ident, pst in phrases:
        n = len(ptoks)
        if n:
            at = starts.get(ptoks[0], [])
            other = starts.get(pst[0], []) if pst else []
            if other and other is not at:
                at = sorted({*at, *other})
        else:
            at = range(len(toks) + 1)
        for i in at:
            if i > len(toks) - n or any(taken[i:i + n]):
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
    intent = intent_of(model, question)
    read = _read_for_scorers(question, plan.corrected, intent)
    if read != question:  # the corrected words' rows are not read yet
        intent = intent_of(model, read)
    plan.in_scope = in_scope_probability(intent.get("scope"), read)
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
        every = _goal_scores(goal_terms, read, model, scope)
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
    learned = goal_probabilities(intent_of(model, text).get("goals"), text)
    known = rows_of(model).get_many(ROW_PREFIX + "g:" + gid for gid in learned)
    for gid in [*near, *(key[len(ROW_PREFIX) + 2:] for key in known)]:
        raw.setdefault(gid, 0.0)
    blended = {gid: s + top_raw * (W_EXAMPLE * near.get(gid, 0.0) + W_INTENT * learned.get(gid, 0.0))
               for gid, s in raw.items()}
    return sorted(((s, gid) for gid, s in blended.items()), reverse=True)


W_EXAMPLE = 0.5  # weight of the closest-phrasing similarity against the best bag-of-words goal fit
# weight of the learned goal probability (kb.intent), on the same scale; chosen by 5-fold cross-validation
# on the goal-labelled development questions (dev/, written blind), the scorer trained on the other folds.
# Goal read right for weights 4.5, 6, 9, 12 on 4,615 questions: 84.1, 84.7, 85.2, 85.5 % (scorer alone
# 85.2 %; on 2,215 questions, weights 3-9 ran the same way). The records' own words still decide
# between goals the scorer finds equally likely, and for questions unlike any example.
W_INTENT = 12.0


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
        # "instead of retraining", "rather than attention maps": what follows is what they do not want
        if t in NEGATIONS or (i and (toks[i - 1], t) in (("instead", "of"), ("rather", "than"))):
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
