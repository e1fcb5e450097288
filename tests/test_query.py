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
    # Floors a little under what is measured (tune 91.0%, holdout 87.3-89.1% on 277 questions; the 125 added in
    # this round cover the newest methods), so a regression shows. The target is 95%, not met yet.
    floor = {"tune": 0.88, "holdout": 0.85}[split]
    assert share >= floor, f"{split} top-3 hit rate {share:.1%} < {floor:.0%}"


# ---- knowing when it does not know ---------------------------------------------------------------

HOLDOUT = yaml.safe_load((Path(__file__).parent / "query_holdout.yaml").read_text())
OUT_OF_SCOPE = yaml.safe_load((Path(__file__).parent / "query_out_of_scope.yaml").read_text())
PARAPHRASES = yaml.safe_load((Path(__file__).parent / "query_paraphrases.yaml").read_text())


def test_a_question_about_something_else_is_out_of_scope(kb_bb):
    ans = kb_bb.query("how do I bake sourdough bread")
    assert ans["out_of_scope"] is True and ans["results"] == [] and ans["confidence"] == "low"
    assert ans["nearest_goals"][0]["ref"] == "goal:explain-prediction"
    assert kb_bb.query("asdfgh")["out_of_scope"] is True


def test_an_interpretability_question_is_in_scope_with_a_confidence(kb_bb):
    ans = kb_bb.query("why did my ConvNet predict this?")
    assert ans["out_of_scope"] is False and ans["confidence"] in ("high", "medium", "low")
    assert ans["results"]


def test_engineering_need_sharing_the_words_is_out_of_scope(kb_bb):
    ans = kb_bb.query("how do I speed up training of my CNN, it runs out of GPU memory", explain=True)
    assert ans["out_of_scope"] is True
    assert ans["explain"]["off_topic"]["id"] == "train-faster"


def test_real_words_are_not_corrected_into_others(kb_bb):
    facets = kb_bb.query("explain the chest x-ray prediction of my CNN, whether it is right")["facets"]
    assert "chest" not in facets.get("corrected", {}) and "whether" not in facets.get("corrected", {})
    assert kb_bb.query("explaning my convolutonal netwrok")["facets"]["corrected"]["convolutonal"] == "convolutional"


def test_overlong_words_are_left_alone(kb_bb):
    ans = kb_bb.query("explain " + "x" * 1900)  # not a misspelling of anything: no O(n^2) correction
    assert ans["facets"].get("corrected") is None


def test_explain_shows_score_parts(kb_bb):
    ans = kb_bb.query("why did my ConvNet predict this?", explain=True)
    r = ans["results"][0]
    assert r["score_parts"] and abs(sum(r["score_parts"].values()) - r["score"]) < 0.01
    assert ans["explain"]["goal_evidence"] > 0 and "subject_words" in ans["explain"]
    assert "score_parts" not in kb_bb.query("why did my ConvNet predict this?")["results"][0]


def test_named_method_stays_in_top3_unless_excluded(kb_bb):
    ans = kb_bb.query("I only have API access; can I use integrated gradients to explain a prediction?")
    ids = [r["id"] for r in ans["results"][:3]]
    assert ans["facets"]["access"] == "black-box"
    # excluded by the access constraint: not forced up, and its caveat says why
    ig = next(r for r in ans["results"] if r["id"] == "integrated-gradients")
    assert any("needs gradients access" in c for c in ig["caveats"])
    assert ids[0] == "occlusion"


def test_cli_query_explain_and_out_of_scope_text(runner, kb_bb, minimal):
    out = runner.invoke(cli, ["--root", str(minimal), "query", "how do I bake sourdough bread"])
    assert out.exit_code == 0 and "does not look like a question about interpreting" in out.output
    out = runner.invoke(cli, ["--root", str(minimal), "query", "why did my ConvNet predict this?", "--explain"])
    assert "score parts:" in out.output and "how the question was read" in out.output


def test_method_names_inside_a_question_set_no_facets(real_kb):
    facets = real_kb.query("which sparse autoencoder features fire in gpt2?")["facets"]
    assert facets["architecture"] != "vae" and facets["modality"] != "image"
    assert "sparse-autoencoders" in facets["mentioned"]


def test_tool_class_name_names_its_method(real_kb):
    ans = real_kb.query("LayerIntegratedGradients on my BERT model gives odd token scores")
    assert "integrated-gradients" in [r["id"] for r in ans["results"][:3]]


def test_in_scope_bank_questions_are_rarely_flagged(real_kb):
    flagged = [b["q"] for b in BANK if real_kb.query(b["q"], limit=3)["out_of_scope"]]
    assert len(flagged) <= 0.02 * len(BANK), flagged


