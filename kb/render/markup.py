"""Markdown for the handbook's templates: record text escaped, code fenced, formulas as MathML, and the
jinja2 environments whose ``finalize`` escapes every plain string a Markdown template prints."""
from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from pathlib import Path

from ..errors import KBError
from ..mathml import MathError, to_mathml
from ..safety import code_span, is_safe_url

__all__ = ["markup", "md_escape", "fence", "relative", "math_span", "href", "inline_code", "anchor_attrs",
           "humanize", "environments", "AUTOLINK"]


def markup():
    """markupsafe's Markup class (imported on first use: kb --help never loads it)."""
    from markupsafe import Markup

    return Markup


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|])")
AUTOLINK = re.compile(r"<(https?://[^\s<>]+)>")


def md_escape(text) -> str:
    """Plain text made safe inside Markdown: Markdown syntax backslash-escaped, HTML as entities.

    >>> md_escape("<script>alert('x')</script> a*b [c]")
    "&lt;script&gt;alert('x')&lt;/script&gt; a\\\\*b \\\\[c\\\\]"
    """
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _finalize(value):
    """Every ``{{ }}`` in a Markdown template: Markup passes, anything else is escaped as plain text."""
    Markup = markup()
    if value is None or isinstance(value, Markup):
        return value
    return Markup(md_escape(value))


def fence(code: str, lang: str = "") -> str:
    """``code`` in a fenced block whose fence is longer than any run of backticks inside it."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{code.rstrip()}\n{ticks}"


@lru_cache(maxsize=None)
def relative(here: str, target: str) -> str:
    """The relative URL from folder ``here`` to ``target`` (cached: every link of every page asks)."""
    return posixpath.relpath(target, here)


def math_span(tex: str, display: bool) -> str:
    """A ``$…$`` span as MathML (kb.mathml: allow-listed, text as character references); TeX that
    does not convert stays visible as code (``kb validate`` reports it)."""
    try:
        mathml = to_mathml(tex, display)
    except MathError:
        return code_span(tex)
    # in a span: Python-Markdown reads a line that starts with <math> as a raw HTML block; a display
    # formula's span scrolls sideways on a small screen, so it takes keyboard focus (to scroll it)
    if display:
        return f'<span class="math display" tabindex="0">{mathml}</span>'
    return f'<span class="math">{mathml}</span>'


# -- template filters and globals ----------------------------------------------------------------
def href(url) -> str:
    """A URL made safe to stand inside Markdown's ``(...)``: spaces, quotes, brackets percent-encoded;
    a scheme other than http(s) or mailto (``javascript:``, ``data:``) gives ``#`` instead."""
    from urllib.parse import quote

    if not is_safe_url(str(url)):
        return markup()("#")
    return markup()(quote(str(url), safe=":/?#@!$&'*+,;=%~._-[]"))


def inline_code(text):
    """Any value as one inline code span (kb.safety.code_span); never marked safe unescaped."""
    return markup()(code_span(text))


def anchor_attrs(anchor: str):
    """``{#anchor}`` (attr_list) after a heading or link: the id a link elsewhere points to."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", anchor):
        raise KBError(f"{anchor!r} cannot be an anchor")
    return markup()("{#" + anchor + "}")


def humanize(text) -> str:
    text = str(text).replace("_", " ").replace("-", " ")
    return text[:1].upper() + text[1:]


def environments(templates: Path):
    """``(markdown_env, html_env)``: the jinja2 environments of the page templates and of the HTML layout."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    # Markdown templates autoescape too: plain strings are escaped by _finalize (Markdown + HTML),
    # Markup (helpers' output, macros) passes untouched.
    env = Environment(loader=FileSystemLoader(str(templates)), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "html.j2", "md.j2", "yml.j2"], default=False),
                      finalize=_finalize, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                      auto_reload=False)
    html_env = Environment(loader=FileSystemLoader(str(templates)), undefined=StrictUndefined,
                           autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                           auto_reload=False)
    for e in (env, html_env):
        e.filters.update(humanize=humanize, href=href, code_span=inline_code)
        e.globals.update(attrs=anchor_attrs)
    return env, html_env
