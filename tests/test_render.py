"""kb render: pages for every record, generated guides/glossary/tables, escaping, determinism, MkDocs, links, search."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb.build import compile_content
from kb.cli import cli
from kb.config import Layout
from kb import KnowledgeBase
from kb.handbook import selection_table, tool_matrix
from kb.linkcheck import check_rendered
from kb.render import md_escape, reference_signature, render_site

HERE = Path(__file__).parent
REPO = HERE.parent
MINIMAL = HERE / "fixtures" / "minimal"
XSS = '<script>alert("owned")</script>'

TUTORIAL = """\
id: ig-walkthrough
name: Integrated gradients, step by step
summary: Attribute a toy CNN's prediction with integrated gradients and check completeness.
level: beginner
methods: [integrated-gradients]
architectures: [cnn]
demo: cnn-shapes
steps:
  - text: |
      We explain one prediction of a small CNN with [[method:integrated-gradients]] [@sundararajan2017axiomatic].
  - code: |
      import torch
      from kb.reference import integrated_gradients
      x = torch.zeros(1, 3)
  - text: The attributions add up to the change in the output, $\\sum_i a_i = f(x) - f(x')$, and $$\\mathrm{IG}_i(x) = (x_i - x'_i) \\int_0^1 \\frac{\\partial f}{\\partial x_i} d\\alpha$$ costs \\$5.
expect:
  - check: "True"
    says: completeness holds
"""

RESNET = """\
id: resnet
name: Residual network
summary: A CNN with skip connections.
level: intermediate
family: convolutional
parent: cnn
considerations: [Skip connections.]
common_findings: [Blocks refine features.]
recommended_methods:
  - method: saliency-maps
    why: Cheap.
