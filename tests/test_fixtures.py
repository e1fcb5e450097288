"""Each broken fixture tree yields exactly the problem it was made for, at the right file and line."""
from __future__ import annotations

import json

import pytest

from kb import KnowledgeBase
from kb.cli import cli

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

# case -> (severity, code, file, line, message)
EXPECTED = {
    "yaml-syntax": ("error", "yaml-syntax", "content/concept/gradient.yaml", 6,
                    "did not find expected ',' or ']' (while parsing a flow sequence started on line 5)"),
    "yaml-tag": ("error", "yaml-tag", "content/concept/gradient.yaml", 5,
                 "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system' "
                 "(only plain YAML values are allowed)"),
    "yaml-duplicate-key": ("error", "yaml-duplicate-key", "content/concept/gradient.yaml", 6,
                           "key 'area' appears twice in one mapping (first on line 5)"),
    "not-a-mapping": ("error", "not-a-mapping", "content/concept/entropy.yaml", 1, "expected a mapping of fields, found list"),
    "wrong-type": ("error", "wrong-type", "content/method/saliency-maps.yaml", 10,
                   "field 'access': Input should be 'black-box', 'gradients', 'activations' or 'weights'"),
    "unknown-field": ("error", "unknown-field", "content/tool/captum.yaml", 8, "unknown field 'colour' for a tool record"),
    "missing-field": ("error", "missing-field", "content/concept/attribution.yaml", 1, "required field 'definition' is missing"),
    "bad-id": ("error", "bad-id", "content/concept/Gradient_Vector.yaml", 1,
               "file name 'Gradient_Vector' is not a valid id; rename the file to a slug"),
    "id-mismatch": ("error", "id-mismatch", "content/concept/gradient.yaml", 1,
                    "id 'gradients' differs from the file name 'gradient'; make them equal"),
    "duplicate-id": ("error", "duplicate-id", "content/concept/gradient.yml", 1,
                     "concept:gradient is also defined in content/concept/gradient.yaml"),
    "unknown-kind": ("error", "unknown-kind", "content/widget/thing.yaml", None,
                     "records live in content/<kind>/<id>.yaml with kind one of method, architecture, case_study, "
                     "tool, concept, topic, goal, path, tutorial, paper"),
    "bib-parse": ("error", "bib-parse", "bib/papers.bib", 10,
                  "entry does not parse: '@inproceedings{simonyan2014deep,'; check its braces, commas and quotes"),
    "bib-missing-locator": ("error", "bib-missing-locator", "bib/papers.bib", 10,
                            "entry 'simonyan2014deep' has no doi, eprint (arXiv id) or url; add one so readers can find it"),
    "bib-duplicate-key": ("error", "bib-duplicate-key", "bib/papers.bib", 10,
                          "citekey 'simonyan2014deep' is also defined in bib/more.bib:1"),
    "dangling-ref": ("error", "dangling-ref", "content/method/saliency-maps.yaml", 7,
                     "goals: no record goal:read-minds exists"),
    "wrong-kind-ref": ("error", "wrong-kind-ref", "content/architecture/cnn.yaml", 12,
                       "tools: field 'tools' takes tool ids, not method:saliency-maps"),
    "ambiguous-ref": ("error", "ambiguous-ref", "content/concept/attribution.yaml", 7,
                      "prerequisites: 'gradient' names records of several kinds; write it as kind:gradient"),
    "unknown-citekey": ("error", "unknown-citekey", "content/method/integrated-gradients.yaml", 30,
                        "body: citekey 'nobody2099nothing' is not in bib/*.bib"),
    "prerequisite-cycle": ("error", "prerequisite-cycle", "content/concept/attribution.yaml", 7,
                           "prerequisites form a cycle: concept:attribution -> concept:gradient -> concept:attribution"),
    "reference-unresolved": ("error", "reference-unresolved", "content/method/saliency-maps.yaml", 18,
                             "reference 'kb.reference.attribution:no_such_function': kb.reference.attribution has no "
                             "top-level function no_such_function"),
    "reference-outside": ("error", "wrong-type", "content/method/saliency-maps.yaml", 18,
                          "field 'reference': must look like kb.reference.<module>:<function> (only kb.reference is allowed)"),
    "reproduction-missing": ("error", "reproduction-missing", "content/case_study/ig-demo.yaml", 14,
                             "reproduction.test: no test file 'tests/test_nothing.py'"),
    "paper-note-without-entry": ("error", "paper-note-without-entry", "content/paper/nobody2020ghost.yaml", 1,
                                 "no BibTeX entry 'nobody2020ghost' in bib/*.bib for this note"),
    "bad-math": ("error", "bad-math", "content/concept/gradient.yaml", 10,
                 r"body: unknown TeX command \grad in $\grad f(x)$; the page would show it as text"),
    "orphan": ("warning", "orphan", "content/concept/entropy.yaml", 1, "nothing links to concept:entropy"),
    "uncited-paper": ("warning", "uncited-paper", "bib/extra.bib", 1, "no record cites 'shannon1948mathematical'"),
    "reference-missing": ("warning", "reference-missing", "content/method/saliency-maps.yaml", 18,
                          "reference: null — the reference implementation is still to be written"),
}


