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
from kb import KnowledgeBase
from kb.render import Renderer, render_site, sanitise_html

HERE = Path(__file__).parent
MINIMAL = HERE / "fixtures" / "minimal"

# -- an oracle for "active content", independent of kb.safety -------------------------------------
OUR_SCRIPTS = {"search-index.js", "static/search.js"}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "poster", "background", "cite", "data", "srcdoc"}
ACTIVE_TAGS = {"script", "iframe", "frame", "object", "embed", "applet", "base", "style", "template",
               "portal", "meta", "link", "form"}
# Formulas are MathML (issue 14): inside <math> only presentation elements with layout attributes may
# appear; anything else there (a link, a style, an HTML element smuggled into the math namespace) is active.
MATH_TAGS = {"math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac", "msqrt",
             "mroot", "mstyle", "mpadded", "mphantom", "menclose", "mover", "munder", "munderover", "mtable",
             "mtr", "mtd"}
MATH_ATTRS = {"xmlns", "display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "width",
              "height", "depth", "accent", "accentunder", "columnalign", "columnspacing", "rowspacing", "movablelimits",
              "minsize", "maxsize", "symmetric", "largeop", "form", "linethickness", "displaystyle", "scriptlevel",
              "notation", "columnlines", "rowlines", "frame"}


class _Active(HTMLParser):
    def __init__(self, layout: bool):
        super().__init__(convert_charrefs=True)
        self.layout = layout
        self.found: list[str] = []
        self.math = 0  # depth inside <math>

    def handle_starttag(self, tag, attrs):
        self._check(tag, attrs)
        if tag == "math" or self.math:
            self.math += 1

    def handle_startendtag(self, tag, attrs):
        self._check(tag, attrs)

    def handle_endtag(self, tag):
        if self.math:
            self.math -= 1

    def _check(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if (tag == "math" or self.math) and (tag not in MATH_TAGS or set(a) - MATH_ATTRS):
            self.found.append(f"<{tag} {' '.join(sorted(a))}> in math")
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
                or (tag == "form" and set(a) <= {"class", "role", "autocomplete"}))
            if not ours:
                self.found.append(f"<{tag}>")



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
    assert active_content('<math><mi href="https://a.b">x</mi></math>')
    assert active_content('<math><mtext><img src=x></mtext></math>')
    assert active_content('<math><mrow style="x">x</mrow></math>')
    assert not active_content('<math display="block"><mrow><msub><mi>x</mi><mi>i</mi></msub><mspace width="1em"/></mrow></math>')


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
def minimal_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("minimal") / "kb"
    shutil.copytree(MINIMAL, root, ignore=shutil.ignore_patterns(".kb"))
    return KnowledgeBase(root).preview()[0]


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


MATH_VECTORS = {
    "text-markup": r"$\text{<script>alert(1)</script>}$ and $$\text{<img src=x onerror=alert(1)>}$$",
    "href": r"$\href{javascript:alert(1)}{x}$",
    "style": r"$\style{background:url(javascript:alert(1))}{x}$ $\color{red}{x}$",
    "markdown-in-tex": r"$\text{[a](javascript:alert(1)) *b* {: onclick=x} <svg onload=alert(1)>}$",
    "broken-tex": r"$\frac{<svg onload=alert(1)>}{$",
}


@pytest.mark.parametrize("name", sorted(MATH_VECTORS))
@pytest.mark.parametrize("inline", [False, True], ids=["block", "inline"])
def test_formulas_become_inert_mathml(minimal_site, name, inline):
    """Issue 14: $…$ spans are MathML; latex2mathml copies \\text{} verbatim and turns \\href and \\style
    into attributes, so its output is rewritten from an allow-list, text as character references."""
    for fmt in ("markdown", "html"):
        text = str(Renderer(minimal_site, fmt).prose("concept/gradient", MATH_VECTORS[name], inline=inline))
        assert "$" not in re.sub(r"`[^`]*`", "", text), text
        for page in (mkdocs_html(text), site_html(text)):
            assert active_content(page) == [], (name, page)
            assert not re.search(r"\s(href|style|mathcolor|mathbackground)=", page), page
    shown = html.unescape(re.sub(r"<[^>]+>", "", site_html(str(Renderer(minimal_site, "html").prose(
        "x", MATH_VECTORS["text-markup"])))))
    if name == "text-markup":
        assert "<script>alert(1)</script>" in shown.replace("\xa0", " ")  # shown as the text it is


