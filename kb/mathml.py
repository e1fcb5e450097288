"""TeX math in record prose (``$…$`` inline, ``$$…$$`` display) as MathML, made at render time.

Both outputs of ``kb render`` show math without a script or a network: latex2mathml turns the TeX into
MathML, which browsers draw natively. The TeX comes from record text, so it is untrusted: latex2mathml
copies ``\\text{<script>}`` verbatim and turns ``\\href``/``\\style`` into attributes, so its tree is
never serialised as it is. :func:`to_mathml` writes it out again from an allow-list of MathML elements
and attributes (attribute values from a small alphabet), every character of text other than a letter,
digit or space as a numeric character reference: nothing in it can be read as HTML or as Markdown.
The HTML site then passes the page through nh3 (``kb.render.sanitise_html``) with the same allow-list.
"""
from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Iterator

__all__ = ["MATHML_TAGS", "MATHML_ATTRIBUTES", "MathError", "split_math", "to_mathml", "math_problems"]

# MathML Core presentation elements (what latex2mathml writes and browsers draw).
MATHML_TAGS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac", "msqrt",
    "mroot", "mstyle", "mpadded", "mphantom", "menclose", "mover", "munder", "munderover", "mtable", "mtr",
    "mtd", "mfenced", "merror", "semantics", "annotation",
})
# No href, style, class, id or colour: nothing that links, restyles or names.
MATHML_ATTRIBUTES = frozenset({
    "display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "width", "height", "depth",
    "accent", "accentunder", "columnalign", "columnspacing", "columnlines", "rowspacing", "rowlines", "frame",
    "framespacing", "movablelimits", "minsize", "maxsize", "symmetric", "largeop", "form", "linethickness",
    "displaystyle", "scriptlevel", "notation", "open", "close", "separators", "align", "rowalign", "voffset",
})
_ATTR_VALUE = re.compile(r"[A-Za-z0-9 .%#+-]{0,64}")
MATHML_NS = "http://www.w3.org/1998/Math/MathML"


class MathError(ValueError):
    """TeX that latex2mathml cannot read (an unclosed brace, a command it does not know how to end)."""


# -- finding math ------------------------------------------------------------------------------------
def split_math(text: str) -> Iterator[tuple[str, str]]:
    """``(kind, piece)`` over prose: kind ``"text"``, ``"inline"`` (TeX of ``$…$``) or ``"display"`` (``$$…$$``).

    Pandoc's rules, so that prices stay text: an opening ``$`` is not followed by a space, its
    closing one (the next ``$``) is not preceded by a space nor followed by a digit; ``\\$`` is a
    literal dollar; math never spans a blank line.

    >>> list(split_math(r"costs $5 and $10; $x_i$ and $$\\sum_i a_i$$ but \\$3"))
    [('text', 'costs $5 and $10; '), ('inline', 'x_i'), ('text', ' and '), ('display', '\\\\sum_i a_i'), ('text', ' but \\\\$3')]
    """
    start = 0
    for kind, begin, end, tex in _math_spans(text):
        if begin > start:
            yield "text", text[start:begin]
        yield kind, tex
        start = end
    if start < len(text):
        yield "text", text[start:]


def _math_spans(text: str) -> Iterator[tuple[str, int, int, str]]:
    """``(kind, start, end, tex)`` of each math span, ``start:end`` covering its dollars."""
    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\":
            pos += 2
            continue
        if ch != "$":
            pos += 1
            continue
        display = text.startswith("$$", pos)
        end = _display_end(text, pos + 2) if display else _inline_end(text, pos + 1)
        if end is None:
            pos += 2 if display else 1
            continue
        width = 2 if display else 1
        yield ("display" if display else "inline"), pos, end + width, text[pos + width:end].strip()
        pos = end + width


def _closing(text: str, i: int, marker: str) -> int | None:
    """The index of the next unescaped ``marker`` from ``i`` before a blank line, or None."""
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(marker, i):
            return i
        if text[i] == "\n" and re.match(r"\n[ \t]*(\n|$)", text[i:]):
            return None
        i += 1
    return None


def _display_end(text: str, i: int) -> int | None:
    end = _closing(text, i, "$$")
    return end if end is not None and text[i:end].strip() else None


def _inline_end(text: str, i: int) -> int | None:
    """The closing ``$`` of an inline span opened before ``i``: the next unescaped ``$``, if it may close."""
    if i >= len(text) or text[i].isspace() or text[i] == "$":
        return None
    end = _closing(text, i, "$")
    if end is None or text[end - 1].isspace() or (end + 1 < len(text) and text[end + 1].isdigit()):
        return None
    return end


# -- writing MathML ------------------------------------------------------------------------------------
# TeX that latex2mathml 3.x leaves as a literal command: rewritten before conversion, or read after it.
_TEX_FIXES = ((re.compile(r"\\arg(?![A-Za-z])"), r"\\operatorname{arg}"),)
_SYMBOLS = {"\\langle": "\u27e8", "\\rangle": "\u27e9", "\\lvert": "|", "\\rvert": "|", "\\lVert": "\u2016",
            "\\rVert": "\u2016", "\\vert": "|", "\\Vert": "\u2016"}
_COMMAND = re.compile(r"\\[A-Za-z]+")
_ORDINARY = {"\u2205"}  # the empty set
_BARS = {"|", "\u2016", "\u2223"}
_GLYPHS = {"\u2216": "\\", "\u29f5": "\\"}  # set minus: common fonts lack it; a backslash reads the same


