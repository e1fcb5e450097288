"""The output folder of a render: files written inside it only, and a previous render removed (only
what a render writes, and only from a folder that a render wrote)."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..config import safe_child
from ..errors import KBError
from ..refs import KINDS
from .pageplan import SECTIONS

__all__ = ["MARKER", "write_file", "clear_output"]


def write_file(folder: Path, name: str, text: str) -> None:
    path = safe_child(folder, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


MARKER = ".kb-render"  # written into every output folder; a folder without it is never emptied


def clear_output(out: Path) -> None:
    """Remove a previous render from ``out`` (only what a render writes), keeping anything else.

    Refuses a non-empty folder that no render wrote, so ``--out`` cannot wipe someone's docs/.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise KBError(f"{out} exists and is not a folder")
    if not (out / MARKER).is_file() and any(out.iterdir()):
        raise KBError(f"{out} is not empty and holds no earlier render; choose a new or empty --out folder")
    for name in ("docs", "static", "figures", "mkdocs.yml", "search-index.json", "search-index.js", *KINDS,
                 *(stem + ext for stem, _ in SECTIONS for ext in (".md", ".html"))):
        target = safe_child(out, name)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