def test_multiline_code_values_cannot_leave_their_code_span(tmp_path):
    """`api:`, `install:` and `check:` values are shown as code spans, newlines and all."""
    root = tmp_path / "kb"
    shutil.copytree(MINIMAL, root, ignore=shutil.ignore_patterns(".kb"))
    tool = root / "content" / "tool" / "captum.yaml"
    tool.write_text(tool.read_text()
                    .replace("install: pip install captum", "install: |\n  pip install captum\n\n  <svg onload=alert(1)>")
                    .replace("api: captum.attr.IntegratedGradients",
                             "api: |\n      IG`\n\n      <img src=x onerror=alert(2)>"))
    site = KnowledgeBase(root).preview()[0]
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
    site = KnowledgeBase(root).preview()[0]
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
    site = KnowledgeBase(root).preview()[0]
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
    "[[method:integrated-gradients|x{: onclick=alert(1)}<svg onload=alert(1)>]]", "[[concept:nope|*a*{onclick=x}]]",
    "[@nokey2020x]", "[@sundararajan2017axiomatic; @x](javascript:alert(1))",
    "\n| a | b |\n|---|---|\n| ", " | c |\n", "\n1. ", "\n===\n", "\n---\n", "\n<div>", "\n***\n",
    # formulas become MathML (kb.mathml): TeX that latex2mathml would copy into markup or attributes
    "$", "$$", "\\$", "$x_i$", "$$\\frac{a}{b}$$", "$\\text{<svg onload=alert(1)>}$", "$\\href{javascript:alert(1)}{x}$",
    "$\\style{background:url(javascript:alert(1))}{x}$", "$\\mathrm{a\" onload=\"alert(1)}$", "$\\text{",
    "$\\color{red}{x}$", "$\\unknown{x}$", "$\\frac{a}{$",
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
    from kb.render.markup import href as _href, inline_code as _code_span

    href = str(_href(url))
    assert active_content(mkdocs_html(f"[x]({href})")) == [] and active_content(site_html(f"[x]({href})")) == []
    shown = mkdocs_html("- " + str(_code_span(url + "\n\n" + url)))
    assert active_content(shown) == [], shown


@settings(max_examples=300, deadline=None)
@given(text=HOSTILE_MARKDOWN)
def test_validation_flags_what_raw_markdown_would_run(text):
    """What Python-Markdown would turn into active content, left unescaped, validation reports."""
    from kb.safety import find_hazards

    try:
        raw = active_content(mkdocs_html(text))
    except Exception:  # noqa: BLE001 - Python-Markdown's HTML parser gives up on some raw text ("<![a")
        return
    if raw:
        assert find_hazards(text), text


# -- findings 2-4: every request bounded (counted work, never seconds) -------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from kb import KnowledgeBase

    root = tmp_path_factory.mktemp("bounded") / "kb"
    shutil.copytree(MINIMAL, root, ignore=shutil.ignore_patterns(".kb"))
    KnowledgeBase(root).build()
    return root


@pytest.fixture()
def kb(built):
    from kb import KnowledgeBase

    k = KnowledgeBase(built, auto_build=False)
    yield k
    k.close()


class Counter:
    """Wraps a module function and counts its calls and the size of what it was given."""

    def __init__(self, monkeypatch, module, name):
        self.calls, self.sizes = 0, []
        original = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls += 1
            self.sizes.append(len(str(args[1] if module.__name__ == "kb.search" else args[0])))
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


def _word(n: int, seed: int = 0) -> str:
    x, out = seed * 7919 + 12345, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        out.append(chr(97 + (x >> 16) % 26))
    return "".join(out)


