"""The ``kb`` command's entry point: starts the content check of ``kb query`` before the command line's
imports, then runs kb.cli.

On a large knowledge base the check (a stat of every content file, see kb.freshness) is most of a
cold query, and it runs in forked children beside the answer. Started from kb.cli, the children wait
for click and the library to import (~0.05 s); started here, they run while that happens. This
module imports only what locating the knowledge base needs (kb.config) before forking.

The head start is only ever a guess at what the command will read: the KnowledgeBase that answers
uses the children's verdict only when they checked its own content against the store it reads
(kb.freshness.claim), and stops them otherwise; any failure here leaves the command to check as
it always does.
"""
from __future__ import annotations

import os
import sys


def main():
    try:
        _head_start(sys.argv[1:])
    except Exception:  # the head start must never stop the command: kb.cli checks as it always does
        pass
    from .cli import main as cli_main

    return cli_main()


def _command_and_root(args: list[str]) -> tuple[str | None, str | None]:
    """The subcommand and the last ``--root`` of a command line (as kb.cli reads them, for the
    commands whose options all take one value or none; a misreading only forgoes the head start).

    >>> _command_and_root(["--root", "/kb", "query", "why", "--root=/other"])
    ('query', '/other')
    >>> _command_and_root(["query", "--", "--root", "x"])
    ('query', None)
    """
    command = root = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg == "--root":
            root = args[i + 1] if i + 1 < len(args) else None
            i += 2
            continue
        if arg.startswith("--root="):
            root = arg[len("--root="):]
        elif command is None and not arg.startswith("-"):
            command = arg
        i += 1
    return command, root


def _head_start(args: list[str]) -> None:
    if not hasattr(os, "fork"):
        return
    command, root = _command_and_root(args)
    if command != "query":  # the one command that checks beside its work (kb.api.KnowledgeBase.query)
        return
    from . import freshness
    from .config import locate

    layout = locate(root)  # as kb.cli will (KnowledgeBase(root)); a KBError: kb.cli reports it
    store = freshness.current_store(layout.store)
    if store is None or not freshness.large(store):
        return
    pending = freshness.start(layout.sources, store)
    if pending is not None:
        freshness.prestarted(pending)