"""


def make_tree(dest: Path) -> Path:
    """The minimal fixture plus a tutorial, an architecture with a parent, and hostile text in a record."""
    shutil.copytree(MINIMAL, dest, ignore=shutil.ignore_patterns(".kb"))
    (dest / "content" / "tutorial").mkdir(exist_ok=True)
    (dest / "content" / "tutorial" / "ig-walkthrough.yaml").write_text(TUTORIAL)
    (dest / "content" / "architecture" / "resnet.yaml").write_text(RESNET)
    bib = dest / "bib" / "papers.bib"  # a venue with "\&", whose space TeX keeps
    bib.write_text(bib.read_text().replace("{ICLR Workshop}", "{Harvard Journal of Law \\& Technology}"))
    tool = dest / "content" / "tool" / "captum.yaml"
    tool.write_text(tool.read_text().replace("gotchas: [Attributions depend on the baselines you pass.]",
                                             f"gotchas: ['Attributions depend on baselines {XSS}']")
                    + "body: 'Careful with <img src=x onerror=alert(1)> and `x < 0` in code.'\n")
    return dest


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = make_tree(tmp_path_factory.mktemp("render") / "kb")
    # the hostile record is refused by validation (unsafe-html), and still rendered harmless
    errors = compile_content(Layout(root)).report.errors
    assert {(p.code, p.file) for p in errors} == {("unsafe-html", "content/tool/captum.yaml")}, errors
    return root


@pytest.fixture(scope="module")
def site(tree):
    site, errors = KnowledgeBase(tree).preview()  # the hostile record is an error: a preview build
    assert errors
    return site


@pytest.fixture(scope="module")
def rendered(tree, site, tmp_path_factory) -> dict[str, Path]:
    out = {}
    for fmt in ("markdown", "html"):
        folder = tmp_path_factory.mktemp(f"out-{fmt}")
        render_site(site, folder, fmt)
        out[fmt] = folder
    return out


def pages(folder: Path, fmt: str) -> Path:
    return folder / "docs" if fmt == "markdown" else folder


# -- every record has a page ------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_every_record_has_a_page(rendered, site, fmt):
    ext = ".md" if fmt == "markdown" else ".html"
    base = pages(rendered[fmt], fmt)
    for ref in site.records:
        kind, ident = ref.split(":")
        assert (base / kind / f"{ident}{ext}").is_file(), ref
    for section in ("index", "glossary", "techniques", "tool-comparison", "bibliography", "reading-lists", "tutorials"):
        assert (base / f"{section}{ext}").is_file()


def test_record_page_shows_fields_links_papers_and_diagram(rendered):
    text = (rendered["markdown"] / "docs" / "method" / "integrated-gradients.md").read_text()
    for needed in ("**When to use**", "**Pitfalls**", "**Cost:** Level: medium", "## Papers", "**Links in**",
                   "[Captum](../tool/captum.md)", "```mermaid", "flowchart LR",
                   "(../bibliography.md#sundararajan2017axiomatic)", "https://arxiv.org/abs/1703.01365"):
        assert needed in text, needed
    # the [[concept:gradient]] link in the body became a link to the page
    assert "[Gradient](../concept/gradient.md)" in text
    # the HTML site draws the neighbourhood as SVG (its viewBox survives the sanitiser, so it scales),
    # the Mermaid source folded away beneath it
    page = (rendered["html"] / "method" / "integrated-gradients.html").read_text()
    assert re.search(r'<div class="diagram"><svg [^>]*viewBox="0 0 900 \d+"', page)
    assert '<details class="source"><summary>Mermaid source' in page and "flowchart LR" in page


def test_method_page_shows_reference_signature_read_with_ast(rendered):
    text = (rendered["markdown"] / "docs" / "method" / "integrated-gradients.md").read_text()
    assert "def integrated_gradients(model" in text
    sig = reference_signature("kb.reference.attribution:integrated_gradients")
    assert sig["signature"].startswith("def integrated_gradients(model") and sig["doc"]
    assert reference_signature("kb.reference.attribution:no_such_function") is None


# -- generated pages -------------------------------------------------------------------------------
def test_glossary_sorted_a_to_z_with_every_concept(rendered, site):
    text = (rendered["markdown"] / "docs" / "glossary.md").read_text()
    terms = re.findall(r"^- \*\*\[?(.+?)(?:\]\(|\*\*)", text, re.M)
    assert terms == sorted(terms, key=str.casefold)
    for kind in ("concept", "method", "topic"):
        for rec in site.of_kind(kind):
            assert f"[{md_escape(rec['name'])}]({kind}/{rec['id']}.md)" in text
    assert "A score for each input feature" in text  # a concept's one-line definition
    assert "- **IG** — see [Integrated Gradients](method/integrated-gradients.md)" in text  # an abbreviation


def test_guide_steps_in_prerequisite_order(rendered, site):
    text = (rendered["markdown"] / "docs" / "path" / "beginner.md").read_text()
    steps = re.findall(r"^\d+\. \*\*\[.+?\]\(\.\./(\w+)/([\w-]+)\.md\)", text, re.M)
    order = [f"{k}:{i}" for k, i in steps]
    assert order == ["concept:gradient", "concept:attribution", "method:saliency-maps"]
    position = {ref: n for n, ref in enumerate(order)}
    for u, v, _ in site.edges("requires"):
        if u in position and v in position:
            assert position[v] < position[u], (u, v)
    assert "*(prerequisite)*" in text  # gradient was inserted, the path does not list it


def test_selection_table_computed_from_graph(rendered, site):
    t = selection_table(site)
    goal, cnn, resnet = "goal:explain-prediction", "architecture:cnn", "architecture:resnet"
    # the goal's recommended order, and resnet inherits cnn's methods through parent
    assert t["cells"][goal][cnn] == ["method:integrated-gradients", "method:saliency-maps"]
    assert t["cells"][goal][resnet] == ["method:integrated-gradients", "method:saliency-maps"]
    text = (rendered["markdown"] / "docs" / "techniques.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| [Explain a single prediction]"))
    assert row.count("[Integrated Gradients](method/integrated-gradients.md)") == 2


def test_tool_matrix_computed_from_graph(rendered, site):
    t = tool_matrix(site)
    assert t["tools"] == ["tool:captum"]
    assert t["cells"]["method:integrated-gradients"]["tool:captum"] == ["captum.attr.IntegratedGradients"]
    assert "method:saliency-maps" not in t["cells"]
    text = (rendered["markdown"] / "docs" / "tool-comparison.md").read_text()
    assert "| [Integrated Gradients](method/integrated-gradients.md) | `captum.attr.IntegratedGradients` |" in text


def test_reading_lists_and_bibliography(rendered):
    docs = rendered["markdown"] / "docs"
    bib = (docs / "bibliography.md").read_text()
    assert bib.count("{#sundararajan2017axiomatic}") == 1 and bib.count("{#simonyan2014deep}") == 1
    assert "## Attribution {#papers-method-attribution}" in bib
    lists = (docs / "reading-lists.md").read_text()
    assert "(paper/simonyan2014deep.md)" in lists


def test_index_has_the_seed_structure(rendered):
    text = (rendered["markdown"] / "docs" / "index.md").read_text()
    for heading in ("## Choose your path", "## What's inside", "### [1. Foundations]", "### [2. Methods]",
                    "### [3. Architectures]", "### [4. Tools & libraries]", "### [5. Case studies]",
                    "### [6. Tutorials]", "### [7. Advanced topics]", "### References", "## Quick navigation",
                    "### By goal", "### By architecture", "### By experience level"):
        assert heading in text, heading
    assert "[Beginner's guide](path/beginner.md)" in text
    assert "*The practitioner guide is not written yet.*" in text


def test_tutorial_page_and_notebook(rendered):
    page = (rendered["markdown"] / "docs" / "tutorial" / "ig-walkthrough.md").read_text()
    assert "from kb.reference import integrated_gradients" in page and "(ig-walkthrough.ipynb)" in page
    nb = json.loads((rendered["markdown"] / "docs" / "tutorial" / "ig-walkthrough.ipynb").read_text())
    assert nb["nbformat"] == 4 and nb["cells"][0]["id"] == "title"
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code" and c["id"].startswith("step-")]
    assert code and all("kb.reference" in c or "integrated_gradients" in c for c in code[:1])
    assert (rendered["html"] / "tutorial" / "ig-walkthrough.ipynb").is_file()
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))


def test_no_tutorials_renders_an_empty_section(tmp_path):
    root = tmp_path / "kb"
    shutil.copytree(MINIMAL, root)
    out = tmp_path / "out"
    render_site(KnowledgeBase(root).site(), out, "markdown")
    assert "*Nothing here yet.*" in (out / "docs" / "tutorials.md").read_text()
    assert check_rendered(out) == []


# -- safety and determinism ---------------------------------------------------------------------------
def test_record_header_and_venues_read_as_written(rendered):
    """Issue 14: no stray backslash in the header's ref (`case\\_study:...`), no lost space after "\\&"."""
    for fmt in ("markdown", "html"):
        base = pages(rendered[fmt], fmt)
        ext = ".md" if fmt == "markdown" else ".html"
        case = (base / "case_study" / f"ig-demo{ext}").read_text()
        assert "case_study:ig-demo" in case and "case\\_study" not in case
        assert "Law &amp; Technology" in (base / f"bibliography{ext}").read_text()
    assert "<code>case_study:ig-demo</code>" in (rendered["html"] / "case_study" / "ig-demo.html").read_text()


