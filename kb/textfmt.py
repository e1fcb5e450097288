"""Plain-text and Markdown views of records and answers, for the terminal."""
from __future__ import annotations

import re
import textwrap

__all__ = ["record_text", "tutorial_steps_text"]

_SKIP = {"kind", "id", "name", "links_out", "links_in", "file", "body", "summary", "on_your_model"}
_TUTORIAL_APART = {"steps", "expect"}  # a tutorial's steps and checks are shown as sections of their own
# A step's own leading number or heading marks ("**2. Denoising.**", "## 1. Baselines"): replaced by ours.
_STEP_HEAD = re.compile(r"^(?:#{1,6}\s+)?(\*\*)?\s*(?:Step\s+)?\d+[.)]\s+")


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
    tutorial = d.get("kind") == "tutorial"
    for key, value in d.items():
        if key in _SKIP or value in (None, "", [], {}) or (tutorial and key in _TUTORIAL_APART):
            continue
        text = _value(value)
        if "\n" in str(value) and not isinstance(value, list):
            lines += [f"{key}:", *("  " + x for x in str(value).rstrip().splitlines())]
        else:
            lines.append(f"{key}: {text}")
    if d.get("body"):
        lines += ["", d["body"].rstrip()]
    own = d.get("on_your_model")
    if own:
        lines += ["", ("## " if markdown else "") + "On your own model", f"  {own['import']}", f"  {own['signature']}",
                  f"  {own['doc']}" if own.get("doc") else "", f"  ({own['note']})"]
    if tutorial and (d.get("steps") or d.get("expect")):
        lines += ["", tutorial_steps_text(d, markdown)]
    for label, key in (("links out", "links_out"), ("links in", "links_in")):
        if d.get(key):
            lines += ["", f"{label}:"] + [f"  {l['relation']:<15} {l['ref']}" for l in d[key]]
    return "\n".join(lines)


_HEADING = re.compile(r"^\s*(?:#{1,6}\s|\*\*|\d+[.)]\s)")


def _groups(steps: list[dict]) -> list[list[tuple[str, str]]]:
    """Cells grouped into steps: a step opens with a text cell that starts as a heading ("**2. ...**",
    "## ...") and holds the code and commentary after it; ``[(kind, text), ...]`` per step."""
    groups: list[list[tuple[str, str]]] = []
    for cell in steps or []:
        for kind in ("text", "code"):
            value = cell.get(kind)
            if not value or not str(value).strip():
                continue
            value = str(value).strip() if kind == "text" else str(value).rstrip()
            if not groups or (kind == "text" and _HEADING.match(value) and any(k == "code" for k, _ in groups[-1])):
                groups.append([])
            groups[-1].append((kind, value))
    return groups


def _plain(text: str, first: bool) -> str:
    """A step's Markdown read as terminal text: its own number and heading marks dropped, bold unwrapped."""
    if first:
        text = _STEP_HEAD.sub(lambda m: m.group(1) or "", text.strip(), count=1)
    return re.sub(r"^#{1,6}\s+", "", text.replace("**", ""), flags=re.M)


def tutorial_steps_text(d: dict, markdown: bool = False, width: int = 100) -> str:
    """A tutorial's steps as numbered text with their code, then what the run must show.

    >>> print(tutorial_steps_text({"id": "t", "steps": [{"text": "**1. Train.** A small model."},
    ...     {"code": "model = train()\\nprint(model)"}, {"text": "It fits."}],
    ...     "expect": [{"check": "ok", "says": "It trains."}]}))
    Steps (as a notebook: kb notebook t)
    <BLANKLINE>
     1. Train. A small model.
    <BLANKLINE>
            model = train()
            print(model)
    <BLANKLINE>
        It fits.
    <BLANKLINE>
    What a run must show
      - It trains.  (check: ok)
    """
    lines = [("## " if markdown else "") + f"Steps (as a notebook: kb notebook {d.get('id', '')})", ""]
    for n, cells in enumerate(_groups(d.get("steps") or []), 1):
        head = f"{n}. " if markdown else f"{n:>2}. "
        pad = " " * len(head)
        if cells[0][0] == "code":
            lines += [head + "(code)", ""]
        for i, (kind, value) in enumerate(cells):
            if kind == "code":
                if markdown:
                    lines += [pad + "```python", *((pad + x) if x.strip() else "" for x in value.splitlines()),
                              pad + "```", ""]
                else:
                    lines += [("    " + pad + x) if x.strip() else "" for x in value.splitlines()]
                    lines.append("")
                continue
            for j, para in enumerate(p for p in re.split(r"\n\s*\n", _plain(value, i == 0)) if p.strip()):
                para = " ".join(para.split())
                lead = head if i == 0 and j == 0 else pad
                if markdown:
                    lines.append(lead + para)
                else:
                    lines += textwrap.wrap(para, width, initial_indent=lead, subsequent_indent=pad,
                                           break_on_hyphens=False)
                lines.append("")
    if d.get("expect"):
        lines.append(("## " if markdown else "") + "What a run must show")
        if markdown:
            lines.append("")
        for exp in d["expect"]:
            says, check = " ".join(str(exp.get("says", "")).split()), " ".join(str(exp.get("check", "")).split())
            lines.append(f"- {says} (check: `{check}`)" if markdown else f"  - {says}  (check: {check})")
    return "\n".join(lines).rstrip()


