"""What record text may put into a rendered page: URL schemes, code spans, links and active HTML.

One reading of record Markdown, shared by validation (which rejects hostile text with file and
line) and rendering (which neutralises it anyway), and written to agree with Python-Markdown,
which MkDocs and the HTML site both use: where the two might disagree about what is code, the
text is treated as prose, so it is escaped rather than trusted.
"""
from __future__ import annotations

import html
import re
from typing import Iterator

__all__ = ["SAFE_SCHEMES", "url_scheme", "is_safe_url", "split_code", "unsafe_links", "neutralise_links",
           "active_html", "code_span", "find_hazards"]

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

# Browsers drop ASCII tab and newline anywhere in a URL and C0 controls or spaces around it
# (WHATWG URL parsing), so "java\tscript:" is a javascript: URL.
_URL_JUNK = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def url_scheme(url: str) -> str | None:
    """The scheme a browser would read from ``url`` (lowercase), or None for a relative URL.

    >>> url_scheme("  JaVa&#x53;cript:alert(1)"), url_scheme("java\\tscript:x"), url_scheme("../a.html#x")
    ('javascript', 'javascript', None)
    """
    text = html.unescape(str(url))
    text = _URL_JUNK.sub("", text).lstrip("".join(map(chr, range(0x21))) + "<")
    m = _SCHEME.match(text)
    return m.group(1).lower() if m else None


def is_safe_url(url: str) -> bool:
    """True for http(s), mailto and relative URLs; False for javascript:, data:, vbscript:, file: ...

    >>> is_safe_url("https://arxiv.org/abs/1703.01365"), is_safe_url("#x"), is_safe_url("data:text/html,x")
    (True, True, False)
    """
    scheme = url_scheme(url)
    return scheme is None or scheme in SAFE_SCHEMES


# Code, as Python-Markdown reads it: a fence at the start of a line up to the same fence, or a
# backtick run not escaped by an odd number of backslashes, closed by a run of the same length.
# A span may wrap onto following lines of its paragraph, but not onto a line that Markdown could
# read as the start of another block (a heading, a quote, a list item, a fence, a rule, a blank or
# indented line, raw HTML) nor across table rows: there block structure would split it, and what
# looked like code would be markup. Such a span is left as prose, so it is escaped.
_FENCE_RE = re.compile(r"(?ms)^(?P<fence>`{3,}|~{3,})[^\n]*\n.*?^(?P=fence)[ \t]*$")
_SPAN_RE = re.compile(r"(?s)(?<![\\`])(?:\\\\)*(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)")
_BLOCK_START = re.compile(r"[ ]{0,3}(?:[#><|]|```|~~~|[*+-][ \t]|\d+[.)][ \t]|=+[ \t]*$|-+[ \t]*$|(?:[-*_][ \t]*){3,}$)"
                          r"|[ ]{4}|\t|[ \t]*$")


_TABLE_RULE = re.compile(r"(?m)^(?=[^\n]*\|)(?=[^\n]*-)[ \t|:-]+$")  # |---|:--| under a table's header


def _span_ok(span: str) -> bool:
    lines = span.split("\n")
    if len(lines) == 1:
        return True
    return "|" not in span and not any(_BLOCK_START.match(line) for line in lines[1:])


def split_code(text: str) -> Iterator[tuple[bool, int, str]]:
    """``(is_code, offset, piece)`` over ``text``: code kept verbatim, everything else prose.

    >>> [(c, p) for c, _, p in split_code("a `<b>` \\\\`<svg>` ``x\\n# y`` c")]
    [(False, 'a '), (True, '`<b>`'), (False, ' \\\\`<svg>` ``x\\n# y`` c')]
    """
    pos, n = 0, len(text)
    spans: list[tuple[int, int]] = []
    for m in _FENCE_RE.finditer(text):
        spans.append((m.start(), m.end()))
    out: list[tuple[int, int]] = []
    cursor = 0
    for fence_start, fence_end in spans + [(n, n)]:
        i = cursor
        while i < fence_start:
            m = _SPAN_RE.search(text, i, fence_start)
            if not m:
                break
            start = m.start("ticks")
            if "``" in text[i:start]:
                # an unpaired run of two or more backticks: Python-Markdown may pair a shorter part of it
                # with a later backtick, so where code starts after it is uncertain: the rest is prose
                break
            span = m.group(0)[start - m.start():]
            # a table row ends at its line (and every line of a table's block is a row): a span that
            # starts in a block with a table's separator row before it cannot wrap onto the next line
            block = max(text.rfind("\n\n", 0, start), 0)
            in_row = "\n" in span and ("|" in text[text.rfind("\n", 0, start) + 1:start]
                                       or _TABLE_RULE.search(text, block, start) is not None)
            if not in_row and _span_ok(span):
                out.append((start, m.end()))
                i = m.end()
            else:  # not code, and Markdown pairs the same runs: all of it is prose, look again after it
                i = m.end()
        if fence_end > fence_start:
            out.append((fence_start, fence_end))
        cursor = fence_end
    for start, end in out:
        if start > pos:
            yield False, pos, text[pos:start]
        yield True, start, text[start:end]
        pos = end
    if pos < n:
        yield False, pos, text[pos:]
