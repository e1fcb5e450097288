"""Generate a synthetic but valid content tree of N records with realistic link density.

    python bench/synth.py OUT_DIR --records 10000 [--seed 0]

Shares per kind follow the real content (many concepts and papers, fewer methods); each method
links to goals, architectures, prerequisites, tools and papers, and cites in its prose, so the
graph has a similar number of edges per record (~8) as the handbook.
"""
from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

SHARES = {"concept": 0.34, "paper": 0.38, "method": 0.10, "case_study": 0.10, "topic": 0.03, "goal": 0.02,
          "architecture": 0.015, "tool": 0.015}
WORDS = ("gradient attribution neuron circuit feature probe saliency attention layer representation embedding "
         "manifold attractor trajectory sparse dictionary superposition causal intervention baseline "
         "concept activation pattern transformer recurrent convolution pixel token residual stream").split()


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(out: Path, records: int, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    shutil.rmtree(out, ignore_errors=True)
    counts = {k: max(3, int(records * s)) for k, s in SHARES.items()}
    ids = {k: [f"{k.replace('_', '-')}-{i:06d}" for i in range(n)] for k, n in counts.items()}
    papers = [p.replace("-", "") for p in ids["paper"]]
    for kind in counts:
        if kind != "paper":
            (out / "content" / kind).mkdir(parents=True, exist_ok=True)
    (out / "bib").mkdir(parents=True)
    with open(out / "bib" / "papers.bib", "w") as f:
        for i, key in enumerate(papers):
            f.write(f"@article{{{key},\n  title = {{{words(rng, 6).title()}}},\n  author = {{Doe, Jane and Roe, Rick}},\n"
                    f"  journal = {{Journal of Synthetic Results}},\n  year = {{{2000 + i % 25}}},\n"
                    f"  eprint = {{{2000 + i % 25 - 2000:02d}{(i % 12) + 1:02d}.{i % 100000:05d}}},\n  archivePrefix = {{arXiv}}\n}}\n\n")

    def pick(kind, k):
        return rng.sample(ids[kind], min(k, len(ids[kind])))

    def cite(k=2):
        return rng.sample(papers, k)

    def write(kind, ident, text):
        (out / "content" / kind / f"{ident}.yaml").write_text(text)

    def common(ident, kind):
        return (f"id: {ident}\nname: {words(rng, 2).title()} {ident[-6:]}\nsummary: {words(rng, 12)}.\n"
                f"level: {rng.choice(['beginner', 'intermediate', 'advanced'])}\npapers: [{', '.join(cite())}]\n")

    for i, c in enumerate(ids["concept"]):
        pre = [f"concept:{x}" for x in rng.sample(ids["concept"][:i], min(i, rng.randint(0, 2)))]
        write("concept", c, common(c, "concept") + f"area: {rng.choice(['statistics', 'linear-algebra', 'interpretability'])}\n"
              f"definition: {words(rng, 10)}.\nprerequisites: [{', '.join(pre)}]\n"
              f"body: |\n  {words(rng, 30)} [[concept:{rng.choice(ids['concept'])}]] [@{rng.choice(papers)}].\n")
    for m in ids["method"]:
        tools = "\n".join(f"  - tool: {t}\n    api: lib.{t.replace('-', '_')}.Thing" for t in pick("tool", 2))
        write("method", m, common(m, "method") + f"family: attribution\ngoals: [{', '.join(pick('goal', 2))}]\n"
              f"architectures: [{', '.join(pick('architecture', 2))}]\nmodalities: [image, text]\n"
              f"access: {rng.choice(['black-box', 'gradients', 'activations', 'weights'])}\nscope: local\n"
              f"cost: {{level: low, note: one backward pass}}\nwhen_to_use: [{words(rng, 8)}]\n"
              f"when_not_to_use: [{words(rng, 8)}]\npitfalls: [{words(rng, 8)}]\n"
              f"prerequisites: [{', '.join('concept:' + x for x in pick('concept', 2))}]\n"
              f"introduced_by: {rng.choice(papers)}\ntools:\n{tools}\nreference: kb.reference.attribution:saliency\n"
              f"body: |\n  {words(rng, 60)} [[method:{rng.choice(ids['method'])}]] [@{rng.choice(papers)}].\n")
    for a in ids["architecture"]:
        recs = "\n".join(f"  - method: {x}\n    why: {words(rng, 6)}" for x in pick("method", 4))
        write("architecture", a, common(a, "architecture") + f"family: feedforward\nconsiderations: [{words(rng, 8)}]\n"
              f"common_findings: [{words(rng, 8)}]\nrecommended_methods:\n{recs}\n")
    for g in ids["goal"]:
        recs = "\n".join(f"  - method: {x}\n    why: {words(rng, 6)}" for x in pick("method", 5))
        write("goal", g, common(g, "goal") + f"phrasings: [{words(rng, 6)}, {words(rng, 6)}]\nrecommended:\n{recs}\n")
    for t in ids["tool"]:
        impl = "\n".join(f"  - method: {x}\n    api: lib.Thing" for x in pick("method", 5))
        write("tool", t, common(t, "tool") + f"url: https://example.org/{t}\nframework: [pytorch]\ninstall: pip install {t}\n"
              f"implements:\n{impl}\nstrengths: [{words(rng, 5)}]\ngotchas: [{words(rng, 5)}]\nquick_start: import {t.replace('-', '_')}\n")
    for c in ids["case_study"]:
        write("case_study", c, common(c, "case_study") + f"domain: computer-vision\narchitectures: [{', '.join(pick('architecture', 1))}]\n"
              f"methods: [{', '.join(pick('method', 3))}]\nproblem: {words(rng, 10)}\napproach: {words(rng, 10)}\n"
              f"findings: [{words(rng, 10)}]\nrelevance: {words(rng, 10)}\n")
    for t in ids["topic"]:
        write("topic", t, common(t, "topic") + f"questions: [{words(rng, 8)}?]\n"
              f"prerequisites: [{', '.join('concept:' + x for x in pick('concept', 2))}]\n")
    (out / "content" / "path").mkdir(parents=True, exist_ok=True)
    for aud in ("beginner", "practitioner", "researcher"):
        steps = "\n".join(f"  - ref: method:{x}\n    note: {words(rng, 5)}" for x in pick("method", 8))
        write("path", aud, f"id: {aud}\nname: {aud.title()} path\nsummary: s.\nlevel: beginner\naudience: {aud}\nsteps:\n{steps}\n")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    counts = generate(Path(a.out), a.records, a.seed)
    print(f"wrote {sum(counts.values()) + 3} records to {a.out}: {counts}")


if __name__ == "__main__":
    main()