def _prose_outside_code(page: str, fmt: str) -> str:
    """A page's reading text: tags, code blocks and code spans removed (HTML) or fences and spans (Markdown)."""
    import html as html_lib

    if fmt == "html":
        page = re.sub(r"(?s)<(script|style|pre|code|title)\b.*?</\1>", " ", page)
        return html_lib.unescape(re.sub(r"<[^>]+>", " ", page))
    page = re.sub(r"(?ms)^(`{3,}|~{3,}).*?^\1[ \t]*$", " ", page)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"(`+).+?\1", " ", page)))


RAW_MATH = re.compile(r"\$\$?[^$\s][^$]*?\$")


def test_formulas_are_mathml_in_both_outputs(rendered):
    for fmt in ("markdown", "html"):
        ext = ".md" if fmt == "markdown" else ".html"
        page = (pages(rendered[fmt], fmt) / "tutorial" / f"ig-walkthrough{ext}").read_text()
        assert page.count("<math ") == 2 and 'display="block"' in page, page
        assert "<msub><mi>a</mi><mi>i</mi></msub>" in page.replace("<mrow>", "").replace("</mrow>", "")
        text = _prose_outside_code(page, fmt)
        assert not RAW_MATH.search(text), RAW_MATH.search(text)
        assert "costs $5" in text  # an escaped dollar is a dollar


