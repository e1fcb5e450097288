"""Words: tokenising, light stemming, stopwords and typo correction, shared by search and query."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

__all__ = ["tokens", "stem", "terms", "STOPWORDS", "deletes", "correct", "english_words"]

# English function words and question scaffolding; they carry no facet or method signal.
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can cannot could did do does doing down during each few for from further had has have having he
her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
of off on once only or other our ours ourselves out over own same she should so some such than that the their
theirs them themselves then there these they this those through to too under until up very was we were what
when where which while who whom will with would you your yours yourself yourselves want wants wanted need
needs trying try tried use using used get getting got make made way ways best good better please thanks hi
anyone someone something thing things know really also like would could should might may one ones
method methods technique techniques approach approaches tool tools model models network networks neural
""".split())


def tokens(text: str) -> list[str]:
    """Lowercase word tokens; hyphenated words also split.

    >>> tokens("Why did my ResNet-50 classify this X-ray?")
    ['why', 'did', 'my', 'resnet', '50', 'classify', 'this', 'x', 'ray']
    """
    return re.findall(r"[a-z0-9]+", (text or "").lower())


# English spelling and morphology the Porter stemmer leaves apart (not domain vocabulary).
_BRITISH = (("isation", "ization"), ("ising", "izing"), ("ised", "ized"), ("ises", "izes"), ("ise", "ize"),
            ("yse", "yze"))
_IRREGULAR = {"explan": "explain", "explanatori": "explain"}
# words Porter merges with a root of another meaning ("actionable" advice is not an agent's "action";
# an "interpretable" model is built to be read, unlike a model one wants to "interpret")
_KEEP = {"actionable": "actionabl", "interpretable": "interpretabl"}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Porter stem, with British spellings folded into American and a few irregular roots joined.

    >>> [stem(w) for w in ("explaining", "explanations", "networks", "visualisation", "attributions", "predictions")]
    ['explain', 'explain', 'network', 'visual', 'attribut', 'predict']
    """
    from whoosh.lang.porter import stem as porter  # 4 ms, and no index machinery

    if len(word) <= 3 or word.isdigit():
        return word
    if word in _KEEP:
        return _KEEP[word]
    for british, american in _BRITISH:
        if word.endswith(british) and len(word) > len(british) + 3:
            word = word[: -len(british)] + american
            break
    root = porter(word)
    return _IRREGULAR.get(root, root)


def terms(text: str) -> list[str]:
    """Stemmed content words of ``text`` (stopwords dropped).

    >>> terms("Which training documents explain the predictions?")
    ['train', 'document', 'explain', 'predict']
    """
    return [stem(t) for t in tokens(text) if t not in STOPWORDS and len(t) > 1]


def deletes(word: str, distance: int = 2) -> set[str]:
    """Every string reachable from ``word`` by deleting up to ``distance`` characters (SymSpell).

    >>> sorted(deletes("cat", 1))
    ['at', 'ca', 'cat', 'ct']
    """
    found = {word}
    frontier = {word}
    for _ in range(distance):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w)) if len(w) > 1}
        found |= frontier
    return found


def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance."""
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


MAX_CORRECTABLE = 30  # letters; the longest word spelling correction considers (issue 15)


def correct(word: str, index: dict[str, list[str]], frequency: dict[str, int]) -> str | None:
    """The closest known word to a misspelt ``word``, via a deletes ``index``; None when nothing is close.

    Allowed distance: 1 for words of 5-6 letters, 2 from 7 letters; ties go to the more frequent
    word. Short words and rare targets are left alone: "sales" is more likely a word we do not
    know than a misspelt "SAEs".

    >>> vocab = {"convolutional": 3, "network": 5}
    >>> idx = {}
    >>> for v in vocab:
    ...     for d in deletes(v): idx.setdefault(d, []).append(v)
    >>> correct("convolutonal", idx, vocab), correct("netwrok", idx, vocab), correct("xyz", idx, vocab)
    ('convolutional', 'network', None)

    Words longer than MAX_CORRECTABLE are left alone too: no known word is that long, and the
    deletions of a word grow with the square of its length (a 2,000-letter word: 2 million strings).
    """
    if len(word) < 5 or len(word) > MAX_CORRECTABLE:
        return None
    limit = 1 if len(word) <= 6 else 2
    candidates = {c for d in deletes(word, limit) for c in index.get(d, ())}
    scored = [(_edit_distance(word, c), -frequency.get(c, 0), c) for c in candidates]
    scored = [s for s in scored if s[0] <= limit and (frequency.get(s[2], 0) >= 2 or s[0] == 1 and len(word) >= 7)]
    return min(scored)[2] if scored else None


@lru_cache(maxsize=1)
def english_words() -> frozenset:
    """Common English words (kb/data/english_words.txt, from tools/make_english_words.py).

    The query corrects only words that are neither English nor the records' vocabulary, so a real
    word is never turned into another ("chest" stays "chest", not "chess").

    >>> {"chest", "weather"} <= english_words(), "asdfgh" in english_words()
    (True, False)
    """
    text = (Path(__file__).parent / "data" / "english_words.txt").read_text()
    while text.startswith("#"):  # the header comment
        text = text[text.find("\n") + 1:] if "\n" in text else ""
    return frozenset(text.split())  # 5 ms, against 16 for a filtered generator: cold queries load it
