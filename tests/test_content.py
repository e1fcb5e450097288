"""The real content, record by record: coverage, integrity, reachability and no near-duplicates."""
from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import pytest

from kb.build import compile_content
from kb.config import Layout

REPO = Path(__file__).resolve().parent.parent

CANONICAL = {
    "method": """saliency-maps gradient-x-input smoothgrad integrated-gradients grad-cam occlusion lime shap lrp
        activation-maximization deepdream linear-probes causal-probing mutual-information pca tsne umap phate cka
        svcca rsa manifold-geometry fixed-point-analysis trajectory-analysis attractor-landscapes circuit-analysis
        sparse-autoencoders activation-patching attention-pattern-analysis logit-lens tcav deeplift guided-backprop
        attention-rollout tuned-lens network-dissection path-patching causal-tracing ablation steering-vectors
        influence-functions counterfactual-explanations""",
    "architecture": "feedforward resnet cnn rnn lstm gru transformer gan vae diffusion",
    "tool": "captum shap-library lime-library transformer-lens tensorboard-projector weight-trajectories",
    "goal": "explain-prediction learned-patterns compare-models find-features training-dynamics recurrent-computation",
    "path": "beginner practitioner researcher",
}
MINIMUM = {"method": 45, "architecture": 10, "case_study": 35, "tool": 10, "concept": 120, "topic": 10, "goal": 15,
           "path": 3, "paper": 160}


@pytest.fixture(scope="module")
def compiled():
    return compile_content(Layout(REPO))


def by_kind(compiled, kind):
    return [r for r in compiled.records if r.kind == kind]


def test_content_validates(compiled):
    assert compiled.report.ok, [p.format() for p in compiled.report.errors]
    # the only warnings allowed name methods whose reference implementation is still to be written
    assert {p.code for p in compiled.report.warnings} <= {"reference-missing"}


def test_counts_reach_the_handbook(compiled):
    counts = Counter(r.kind for r in compiled.records if r.kind != "paper")
    counts["paper"] = len(compiled.papers)
    for kind, least in MINIMUM.items():
        assert counts[kind] >= least, (kind, counts[kind])
    assert sum(1 for r in by_kind(compiled, "paper") if r.model.key) >= 30


@pytest.mark.parametrize("kind", sorted(CANONICAL))
def test_canonical_ids_exist(compiled, kind):
    ids = {r.id for r in by_kind(compiled, kind)}
    assert set(CANONICAL[kind].split()) <= ids, set(CANONICAL[kind].split()) - ids


def test_case_studies_cover_every_domain(compiled):
    domains = Counter(r.model.domain for r in by_kind(compiled, "case_study"))
    for d in ("computer-vision", "natural-language", "reinforcement-learning", "recurrent-networks",
              "board-games", "neuroscience"):
        assert domains[d] >= 3, domains


def test_every_record_is_reachable(compiled):
    """From the curated paths and goals, following links either way, every record is reached."""
    import networkx as nx

    G = compiled.graph.to_undirected(as_view=True)
    start = [n for n, d in compiled.graph.nodes(data=True) if d["kind"] in ("path", "goal")]
    reached = set().union(*(nx.node_connected_component(G, s) for s in start))
    unreached = {n for n in compiled.graph.nodes if n not in reached}
    assert not unreached, sorted(unreached)[:20]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _shingles(text: str, k: int = 3) -> set:
    words = _norm(text).split()
    return {tuple(words[i:i + k]) for i in range(max(len(words) - k + 1, 1))}


def test_no_two_records_are_near_duplicates(compiled):
    records = [r for r in compiled.records if r.kind != "paper"]
    names = Counter((r.kind, _norm(r.model.name)) for r in records)
    assert not [k for k, n in names.items() if n > 1]
    # a name or alias of one record must not be the name of another record of another kind
    owners: dict[str, set] = {}
    for r in records:
        owners.setdefault(_norm(r.model.name), set()).add(r.ref)
    clashes = {n: refs for n, refs in owners.items() if len(refs) > 1}
    assert not clashes, clashes
    texts = {r.ref: _shingles(f"{r.model.summary} {r.model.body}") for r in records}
    similar = []
    for a, b in itertools.combinations(records, 2):
        sa, sb = texts[a.ref], texts[b.ref]
        if len(sa) > 5 and len(sb) > 5:
            jaccard = len(sa & sb) / len(sa | sb)
            if jaccard > 0.5:
                similar.append((a.ref, b.ref, round(jaccard, 2)))
    assert not similar, similar


def test_methods_are_complete(compiled):
    for r in by_kind(compiled, "method"):
        m = r.model
        # a record that groups techniques with several originators credits none of them
        assert m.goals and m.introduced_by or r.id in ("ablation", "manifold-geometry", "sae-evaluation"), r.ref
        assert len(m.when_to_use) >= 1 and len(m.when_not_to_use) >= 1 and len(m.pitfalls) >= 2, r.ref
        assert len(m.body) > 300 and m.example.strip(), r.ref


def test_every_paper_has_a_stable_locator(compiled):
    for p in compiled.papers:
        assert p.doi or p.arxiv or (p.url and p.url.startswith("https://")), p.id
        assert p.authors and p.year and 1900 < p.year <= 2026, p.id
        if p.doi:
            assert re.fullmatch(r"10\.\d{4,9}/\S+", p.doi), (p.id, p.doi)
        if p.arxiv:
            assert re.fullmatch(r"\d{4}\.\d{4,5}(v\d+)?|[a-z\-]+(\.[A-Z]{2})?/\d{7}", p.arxiv), (p.id, p.arxiv)


def test_citekeys_follow_the_convention(compiled):
    """surname + year + first title word: a reader can guess a key and a writer cannot mint two for one paper."""
    for p in compiled.papers:
        assert re.fullmatch(r"[a-z]+\d{4}[a-z0-9]+", p.id), p.id
        assert str(p.year) in p.id, (p.id, p.year)


def test_concept_definitions_are_one_line(compiled):
    for r in by_kind(compiled, "concept"):
        assert "\n" not in r.model.definition and len(r.model.definition) < 400, r.ref


def test_no_paper_is_entered_twice(compiled):
    """The same DOI, arXiv id or title under two citekeys splits a paper's citations."""
    seen: dict[tuple, str] = {}
    for p in compiled.papers:
        for key in (("doi", (p.doi or "").lower()), ("arxiv", p.arxiv), ("title", _norm(p.title))):
            if key[1]:
                assert key not in seen, f"{p.id} and {seen[key]} are the same paper ({key[0]})"
                seen[key] = p.id