def test_out_of_scope_set_is_mostly_flagged(real_kb):
    """Blind set of questions that share interpretability's words (tests/query_out_of_scope.yaml).
    The floor is the measured rate, so a regression shows; the issue's target (90%) is reported
    by bench/calibrate_query.py --holdout."""
    flagged = sum(real_kb.query(o["q"], limit=3)["out_of_scope"] for o in OUT_OF_SCOPE)
    print(f"\nout of scope flagged: {flagged}/{len(OUT_OF_SCOPE)}")
    assert flagged >= 0.88 * len(OUT_OF_SCOPE)  # measured 90.9% (2026-11-30; 85.5% trained without dev questions near it); target 90%


def test_the_in_scope_scorer_reaches_the_query_through_the_store(real_kb):
    from kb.intent import load_intent_model

    threshold = load_intent_model()["scope"]["threshold"]
    ans = real_kb.query("circuit training workout for beginners, 20 minutes", explain=True)
    assert ans["out_of_scope"] and ans["explain"]["in_scope"] < threshold  # names "circuit", a homonym
    ans = real_kb.query("which circuit in GPT-2 does indirect object identification", explain=True)
    assert not ans["out_of_scope"] and ans["explain"]["in_scope"] >= threshold


def test_blind_holdout_and_paraphrases(real_kb):
    share, misses = _evaluate(real_kb, HOLDOUT)
    same = total = 0
    for p in PARAPHRASES:
        goal = real_kb.query(p["original"], limit=3)["facets"]["goal"]
        for key in ("synonyms", "no_term", "typos"):
            total += 1
            same += real_kb.query(p[key], limit=3)["facets"]["goal"] == goal
    print(f"\nblind hold-out top-3 {share:.1%}; paraphrase top-1 goal kept {same / total:.1%}")
    for q, top, expect in misses:
        print(f"  {q!r}: got {top}, expected one of {expect}")
    # measured 2026-11-30: hold-out 95.4%, paraphrases 93.3% (targets: 95% and 90%); floors catch regressions
    assert share >= 0.92 and same / total >= 0.88


def test_show_says_how_to_call_the_reference_on_your_own_model(real_kb, runner):
    data = real_kb.show("method:grad-cam")
    own = data["on_your_model"]
    assert own["import"] == "from kb.reference import grad_cam" and "layer" in own["signature"]
    out = runner.invoke(cli, ["--root", str(REPO), "show", "method:integrated-gradients"])
    assert "On your own model" in out.output and "from kb.reference import integrated_gradients" in out.output


def test_a_vague_question_gets_goals_to_choose_from(real_kb):
    ans = real_kb.query("I want to understand my model")
    assert ans["confidence"] == "low" and len(ans["choices"]) >= 2
    assert all(c["ref"].startswith("goal:") for c in ans["choices"])


def test_a_two_part_question_keeps_both_goals(real_kb):
    ans = real_kb.query("explain this prediction of my CNN, and can I trust the explanation?", limit=3)
    top = {r["id"] for r in ans["results"]}
    goals = {g: set(real_kb.reader.meta(f"q:g:{g}")["recommended"]) for g in ("explain-prediction", "evaluate-explanations")}
    assert top & goals["explain-prediction"] and top & goals["evaluate-explanations"] - goals["explain-prediction"]


@pytest.mark.parametrize("question, facet, value", [
    ("how do I go about explaining my CNN prediction", "modality", "image"),     # "go" is not the game
    ("which edges in the circuit matter most for the IOI task", "modality", None),  # circuit edges, not graph data
    ("how to visualize what my BERT layers learned", "modality", None),        # visualising is not image data
    ("probing bert part of speech layers", "modality", "text"),                 # a part of speech is not audio
    ("what does the residual stream of my model encode", "architecture", None),  # not a ResNet
    ("what does gpt2 layer 9 mlp do", "architecture", "transformer"),          # the MLP is GPT-2's block
    ("Which MLP layers in a 7B Llama recall facts about people?", "architecture", "transformer"),
    ("shap values for my keras mlp classifier on tabular data", "architecture", "feedforward"),
    ("after a ROME edit how do I check it generalizes to paraphrased prompts", "architecture", None),  # not a GAN generator
    ("attention heatmap for my BERT sentiment model", "modality", "text"),      # a heatmap is not image data
    ("explain my GNN's prediction on graphs of molecules", "modality", "graph"),
])
def test_everyday_words_and_parts_do_not_misread_the_model(real_kb, question, facet, value):
    assert real_kb.query(question)["facets"][facet] == value


def test_the_sharded_model_ranks_as_scoring_everything(kb_bb, real_kb):
    """The query model split into rows (postings, candidates scored best bound first) answers exactly
    as the whole model did: every goal, method and case scored in full (kb.querymodel._whole_model)."""
    for kb_ in (kb_bb, real_kb):
        _same_as_the_whole_model(kb_)


