"""The HTML site as people see it (issue 14), in headless Chromium: one page of every type of the real
handbook fits a 390 px phone without sideways scrolling and has a menu there, follows the system's dark
mode, prints without navigation, and passes axe-core with no serious or critical violation.

One browser and one render for the whole module (browser tests are the slowest of the suite).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from kb.build import compile_content
from kb.config import Layout
from kb import KnowledgeBase
from kb.render import SECTIONS, render_site

REPO = Path(__file__).resolve().parent.parent
PHONE = {"width": 390, "height": 844, "mobile": True}
DESKTOP = {"width": 1280, "height": 900}
# one record of each kind, chosen for what makes a page wide: long formulas, tables, code, diagrams
RECORDS = ["method/integrated-gradients", "architecture/transformer", "case_study/ioi-circuit-gpt2",
           "tool/captum", "concept/shapley-value", "topic/superposition", "goal/explain-prediction",
           "path/beginner", "tutorial/grad-cam-heatmaps", "paper/sundararajan2017axiomatic"]
SECTION_PAGES = [stem for stem, _ in SECTIONS]


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    site = KnowledgeBase(REPO).site()
    out = tmp_path_factory.mktemp("site")
    render_site(site, out, "html")
    return out


def _open(chromium, site_dir: Path, stem: str, viewport: dict) -> None:
    path = site_dir / f"{stem}.html"
    assert path.is_file(), stem
    chromium.page.open(path.resolve().as_uri(), **viewport)


@pytest.mark.parametrize("stem", RECORDS + SECTION_PAGES)
def test_no_sideways_scroll_on_a_phone(chromium, site_dir, stem):
    _open(chromium, site_dir, stem, PHONE)
    # with a mobile viewport, content wider than the screen widens the layout viewport itself (the
    # browser zooms out), so both numbers are checked against the phone's 390 px
    inner, scroll = chromium.page.js("[window.innerWidth, document.documentElement.scrollWidth]")
    assert (inner, scroll) == (390, 390), f"{stem}: viewport {inner} px, page {scroll} px wide"


def test_a_phone_gets_a_menu_and_a_desktop_the_sidebar(chromium, site_dir):
    page = chromium.page
    _open(chromium, site_dir, "method/integrated-gradients", PHONE)
    visible = "(s => { const e = document.querySelector(s); return !!e && e.checkVisibility(); })"
    assert page.js(f"{visible}('details.menu > summary')") and not page.js(f"{visible}('nav.side')")
    assert not page.js(f"{visible}('details.menu nav a')")  # closed until asked
    page.js("document.querySelector('details.menu > summary').click()")
    links = page.js("[...document.querySelectorAll('details.menu nav a')].filter(a => a.checkVisibility())"
                    ".map(a => a.textContent)")
    assert links[:3] == ["Home", "Glossary", "Foundations"] and len(links) == len(SECTIONS)
    assert page.js("document.documentElement.scrollWidth") == 390  # the open menu fits too
    _open(chromium, site_dir, "method/integrated-gradients", DESKTOP)
    assert page.js(f"{visible}('nav.side')") and not page.js(f"{visible}('details.menu')")


def test_dark_mode_follows_the_system_and_print_drops_navigation(chromium, site_dir):
    page = chromium.page
    background = "getComputedStyle(document.body).backgroundColor"
    try:
        for scheme, expected in (("light", "rgb(255, 255, 255)"), ("dark", "rgb(20, 24, 29)")):
            page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}])
            _open(chromium, site_dir, "method/integrated-gradients", DESKTOP)
            assert page.js(background) == expected, scheme
        page.call("Emulation.setEmulatedMedia", media="print",
                  features=[{"name": "prefers-color-scheme", "value": "dark"}])
        _open(chromium, site_dir, "method/integrated-gradients", DESKTOP)
        hidden = page.js("['header.top', 'nav.side', 'footer'].map(s => getComputedStyle(document.querySelector(s)).display)")
        assert hidden == ["none", "none", "none"] and page.js(background) == "rgb(255, 255, 255)"
        assert page.js("getComputedStyle(document.querySelector('main h1')).display") == "block"
    finally:
        page.call("Emulation.setEmulatedMedia", media="", features=[])


def _axe_source() -> str:
    axe = pytest.importorskip("selenium_axe_python", reason="axe-core comes with selenium-axe-python (the test extra)")
    return (Path(axe.__file__).parent / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


AXE_PAGES = RECORDS + ["index", "tool-comparison", "techniques", "bibliography"]
# on a phone the layout changes (menu, scrolling code, tables and formulas): the pages that have them
AXE_PHONE_PAGES = ["method/integrated-gradients", "concept/shapley-value", "tutorial/grad-cam-heatmaps",
                   "tool-comparison"]


def _axe(chromium, site_dir, pages, viewport, options="{resultTypes: ['violations']}") -> dict:
    source = _axe_source()
    page = chromium.page
    found = {}
    for stem in pages:
        _open(chromium, site_dir, stem, viewport)
        page.js(source + ";0")  # the page's CSP binds its own scripts, not the debugger's
        violations = page.js(
            f"axe.run(document, {options}).then(r => r.violations"
            ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
            ".map(v => v.impact + ' ' + v.id + ': ' + v.help + ' -- ' + v.nodes[0].html.slice(0, 120)))")
        if violations:
            found[f"{stem} @ {viewport['width']} px"] = violations
    return found


def test_axe_finds_no_serious_or_critical_violation(chromium, site_dir):
    """axe-core's full rule set on one page of each type (every record kind, the home page and the widest
    tables) at desktop width, and on the pages whose layout changes most at phone width."""
    found = _axe(chromium, site_dir, AXE_PAGES, DESKTOP)
    found.update(_axe(chromium, site_dir, AXE_PHONE_PAGES, PHONE))
    assert found == {}, found


def test_axe_finds_enough_contrast_in_dark_mode(chromium, site_dir):
    page = chromium.page
    try:
        page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
        found = _axe(chromium, site_dir, AXE_PAGES, DESKTOP, "{runOnly: ['color-contrast']}")
    finally:
        page.call("Emulation.setEmulatedMedia", media="", features=[])
    assert found == {}, found