def test_records_miss_on_an_impossible_id_runs_no_search(kb, monkeypatch):
    """Finding 2: a miss on input that cannot be an id (too long, not a slug) suggests nothing and searches nothing."""
    import kb.search as search_module
    from kb import KBError

    searches = Counter(monkeypatch, search_module, "search")
    for ref in ("method:" + _word(5000), "method:" + "-".join(_word(8, i) for i in range(555)), _word(2000),
                "concept:" + "A" * 121, "method:x" * 300):
        with pytest.raises(KBError) as err:
            kb.show(ref)
        assert "Did you mean" not in str(err.value) and len(str(err.value)) < 200
    with pytest.raises(KBError):
        kb.path("method:integrated-gradients", ",".join(_word(30, i) for i in range(64)) + "," + _word(2000))
    with pytest.raises(KBError):
        kb.graph_data(_word(200), 3)
    assert searches.calls == 1  # the one 30-letter slug in know (the first miss raises)
    with pytest.raises(KBError) as err:
        kb.show("method:integrated-gradient")  # a plausible id still gets its suggestion
    assert "Did you mean: method:integrated-gradients" in str(err.value)


@pytest.fixture(scope="module")
def client(built):
    from fastapi.testclient import TestClient

    from kb.server import create_app

    return TestClient(create_app(built))


@pytest.mark.parametrize("url", [
    "/records/method/" + "a" * 121, "/graph?around=method:" + "a" * 127, "/path?to=" + "a" * 134,
    "/path?to=method:pca&know=" + "a," * 1001, "/search?q=" + "a" * 501, "/query?q=" + "a" * 2001,
    "/query?q=x&goal=" + "a" * 121, "/query?q=x&architecture=" + "a" * 121, "/query?q=x&modality=" + "a" * 121,
])
def test_every_parameter_has_a_maximum_length(client, url):
    """Finding 2: the schema refuses over-long input before any work (422 with the parameter named)."""
    pytest.importorskip("fastapi")
    answer = client.get(url)
    assert answer.status_code == 422, (url, answer.status_code)
    assert answer.json()["code"] == "invalid-parameter"


def test_openapi_declares_every_string_parameter_bounded(client):
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for param in ops.get("get", {}).get("parameters", []):
            schema = param["schema"]
            options = schema.get("anyOf", [schema])
            for option in options:
                if option.get("type") == "string" and "enum" not in option and "const" not in option:
                    assert option.get("maxLength"), (path, param["name"])


def test_typo_correction_ignores_implausibly_long_words(monkeypatch):
    """Finding 3: the corrector never expands a word past MAX_CORRECTABLE letters (deletions grow with length²)."""
    import kb.text as text

    generated = Counter(monkeypatch, text, "deletes")
    assert text.correct(_word(2000), {}, {}) is None
    assert text.correct(_word(31), {}, {}) is None
    assert generated.calls == 0
    text.correct(_word(30), {}, {})
    assert generated.calls == 1


from hypothesis import assume  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 2000), min_size=1, max_size=6), seed=st.integers(0, 10_000))
def test_query_work_is_bounded_by_word_count_not_length(kb, monkeypatch, lengths, seed):
    """Finding 3: a question's typo correction expands at most MAX_CORRECTABLE-letter words, however long its words."""
    import kb.text as text

    question = " ".join(_word(n, seed + i) for i, n in enumerate(lengths))
    assume(len(question) <= 2000)
    kb.query("warm up the typo index")
    expanded = []
    original = text.deletes

    def counted(word, distance=2):
        expanded.append(len(word))
        return original(word, distance)

    monkeypatch.setattr(text, "deletes", counted)
    kb.query(question)
    assert all(n <= text.MAX_CORRECTABLE for n in expanded), max(expanded)
    monkeypatch.undo()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.text(max_size=500),
    st.lists(st.integers(1, 60), min_size=1, max_size=120).map(lambda ns: " ".join(_word(n, n * 31 + i) for i, n in enumerate(ns))[:500]),
    st.builds(lambda w, n: (w + " ") * n, st.sampled_from(["qzxwv", "NOT", "AND x", "a~2", "gradient"]), st.integers(1, 100)),
))
def test_search_work_is_bounded(kb, monkeypatch, text):
    """Finding 4: one search parses at most MAX_WORDS words, and retries at most MAX_FUZZY short ones as fuzzy terms."""
    import whoosh.qparser as qparser

    from kb.search import FUZZY_LENGTHS, MAX_FUZZY, MAX_WORDS

    parsed = []
    original = qparser.QueryParser.parse

    def counted(self, qtext, *args, **kwargs):
        parsed.append(qtext)
        return original(self, qtext, *args, **kwargs)

    monkeypatch.setattr(qparser.QueryParser, "parse", counted)
    kb.search(text[:500])
    monkeypatch.undo()
    assert len(parsed) <= 2
    assert len(parsed[0].split()) <= MAX_WORDS if parsed else True
    for fuzzy in parsed[1:]:
        terms = fuzzy.split()
        assert len(terms) <= MAX_FUZZY and all(len(t.split("~")[0]) <= FUZZY_LENGTHS[1] for t in terms)


