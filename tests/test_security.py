"""Hostile contributors and hostile requests (issue 15): no script in the handbook, no request that pins the server.

Each test names the finding it covers. Work bounds are counted (operations, sizes), never timed:
timings live in bench/hostile.py.
"""
from __future__ import annotations

import html
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kb.build import compile_content
from kb.config import Layout
from kb.handbook import site_from_compiled
from kb.render import Renderer, render_site, sanitise_html

HERE = Path(__file__).parent
MINIMAL = HERE / "fixtures" / "minimal"

# -- an oracle for "active content", independent of kb.safety -------------------------------------
OUR_SCRIPTS = {"search-index.js", "static/search.js"}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "poster", "background", "cite", "data", "srcdoc"}
ACTIVE_TAGS = {"script", "iframe", "frame", "object", "embed", "applet", "base", "style", "math", "template",
               "portal", "meta", "link", "form"}


class _Active(HTMLParser):
    def __init__(self, layout: bool):
        super().__init__(convert_charrefs=True)
        self.layout = layout
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        for name, value in a.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name in URL_ATTRS:
                url = re.sub(r"[\t\n\r]", "", value).lstrip("".join(map(chr, range(0x21))))
                m = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", url)
                if m and m.group(1).lower() not in ("http", "https", "mailto"):
                    self.found.append(f"<{tag} {name}={value[:40]!r}>")
        if tag in ACTIVE_TAGS:
            ours = self.layout and (
                (tag == "script" and re.sub(r"^(\.\.?/)+", "", a.get("src", "")) in OUR_SCRIPTS and len(a) == 1)
                or (tag == "meta" and (set(a) <= {"charset"} or a.get("name") == "viewport"
                                       or a.get("http-equiv") == "Content-Security-Policy"))
                or (tag == "link" and a.get("rel") == "stylesheet" and a.get("href", "").endswith("static/kb.css"))
                or (tag == "form" and set(a) == {"class", "role"}))
            if not ours:
                self.found.append(f"<{tag}>")

    handle_startendtag = handle_starttag


def active_content(page: str, layout: bool = False) -> list[str]:
    """Everything in an HTML page that could run script or load foreign content."""
    scan = _Active(layout)
    scan.feed(page)
    scan.close()
    return scan.found


def mkdocs_html(markdown_text: str) -> str:
    """What MkDocs makes of a Markdown page: Python-Markdown with MkDocs' built-in extensions (toc,
    tables, fenced_code) and those of our mkdocs.yml."""
    import markdown

    return markdown.markdown(markdown_text, extensions=["toc", "tables", "fenced_code", "attr_list", "sane_lists"])


def site_html(markdown_text: str) -> str:
    """What the HTML site makes of it (kb.render's converter, then the sanitiser)."""
    import markdown

    return sanitise_html(markdown.markdown(markdown_text, extensions=["tables", "fenced_code", "toc", "attr_list",
                                                                      "sane_lists"]))


def test_the_oracle_sees_what_it_must():
    assert active_content('<a href="JaVa&#115;cript:alert(1)">x</a>')
    assert active_content('<p title="x" onmouseover="alert(1)">x</p>')
    assert active_content('<img src="data:image/svg+xml,x">')
    assert active_content('<svg><script>alert(1)</script></svg>')
    assert not active_content('<a href="../method/pca.html#x">x</a> <a href="https://a.b/?c=1&amp;d=2">y</a>')


# -- finding 1: stored script in the rendered handbook ----------------------------------------------
# Each way in that the review found, as a record field value (YAML single-quoted) or BibTeX.
VECTORS = {
    "javascript-link": "See [the docs](javascript:alert(1)) for more.",
    "javascript-link-cased-entities": "See [docs](JaVa&#x53;cript&colon;alert(1)).",
    "javascript-link-tab": "See [docs](java\tscript:alert(1)).",
    "data-image": "![chart](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "data-link": "[click](data:text/html,<script>alert(1)</script>)",
    "reference-definition": "A [reference link][evil].\n\n[evil]: javascript:alert(1)",
    "attr-list-block": "A paragraph.\n{: onmouseover=\"alert(1)\" }",
    "attr-list-inline": "*hover me*{onmouseover=alert(1)} please",
    "escaped-backtick-svg": "Not code: \\`<svg onload=alert(1)>\\` at all.",
    "code-span-across-blank-line": "Start `code\n\n<svg onload=alert(1)>` end.",
    "code-span-across-heading": "Start `code\n# <img src=x onerror=alert(1)>` end.",
    "raw-svg": "<svg onload=alert(1)>",
    "raw-script": "<script>alert(1)</script>",
    "autolink-javascript": "<javascript:alert(1)> and <javascript://%0aalert(1)>",
}


