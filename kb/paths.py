"""Learning paths: the prerequisites of a target in an order where each step follows what it needs."""
from __future__ import annotations

from typing import Iterable, Mapping

from .vocab import AUDIENCES
from .errors import KBError

__all__ = ["PrerequisiteCycle", "prerequisite_order", "expand_curated", "learning_path"]

LEVEL_RANK = {"beginner": 0, "intermediate": 1, "advanced": 2, None: 1}


class PrerequisiteCycle(KBError):
    def __init__(self, cycle: list[str]):
        super().__init__("prerequisites form a cycle: " + " -> ".join(cycle))
        self.cycle = cycle


def prerequisite_order(requires: Mapping[str, Iterable[str]], target: str, known: Iterable[str] = (),
                       sort_key=None) -> list[str]:
    """The target's prerequisite closure, each node after everything it requires, target last.

    What the reader already ``known`` is dropped, and so is whatever only that knowledge needed:
    the walk does not descend below a known node. Raises PrerequisiteCycle naming a cycle.

    >>> req = {"sae": ["pca", "superposition"], "superposition": ["pca"], "pca": ["svd"], "svd": []}
    >>> prerequisite_order(req, "sae")
    ['svd', 'pca', 'superposition', 'sae']
    >>> prerequisite_order(req, "sae", known=["pca"])
    ['superposition', 'sae']
    """
    known = set(known)
    sort_key = sort_key or (lambda n: n)
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current walk, 2 = placed
    stack_path: list[str] = []

    def visit(node: str) -> None:
        # iterative would avoid recursion limits, but depth is bounded by the longest prerequisite
        # chain; we still guard it explicitly below
        if state.get(node) == 2 or node in known:
            return
        if state.get(node) == 1:
            start = stack_path.index(node)
            raise PrerequisiteCycle(stack_path[start:] + [node])
        state[node] = 1
        stack_path.append(node)
        for pre in sorted(set(requires.get(node, ())), key=sort_key):
            visit(pre)
        stack_path.pop()
        state[node] = 2
        order.append(node)

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        if target in known:
            return []
        visit(target)
    finally:
        sys.setrecursionlimit(limit)
    return order


def expand_curated(requires: Mapping[str, Iterable[str]], steps: list[str], known: Iterable[str] = (),
                   sort_key=None) -> list[tuple[str, bool]]:
    """A curated path with the prerequisites it skipped inserted before the step that needs them.

    Returns ``(node, curated)`` pairs; ``curated`` is False for inserted prerequisites.

    >>> expand_curated({"b": ["a"], "c": ["b"]}, ["c"])
    [('a', False), ('b', False), ('c', True)]
    """
    placed = set(known)
    out: list[tuple[str, bool]] = []
    curated = set(steps)
    for step in steps:
        for node in prerequisite_order(requires, step, placed, sort_key):
            if node not in placed:
                placed.add(node)
                out.append((node, node in curated))
    return out


def learning_path(kb, to: str | None, know: Iterable[str] = (), audience: str | None = None) -> dict:
    """``{"target", "audience", "steps": [{"ref", "name", "why", "paper"}]}`` for ``kb path``."""
    reader = kb.reader
    edges = kb.cached("requires", lambda r: r.edges("requires"))
    requires: dict[str, list[str]] = {}
    needed_by: dict[str, list[str]] = {}
    for source, target, _ in edges:
        requires.setdefault(source, []).append(target)
        needed_by.setdefault(target, []).append(source)
    known = [kb.resolve(k) for k in know if k.strip()]
    meta: dict[str, dict] = {}

    def info(ref: str) -> dict:
        if ref not in meta:
            meta[ref] = reader.record(ref) or {"name": ref, "kind": ref.split(":")[0]}
        return meta[ref]

    def sort_key(ref: str):
        return (LEVEL_RANK.get(info(ref).get("level"), 1), ref)

    if to:
        target = kb.resolve(to)
        nodes = [(n, n == target) for n in prerequisite_order(requires, target, known, sort_key)]
        notes = {}
    else:
        if not audience:
            raise KBError(f"give a record to learn (to), or an audience ({', '.join(AUDIENCES)}) "
                          "for a curated path", param="to")
        path = reader.record(f"path:{audience}")
        if path is None:
            raise KBError(f"no curated path for audience {audience!r}; audiences are {', '.join(AUDIENCES)}")
        target = f"path:{audience}"
        notes = {s["ref"] if ":" in s["ref"] else kb.resolve(s["ref"]): s["note"] for s in path["steps"]}
        nodes = expand_curated(requires, list(notes), known, sort_key)
    steps = []
    order = [n for n, _ in nodes]
    position = {n: i for i, n in enumerate(order)}
    for node, is_main in nodes:
        rec = info(node)
        if node in notes:
            why = notes[node]
        elif is_main:
            why = "your target"
        else:
            later = [u for u in needed_by.get(node, []) if u in position and position[u] > position[node]]
            names = ", ".join(info(u).get("name", u) for u in sorted(later, key=position.get)[:3])
            why = f"needed for {names}" if names else "background"
        paper_key = rec.get("introduced_by") or (rec.get("papers") or [None])[0]
        paper = reader.record(f"paper:{paper_key}") if paper_key else None
        steps.append({"ref": node, "name": rec.get("name", node), "level": rec.get("level"), "why": why,
                      "summary": rec.get("summary") or rec.get("definition"),
                      "paper": {"id": paper_key, "citation": paper.get("citation"), "link": paper.get("link")} if paper else None})
    return {"target": target, "audience": audience, "known": known, "steps": steps}