# a 1x1 PNG: what `kb run` and `kb reproduce` write is a figure at figures/<kind>/<id>.png
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def test_method_and_case_study_pages_show_their_figures(site, tmp_path):
    figures = tmp_path / "figures"
    (figures / "method").mkdir(parents=True)
    (figures / "case_study").mkdir()
    (figures / "method" / "integrated-gradients.png").write_bytes(PNG)
    (figures / "method" / "integrated-gradients.json").write_text(json.dumps(
        {"method": "integrated-gradients", "reading": f"69% of the mass is on the shape {XSS}."}))
    (figures / "case_study" / "ig-demo.png").write_bytes(PNG)
    (figures / "case_study" / "ig-demo.json").write_text(json.dumps(
        {"claim": "Attributions add up.", "measured": {"gap": 0.001}, "headline": "gap", "passed": True}))
    (figures / "method" / "saliency-maps.json").write_text("{not json")  # no image: no figure, no error
    for fmt in ("markdown", "html"):
        out = tmp_path / fmt
        render_site(site, out, fmt, figures=figures)
        base, ext = pages(out, fmt), ".md" if fmt == "markdown" else ".html"
        method = (base / "method" / f"integrated-gradients{ext}").read_text()
        assert '<img src="../figures/method/integrated-gradients.png"' in method
        assert "69% of the mass is on the shape &lt;script&gt;" in method and XSS not in method
        assert "<code>kb run integrated-gradients</code>" in method
        case = (base / "case_study" / f"ig-demo{ext}").read_text()
        assert "Reproduced here" in case and "Claim: Attributions add up. Measured: gap = 0.001 (reproduced)" in case
        assert "<code>kb reproduce ig-demo</code>" in case
        assert (base / "figures" / "method" / "integrated-gradients.png").read_bytes() == PNG
        assert "<figure" not in (base / "method" / f"saliency-maps{ext}").read_text()
        assert check_rendered(out) == []
    # without figures nothing is shown, and a re-render removes the copies
    render_site(site, tmp_path / "html", "html")
    assert not (tmp_path / "html" / "figures").exists()
    assert "<figure" not in (tmp_path / "html" / "method" / "integrated-gradients.html").read_text()