def test_every_broken_tree_has_an_expectation():
    assert {p.name for p in (FIXTURES / "broken").iterdir()} == set(EXPECTED)


def test_minimal_tree_is_clean():
    report = KnowledgeBase(FIXTURES / "minimal").validate()
    assert report.ok and not report.warnings, [p.format() for p in report.errors + report.warnings]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_broken_tree_reports_its_problem(case):
    severity, code, file, line, message = EXPECTED[case]
    report = KnowledgeBase(FIXTURES / "broken" / case).validate()
    found = report.errors if severity == "error" else report.warnings
    assert (code, file, line, message) in [(p.code, p.file, p.line, p.message) for p in found]
    # one mistake gives one message: nothing else goes wrong in a tree with a single defect
    others = [p for p in report.errors if (p.code, p.file, p.line) != (code, file, line)]
    assert all(p.code in ("dangling-ref",) and case == "bad-id" for p in others), [p.format() for p in others]
    assert report.ok == (severity == "warning")


@pytest.mark.parametrize("case", sorted(c for c, e in EXPECTED.items() if e[0] == "error"))
def test_cli_validate_fails_with_file_and_line(runner, case):
    severity, code, file, line, message = EXPECTED[case]
    root = str(FIXTURES / "broken" / case)
    text = runner.invoke(cli, ["--root", root, "validate"])
    assert text.exit_code == 1
    where = f"{file}:{line}" if line else file
    assert f"{where}: error: [{code}] {message}" in text.output
    github = runner.invoke(cli, ["--root", root, "validate", "--format", "github"])
    loc = f"file={file},line={line}" if line else f"file={file}"
    assert f"::error {loc}::[{code}] {message}" in github.output
    data = json.loads(runner.invoke(cli, ["--root", root, "validate", "--format", "json"]).output)
    assert data["ok"] is False
    assert {"file": file, "line": line, "code": code, "message": message}.items() <= next(
        e for e in data["errors"] if e["code"] == code).items()


def test_all_problems_of_a_run_are_reported_at_once(make_content):
    root = make_content({
        "content/concept/a.yaml": "id: a\nname: A\n",                      # missing fields
        "content/concept/b.yaml": "id: b\nname: [\n",                       # syntax
        "content/concept/c.yaml": "id: c\nname: C\nsummary: s\nlevel: beginner\narea: statistics\ndefinition: d\nbogus: 1\n",
        "bib/x.bib": "@article{k2020x,\n  title = {T},\n  author = {A, B},\n  year = {2020}\n}\n",
    })
    report = KnowledgeBase(root).validate()
    codes = sorted({p.code for p in report.errors})
    assert codes == ["bib-missing-locator", "missing-field", "unknown-field", "yaml-syntax"]
