"""Sentence vectors for the query path from a static embedding table, with the standard library only.

The table (``kb/data/static_embeddings.sqlite``) holds one vector per word piece of all-MiniLM-L6-v2's
vocabulary, distilled with model2vec (see ``tools/make_static_embeddings.py`` for how it is made, its
provenance and licence). A sentence's vector is what model2vec's ``StaticModel.encode`` computes:

1. BERT's basic tokenizer (clean control characters, space out CJK characters, strip accents, lowercase,
   split on whitespace and punctuation) and WordPiece (greedy longest match, ``##`` continuation, a word
   with no segmentation or longer than 100 characters becomes ``[UNK]``); the literal special tokens
   (``[CLS]``, ``[SEP]``, ...) are matched in the raw text first, as the ``tokenizers`` package does;
   no special tokens are added;
2. ``[UNK]`` pieces are dropped;
3. the rows of the remaining pieces are averaged and the mean is scaled to unit length.

The token ids equal those of the ``tokenizers`` package with the table's tokenizer, and the vectors equal
``model2vec``'s within the table's quantisation (tests/test_embed.py has the figures).

A text with no known piece (``""``, ``"   "``, only characters outside the vocabulary) gets the **zero
vector** (all 0.0, like model2vec); ``cosine`` of a zero vector with anything is 0.0, so such a text is
simply similar to nothing.

The table is opened read-only on first use, once per process, and only the rows of the pieces of the
texts being embedded are read: nothing is loaded up front, and there is no numpy and no torch.

>>> tokenize("Which pixels made my CNN say 'cat'?")
['which', 'pixels', 'made', 'my', 'cnn', 'say', "'", 'cat', "'", '?']
>>> tokenize("Interpretability of Transformers")
['interpret', '##ability', 'of', 'transformers']
>>> embed([""])[0][:3]                                  # nothing known: the zero vector
[0.0, 0.0, 0.0]
>>> a, b = embed(["which training images caused this label", "influence of training examples"])
>>> round(cosine(a, a), 6), round(cosine(a, b), 2)
(1.0, 0.53)
"""
from __future__ import annotations

import math
import re
import sqlite3
import struct
import threading
import unicodedata
from array import array
from operator import mul
from pathlib import Path

__all__ = ["TABLE", "available", "embed", "cosine", "similarities", "tokenize", "token_ids", "pack", "unpack",
           "info"]

TABLE = Path(__file__).resolve().parent / "data" / "static_embeddings.sqlite"
FORMAT = "kb-static-embeddings/1"

# ------------------------------------------------------------------------------------------- tokenizer
# BERT's basic tokenizer as the `tokenizers` package implements it (BertNormalizer, BertPreTokenizer).

_ASCII_CONTROL = "".join(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]))
_DROP_CONTROL = str.maketrans("\t\n\r", "   ", _ASCII_CONTROL)   # \t \n \r -> " ", other C0 controls dropped
_ASCII_PUNCT = r"!-/:-@\[-`{-~"
_ascii_words = None   # compiled on first use (keeps the import cheap)
# Rust's char::is_whitespace (Unicode White_Space), which the normalizer maps to " "
_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                        "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
# control, format, private use, surrogate; an unassigned code point (Cn) is kept, as `tokenizers` keeps it
_DROPPED_CATEGORIES = frozenset(("Cc", "Cf", "Co", "Cs"))
_PUNCT_CATEGORIES = frozenset(("Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps"))
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK)


def _is_punct(ch: str) -> bool:
    return ("!" <= ch <= "/") or (":" <= ch <= "@") or ("[" <= ch <= "`") or ("{" <= ch <= "~") or \
        unicodedata.category(ch) in _PUNCT_CATEGORIES


def _normalize(text: str) -> str:
    """BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase).

    >>> _normalize("Ça\\tmarche\\x00 très BIEN")
    'ca marche tres bien'
    """
    if text.isascii():
        return text.translate(_DROP_CONTROL).lower()
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in "\t\n\r":
            out.append(" ")
        elif unicodedata.category(ch) in _DROPPED_CATEGORIES:
            continue
        elif ch in _WHITESPACE:
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFD", "".join(out))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return "".join(ch.lower() for ch in text)   # per character, as Rust does (no final-sigma rule)


