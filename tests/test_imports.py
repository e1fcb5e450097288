"""Query, build, validate and render paths never import torch; the query path stays light."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def imported_modules(args, root):
    env = {**os.environ, "KB_ROOT": str(root)}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "kb", *args], capture_output=True, text=True,
                          env=env, timeout=120)
    mods = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return proc, mods


@pytest.mark.parametrize("args", [["validate"], ["build"], ["query", "explain my cnn"], ["show", "method:saliency-maps"],
                                  ["path", "--to", "method:integrated-gradients"], ["search", "gradient"], ["list"]])
def test_no_torch_import(minimal, args):
    proc, mods = imported_modules(args, minimal)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert not {m for m in mods if m == "torch" or m.startswith("torch.")}


def test_query_path_loads_only_what_it_needs(minimal):
    imported_modules(["build"], minimal)
    proc, mods = imported_modules(["query", "explain my cnn prediction"], minimal)
    assert proc.returncode == 0
    heavy = {"torch", "networkx", "sqlalchemy", "sqlmodel", "jinja2", "pydantic", "bibtexparser", "numpy"}
    assert not heavy & {m.split(".")[0] for m in mods}
    # only whoosh's Porter stemmer, not its index machinery
    assert not {m for m in mods if m.startswith("whoosh.") and not m.startswith("whoosh.lang")}


@pytest.mark.parametrize("args", [["graph", "--around", "method:saliency-maps"], ["bib"]])
def test_graph_and_bib_read_the_store_without_the_build_side(minimal, args):
    """One read model: kb graph and kb bib read the built store; no YAML, schema or graph building."""
    imported_modules(["build"], minimal)
    proc, mods = imported_modules(args, minimal)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert not {"yaml", "pydantic", "bibtexparser", "kb.load", "kb.schema", "kb.graph", "kb.validate"} & mods