def answer_text(ans: dict, markdown: bool = False) -> str:
    """A query answer for the terminal (or as Markdown)."""
    f = ans["facets"]
    shown = [f"{k}={f[k]}" for k in ("goal", "architecture", "modality", "access", "scope", "budget") if f.get(k)]
    lines = [("## " if markdown else "") + f"Methods for: {ans['question']}"]
    lines.append(("_" if markdown else "") + "read from your question: " + (", ".join(shown) or "nothing specific")
                 + ("_" if markdown else ""))
    if f.get("corrected"):
        lines.append("spelling: " + ", ".join(f"{a} -> {b}" for a, b in f["corrected"].items()))
    if ans.get("confidence"):
        lines.append(f"confidence: {ans['confidence']}")
    lines.append("")
    if ans.get("out_of_scope"):
        lines.append("This does not look like a question about interpreting or explaining a model.")
        lines.append("If it is, say what you want to know about the model; the closest needs are:")
        lines += [f"  - {g['name']}  ({g['ref']})" for g in ans.get("nearest_goals", [])]
        return "\n".join(lines).rstrip()
    if ans.get("choices"):
        lines.append("Your question could mean several things; these answers mix them. Ask again with --goal:")
        lines += [f"  - {c['name']}  (--goal {c['id']})" for c in ans["choices"]]
        lines.append("")
    if not ans["results"]:
        lines.append("no method fits; try other words or `kb search`")
    for i, r in enumerate(ans["results"], 1):
        head = f"{i}. {r['name']}  ({r['ref']}, score {r['score']:.2f})"
        lines.append(("### " + head) if markdown else head)
        bullet = "- " if markdown else "   "
        lines.append(f"{bullet}{r['summary']}")
        for why in r["reasons"][:4]:
            lines.append(f"{bullet}+ {why}")
        for c in r["caveats"][:3]:
            lines.append(f"{bullet}! {c}")
        if r.get("paper"):
            p = r["paper"]
            lines.append(f"{bullet}paper: {p.get('citation') or p['id']}" + (f" {p['link']}" if p.get("link") else ""))
        if r["tools"]:
            lines.append(f"{bullet}tools: " + ", ".join(f"{t['api']} ({t['tool']})" for t in r["tools"][:3]))
        if r.get("run"):
            lines.append(f"{bullet}run: {r['run']}   (reference: {r['reference']})")
        if r.get("score_parts"):
            lines.append(f"{bullet}score parts: " + ", ".join(f"{k} {v:+.2f}" for k, v in r["score_parts"].items()))
        lines.append("")
    if ans.get("related"):
        lines.append(("### " if markdown else "") + "See also (case studies, tutorials)")
        lines += [f"  - {x['name']}  ({x['ref']}): {x['why']}" for x in ans["related"]]
        lines.append("")
    if ans.get("explain"):
        e = ans["explain"]
        lines.append("how the question was read:")
        lines.append(f"  goals: " + ", ".join(f"{g['id']} {g['strength']}" for g in f.get("goals", [])))
        lines.append(f"  evidence: goal words {e['goal_evidence']}, method words {e['method_evidence']}, "
                     f"off-topic {e['off_topic']['id']} {e['off_topic']['score']}; fit {e['fit']}")
        lines.append(f"  about a model because of: {', '.join(e['subject_words']) or 'nothing'}")
        if e.get("in_scope") is not None:
            lines.append(f"  learned intent: in scope {e['in_scope']}; goals "
                         + ", ".join(f"{g['id']} {g['p']}" for g in e.get("learned_goals", [])))
        if e.get("clause_goals"):
            lines.append("  parts of the question: " + ", ".join(f"{g['id']} {g['score']}" for g in e["clause_goals"]))
        lines.append(f"  terms: {' '.join(e['terms'])}")
    return "\n".join(lines).rstrip()


def path_text(p: dict, markdown: bool = False) -> str:
    title = f"Learning path to {p['target']}" if not p.get("audience") else f"Curated learning path: {p['audience']}"
    lines = [("## " if markdown else "") + title, ""]
    for i, s in enumerate(p["steps"], 1):
        lines.append(f"{i:>2}. {s['name']}  ({s['ref']}) — {s['why']}")
        if s.get("paper"):
            lines.append(f"      read: {s['paper'].get('citation') or s['paper']['id']}")
    if p.get("known"):
        lines += ["", "skipped (known): " + ", ".join(p["known"])]
    return "\n".join(lines)
