"""The figures the handbook shows: ``figures/<kind>/<id>.png`` of methods (``kb run``) and case
studies (``kb reproduce``), each captioned from the JSON written beside it."""
from __future__ import annotations

import json
import posixpath
from pathlib import Path

from ..refs import is_slug
from .markup import relative

__all__ = ["FIGURE_KINDS", "FIGURE_TYPES", "find_figures", "figure_info", "figure_html"]

FIGURE_KINDS = ("method", "case_study")
FIGURE_TYPES = (".png", ".jpg", ".jpeg", ".webp")


def find_figures(folder: Path | None, refs) -> dict[str, Path]:
    """``{ref: image}`` for each record of ``refs`` with an image at ``folder/<kind>/<id>.<png|jpg|webp>``.

    The convention the figure makers follow: ``kb run METHOD --out figures/method`` writes
    ``figures/method/METHOD.png`` (its ``--format json`` answer, saved as ``METHOD.json`` beside it,
    becomes the caption); ``kb reproduce CASE`` writes ``figures/case_study/CASE.png`` likewise.
    """
    found: dict[str, Path] = {}
    if folder is None or not Path(folder).is_dir():
        return found
    for ref in refs:
        kind, ident = ref.split(":", 1)
        if kind not in FIGURE_KINDS or not is_slug(ident):
            continue
        for ext in FIGURE_TYPES:
            path = Path(folder) / kind / f"{ident}{ext}"
            if path.is_file() and not path.is_symlink():
                found[ref] = path
                break
    return found


def figure_info(path: Path) -> dict:
    """The JSON beside a figure, or {} when it is missing, too large or not a JSON object."""
    try:
        if not path.is_file() or path.stat().st_size > 256_000:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def figure_html(path: Path | None, name: str, page: str, ref: str) -> str:
    """The record's figure ``path`` (``figures/<kind>/<id>.png``, see :func:`find_figures`) as a captioned
    ``<figure>`` on page ``page``, or "" when it has none (``name``: the record's name). The caption comes from the JSON beside the image (what
    ``kb run --format json`` or ``kb reproduce --format json`` printed) and is escaped text."""
    from html import escape

    if path is None:
        return ""
    kind, ident = ref.split(":", 1)
    info = figure_info(path.with_suffix(".json"))
    if kind == "method":
        command, alt = f"kb run {ident}", f"{name} on its demo model"
        words = [str(info.get("reading") or "")]
    else:
        command, alt = f"kb reproduce {ident}", f"{name}: the finding reproduced at small scale"
        measured = info.get("measured") if isinstance(info.get("measured"), dict) else {}
        head = info.get("headline")
        words = [f"Claim: {info['claim']}" if info.get("claim") else "",
                 f"Measured: {head} = {measured[head]}" if head in measured else "",
                 {True: "(reproduced)", False: "(not reproduced)"}.get(info.get("passed"), ""),
                 str(info.get("tolerance") or "")]
    caption = " ".join(w.strip() for w in words if w and str(w).strip())
    src = relative(posixpath.dirname(page) or ".", f"figures/{kind}/{ident}{path.suffix}")
    html = (f'<figure class="kb-figure"><img src="{escape(src)}" alt="{escape(alt)}" loading="lazy">'
            f'<figcaption>{escape(caption[:1200])}{" " if caption else ""}Made by <code>{escape(command)}</code>.'
            "</figcaption></figure>")
    return html