def _text(value: str) -> str:
    """Text content with every character but letters, digits and spaces as a character reference."""
    value = html.unescape(value)  # latex2mathml writes operators as "&#x0003D;"; read them back first
    value = _SYMBOLS.get(value.strip(), value)
    return "".join(c if (c.isascii() and c.isalnum()) or c == " " else f"&#x{ord(c):X};" for c in value)


_PRIMES = {"\u2032", "\u2033", "\u2034", "'"}


def _prime(element) -> str | None:
    """The prime of ``x'`` (a script that is only primes), or None."""
    children = list(element)
    text = html.unescape(children[-1].text or "").strip() if children else ""
    return text if text and set(text) <= _PRIMES and not len(children[-1]) else None


def _write(element, out: list[str], unknown: list[str]) -> None:
    tag = element.tag.rsplit("}", 1)[-1]
    text = element.text or ""
    # x' is a prime beside x, not a raised script: the glyph is already raised (as TeX draws it)
    prime = _prime(element) if tag in ("msup", "msubsup") else None
    if prime is not None:
        children = list(element)
        out.append("<msub><mrow>" if tag == "msubsup" else "<mrow>")
        _write(children[0], out, unknown)
        out.append(f'<mi mathvariant="normal">{_text(prime)}</mi></mrow>')
        if tag == "msubsup":
            _write(children[1], out, unknown)
            out.append("</msub>")
        if element.tail:
            out.append(_text(element.tail))
        return
    if text and _COMMAND.fullmatch(html.unescape(text).strip()) and text.strip() not in _SYMBOLS:
        unknown.append(text.strip())
    attrib = dict(element.attrib)
    if tag == "mo":  # as TeX spaces them: bars and the empty set are ordinary symbols, not operators
        symbol = html.unescape(text).strip()
        if symbol in _ORDINARY:
            tag = "mi"
        elif symbol in _BARS and "lspace" not in attrib:
            attrib.update(lspace="0em", rspace="0em")
    if tag in ("mi", "mo") and html.unescape(text).strip() in _GLYPHS:
        tag, text = "mo", _GLYPHS[html.unescape(text).strip()]  # a binary operator, spaced as one
    if tag in MATHML_TAGS:
        attrs = ""
        for name, value in sorted(attrib.items()):
            name = name.rsplit("}", 1)[-1]
            if name in MATHML_ATTRIBUTES and _ATTR_VALUE.fullmatch(str(value)):
                attrs += f' {name}="{value}"'
        if tag == "math":
            attrs = f' xmlns="{MATHML_NS}"' + attrs
        out.append(f"<{tag}{attrs}>{_text(text)}")
        for child in element:
            _write(child, out, unknown)
        out.append(f"</{tag}>")
    else:  # an element outside the allow-list keeps only its text
        out.append(_text(text))
        for child in element:
            _write(child, out, unknown)
    if element.tail:
        out.append(_text(element.tail))


@lru_cache(maxsize=4096)
def _convert(tex: str, display: bool) -> tuple[str, tuple[str, ...]]:
    from latex2mathml.converter import convert_to_element

    fixed = tex
    for pattern, replacement in _TEX_FIXES:
        fixed = pattern.sub(replacement, fixed)
    try:
        element = convert_to_element(fixed, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises its own errors, IndexError and others on broken TeX
        raise MathError(f"cannot read the TeX ${tex[:60]}$ ({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})") from None
    out: list[str] = []
    unknown: list[str] = []
    _write(element, out, unknown)
    return "".join(out), tuple(unknown)


def to_mathml(tex: str, display: bool = False) -> str:
    """``tex`` as one ``<math>`` element on one line, safe to put into HTML or Markdown as it is.

    Raises :class:`MathError` for TeX that latex2mathml cannot convert.

    >>> to_mathml("x_i")
    '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><msub><mi>x</mi><mi>i</mi></msub></mrow></math>'
    >>> to_mathml(r"\\text{<b>*hi*</b>} \\href{javascript:alert(1)}{y}")  # doctest: +ELLIPSIS
    '...<mtext>&#x3C;b&#x3E;&#x2A;hi&#x2A;&#x3C;&#x2F;b&#x3E;</mtext><mrow><mrow><mi>y</mi></mrow></mrow>...'
    """
    return _convert(tex, display)[0]


def math_problems(text: str) -> list[tuple[int, str]]:
    """``(line offset, message)`` for each ``$…$``/``$$…$$`` span of ``text`` that does not convert
    cleanly: TeX latex2mathml cannot read, or a command it does not know (shown as its name).

    >>> math_problems("fine $x^2$\\nbroken $\\\\frac{a}{$ and $\\\\foo x$")
    [(1, 'cannot read the TeX $\\\\frac{a}{$ (NoAvailableTokensError); fix the formula or write it inside `code`'), (1, 'unknown TeX command \\\\foo in $\\\\foo x$; the page would show it as text')]
    """
    from .safety import split_code

    text = str(text or "")
    found = []
    for is_code, offset, piece in split_code(text):
        if is_code:
            continue
        for kind, start, _, tex in _math_spans(piece):
            line = text.count("\n", 0, offset + start)
            try:
                _, unknown = _convert(tex, kind == "display")
            except MathError as exc:
                found.append((line, f"{exc}; fix the formula or write it inside `code`"))
                continue
            for command in unknown:
                found.append((line, f"unknown TeX command {command} in ${tex}$; the page would show it as text"))
    return found
