"""Tutorial records as Jupyter notebooks (``kb notebook``): title, introduction, steps, then the checks.

nbformat is part of the ``[reference]`` extra and is imported only when a notebook is made.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import KBError

__all__ = ["tutorial_notebook", "write_notebook", "notebook_markdown"]

INSTALL_HINT = "pip install 'interp-kb[reference]'"

# the grammar of kb.refs: [[kind:id]] or [[kind:id|label]], and [@key] or [@a; @b]
_LINK = re.compile(r"\[\[\s*([a-z_]+)\s*:\s*([^\]\s|]+)\s*(?:\|([^\]]*))?\]\]")
_CITE = re.compile(r"\[(@[^\]\s;,]+(?:\s*[;,]\s*@[^\]\s;,]+)*)\]")


def _nbformat():
    try:
        import nbformat
    except ImportError:
        raise KBError(f"kb notebook needs nbformat: {INSTALL_HINT}") from None
    return nbformat


def notebook_markdown(text: str) -> str:
    """Prose for a notebook: ``[[kind:id|label]]`` -> label, ``[[kind:id]]`` -> `` `kind:id` `` (what
    ``kb show`` takes), ``[@a; @b]`` -> ``(a; b)``.

    >>> notebook_markdown("Use [[method:grad-cam]] or [[method:lrp|LRP]] [@selvaraju2017gradcam; @bach2015pixel].")
    'Use `method:grad-cam` or LRP (selvaraju2017gradcam; bach2015pixel).'
    """
    text = _LINK.sub(lambda m: m.group(3).strip() if m.group(3) else f"`{m.group(1)}:{m.group(2)}`", text)
    return _CITE.sub(lambda m: "(" + "; ".join(k.strip().lstrip("@") for k in re.split(r"[;,]", m.group(1))) + ")", text)


def _checks_source(expect: list[dict]) -> str:
    lines = ["# What this tutorial must show: each check is asserted with its meaning as the message."]
    for exp in expect:
        lines.append(f"assert {exp['check'].strip()}, {exp['says'].strip()!r}")
    lines.append('print("all checks passed")')
    return "\n".join(lines)


def tutorial_notebook(record: dict):
    """An nbformat v4 ``NotebookNode`` for a tutorial record (a dict with the record's fields).

    Cells: a title (name, summary, level, demo model, methods), the body, one cell per step (text ->
    markdown, code -> code, verbatim), and a final code cell asserting every ``expect`` check with its
    ``says`` text as the assertion message.
    """
    nbf = _nbformat().v4
    facts = [f"Level: {record.get('level', 'intermediate')}"]
    if record.get("demo"):
        facts.append(f"demo model: `{record['demo']}`")
    if record.get("methods"):
        facts.append("methods: " + ", ".join(f"`method:{m}`" for m in record["methods"]))
    title = f"# {record['name']}\n\n{record['summary'].strip()}\n\n*{'; '.join(facts)}.*"
    cells = [nbf.new_markdown_cell(title, id="title")]
    if (record.get("body") or "").strip():
        cells.append(nbf.new_markdown_cell(notebook_markdown(record["body"].strip()), id="introduction"))
    for i, step in enumerate(record.get("steps") or [], start=1):
        if step.get("code") is not None:
            cells.append(nbf.new_code_cell(step["code"].rstrip("\n"), id=f"step-{i}"))
        else:
            cells.append(nbf.new_markdown_cell(notebook_markdown(step.get("text") or ""), id=f"step-{i}"))
    if record.get("expect"):
        cells.append(nbf.new_code_cell(_checks_source(record["expect"]), id="checks"))
    nb = nbf.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["kb"] = {"ref": f"tutorial:{record['id']}"}
    return nb


def write_notebook(kb, ref: str, out_dir: str | Path = ".") -> Path:
    """Write tutorial ``ref`` (``tutorial:id`` or a unique id) as ``out_dir/<id>.ipynb``; returns the path."""
    nbformat = _nbformat()
    ref = ref.strip()
    # a bare id names the tutorial even when a record of another kind shares it
    canonical = f"tutorial:{ref}" if ":" not in ref and "tutorial" in kb.reader.kinds_of(ref) else kb.resolve(ref)
    kind, ident = canonical.split(":", 1)
    if kind != "tutorial":
        tutorials = [r["id"] for r in kb.list("tutorial")]
        raise KBError(f"{canonical} is a {kind}, not a tutorial; tutorials are: {', '.join(tutorials) or 'none'}")
    nb = tutorial_notebook(kb.show(canonical))
    nbformat.validate(nb)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{ident}.ipynb"
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(path)
    return path