def test_record_text_is_escaped_in_html(rendered):
    html = (rendered["html"] / "tool" / "captum.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<code>x &lt; 0</code>" in html  # code keeps its text
    assert "<script>alert" not in (rendered["html"] / "search-index.js").read_text()
    assert "<script>alert" not in (rendered["markdown"] / "docs" / "tool" / "captum.md").read_text()


def test_rendering_is_deterministic(site, tmp_path):
    for fmt in ("markdown", "html"):
        a, b = tmp_path / f"{fmt}-a", tmp_path / f"{fmt}-b"
        render_site(site, a, fmt)
        render_site(site, b, fmt)
        files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        for rel in files_a:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_pages_written_in_parallel_are_the_same_bytes(site, tmp_path, fmt):
    """Issue 14: pages may be written by several processes; what they write is what one process writes."""
    render_site(site, tmp_path / "one", fmt, workers=1)
    render_site(site, tmp_path / "three", fmt, workers=3)
    one, three = _tree_bytes(tmp_path / "one"), _tree_bytes(tmp_path / "three")
    assert len(one) > 20 and one == three


def test_render_workers_come_from_the_environment(site, tmp_path, monkeypatch):
    from kb.errors import KBError
    from kb.render.pages import workers_for as _workers

    monkeypatch.setenv("KB_RENDER_WORKERS", "2")
    assert _workers(None, 1000) == 2 and _workers(None, 1) == 1 and _workers(4, 10) == 4
    monkeypatch.setenv("KB_RENDER_WORKERS", "many")
    with pytest.raises(KBError, match="KB_RENDER_WORKERS must be a whole number"):
        render_site(site, tmp_path / "x", "html")
    monkeypatch.delenv("KB_RENDER_WORKERS")
    assert _workers(None, 10) == 1  # a small handbook: one process


def test_rerender_replaces_the_previous_output(site, tmp_path):
    out = tmp_path / "out"
    render_site(site, out, "html")
    (out / "method" / "stale.html").write_text("old")
    (out / "notes.txt").write_text("mine")
    render_site(site, out, "html")
    assert not (out / "method" / "stale.html").exists() and (out / "notes.txt").read_text() == "mine"


def test_render_refuses_a_folder_it_did_not_write(site, tmp_path):
    from kb.errors import KBError

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "precious.md").write_text("keep me")
    with pytest.raises(KBError, match="not empty"):
        render_site(site, tmp_path, "markdown")
    assert (tmp_path / "docs" / "precious.md").read_text() == "keep me"


