"""Plain-text and Markdown views of records and answers, for the terminal."""
from __future__ import annotations

__all__ = ["record_text"]

_SKIP = {"kind", "id", "name", "links_out", "links_in", "file", "body", "summary"}


def _value(v) -> str:
    if isinstance(v, list):
        if not v:
            return ""
        return "\n" + "\n".join("  - " + (", ".join(f"{k}: {x}" for k, x in i.items()) if isinstance(i, dict) else str(i)) for i in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {x}" for k, x in v.items())
    return str(v)


def record_text(d: dict, markdown: bool = False) -> str:
    """A record as readable text (or Markdown): header, summary, fields, body, links."""
    h = "# " if markdown else ""
    lines = [f"{h}{d.get('name')}  ({d['kind']}:{d['id']})", ""]
    if d.get("summary"):
        lines += [d["summary"], ""]
    for key, value in d.items():
        if key in _SKIP or value in (None, "", [], {}):
            continue
        text = _value(value)
        if "\n" in str(value) and not isinstance(value, list):
            lines += [f"{key}:", *("  " + x for x in str(value).rstrip().splitlines())]
        else:
            lines.append(f"{key}: {text}")
    if d.get("body"):
        lines += ["", d["body"].rstrip()]
    for label, key in (("links out", "links_out"), ("links in", "links_in")):
        if d.get(key):
            lines += ["", f"{label}:"] + [f"  {l['relation']:<15} {l['ref']}" for l in d[key]]
    return "\n".join(lines)
