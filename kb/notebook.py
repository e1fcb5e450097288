"""Tutorial records as Jupyter notebooks (``kb notebook``, and the handbook's download links): title,
introduction, steps, then the checks.

Notebooks are written as nbformat v4 JSON with the standard library, so neither rendering nor
``kb notebook`` needs Jupyter packages; tests validate the output with nbformat.
"""
from __future__ import annotations

import json
from pathlib import Path

from .refs import CITATION_RE, LINK_RE, citation_keys

__all__ = ["tutorial_notebook", "notebook_json", "write_notebook", "notebook_markdown"]


def notebook_markdown(text: str) -> str:
    """Prose for a notebook: ``[[kind:id|label]]`` -> label, ``[[kind:id]]`` -> `` `kind:id` `` (what
    ``kb show`` takes), ``[@a; @b]`` -> ``(a; b)``.

    >>> notebook_markdown("Use [[method:grad-cam]] or [[method:lrp|LRP]] [@selvaraju2017gradcam; @bach2015pixel].")
    'Use `method:grad-cam` or LRP (selvaraju2017gradcam; bach2015pixel).'
    """
    text = LINK_RE.sub(lambda m: m.group(3).strip() if m.group(3) else f"`{m.group(1)}:{m.group(2)}`", text)
    return CITATION_RE.sub(lambda m: "(" + "; ".join(citation_keys(m)) + ")", text)


def _checks_source(expect: list[dict]) -> str:
    lines = ["# What this tutorial must show: each check is asserted with its meaning as the message."]
    for exp in expect:
        lines.append(f"assert {exp['check'].strip()}, {exp['says'].strip()!r}")
    lines.append('print("all checks passed")')
    return "\n".join(lines)


def _source(text: str) -> list[str]:
    lines = text.rstrip("\n").split("\n")
    return [line + "\n" for line in lines[:-1]] + lines[-1:]


def _markdown_cell(text: str, ident: str) -> dict:
    return {"cell_type": "markdown", "id": ident, "metadata": {}, "source": _source(text)}


def _code_cell(text: str, ident: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": ident, "metadata": {}, "outputs": [],
            "source": _source(text)}


def tutorial_notebook(record: dict) -> dict:
    """An nbformat v4 notebook (as a JSON-ready dict) for a tutorial record.

    Cells: a title (name, summary, level, demo model, methods), the body, one cell per step (text ->
    markdown, code -> code, verbatim), and a final code cell asserting every ``expect`` check with its
    ``says`` text as the assertion message.

    >>> nb = tutorial_notebook({"id": "t", "name": "T", "summary": "S.", "steps": [{"code": "x = 1"}],
    ...                         "expect": [{"check": "x == 1", "says": "x is one"}]})
    >>> [c["cell_type"] for c in nb["cells"]], nb["nbformat"]
    (['markdown', 'code', 'code'], 4)
    """
    facts = [f"Level: {record.get('level') or 'intermediate'}"]
    if record.get("demo"):
        facts.append(f"demo model: `{record['demo']}`")
    if record.get("methods"):
        facts.append("methods: " + ", ".join(f"`method:{m}`" for m in record["methods"]))
    title = f"# {record['name']}\n\n{record['summary'].strip()}\n\n*{'; '.join(facts)}.*"
    cells = [_markdown_cell(title, "title")]
    if (record.get("body") or "").strip():
        cells.append(_markdown_cell(notebook_markdown(record["body"].strip()), "introduction"))
    for i, step in enumerate(record.get("steps") or [], start=1):
        if step.get("code") is not None:
            cells.append(_code_cell(step["code"], f"step-{i}"))
        else:
            cells.append(_markdown_cell(notebook_markdown(step.get("text") or ""), f"step-{i}"))
    if record.get("expect"):
        cells.append(_code_cell(_checks_source(record["expect"]), "checks"))
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}, "kb": {"ref": f"tutorial:{record['id']}"}}}


def notebook_json(record: dict) -> str:
    """The notebook file's text: deterministic (sorted keys), so rendering twice gives the same bytes."""
    return json.dumps(tutorial_notebook(record), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_notebook(record: dict, out_dir: str | Path = ".") -> Path:
    """Write a tutorial record as ``out_dir/<id>.ipynb`` (atomically); returns the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{record['id']}.ipynb"
    tmp = path.with_suffix(".ipynb.tmp")
    tmp.write_text(notebook_json(record), encoding="utf-8")
    tmp.replace(path)
    return path