def _hostile_tree(dest: Path, text: str) -> Path:
    """The minimal fixture with ``text`` as the body of concept:gradient (from line 9 of its file)."""
    shutil.copytree(MINIMAL, dest, ignore=shutil.ignore_patterns(".kb"))
    concept = dest / "content" / "concept" / "gradient.yaml"
    concept.write_text(concept.read_text() + "body: |\n  " + text.replace("\n", "\n  ") + "\n")
    return dest


@pytest.fixture(scope="module")
def minimal_site():
    return site_from_compiled(compile_content(Layout(MINIMAL)))


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_validate_rejects_hostile_text_with_file_and_line(tmp_path, name):
    root = _hostile_tree(tmp_path / "kb", VECTORS[name])
    report = compile_content(Layout(root)).report
    found = [p for p in report.errors if p.code in ("unsafe-url", "unsafe-html")]
    assert found, (name, report.errors)
    for p in found:
        assert p.file == "content/concept/gradient.yaml" and p.line and p.line >= 9, p
        assert p.ref == "concept:gradient"


@pytest.mark.parametrize("name", sorted(VECTORS))
@pytest.mark.parametrize("inline", [False, True], ids=["block", "inline"])
def test_hostile_prose_renders_inert(minimal_site, name, inline):
    for fmt in ("markdown", "html"):
        r = Renderer(minimal_site, fmt)
        text = str(r.prose("concept/gradient", VECTORS[name], inline=inline))
        assert active_content(mkdocs_html(text)) == [], (fmt, text, mkdocs_html(text))
        assert active_content(site_html(text)) == [], (fmt, text)


def test_code_stays_code_and_text_reads_as_written(minimal_site):
    r = Renderer(minimal_site, "html")
    out = site_html(str(r.prose("x", "Use `x < 0 && y` and AT&T {braces} and [a link](https://example.org/?a=1&b=2).")))
    assert "<code>x &lt; 0 &amp;&amp; y</code>" in out
    assert "AT&amp;T {braces}" in html.unescape(out.replace("&amp;", "&amp;amp;")) or "AT&amp;T" in out
    assert 'href="https://example.org/?a=1&amp;b=2"' in out


def test_multiline_code_values_cannot_leave_their_code_span(tmp_path):
    """`api:`, `install:` and `check:` values are shown as code spans, newlines and all."""
    root = tmp_path / "kb"
    shutil.copytree(MINIMAL, root, ignore=shutil.ignore_patterns(".kb"))
    tool = root / "content" / "tool" / "captum.yaml"
    tool.write_text(tool.read_text()
                    .replace("install: pip install captum", "install: |\n  pip install captum\n\n  <svg onload=alert(1)>")
                    .replace("api: captum.attr.IntegratedGradients",
                             "api: |\n      IG`\n\n      <img src=x onerror=alert(2)>"))
    site = site_from_compiled(compile_content(Layout(root)))
    for fmt in ("markdown", "html"):
        out = tmp_path / fmt
        render_site(site, out, fmt)
        for page in sorted(out.rglob(f"*.{'md' if fmt == 'markdown' else 'html'}")):
            text = page.read_text()
            shown = mkdocs_html(text) if fmt == "markdown" else text
            assert active_content(shown, layout=fmt == "html") == [], (page, active_content(shown, fmt == "html"))


def test_bibtex_url_is_refused_and_never_linked(tmp_path):
    root = tmp_path / "kb"
    shutil.copytree(MINIMAL, root, ignore=shutil.ignore_patterns(".kb"))
    bib = next((root / "bib").glob("*.bib"))
    bib.write_text(bib.read_text() + "\n@article{evil2020x,\n  title = {T},\n  author = {Doe, Jane},\n"
                   "  journal = {J},\n  year = {2020},\n  url = {javascript:alert(1)}\n}\n")
    compiled = compile_content(Layout(root))
    errors = [p for p in compiled.report.errors if p.code == "unsafe-url"]
    assert errors and errors[0].file.endswith(".bib") and errors[0].line
    paper = next(p for p in compiled.papers if p.id == "evil2020x")
    assert paper.link is None  # the API's "link" never carries it
    site = site_from_compiled(compiled)
    for fmt in ("markdown", "html"):
        out = tmp_path / fmt
        render_site(site, out, fmt)
        page = (out / "docs" / "paper" / "evil2020x.md") if fmt == "markdown" else out / "paper" / "evil2020x.html"
        text = page.read_text()
        assert active_content(mkdocs_html(text) if fmt == "markdown" else text, layout=fmt == "html") == []


