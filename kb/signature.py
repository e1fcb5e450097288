"""The signature and summary of a reference implementation, read with ``ast`` (never imports torch)."""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

__all__ = ["reference_signature", "REFERENCE_DIR"]

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@lru_cache(maxsize=64)
def _module_tree(path: str):
    try:
        return ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None


def reference_signature(dotted: str | None, reference_dir: Path = REFERENCE_DIR) -> dict | None:
    """``{"module", "function", "signature", "doc"}`` of ``kb.reference.<module>:<function>``, read with ast.

    >>> reference_signature("kb.reference.nowhere:nothing") is None
    True
    """
    if not dotted or ":" not in dotted:
        return None
    module, func = dotted.split(":", 1)
    parts = module.split(".")[2:]
    if not parts or not all(re.fullmatch(r"[a-z_][a-z0-9_]*", p) for p in parts):
        return None
    path = reference_dir.joinpath(*parts).with_suffix(".py")
    tree = _module_tree(str(path))
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == func:
            if isinstance(node, ast.ClassDef):
                init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
                args = ast.unparse(init.args).removeprefix("self, ").removeprefix("self") if init else ""
                sig = f"class {func}({args})"
            else:
                ret = f" -> {ast.unparse(node.returns)}" if node.returns else ""
                sig = f"def {func}({ast.unparse(node.args)}){ret}"
            doc = (ast.get_docstring(node) or "").strip().split("\n\n")[0]
            return {"module": module, "function": func, "signature": sig, "doc": " ".join(doc.split())}
    return None