def test_search_words_are_words_not_operators(kb):
    """Low: uppercase AND/OR/NOT/TO are words unless operators are asked for."""
    everything = kb.search("gradient OR attribution OR integrated", limit=200)
    assert kb.search("NOT xqzv", limit=200) == []
    assert len(kb.search("NOT xqzv", limit=200, operators=True)) >= 1
    assert kb.search("gradient AND xqzv") == kb.search("gradient and xqzv")
    assert everything


# -- findings 5-8: unreadable entries, read-only checkouts, stores readers still use, shared databases --
def _copy_minimal(dest: Path) -> Path:
    shutil.copytree(MINIMAL, dest, ignore=shutil.ignore_patterns(".kb"))
    return dest


def test_editor_lock_files_and_dangling_links_are_skipped_with_a_warning(tmp_path, runner):
    """Finding 5: Emacs' .#name.yaml (a link to nothing), backups and dangling links never give a traceback."""
    from kb.cli import cli

    root = _copy_minimal(tmp_path / "kb")
    (root / "content/method/.#activation.yaml").symlink_to("root@host.1234:1700000000")
    (root / "content/concept/gone.yaml").symlink_to(root / "nowhere.yaml")
    (root / "content/method/pca.yaml~").write_text("id: pca\n")
    (root / "bib/.#refs.bib").symlink_to("nowhere")
    for args in (["list"], ["build"], ["validate"], ["show", "concept:gradient"]):
        out = runner.invoke(cli, ["--root", str(root), *args])
        assert out.exit_code == 0, (args, out.output)
        assert "Traceback" not in out.output
    out = runner.invoke(cli, ["--root", str(root), "validate"])
    for name in ("content/method/.#activation.yaml", "content/concept/gone.yaml", "content/method/pca.yaml~",
                 "bib/.#refs.bib"):
        assert f"{name}: warning: [skipped-file]" in out.output, out.output


def test_read_only_checkout_answers_from_the_previous_build(tmp_path, runner):
    """Finding 6: a stale store that cannot be rebuilt (no write access) still answers, with a notice."""
    from kb.cli import cli

    root = _copy_minimal(tmp_path / "kb")
    assert runner.invoke(cli, ["--root", str(root), "build"]).exit_code == 0
    concept = root / "content/concept/gradient.yaml"
    concept.write_text(concept.read_text().replace("name: Gradient", "name: Gradient vector"))
    lock = root / ".kb" / "build.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()  # the lock cannot be opened for writing: what a read-only checkout does (tests run as root)
    for args in (["list"], ["show", "concept:gradient"], ["query", "explain a prediction"], ["search", "gradient"]):
        out = runner.invoke(cli, ["--root", str(root), *args])
        assert out.exit_code == 0, (args, out.output)
        assert "answering from the previous build" in out.output and "Traceback" not in out.output
    assert "Gradient vector" not in runner.invoke(cli, ["--root", str(root), "show", "concept:gradient"]).output