def test_mkdocs_build_strict_passes(rendered, tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[test]')")
    proc = subprocess.run([str(mkdocs), "build", "--strict", "-q", "-f", str(rendered["markdown"] / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (tmp_path / "site" / "method" / "integrated-gradients.html").read_text()
    # issue 14: the Material theme and its search; the neighbourhood as a Mermaid diagram, not as code
    assert 'class="md-search"' in page and (tmp_path / "site" / "search" / "search_index.json").is_file()
    assert '<pre class="mermaid"><code>flowchart LR' in page and "language-mermaid" not in page
    assert "static/mkdocs.css" in page and (tmp_path / "site" / "static" / "mkdocs.css").is_file()
    tutorial = (tmp_path / "site" / "tutorial" / "ig-walkthrough.html").read_text()
    assert tutorial.count("<math ") == 2 and not RAW_MATH.search(_prose_outside_code(tutorial, "html"))


# -- link check ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_rendered_fixture_has_no_broken_links(rendered, fmt):
    assert check_rendered(rendered[fmt]) == []


def test_linkcheck_catches_planted_broken_links(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# Title\n\n## Part {#part}\n\nsee [b](sub/b.md#known)\n\n"
                                   "and [gone](missing.md)\n\n```\n[in code](nowhere.md)\n```\n"
                                   "and [bad anchor](sub/b.md#unknown) and [self](#part) and [x](https://e.org/#nope)\n")
    (tmp_path / "sub" / "b.md").write_text("# B\n\n## Known heading {#known}\n\n[back](../a.md#part) [up](../a.md#title)\n")
    (tmp_path / "c.html").write_text('<html><body>\n<h1 id="top">C</h1>\n<a href="a.md#part">ok</a>\n'
                                     '<a href="#top">ok</a>\n<a href="c.html#missing">broken</a>\n'
                                     '<script src="static/none.js"></script>\n</body></html>\n')
    found = sorted((Path(p.file).name, p.line, p.code) for p in check_rendered(tmp_path))
    assert found == [("a.md", 7, "broken-link"), ("a.md", 12, "broken-link"),
                     ("c.html", 5, "broken-link"), ("c.html", 6, "broken-link")]


def test_validate_rendered_reports_file_and_line(rendered, tree, tmp_path, runner):
    out = tmp_path / "copy"
    shutil.copytree(rendered["markdown"], out)
    glossary = out / "docs" / "glossary.md"
    lines = glossary.read_text().splitlines()
    lines.insert(3, "[planted](method/nope.md) and [anchor](index.md#no-such-anchor)")
    glossary.write_text("\n".join(lines) + "\n")
    result = runner.invoke(cli, ["--root", str(tree), "validate", "--rendered", str(out), "--format", "json"])
    assert result.exit_code == 1
    errors = [e for e in json.loads(result.output)["errors"] if e["code"] == "broken-link"]
    assert [(Path(e["file"]).name, e["line"]) for e in errors] == [("glossary.md", 4), ("glossary.md", 4)]
    assert "nope.md" in errors[0]["message"] and "#no-such-anchor" in errors[1]["message"]


def test_real_content_renders_without_broken_links(tmp_path):
    report = compile_content(Layout(REPO)).report
    if not report.ok:
        pytest.skip(f"the real content does not validate yet ({len(report.errors)} errors; run `kb validate`)")
    site = KnowledgeBase(REPO).site()
    for fmt in ("markdown", "html"):
        summary = render_site(site, tmp_path / fmt, fmt)
        assert summary["pages"] > 100
        assert check_rendered(tmp_path / fmt) == []
        # issue 14: every formula is MathML; no page's reading text keeps a raw $…$
        ext = ".md" if fmt == "markdown" else ".html"
        raw = {str(p.relative_to(tmp_path)): m.group(0)[:80] for p in (tmp_path / fmt).rglob("*" + ext)
               for m in [RAW_MATH.search(_prose_outside_code(p.read_text(encoding="utf-8"), fmt))] if m}
        assert raw == {}, raw
    assert "<math " in (tmp_path / "html" / "method" / "integrated-gradients.html").read_text()
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if mkdocs.exists():
        proc = subprocess.run([str(mkdocs), "build", "--strict", "-q", "-f", str(tmp_path / "markdown" / "mkdocs.yml"),
                               "-d", str(tmp_path / "mkdocs-site")], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
        assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the command line --------------------------------------------------------------------------------
def test_cli_render_reports_pages_and_link_check(tree, tmp_path, runner):
    out = tmp_path / "site"
    result = runner.invoke(cli, ["--root", str(tree), "render", "--out", str(out), "--format", "html", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert re.search(r"rendered \d+ pages \(html\)", result.output) and "link check: 0 broken link(s)" in result.output
    assert (out / "index.html").is_file() and (out / "static" / "search.js").is_file()


def test_render_imports_neither_torch_nor_kb_reference(tree, tmp_path):
    env = {**os.environ, "KB_ROOT": str(tree)}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "kb", "render", "--out", str(tmp_path / "o"),
                           "--format", "html"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mods = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in mods if m.split(".")[0] == "torch" or m.startswith("kb.reference")}


# -- the HTML site's search, in a real browser ------------------------------------------------------------
def test_html_search_box_finds_and_follows_a_record(rendered, chromium):
    tools = chromium.page
    index = (rendered["html"] / "index.html").resolve()
    tools.open(index.as_uri())
    tools.wait_for("!!document.getElementById('search-input')")
    # type into the search box as a user would: focus it and insert text (fires input events)
    tools.js("document.getElementById('search-input').focus()")
    tools.call("Input.insertText", text="integrated grad")
    first = tools.wait_for("(document.querySelector('#search-results a') || {}).href")
    assert first.endswith("/method/integrated-gradients.html")
    assert tools.js("document.getElementById('search-results').hidden") is False
    tools.js("document.querySelector('#search-results a').click()")
    tools.wait_for("location.href.endsWith('/method/integrated-gradients.html') && document.readyState === 'complete'")
    assert tools.js("document.querySelector('h1').textContent") == "Integrated Gradients"