# "](" opens an inline link or image destination; Python-Markdown allows whitespace after "(".
_INLINE_DEST = re.compile(r"\]\(\s*(<?)([^\s)>]*)")
# A reference definition "[label]: url" (Python-Markdown's ReferenceProcessor, url possibly on the next line).
_REFERENCE_DEF = re.compile(r"(?m)^([ ]{0,3})\[([^\[\]\n]*)\]:[ ]*(?:\n[ ]*)?(\S+)")
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]*:[^<>\s]*)>")
_RAW_URL_ATTR = re.compile(r"""(?i)\b(?:href|src|action|formaction|xlink:href|poster|data)\s*=\s*"""
                           r"""(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")


def unsafe_links(text: str) -> Iterator[tuple[int, str]]:
    """``(offset, url)`` of each link, image or reference definition in prose whose URL is unsafe."""
    for m in _INLINE_DEST.finditer(text):
        dest = text[m.start(2):m.start(2) + 200]
        if not is_safe_url(dest):
            yield m.start(), m.group(2)
    for m in _REFERENCE_DEF.finditer(text):
        if not is_safe_url(m.group(3)):
            yield m.start(), m.group(3)
    for m in _AUTOLINK.finditer(text):
        if not is_safe_url(m.group(1)):
            yield m.start(), m.group(1)


def neutralise_links(text: str) -> str:
    """Prose with every unsafe link turned into plain text (its ``(`` or ``[`` backslash-escaped).

    >>> neutralise_links("[x](javascript:alert(1)) [y](https://ok)")
    '[x]\\\\(javascript:alert(1)) [y](https://ok)'
    """
    def inline(m: re.Match) -> str:
        dest = text[m.start(2):m.start(2) + 200]
        return m.group(0) if is_safe_url(dest) else "]\\(" + m.group(0)[2:]

    def reference(m: re.Match) -> str:
        return m.group(0) if is_safe_url(m.group(3)) else m.group(1) + "\\" + m.group(0)[len(m.group(1)):]

    text = _REFERENCE_DEF.sub(reference, text)
    return _INLINE_DEST.sub(inline, text)


# Elements that run script, load other documents or restyle the page; and event-handler attributes.
ACTIVE_TAGS = ("script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "style",
               "link", "meta", "base", "form", "template", "noscript", "xml", "portal", "img", "video", "audio",
               "source", "input", "button", "textarea", "select", "details", "marquee", "body", "html")
_ACTIVE_TAG = re.compile(r"(?i)<\s*/?\s*(" + "|".join(ACTIVE_TAGS) + r")(?![a-z0-9-])")
_TAG = re.compile(r"(?s)<[A-Za-z!/?][^<>]*>?")
_ATTR_GROUP = re.compile(r"\{[^{}\n]*\}")
_HANDLER = re.compile(r"(?i)(?:^|[\s\"'/;{:.,])on[a-z]+\s*=")


def active_html(text: str) -> Iterator[tuple[int, str]]:
    """``(offset, what)`` of active HTML in prose: script-capable elements, event-handler attributes
    in a tag or an attr_list ``{...}``, and unsafe URLs in raw ``href=``/``src=`` attributes.

    Entities need no decoding here: rendering escapes ``&``, so ``&lt;svg&gt;`` stays text.
    """
    for m in _ACTIVE_TAG.finditer(text):
        yield m.start(), f"<{m.group(1).lower()}> element"
    for m in _TAG.finditer(text):
        if _HANDLER.search(m.group(0)):
            yield m.start(), "event-handler attribute"
        for u in _RAW_URL_ATTR.finditer(m.group(0)):
            url = next(g for g in u.groups() if g is not None)
            if not is_safe_url(url):
                yield m.start(), f"{url_scheme(url)}: URL in an attribute"
    for m in _ATTR_GROUP.finditer(text):
        if _HANDLER.search(m.group(0)):
            yield m.start(), "event-handler attribute in an attribute list {...}"


def find_hazards(text: str) -> list[tuple[int, str]]:
    """Every hazard in record Markdown outside code: ``(line offset, message)``, sorted.

    [[kind:id]] links and [@key] citations are read as plain text, as raw Markdown would read them.

    >>> for line, message in find_hazards("ok `<script>` here\\n[x](JAVASCRIPT:alert(1))\\n<svg onload=alert(1)>"):
    ...     print(line, message[:37])
    1 link to a javascript: URL ('JAVASCRIP
    2 active HTML (<svg> element); write it
    2 active HTML (event-handler attribute)
    """
    if not text:
        return []
    text = str(text)
    # code is masked with letters, not removed: markup around a code span stays one piece of text
    masked = "".join(re.sub(r"[^\n]", "x", piece) if is_code else piece for is_code, _, piece in split_code(text))
    found: set[tuple[int, str]] = set()
    for at, url in unsafe_links(masked):
        found.add((masked.count("\n", 0, at), f"link to a {url_scheme(url)}: URL ({url[:40]!r}); "
                   "links may use http(s), mailto or relative URLs"))
    for at, what in active_html(masked):
        found.add((masked.count("\n", 0, at), f"active HTML ({what}); write it inside `code` or "
                   "describe it in words"))
    return sorted(found)


def code_span(text) -> str:
    """``text`` as one inline code span, whatever it holds: whitespace (newlines too) collapsed,
    fenced by more backticks than any run inside, so it can neither end early nor span a block.

    >>> code_span("a`b"), code_span("x\\n\\n<svg onload=1>")
    ('``a`b``', '`x <svg onload=1>`')
    """
    text = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}" if text else ""