def test_a_full_disk_gives_one_line_and_leaves_no_temp_files(tmp_path, runner, monkeypatch):
    """Low: disk full while writing the store or the parse cache: one clear line, temp files removed."""
    import errno
    import os

    import sqlalchemy.exc

    import kb.build as build
    import kb.store as store
    from kb.cli import cli

    root = _copy_minimal(tmp_path / "kb")

    def full(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT INTO record ...", {}, Exception("database or disk is full"))

    monkeypatch.setattr(store, "write_store", full)
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp") and "parse-cache" in str(src):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(build.os, "replace", replace)
    out = runner.invoke(cli, ["--root", str(root), "build"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "database or disk is full" in out.output and len(out.output.strip().splitlines()) == 1, out.output
    assert not list((root / ".kb").glob("store-*")) and not list((root / ".kb").glob("*.tmp"))


def test_stores_that_readers_may_still_use_are_kept(tmp_path):
    """Finding 7: builds back to back within a second keep every store replaced less than READER_GRACE ago."""
    import time

    from kb.build import KEEP_STORES, READER_GRACE, _collect_old_stores

    store = tmp_path / ".kb"
    now = time.time()
    stamps = [now - 300, now - 200, now - 0.9, now - 0.5, now - 0.1]
    for t in stamps:
        (store / f"store-{int(t * 1e9)}-1").mkdir(parents=True)
    names = sorted(p.name for p in store.iterdir())
    layout = Layout(tmp_path)
    assert layout.store == store
    _collect_old_stores(layout, store / names[-1], now=now)
    left = sorted(p.name for p in store.iterdir())
    # the first store was replaced 200 s ago: gone; the second was replaced 0.9 s ago: a reader may hold it
    assert left == names[1:], left
    assert READER_GRACE >= 30 and KEEP_STORES >= 2


def test_server_threads_survive_builds_back_to_back(tmp_path):
    """Finding 7 under load: readers in threads never fail while three builds finish within a second or two."""
    import threading

    from kb import KnowledgeBase

    root = _copy_minimal(tmp_path / "kb")
    KnowledgeBase(root).build()
    failures, answers, stop = [], [0], threading.Event()

    def reader():
        k = KnowledgeBase(root, auto_build=False)
        while not stop.is_set():
            try:
                assert k.search("gradient") and k.show("concept:gradient") and k.query("explain a prediction")
                answers[0] += 1
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(repr(exc))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    builder = KnowledgeBase(root)
    concept = root / "content/concept/gradient.yaml"
    for n in range(4):
        concept.write_text(concept.read_text().replace("name: Gradient", f"name: Gradient{n}", 1)
                           .replace(f"name: Gradient{n - 1}", f"name: Gradient{n}", 1))
        builder.build(force=True)
    stop.set()
    for t in threads:
        t.join()
    assert answers[0] > 0 and failures == [], failures[:3]
    assert len(list((root / ".kb").glob("store-*"))) >= 4  # none collected within the grace period


def test_one_database_holds_one_knowledge_base(tmp_path, monkeypatch):
    """Finding 8: two knowledge bases sharing KB_DATABASE_URL: the one whose store was replaced refuses clearly."""
    from kb import KBError, KnowledgeBase

    monkeypatch.setenv("KB_DATABASE_URL", f"sqlite:///{tmp_path / 'shared.db'}")
    a = _copy_minimal(tmp_path / "a")
    b = _copy_minimal(tmp_path / "b")
    concept = b / "content/concept/gradient.yaml"
    concept.write_text(concept.read_text().replace("name: Gradient", "name: Gradient of B"))
    KnowledgeBase(a).build()
    assert KnowledgeBase(a).show("concept:gradient")["name"] == "Gradient"
    KnowledgeBase(b).build()
    with pytest.raises(KBError) as err:
        KnowledgeBase(a, auto_build=False).show("concept:gradient")
    assert str(b) in str(err.value) and "own database" in str(err.value)
    assert KnowledgeBase(b).show("concept:gradient")["name"] == "Gradient of B"


# -- finding 9 and the HTTP details: connections bounded, workers, SIGTERM, HEAD/OPTIONS, 503 -----------
def _start_server(root: Path, *args: str, env_extra: dict | None = None):
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**{k: v for k, v in os.environ.items() if k != "KB_DATABASE_URL"}, **(env_extra or {})}
    proc = subprocess.Popen([sys.executable, "-m", "kb", "--root", str(root), "serve", "--port", str(port), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, port
        except OSError:
            if proc.poll() is not None:
                pytest.fail(proc.stdout.read().decode())
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the server did not start")


def _stop(proc) -> float:
    import signal
    import time

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return time.monotonic() - started


def test_half_sent_requests_cannot_starve_the_server(built):
    """Finding 9: 200 connections that never finish their headers: /health answers, at most
    --max-connections stay open, and the header timeout closes the rest."""
    pytest.importorskip("uvicorn")
    import socket
    import time
    import urllib.request

    proc, port = _start_server(built, "--max-connections", "16", env_extra={"KB_SERVE_HEADER_TIMEOUT": "1.5"})
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never the blank line that ends the headers
            socks.append(s)
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200

        def still_open() -> int:
            n = 0
            for s in socks:
                s.settimeout(0.02)
                try:
                    n += s.recv(1) != b""
                except TimeoutError:
                    n += 1
                except OSError:
                    pass
            return n

        assert still_open() <= 16
        deadline = time.monotonic() + 10  # the 1.5 s header timeout, with room for a loaded machine
        while still_open() and time.monotonic() < deadline:
            time.sleep(0.25)
        assert still_open() == 0
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200
    finally:
        for s in socks:
            s.close()
        assert _stop(proc) < 8  # SIGTERM stops it within a few seconds


def test_serve_with_two_workers_answers_and_stops_on_sigterm(built):
    """Finding 9: `kb serve --workers 2` used to exit at once with status 3."""
    pytest.importorskip("uvicorn")
    import json
    import urllib.request

    proc, port = _start_server(built, "--workers", "2")
    try:
        answer = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/records/concept/gradient", timeout=10))
        assert answer["ref"] == "concept:gradient"
    finally:
        assert _stop(proc) < 10


def test_head_and_options_are_answered_without_cors(client):
    """Low: HEAD and OPTIONS gave 405."""
    head = client.head("/records/concept/gradient")
    assert head.status_code == 200 and head.content == b""
    options = client.options("/records/concept/gradient")
    assert options.status_code == 204 and "GET" in options.headers["allow"]
    assert not any(h.lower().startswith("access-control-") for h in options.headers)


def test_a_missing_store_is_503_without_paths(tmp_path):
    """Low: a server without a built store answered 400 with its absolute path."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from kb.server import create_app

    root = _copy_minimal(tmp_path / "never-built")
    answer = TestClient(create_app(root)).get("/health")
    assert answer.status_code == 503
    assert str(tmp_path) not in answer.text and answer.json()["code"] == "not-built"


def test_kb_root_slash_writes_nothing_there(runner, tmp_path, monkeypatch):
    """Low: KB_ROOT=/ used to create /.kb; a root without content/ is an error and nothing is written."""
    from kb.cli import cli

    monkeypatch.chdir(tmp_path)
    existed = Path("/.kb").exists()
    out = runner.invoke(cli, ["list"], env={"KB_ROOT": "/"})
    assert out.exit_code != 0 and "content/" in out.output and "Traceback" not in out.output
    assert Path("/.kb").exists() == existed


_LONG_OR_REPETITIVE = st.one_of(
    st.text(min_size=1, max_size=300),
    st.builds(lambda piece, n: piece * n, st.sampled_from(["a", "ab-", "x-y", "method:", "-", "grad", "é"]),
              st.integers(1, 2000)),
    st.integers(1, 5000).map(_word),
    st.lists(st.integers(1, 40), min_size=1, max_size=200).map(lambda ns: "-".join(_word(n, i) for i, n in enumerate(ns))),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_LONG_OR_REPETITIVE, endpoint=st.sampled_from(["show", "graph", "path-to", "path-know", "show-kind"]))
def test_lookups_do_bounded_work_on_long_and_repetitive_input(kb, monkeypatch, text, endpoint):
    """Findings 2 and 4: a record lookup runs at most one suggestion search, over at most MAX_ID characters."""
    import kb.search as search_module
    from kb import KBError
    from kb.refs import MAX_ID

    searches = Counter(monkeypatch, search_module, "search")
    call = {"show": lambda: kb.show(text), "show-kind": lambda: kb.show("concept:" + text),
            "graph": lambda: kb.graph_data(text, 3), "path-to": lambda: kb.path(text),
            "path-know": lambda: kb.path("method:integrated-gradients", [text, text + "x"])}[endpoint]
    try:
        call()
    except KBError as exc:
        assert len(str(exc)) < 400 + 4 * MAX_ID
    monkeypatch.undo()
    assert searches.calls <= 1 and all(n <= MAX_ID for n in searches.sizes), (searches.calls, searches.sizes)
