"""Calibrate and report `kb query`'s confidence and out-of-scope verdicts.

Fits nothing automatically: it prints, for the question bank's tune split and a development set of
off-topic questions written for this purpose (below), how often each confidence level is right and
how many questions are flagged out of scope, so the thresholds in kb/query.py can be checked. The
hold-out sets (tests/query_holdout.yaml, tests/query_out_of_scope.yaml, tests/query_paraphrases.yaml)
are reported with --holdout and never used to choose thresholds.

    .venv/bin/python bench/calibrate_query.py [--holdout]
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb import KnowledgeBase  # noqa: E402

# Development set: not interpretability, sharing its words. Used to set the thresholds.
DEV_OFF_TOPIC = [
    "how can I make my transformer train faster on one GPU",
    "what learning rate should I use for Adam on ResNet-50",
    "my LSTM loss becomes NaN after a few epochs",
    "best way to deploy a PyTorch model as a REST API",
    "how do I fine-tune GPT-2 on my own text",
    "what is a good recipe for banana bread",
    "how do I probe the network latency between two servers",
    "kids have a short attention span, how can I help them focus",
    "how to explain a SQL query plan in Postgres",
    "which laptop should I buy for deep learning",
    "how do I increase the batch size without running out of memory",
    "convert a Keras model to TensorFlow Lite",
    "what is the capital of Australia",
    "how do I interpret my cholesterol blood test results",
    "book a cheap flight to Lisbon",
    "data augmentation tricks to improve my image classifier's accuracy",
    "how to feature flag a new release in production",
    "why does my gradient descent implementation in numpy diverge",
    "set up a Kubernetes cluster for model serving",
    "how many layers should my CNN have for CIFAR-10",
]


def run(kb, questions):
    return [kb.query(q, limit=3, explain=True) for q in questions]


def main(holdout: bool) -> None:
    kb = KnowledgeBase(ROOT)
    bank = yaml.safe_load((ROOT / "tests/query_bank.yaml").read_text())
    tune = [b for b in bank if b.get("split") == "tune"]
    answers = run(kb, [b["q"] for b in tune])
    by_level = Counter()
    hits = Counter()
    flagged = 0
    for b, a in zip(tune, answers):
        if a["out_of_scope"]:
            flagged += 1
            print("  in-scope flagged:", b["q"])
            continue
        hit = bool({r["id"] for r in a["results"][:3]} & set(b["expect"]))
        by_level[a["confidence"]] += 1
        hits[a["confidence"]] += hit
    print(f"tune split: {len(tune)} questions, {flagged} flagged out of scope ({flagged / len(tune):.1%})")
    for level in ("high", "medium", "low"):
        if by_level[level]:
            print(f"  {level:6s}: {by_level[level]:3d} answers, top-3 right {hits[level] / by_level[level]:.0%}")
    off = run(kb, DEV_OFF_TOPIC)
    caught = sum(a["out_of_scope"] for a in off)
    print(f"dev off-topic: {caught}/{len(off)} flagged")
    for q, a in zip(DEV_OFF_TOPIC, off):
        if not a["out_of_scope"]:
            print(f"  missed: {q!r} (goal evidence {a['explain']['goal_evidence']}, off {a['explain']['off_topic']})")
    if holdout:
        report_holdout(kb)


def report_holdout(kb) -> None:
    tests = ROOT / "tests"
    hold = yaml.safe_load((tests / "query_holdout.yaml").read_text())
    ans = run(kb, [h["q"] for h in hold])
    ok = sum(bool({r["id"] for r in a["results"][:3]} & set(h["expect"])) for h, a in zip(hold, ans))
    print(f"hold-out: top-3 {ok}/{len(hold)} = {ok / len(hold):.1%}")
    oos = yaml.safe_load((tests / "query_out_of_scope.yaml").read_text())
    flagged = sum(a["out_of_scope"] for a in run(kb, [o["q"] for o in oos]))
    print(f"out of scope: {flagged}/{len(oos)} flagged = {flagged / len(oos):.1%}")


if __name__ == "__main__":
    main("--holdout" in sys.argv)
