"""Technique selection: facets from words, hard constraints, and the question bank on the real content."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kb import KBError, KnowledgeBase
from kb.cli import cli

REPO = Path(__file__).resolve().parent.parent
BANK = yaml.safe_load((Path(__file__).parent / "query_bank.yaml").read_text())

BLACK_BOX_METHOD = """id: occlusion
name: Occlusion
aliases: [sliding window occlusion]
summary: Hides patches of the input and records how much the output drops.
level: beginner
family: attribution
goals: [explain-prediction]
modalities: [image, tabular]
access: black-box
scope: local
cost: {level: medium, note: One forward pass per window position.}
when_to_use: [You can only call the model.]
when_not_to_use: [Inputs are huge and windows many.]
pitfalls: [Occluded inputs are off the training distribution.]
"""

BLACK_BOX_CONCEPT = """id: black-box
name: Black box
aliases: [API access, only API access, no gradients]
summary: A model you can only query.
level: beginner
area: interpretability
definition: A model whose internals you cannot see, only its outputs for chosen inputs.
implies: {access: black-box}
see_also: [method:occlusion]
"""


@pytest.fixture
def kb_bb(minimal):
    (minimal / "content/method/occlusion.yaml").write_text(BLACK_BOX_METHOD)
    (minimal / "content/concept/black-box.yaml").write_text(BLACK_BOX_CONCEPT)
    goal = minimal / "content/goal/explain-prediction.yaml"
    goal.write_text(goal.read_text().replace(
        "    why: Cheap first look.\n", "    why: Cheap first look.\n  - method: occlusion\n    why: Needs only outputs.\n"))
    return KnowledgeBase(minimal)


def test_vocabulary_comes_from_records(kb_bb):
    ans = kb_bb.query("why did my ConvNet predict this?")
    assert ans["facets"]["architecture"] == "cnn"
    assert ans["facets"]["goal"] == "explain-prediction"
    assert ans["results"][0]["id"] == "integrated-gradients"


def test_adding_an_alias_teaches_the_query(kb_bb, minimal):
    assert kb_bb.query("explain my Faltungsnetz prediction")["facets"]["architecture"] is None
    cnn = minimal / "content/architecture/cnn.yaml"
    cnn.write_text(cnn.read_text().replace("aliases: [CNN, ConvNet]", "aliases: [CNN, ConvNet, Faltungsnetz]"))
    assert KnowledgeBase(minimal).query("explain my Faltungsnetz prediction")["facets"]["architecture"] == "cnn"


def test_black_box_question_never_gets_a_gradient_method_first(kb_bb):
    ans = kb_bb.query("I only have API access, how do I explain one prediction?")
    assert ans["facets"]["access"] == "black-box"
    assert ans["results"][0]["id"] == "occlusion"
    for r in ans["results"][1:]:
        assert any("needs gradients access" in c for c in r["caveats"])


def test_flags_override_facets(kb_bb):
    ans = kb_bb.query("explain this prediction", access="black-box", architecture="cnn")
    assert ans["facets"]["access"] == "black-box" and ans["facets"]["detected_from"]["access"] == "given"
    assert ans["results"][0]["id"] == "occlusion"
    with pytest.raises(KBError, match="not one of"):
        kb_bb.query("explain", access="telepathy")


def test_typos_are_tolerated(kb_bb):
    ans = kb_bb.query("wich metod for explaning a convolutonal netwrok predicton")
    assert ans["facets"]["architecture"] == "cnn"
    assert ans["facets"]["corrected"]["convolutonal"] == "convolutional"
    assert ans["results"][0]["id"] in ("integrated-gradients", "saliency-maps", "occlusion")


def test_naming_a_method_ranks_it_first(kb_bb):
    assert kb_bb.query("how do I run occlusion on my CNN?")["results"][0]["id"] == "occlusion"


def test_results_carry_reasons_caveats_papers_tools_and_run(kb_bb):
    r = kb_bb.query("explain my CNN's prediction")["results"][0]
    assert r["reasons"] and r["caveats"]
    assert r["paper"]["id"] == "sundararajan2017axiomatic" and r["paper"]["link"].startswith("https://")
    assert r["tools"] == [{"tool": "captum", "api": "captum.attr.IntegratedGradients"}]
    assert r["run"] == "kb run integrated-gradients"


def test_query_json_contract(kb_bb, runner, minimal):
    out = runner.invoke(cli, ["--root", str(minimal), "query", "explain my CNN's prediction", "--format", "json"])
    data = json.loads(out.output)
    assert data["question"] == "explain my CNN's prediction"
    assert set(data["facets"]) >= {"goal", "architecture", "modality", "access", "scope", "budget"}
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)
    assert {"ref", "id", "name", "score", "reasons", "caveats"} <= set(data["results"][0])
    empty = runner.invoke(cli, ["--root", str(minimal), "query", "   "])
    assert empty.exit_code == 1 and "ask a question" in empty.output


# ---- the question bank, on the real content ----------------------------------------------------

def _evaluate(kb, items):
    hits, misses = 0, []
    for item in items:
        top = [r["id"] for r in kb.query(item["q"], limit=3)["results"]]
        ok = bool(set(top) & set(item["expect"])) and not (top and top[0] in item.get("forbid_top1", []))
        hits += ok
        if not ok:
            misses.append((item["q"], top, item["expect"]))
    return hits / len(items), misses


@pytest.fixture(scope="module")
def real_kb():
    kb = KnowledgeBase(REPO)
    if not kb.validate().ok:
        pytest.fail("the real content does not validate; run kb validate")
    return kb


def test_bank_is_well_formed():
    assert len(BANK) >= 80
    assert sum(1 for q in BANK if q["split"] == "holdout") == len(BANK) // 5


@pytest.mark.parametrize("split", ["tune", "holdout"])
def test_question_bank_top3(real_kb, split):
    share, misses = _evaluate(real_kb, [q for q in BANK if q["split"] == split])
    print(f"\n{split}: top-3 hit rate {share:.1%}; misses:")
    for q, top, expect in misses:
        print(f"  {q!r}: got {top}, expected one of {expect}")
    assert share >= 0.90, f"{split} top-3 hit rate {share:.1%} < 90%"
