"""Learning paths: the prerequisites of a target in an order where each step follows what it needs."""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

from .errors import KBError
from .vocab import AUDIENCES, level_rank

__all__ = ["PrerequisiteCycle", "prerequisite_order", "expand_curated", "curated_steps", "path_steps", "by_level",
           "learning_path"]


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


def by_level(level_of: Callable[[str], str | None]):
    """A sort key for refs: the easier level first (kb.vocab.LEVELS), then the ref.

    >>> sorted(["b", "a", "c"], key=by_level({"a": "advanced", "b": "beginner"}.get))
    ['b', 'c', 'a']
    """
    return lambda ref: (level_rank(level_of(ref)), ref)


def path_steps(requires: Mapping[str, Iterable[str]], nodes: list[tuple[str, bool]],
               notes: Mapping[str, str] | None = None) -> list[dict]:
    """``(node, curated)`` pairs as steps ``{"ref", "note", "curated", "needed_for"}``: ``note`` from
    ``notes`` (None for a step without one) and ``needed_for``, the later steps that require the step.

    >>> path_steps({"b": ["a"]}, [("a", False), ("b", True)], {"b": "the goal"})[0]
    {'ref': 'a', 'note': None, 'curated': False, 'needed_for': ['b']}
    """
    notes = notes or {}
    position = {node: i for i, (node, _) in enumerate(nodes)}
    needed_by: dict[str, set[str]] = {}
    for source, targets in requires.items():
        for target in targets:
            needed_by.setdefault(target, set()).add(source)
    return [{"ref": node, "note": notes.get(node), "curated": curated,
             "needed_for": sorted((u for u in needed_by.get(node, ()) if position.get(u, -1) > position[node]),
                                  key=position.get)}
            for node, curated in nodes]


def curated_steps(requires: Mapping[str, Iterable[str]], notes: Mapping[str, str], known: Iterable[str] = (),
                  sort_key=None) -> list[dict]:
    """A curated path (``{ref: note}`` in its order) with the prerequisites it skips inserted before the
    step that needs them, as :func:`path_steps`. Raises PrerequisiteCycle.

    >>> [(s["ref"], s["curated"]) for s in curated_steps({"c": ["b"]}, {"c": "the goal"})]
    [('b', False), ('c', True)]
    """
    return path_steps(requires, expand_curated(requires, list(notes), known, sort_key), notes)


def learning_path(requires: Mapping[str, Iterable[str]], record: Callable[[str], dict | None],
                  resolve: Callable[[str], str], to: str | None, know: Iterable[str] = (),
                  audience: str | None = None) -> dict:
    """``{"target", "audience", "known", "steps": [{"ref", "name", "level", "why", "summary", "paper"}]}``
    for ``kb path``: the prerequisites of ``to`` in order, or the curated path of ``audience``.

    ``requires`` maps a ref to the refs it requires; ``record(ref)`` gives a record's fields (or None);
    ``resolve(text)`` gives the ``kind:id`` a user's ref names (raising KBError when it names none).
    """
    meta: dict[str, dict] = {}

    def info(ref: str) -> dict:
        if ref not in meta:
            meta[ref] = record(ref) or {"name": ref, "kind": ref.split(":")[0]}
        return meta[ref]

    known = [resolve(k) for k in know if k.strip()]
    sort_key = by_level(lambda ref: info(ref).get("level"))
    if to:
        target = resolve(to)
        steps = path_steps(requires, [(n, n == target) for n in prerequisite_order(requires, target, known, sort_key)])
    else:
        if not audience:
            raise KBError(f"give a record to learn (to), or an audience ({', '.join(AUDIENCES)}) "
                          "for a curated path", param="to")
        path = record(f"path:{audience}")
        if path is None:
            raise KBError(f"no curated path for audience {audience!r}; audiences are {', '.join(AUDIENCES)}")
        target = f"path:{audience}"
        notes = {s["ref"] if ":" in s["ref"] else resolve(s["ref"]): s["note"] for s in path["steps"]}
        steps = curated_steps(requires, notes, known, sort_key)
    return {"target": target, "audience": audience, "known": known,
            "steps": [_step(s, info, record) for s in steps]}


def _step(step: dict, info: Callable[[str], dict], record: Callable[[str], dict | None]) -> dict:
    """A step of ``kb path``: the record's name and level, why it is there, and a paper to read."""
    node, rec = step["ref"], info(step["ref"])
    if step["note"] is not None:
        why = step["note"]
    elif step["curated"]:
        why = "your target"
    else:
        names = ", ".join(info(u).get("name", u) for u in step["needed_for"][:3])
        why = f"needed for {names}" if names else "background"
    paper_key = rec.get("introduced_by") or (rec.get("papers") or [None])[0]
    paper = record(f"paper:{paper_key}") if paper_key else None
    return {"ref": node, "name": rec.get("name", node), "level": rec.get("level"), "why": why,
            "summary": rec.get("summary") or rec.get("definition"),
            "paper": {"id": paper_key, "citation": paper.get("citation"), "link": paper.get("link")} if paper else None}