@pytest.mark.parametrize("name", ["raw-svg", "javascript-link", "attr-list-inline", "escaped-backtick-svg"])
def test_summaries_on_the_glossary_and_foundations_are_inert(tmp_path, name):
    root = tmp_path / "kb"
    shutil.copytree(MINIMAL, root, ignore=shutil.ignore_patterns(".kb"))
    concept = root / "content" / "concept" / "gradient.yaml"
    quoted = VECTORS[name].replace("'", "''")
    concept.write_text(concept.read_text().replace(
        "definition: The vector of partial derivatives of a scalar function with respect to each input.",
        f"definition: '{quoted}'"))
    site = site_from_compiled(compile_content(Layout(root)))
    for fmt in ("markdown", "html"):
        out = tmp_path / fmt
        render_site(site, out, fmt)
        for stem in ("glossary", "foundations", "concept/gradient"):
            page = out / "docs" / f"{stem}.md" if fmt == "markdown" else out / f"{stem}.html"
            text = page.read_text()
            shown = mkdocs_html(text) if fmt == "markdown" else text
            assert active_content(shown, layout=fmt == "html") == [], (stem, fmt)


def test_html_pages_carry_a_content_security_policy(tmp_path, minimal_site):
    render_site(minimal_site, tmp_path / "site", "html")
    page = (tmp_path / "site" / "index.html").read_text()
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert m, "no CSP"
    policy = dict((d.split()[0], d.split()[1:]) for d in m.group(1).split(";") if d.strip())
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert active_content(page, layout=True) == []


# -- hostile Markdown and URLs, generated: no active content in any rendered page ------------------
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_SCHEME_SPELLINGS = st.sampled_from([
    "javascript:", "JaVaScRiPt:", "java\tscript:", "java\nscript:", " \x01javascript:", "&#106;avascript:",
    "&#x6A;avascript&#58;", "javascript&colon;", "jav&#x09;ascript:", "vbscript:", "data:text/html,", "data:",
    "javascript://%0a", "https:", "mailto:", "",
])
_PAYLOAD = st.sampled_from(["alert(1)", "alert`1`", "x", "/x", "<script>alert(1)</script>", "#y"])
URLS = st.builds(lambda s, p: s + p, _SCHEME_SPELLINGS, _PAYLOAD)


def _link(url, kind):
    return {"inline": f"[t]({url})", "image": f"![a]({url})", "angle": f"[t]( <{url}> \"title\")",
            "reference": f"[t][r]\n\n[r]: {url}", "reference-next-line": f"[t][r]\n\n[r]:\n  {url}",
            "autolink": f"<{url}>", "raw-a": f"<a href=\"{url}\">t</a>", "raw-iframe": f"<iframe src='{url}'>",
            "nested": f"[[t]]({url})", "brackets": f"[t] ({url})"}[kind]


LINKS = st.builds(_link, URLS, st.sampled_from(["inline", "image", "angle", "reference", "reference-next-line",
                                                "autolink", "raw-a", "raw-iframe", "nested", "brackets"]))
FRAGMENTS = st.sampled_from([
    "`", "``", "\\`", "\\\\`", "```", "~~~", "\n", "\n\n", "\n# ", "\n- ", "\n> ", "\n    ", " | ", "\\", "{:",
    "{", "}", " onmouseover=\"alert(1)\"", "onload=alert(1)", "}", "<svg onload=alert(1)>",
    "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "<", ">", "*em*", "[[method:integrated-gradients]]",
    "[@sundararajan2017axiomatic]", "&", "&lt;", "&#60;svg onload=alert(1)&#62;", "text", " ", "]", "(", ")",
    "<details open ontoggle=alert(1)>", "<math><mi xlink:href='javascript:alert(1)'>x</mi></math>",
])
HOSTILE_MARKDOWN = st.lists(LINKS | FRAGMENTS, min_size=1, max_size=14).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=HOSTILE_MARKDOWN, inline=st.booleans())
def test_generated_hostile_markdown_renders_inert(minimal_site, text, inline):
    r = Renderer(minimal_site, "markdown")
    out = str(r.prose("concept/gradient", text, inline=inline))
    assert active_content(mkdocs_html(out)) == [], (text, out)
    assert active_content(site_html(out)) == [], (text, out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=URLS)
def test_generated_urls_in_url_fields_are_never_links(minimal_site, url):
    from kb.render import _code_span, _href

    href = str(_href(url))
    assert active_content(mkdocs_html(f"[x]({href})")) == [] and active_content(site_html(f"[x]({href})")) == []
    shown = mkdocs_html("- " + str(_code_span(url + "\n\n" + url)))
    assert active_content(shown) == [], shown


@settings(max_examples=300, deadline=None)
@given(text=HOSTILE_MARKDOWN)
def test_validation_flags_what_raw_markdown_would_run(text):
    """What Python-Markdown would turn into active content, left unescaped, validation reports."""
    from kb.safety import find_hazards

    if active_content(mkdocs_html(text)):
        assert find_hazards(text), text
