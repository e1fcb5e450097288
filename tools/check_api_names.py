"""Check that every library API name the records give resolves in that library.

Records name real APIs in three places: a method's ``tools: [{tool, api}]``, a tool's
``implements: [{method, api}]`` and the imports of a tool's ``quick_start``. Nothing else checks
them, and a wrong name reads as authoritative. For each tool whose ``install`` line is a pip
install, this imports the module part of each dotted name and walks the attributes
(``captum.attr.LayerGradCam`` -> import ``captum.attr``, get ``LayerGradCam``), in an environment
where those libraries are installed at pinned versions (``make apicheck``; CI runs it).

    python tools/check_api_names.py [--root .] [--json]

Exit status 1 when a name does not resolve in a library that imports; libraries that cannot be
imported here are reported with the reason and do not fail the check.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import json
import re
import sys
from pathlib import Path

import yaml

DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
# pip distribution name -> import name, where they differ
IMPORT_NAME = {"interpret": "interpret", "torch-lucent": "lucent", "sae-lens": "sae_lens", "grad-cam": "pytorch_grad_cam",
               "transformer_lens": "transformer_lens", "transformer-lens": "transformer_lens", "traker": "trak",
               "circuit-tracer": "circuit_tracer", "pyvene": "pyvene", "shap": "shap", "lime": "lime",
               "eai-delphi": "delphi", "PyALE": "PyALE", "sae-bench": "sae_bench"}


def load(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict):
            data["_file"] = str(path)
            out.append(data)
    return out


def collect(root: Path) -> dict[str, dict]:
    """tool id -> {"package", "module", "names": {name: [where, ...]}}."""
    tools = {}
    for t in load(root / "content" / "tool"):
        m = re.search(r"pip install\s+(?:-[-\w]+\s+)*['\"]?([A-Za-z0-9_][A-Za-z0-9_.\-]*)", str(t.get("install") or ""))
        if not m or m.group(1) in (".", "git"):
            continue
        package = m.group(1).split("[")[0]
        module = IMPORT_NAME.get(package, package.replace("-", "_"))
        names: dict[str, list[str]] = {}
        for x in t.get("implements") or []:
            names.setdefault(x["api"], []).append(f"{t['_file']} implements")
        for name in _quick_start_imports(t.get("quick_start") or ""):
            names.setdefault(name, []).append(f"{t['_file']} quick_start")
        tools[t["id"]] = {"package": package, "module": module, "names": names}
    for m in load(root / "content" / "method"):
        for x in m.get("tools") or []:
            if x.get("tool") in tools:
                tools[x["tool"]]["names"].setdefault(x["api"], []).append(f"{m['_file']} tools")
    return tools


def _quick_start_imports(code: str) -> list[str]:
    """Names imported by a snippet: ``from a.b import C`` -> ``a.b.C``; ``import a.b`` -> ``a.b``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if "." in a.name]
    return names


def resolve(name: str) -> str | None:
    """None when ``name`` resolves; otherwise why not.

    Attributes are walked from the top-level package first, importing a submodule only when no
    attribute of that name exists: ``transformer_lens.ActivationCache`` is the class the package
    exports, not the submodule of the same name.
    """
    parts = name.split(".")
    try:
        obj = importlib.import_module(parts[0])
    except Exception as exc:
        return f"importing {parts[0]} failed: {type(exc).__name__}: {exc}"
    for i, attr in enumerate(parts[1:], 1):
        if hasattr(obj, attr):
            obj = getattr(obj, attr)
            continue
        module = ".".join(parts[:i + 1])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and not module.startswith(exc.name):  # the module exists; a dependency of it does not
                return f"importing {module} failed: {exc}"
            return f"{'.'.join(parts[:i])} has no attribute {attr!r}"
        except Exception as exc:
            return f"importing {'.'.join(parts[:i + 1])} failed: {type(exc).__name__}: {exc}"
    return None


def check(root: Path, only: set[str] | None = None) -> dict:
    report = {"libraries": {}, "checked": 0, "failures": [], "skipped": []}
    for tool, info in sorted(collect(root).items()):
        if only and info["package"].lower() not in only:
            continue
        try:
            importlib.import_module(info["module"])
        except Exception as exc:
            report["skipped"].append({"tool": tool, "package": info["package"], "names": len(info["names"]),
                                      "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
            continue
        lib = report["libraries"][tool] = {"package": info["package"], "checked": 0, "not_a_name": []}
        checked_here: set[str] = set()
        for name, where in sorted(info["names"].items()):
            name = re.sub(r"\(.*\)$", "", name)  # a call written out ("inseq.load_model(model, 'saliency')")
            if name in checked_here:
                continue
            checked_here.add(name)
            if not DOTTED.match(name) or name.split(".")[0] != info["module"]:
                lib["not_a_name"].append(name)
                continue
            lib["checked"] += 1
            report["checked"] += 1
            why = resolve(name)
            if why:
                report["failures"].append({"tool": tool, "name": name, "where": where, "why": why})
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=Path(__file__).resolve().parents[1], type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--packages", default="", help="comma-separated pip names: check only these tools")
    args = ap.parse_args(argv)
    report = check(args.root, {p.strip().lower() for p in args.packages.split(",") if p.strip()} or None)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for tool, lib in report["libraries"].items():
            print(f"{tool:24s} {lib['package']:18s} {lib['checked']:3d} names checked"
                  + (f"; not library names: {', '.join(lib['not_a_name'])}" if lib["not_a_name"] else ""))
        for s in report["skipped"]:
            print(f"{s['tool']:24s} {s['package']:18s} not importable here ({s['names']} names unchecked): {s['reason']}")
        for f in report["failures"]:
            print(f"FAIL {f['name']} ({f['tool']}): {f['why']}\n     in {'; '.join(f['where'])}")
        print(f"{report['checked']} API names checked in {len(report['libraries'])} libraries; "
              f"{len(report['failures'])} unresolved; {len(report['skipped'])} libraries not importable")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