def _pre_tokenize(text: str) -> list[str]:
    """Split a normalised text on whitespace and isolate each punctuation character.

    >>> _pre_tokenize("what's a u-net?")
    ['what', "'", 's', 'a', 'u', '-', 'net', '?']
    """
    global _ascii_words
    if text.isascii():
        if _ascii_words is None:
            _ascii_words = re.compile(rf"[^\s{_ASCII_PUNCT}]+|[{_ASCII_PUNCT}]")
        return _ascii_words.findall(text)
    words, cur = [], []
    for ch in text:
        if ch.isspace() or ch in _WHITESPACE:
            if cur:
                words.append("".join(cur))
                cur = []
        elif _is_punct(ch):
            if cur:
                words.append("".join(cur))
                cur = []
            words.append(ch)
        else:
            cur.append(ch)
    if cur:
        words.append("".join(cur))
    return words


# ------------------------------------------------------------------------------------------------ table

class _Table:
    """The open table: meta, the special tokens, and small caches of pieces already looked up."""

    CACHE_LIMIT = 50_000

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self.lock = threading.Lock()
        meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} table (format={meta.get('format')!r})")
        self.meta = meta
        self.dims = int(meta["dims"])
        self.dtype = meta["dtype"]                         # "int8" (per-row scale) or "float16"
        self.prefix = meta["continuing_subword_prefix"]
        self.unk = meta["unk_token"]
        self.max_chars = int(meta["max_input_chars_per_word"])
        self.max_tokens = int(meta["max_length"]) if meta.get("max_length") else None
        self.max_text = (self.max_tokens * int(meta["median_token_length"])) if self.max_tokens else None
        specials = [t for t in meta.get("special_tokens", "").split(" ") if t]
        self.special_re = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None
        self.words: dict[str, tuple[str, ...]] = {}      # word -> its pieces
        self.rows: dict[str, tuple[int, tuple[float, ...]] | None] = {}   # piece -> (id, row) or None
        self._fp16 = struct.Struct(f"<{self.dims}e")

    # --- raw look-ups
    def _decode(self, blob: bytes) -> tuple[float, ...]:
        if self.dtype == "int8":
            (scale,) = struct.unpack_from("<f", blob)
            return tuple(scale * q for q in array("b", blob[4:]))
        return self._fp16.unpack(blob)

    def lookup(self, pieces) -> None:
        """Fill self.rows for the pieces not seen yet (one query)."""
        if len(self.rows) > self.CACHE_LIMIT:
            self.rows.clear()
            self.words.clear()
        todo = [p for p in dict.fromkeys(pieces) if p not in self.rows]
        if not todo:
            return
        for i in range(0, len(todo), 500):
            chunk = todo[i:i + 500]
            with self.lock:
                found = self.conn.execute(
                    f"SELECT p, id, vec FROM piece WHERE p IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            for p in chunk:
                self.rows[p] = None
            for p, ident, blob in found:
                self.rows[p] = (ident, self._decode(blob))

    # --- WordPiece
    def wordpiece(self, word: str) -> tuple[str, ...]:
        pieces = self.words.get(word)
        if pieces is not None:
            return pieces
        if len(word) > self.max_chars:
            pieces = (self.unk,)
        else:
            out, start, n = [], 0, len(word)
            while start < n:
                head = self.prefix if start else ""
                candidates = [head + word[start:end] for end in range(n, start, -1)]
                self.lookup(candidates)
                match = next((c for c in candidates if self.rows.get(c) is not None), None)
                if match is None:
                    out = [self.unk]
                    break
                out.append(match)
                start += len(match) - len(head)
            pieces = tuple(out)
        self.words[word] = pieces
        return pieces

    def tokenize(self, text: str) -> list[str]:
        if self.max_text is not None:
            text = text[:self.max_text]
        parts = self.special_re.split(text) if self.special_re else [text]
        pieces: list[str] = []
        for i, part in enumerate(parts):
            if i % 2:                                  # a literal special token, matched before normalising
                pieces.append(part)
                continue
            for word in _pre_tokenize(_normalize(part)):
                pieces.extend(self.wordpiece(word))
        if self.max_tokens is not None:
            pieces = pieces[:self.max_tokens]
        return pieces

    def vector(self, text: str) -> list[float]:
        pieces = [p for p in self.tokenize(text) if p != self.unk]
        self.lookup(pieces)
        rows = [self.rows[p][1] for p in pieces if self.rows.get(p) is not None]
        acc = [0.0] * self.dims
        if not rows:
            return acc
        for row in rows:
            acc = list(map(float.__add__, acc, row))
        norm = math.sqrt(sum(x * x for x in acc))
        if norm == 0.0:
            return acc
        return [x / norm for x in acc]        # the mean's 1/len cancels in the normalisation


_table: _Table | None = None
_failed: str | None = None
_open_lock = threading.Lock()


def _get(path: Path | None = None) -> _Table:
    global _table, _failed
    if path is not None:
        return _Table(Path(path))
    if _table is None:
        with _open_lock:
            if _table is None:
                if _failed is not None:
                    raise RuntimeError(_failed)
                try:
                    _table = _Table(TABLE)
                except (OSError, sqlite3.Error, KeyError, ValueError) as exc:
                    _failed = f"static embedding table unavailable: {TABLE}: {exc}"
                    raise RuntimeError(_failed) from exc
    return _table


# ------------------------------------------------------------------------------------------------ API

def available() -> bool:
    """True when the packaged table exists and opens (the semantic signal can be used); never raises.

    >>> isinstance(available(), bool)
    True
    """
    try:
        _get()
        return True
    except RuntimeError:
        return False


def info() -> dict:
    """The table's metadata (dims, quantisation, tokenizer settings, provenance)."""
    return dict(_get().meta)


def tokenize(text: str, table: str | Path | None = None) -> list[str]:
    """The word pieces of ``text``, as ``tokenizers`` gives them without special tokens (``[UNK]`` kept).

    >>> tokenize("Grad-CAM on a ResNet")
    ['gr', '##ad', '-', 'cam', 'on', 'a', 'res', '##net']
    """
    return _get(table).tokenize(text)


def token_ids(text: str, table: str | Path | None = None) -> list[int]:
    """The ids of ``tokenize(text)`` in the table's vocabulary (the distilled model's ids)."""
    t = _get(table)
    pieces = t.tokenize(text)
    t.lookup(pieces)
    return [t.rows[p][0] for p in pieces]


def embed(texts: list[str], table: str | Path | None = None) -> list[list[float]]:
    """One unit-length vector per text (the zero vector for a text with no known piece).

    ``table`` is for tools and tests (another table file); by default the packaged one is used.
    Raises RuntimeError when the table is unavailable (check ``available()`` first).

    >>> v = embed(["what does this neuron detect?"])[0]
    >>> len(v), round(sum(x * x for x in v), 6)
    (256, 1.0)
    """
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts, not one string")
    t = _get(table)
    return [t.vector(text) for text in texts]


def cosine(a, b) -> float:
    """Cosine similarity; 0.0 when either vector is zero.

    >>> cosine([1.0, 0.0], [1.0, 1.0]) == 1 / math.sqrt(2)
    True
    >>> cosine([0.0, 0.0], [1.0, 0.0])
    0.0
    """
    na = math.sqrt(sum(map(mul, a, a)))
    nb = math.sqrt(sum(map(mul, b, b)))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return sum(map(mul, a, b)) / (na * nb)


def similarities(query, vectors) -> list[float]:
    """Dot products of one vector with many (cosines, when all are unit vectors as ``embed`` returns).

    >>> similarities([1.0, 0.0], [[0.5, 0.5], [0.0, 1.0]])
    [0.5, 0.0]
    """
    return [sum(map(mul, query, v)) for v in vectors]


def pack(vector) -> bytes:
    """A vector as float32 bytes (to store record vectors, e.g. in the store at build time).

    >>> unpack(pack([0.5, -1.0]))
    array('f', [0.5, -1.0])
    """
    return array("f", vector).tobytes()


def unpack(blob: bytes) -> array:
    """The inverse of ``pack``: an ``array('f')``."""
    out = array("f")
    out.frombytes(blob)
    return out