def _same_as_the_whole_model(kb_bb):
    from kb import query as q
    from kb.querymodel import _whole_model, build_query_model, rows_of
    from kb.text import terms

    records = kb_bb.reader.records()
    whole, model = _whole_model(records), build_query_model(records)
    questions = ["explain my cnn prediction", "what has my transformer learned", "integrated gradients for text",
                 "which neurons matter, and can I trust the explanation?", "speed up training of my model",
                 "saliency heatmap for a resnet without gradients", "what is the capital of australia"]
    for question in questions:
        plan = q.plan_query(question, model)
        ranked = q.rank_methods(plan, model, 5)
        # the reference: every method scored from the whole model, as before the split
        avg = sum(sum(m["tf"].values()) for m in whole["methods"]) / len(whole["methods"])
        text = {m["id"]: q._bm25(plan.terms, m["tf"], whole["method_idf"], avg) for m in whole["methods"]}
        assert plan.method_evidence == max(text.values())
        everything = q.rank_methods(plan, model, len(whole["methods"]))
        assert [r["id"] for r in ranked] == [r["id"] for r in everything][:5]
        assert {r["id"] for r in everything} == {m["id"] for m in whole["methods"]}
        goal_avg = sum(sum(g["tf"].values()) for g in whole["goals"]) / len(whole["goals"])
        goal_terms = terms(question)
        for g in whole["goals"]:  # the goals' fits from postings equal those over each goal's words
            fit = q._bm25_postings(goal_terms, q._term_rows(model, set(goal_terms)), "g", "gi", goal_avg, 5)
            assert fit.get(g["id"], (0.0,))[0] == q._bm25(goal_terms, g["tf"], whole["goal_idf"], goal_avg)
        assert q._nearest_from_rows(goal_terms, model) == q._nearest_examples(goal_terms, whole["goals"],
                                                                            whole["example_idf"])
    assert rows_of(model).get("q:method-ids") == [m["id"] for m in whole["methods"]]


@pytest.mark.parametrize("question, method", [
    ("gradcam for yolo", "grad-cam"),                  # a name run together, in a terse search
    ("deep dream tutorial", "deepdream"),              # a two-word name no everyday sentence uses
    ("logitlens on llama", "logit-lens"),
])
def test_a_distinct_name_keeps_a_terse_question_in_scope(real_kb, question, method):
    ans = real_kb.query(question)
    assert not ans["out_of_scope"] and method in [r["id"] for r in ans["results"][:3]]


@pytest.mark.parametrize("score, flagged", [(0.1, True), (0.3, False), (0.9, False)])
def test_a_distinct_name_yields_only_to_a_scorer_sure_of_another_topic(score, flagged):
    from kb.query import DISTINCT_SURE_FRACTION, assess
    from kb.question import Plan

    plan = Plan("q")
    plan.mentioned, plan.in_scope = {"grad-cam": "grad cam"}, score
    threshold = 0.4  # below it the scorer says off topic; below DISTINCT_SURE_FRACTION of it, surely
    assert (score < DISTINCT_SURE_FRACTION * threshold) is flagged
    assert assess(plan, [], threshold)["out_of_scope"] is flagged


def test_what_a_question_contrasts_against_is_not_what_it_wants():
    from kb.question import _negated
    from kb.text import tokens

    toks = tokens("which features matter instead of removing them and retraining")
    assert toks.index("removing") in _negated(toks) and toks.index("features") not in _negated(toks)
    toks = tokens("saliency rather than attention weights")
    assert toks.index("attention") in _negated(toks) and toks.index("saliency") not in _negated(toks)


def test_the_learned_scorers_read_a_typo_as_its_correction_unless_they_learned_it():
    from kb.question import _read_for_scorers

    intent = {"scope": {"weights": {"w:weigth": 1.0}}, "goals": {"weights": {}}}
    corrected = {"pretraning": "pretraining", "weigth": "weight"}
    assert _read_for_scorers("Which pretraning docs? weigth", corrected, intent) == "which pretraining docs weigth"
    assert _read_for_scorers("Why, though?", {}, intent) == "Why, though?"


@pytest.mark.parametrize("question", [
    "how do I interpret my cnn",
    "explainable ai for images",
    "xai for images",
    "interpretability for time series forecasting models",
    "how can i interpret my lstm time series forecaster",
])
def test_a_question_in_the_fields_own_words_is_in_scope(real_kb, question):
    # all five were flagged out of scope before the generic development questions (dev/scope_generic.yaml)
    ans = real_kb.query(question)
    assert not ans["out_of_scope"] and ans["results"]
