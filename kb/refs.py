"""The one grammar of references: ``kind:id`` refs, ``[[kind:id]]`` links and ``[@citekey]`` citations."""
from __future__ import annotations

import re

__all__ = [
    "KINDS", "SLUG", "CITEKEY", "MAX_ID", "MAX_REF", "is_slug", "parse_ref", "format_ref",
    "find_links", "find_citations", "citation_keys", "LINK_RE", "CITATION_RE", "LINK_FIELDS",
    "resolve_ref",
]

# Order matters: it is the order used in listings and for resolving a bare id that several kinds share.
KINDS = ("method", "architecture", "case_study", "tool", "concept", "topic", "goal", "path", "tutorial", "paper")

SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
MAX_ID = 120  # the longest id (slug or citekey); MAX_REF: the longest "kind:id"
MAX_REF = max(len(k) for k in KINDS) + 1 + MAX_ID
# Citekeys follow Google Scholar's habit (lowercase surname, year, first title word) and may contain hyphens.
CITEKEY = r"[a-z0-9][a-z0-9_-]*"
_SLUG_RE = re.compile(rf"^{SLUG}$")
_CITEKEY_RE = re.compile(rf"^{CITEKEY}$")
_KIND_ALT = "|".join(KINDS)
LINK_RE = re.compile(rf"\[\[\s*({_KIND_ALT})\s*:\s*([^\]\s|]+)\s*(?:\|([^\]]*))?\]\]")
CITATION_RE = re.compile(r"\[@([^\]\s;,]+)((?:\s*[;,]\s*@[^\]\s;,]+)*)\]")

# The record fields that hold refs: field -> (relation, fixed kind or None). The graph, validation
# and the handbook all read this table (plain data: no pydantic), so a new link field is declared once.
LINK_FIELDS: dict[str, tuple[str, str | None]] = {
    "see_also": ("related", None),
    "goals": ("serves", "goal"),
    "architectures": ("applies_to", "architecture"),
    "methods": ("uses", "method"),
    "prerequisites": ("requires", None),
    "follow_ups": ("follow_up", None),
    "topics": ("about", None),
    "parent": ("parent", "architecture"),
    "components": ("has_component", "architecture"),
    "tools": ("implemented_by", "tool"),           # method.tools[].tool and architecture.tools[]
    "recommended_methods": ("recommends", "method"),
    "recommended": ("recommends", "method"),
    "implements": ("implements", "method"),
    "steps": ("step", None),
}


def is_slug(text: str) -> bool:
    """True when ``text`` is a valid record id.

    >>> is_slug("grad-cam"), is_slug("../etc"), is_slug("Grad_CAM")
    (True, False, False)
    """
    return isinstance(text, str) and len(text) <= MAX_ID and bool(_SLUG_RE.match(text))


def is_citekey(text: str) -> bool:
    return isinstance(text, str) and len(text) <= MAX_ID and bool(_CITEKEY_RE.match(text))


def parse_ref(text: str, default_kind: str | None = None) -> tuple[str | None, str]:
    """Split ``"kind:id"`` into ``(kind, id)``; a bare id gives ``(default_kind, id)``.

    Raises ValueError on an unknown kind or an id that is not a slug (papers: a citekey).

    >>> parse_ref("method:grad-cam")
    ('method', 'grad-cam')
    >>> parse_ref("pca", "method")
    ('method', 'pca')
    """
    text = str(text).strip()
    kind, sep, ident = text.partition(":")
    if not sep:
        kind, ident = default_kind, text
    elif kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} in {text!r} (kinds: {', '.join(KINDS)})")
    ok = is_citekey(ident) if kind == "paper" else is_slug(ident)
    if not ok:
        raise ValueError(f"{ident!r} is not a valid id (lowercase letters, digits and single hyphens)")
    return kind, ident


def format_ref(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


def find_links(text: str) -> list[tuple[str, str, int]]:
    """``[[kind:id]]`` (or ``[[kind:id|label]]``) links in Markdown, as ``(kind, id, line_offset)``.

    >>> find_links("see [[method:pca]] and\\n[[concept:entropy|entropy]]")
    [('method', 'pca', 0), ('concept', 'entropy', 1)]
    """
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start())) for m in LINK_RE.finditer(text or "")]


def find_citations(text: str) -> list[tuple[str, int]]:
    """``[@key]`` and ``[@a; @b]`` citations in Markdown, as ``(citekey, line_offset)``.

    >>> find_citations("as shown [@kim2018interpretability; @olah2017feature].")
    [('kim2018interpretability', 0), ('olah2017feature', 0)]
    """
    return [(key, text.count("\n", 0, m.start())) for m in CITATION_RE.finditer(text or "")
            for key in citation_keys(m)]


def citation_keys(match: re.Match) -> list[str]:
    """The citekeys of one ``CITATION_RE`` match, in order (``[@a; @b]`` -> ``["a", "b"]``)."""
    return [match.group(1)] + re.findall(r"@([^\]\s;,]+)", match.group(2))


def resolve_ref(kind: str | None, ident: str, kinds, expected: str | None = None,
                papers: bool = False) -> tuple[str | None, str | None]:
    """The record a parsed ref names, given ``kinds``: the kinds that have a record with id ``ident``.

    Returns ``(ref, None)``, or ``(None, code)`` with code ``dangling-ref``, ``ambiguous-ref``,
    ``wrong-kind-ref`` (``kind`` is not the ``expected`` kind of its field) or ``unknown-citekey``.
    A bare id (``kind`` None) names the one kind that has it; papers count only with ``papers``
    (a link field names a paper as ``paper:key``; a command line may name it by its citekey alone).

    >>> resolve_ref(None, "pca", {"method"})
    ('method:pca', None)
    >>> resolve_ref(None, "probe", {"method", "concept"})
    (None, 'ambiguous-ref')
    >>> resolve_ref("paper", "x2020y", set())
    (None, 'unknown-citekey')
    """
    if kind is None:
        candidates = sorted(k for k in kinds if papers or k != "paper")
        if len(candidates) == 1:
            return f"{candidates[0]}:{ident}", None
        return None, "ambiguous-ref" if candidates else "dangling-ref"
    if expected and kind != expected:
        return None, "wrong-kind-ref"
    if kind in kinds:
        return f"{kind}:{ident}", None
    return None, "unknown-citekey" if kind == "paper" else "dangling-ref"
