"""The ``kb`` command: thin click commands that call kb.KnowledgeBase and format its answers."""
from __future__ import annotations

import functools
import json
import sys
import textwrap

import click

from .vocab import AUDIENCES
from .api import KnowledgeBase
from .errors import KBError

FORMATS = click.Choice(["text", "json"])


ROOT_HELP = ("Knowledge base root holding content/ (default: $KB_ROOT, else the nearest folder upward "
             "holding content/, else the handbook bundled with interp-kb; see `kb info`).")


def _remember_root(ctx, param, value):
    """--root may come before or after the subcommand; the last one given wins."""
    if value is not None:
        ctx.find_root().meta["kb.root"] = value
    return value


def _root_option() -> click.Option:
    return click.Option(["--root"], type=click.Path(file_okay=False), default=None, expose_value=False,
                        is_eager=True, callback=_remember_root, help=ROOT_HELP)


class KBCommand(click.Command):
    """A subcommand that also accepts --root after its name (`kb validate --root DIR`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params.append(_root_option())


class KBGroup(click.Group):
    """Turns library errors into clean messages (file:line where known), never tracebacks."""

    command_class = KBCommand

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KBError as exc:
            for p in exc.problems[:50]:
                click.echo(p.format(), err=True)
            if len(exc.problems) > 50:
                click.echo(f"... and {len(exc.problems) - 50} more", err=True)
            raise click.ClickException(self._option_hint(ctx, exc) + str(exc)) from None

    def _option_hint(self, ctx, exc: KBError) -> str:
        """``--goal: `` when the library names a parameter that is an option of the invoked command."""
        command = self.commands.get(ctx.invoked_subcommand or "")
        for p in getattr(command, "params", ()):
            if isinstance(p, click.Option) and p.name == getattr(exc, "param", None):
                return f"{p.opts[0]}: "
        return ""


@click.group(cls=KBGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--root", type=click.Path(file_okay=False), default=None, expose_value=False, is_eager=True,
              callback=_remember_root, help=ROOT_HELP)
@click.version_option(package_name="interp-kb", message="%(prog)s %(version)s")
def cli():
    """interp-kb: ask which interpretability method fits your model and question, and how to run it.

    \b
    Examples:
      kb query "which method to explain my CNN's prediction?"
      kb show method:integrated-gradients
      kb path --to method:sparse-autoencoders --know method:pca
      kb validate --format github

    \b
    Which knowledge base: --root DIR (before or after the subcommand) or $KB_ROOT; else the nearest
    folder upward holding content/; else the handbook bundled with interp-kb. `kb info` says which.
    A root's store is .kb/ under it (the bundled handbook's: the user cache folder), rebuilt
    automatically when content changes. KB_DATABASE_URL selects another SQLAlchemy database.
    """


def current_kb(ctx: click.Context) -> KnowledgeBase:
    """The KnowledgeBase of this invocation, chosen once from --root / KB_ROOT / the lookup order."""
    top = ctx.find_root()
    if "kb" not in top.meta:
        top.meta["kb"] = KnowledgeBase(top.meta.get("kb.root"))
    return top.meta["kb"]


def pass_kb(f):
    """Pass the invocation's KnowledgeBase as the command's first argument."""
    @click.pass_context
    def wrapper(ctx, *args, **kwargs):
        return ctx.invoke(f, current_kb(ctx), *args, **kwargs)

    return functools.update_wrapper(wrapper, f)


def _emit(data, fmt: str, text_fn) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(text_fn(data))


def _write_or_echo(text: str, out: str | None) -> None:
    if out:
        from pathlib import Path

        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _notices(kb: KnowledgeBase) -> None:
    for note in kb.notices:
        click.echo(f"note: {note}", err=True)


@cli.command()
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@pass_kb
def info(kb, fmt):
    """Which knowledge base is used and why, its record counts and where its store lives.

    \b
    The lookup order: --root DIR or $KB_ROOT (it must hold content/); else the nearest folder upward
    from the current one holding content/; else the handbook bundled with interp-kb, whose store is
    built once into the user cache folder.
    """
    data = kb.info()
    _notices(kb)
    _emit(data, fmt, lambda d: "\n".join([
        f"knowledge base: {d['root']}",
        f"chosen:         {d['reason']}",
        f"records:        {d['records']} ({', '.join(f'{v} {k}' for k, v in d['counts'].items())})",
        f"store:          {d['store']}" + (f" (current: {d['current']})" if d["database"] == "sqlite" else ""),
        f"interp-kb:      {d['version']}"] + (["watched:        yes (kb watch answers the content check)"] if d.get("watched") else [])))


@cli.command()
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--force", is_flag=True, help="Rebuild the search index from scratch instead of patching it.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@pass_kb
def build(kb, progress, force, fmt):
    """Compile content/ and bib/ into the store and search index.

    The new store is written aside and renamed into place, so a failed build leaves the previous
    one answering. Fails (exit 1) when the content has errors; see `kb validate`.
    """
    on_progress = _progress_bars(sys.stderr.isatty() if progress is None else progress)

    summary = kb.build(progress=on_progress, force=force)
    _emit(summary, fmt, lambda s: f"built {s['records']} records and {s['edges']} links "
          f"({', '.join(f'{v} {k}' for k, v in sorted(s['counts'].items()))}); {s['warnings']} warning(s)")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
              help="github prints ::error file=...,line=...:: annotations for GitHub Actions.")
@click.option("--rendered", type=click.Path(exists=True, file_okay=False), default=None,
              help="Also check every relative link and #anchor in a rendered handbook folder.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@pass_kb
def validate(kb, fmt, rendered, strict):
    """Check every record, link, citation and reference implementation (exit 0 ok, 1 errors, 2 misuse)."""
    report = kb.validate()
    if rendered:
        from .linkcheck import check_rendered

        report.errors.extend(check_rendered(rendered))
    if strict:
        report.errors.extend(report.warnings)
        report.warnings = []
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif fmt == "github":
        for p in report.errors + report.warnings:
            level = "error" if p in report.errors else "warning"
            loc = ",".join(x for x in (f"file={p.file}" if p.file else "", f"line={p.line}" if p.line else "") if x)
            click.echo(f"::{level} {loc}::[{p.code}] {p.message}".replace("  ", " "))
    else:
        for p in report.errors + report.warnings:
            click.echo(p.format())
        click.echo(f"{'ok' if report.ok else 'FAILED'}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    sys.exit(0 if report.ok else 1)


@cli.command(name="list")
@click.argument("kind", required=False)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@pass_kb
def list_(kb, kind, fmt):
    """List records, optionally of one KIND (method, concept, paper, ...)."""
    rows = kb.list(kind)
    _notices(kb)
    _emit(rows, fmt, lambda rs: "\n".join(f"{r['kind']}:{r['id']}\t{r['name']}" for r in rs))


@cli.command()
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@pass_kb
def show(kb, ref, fmt):
    """Show one record (REF is kind:id or a unique id) with its links in and out."""
    from .textfmt import record_text

    data = kb.show(ref)
    _notices(kb)
    _emit(data, "json" if fmt == "json" else "text", lambda d: record_text(d, markdown=fmt == "markdown"))


@cli.command()
@click.argument("text", nargs=-1, required=True)
@click.option("--kind", default=None, help="Only records of this kind.")
@click.option("-n", "--limit", default=20, show_default=True)
@click.option("--operators", is_flag=True, help='Read AND, OR, NOT and "phrases" as query operators (default: words).')
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@pass_kb
def search(kb, text, kind, limit, operators, fmt):
    """Full-text search over every record (tolerates typos)."""
    hits = kb.search(" ".join(text), kind=kind, limit=limit, operators=operators)
    _notices(kb)
    _emit(hits, fmt, lambda hs: "\n".join(f"{h['ref']}\t{h['name']}" for h in hs) or "no match")


@cli.command()
@click.argument("question", nargs=-1, required=True)
@click.option("--goal", default=None, help="Override the goal read from the question (a goal id).")
@click.option("--architecture", default=None, help="Override the architecture (e.g. cnn, transformer, gru).")
@click.option("--modality", default=None, help="image, text, tabular, sequence, audio, graph, game-state, video.")
@click.option("--access", default=None, help="What you can access: black-box, activations, gradients, weights.")
@click.option("--scope", default=None, help="local (one prediction) or global (the whole model).")
@click.option("-n", "--limit", default=5, show_default=True, help="How many methods to show.")
@click.option("--explain", is_flag=True, help="Show how the question was read: facets, goals, evidence, score parts.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@pass_kb
def query(kb, question, goal, architecture, modality, access, scope, limit, explain, fmt):
    """Which method fits QUESTION? Ranked methods with reasons, caveats, papers, tools and how to run them.

    \b
    Example:
      kb query "I only have API access, how do I explain one prediction?"
      kb query "what does my GRU compute" --architecture gru --format json
    """
    from .textfmt import answer_text

    ans = kb.query(" ".join(question), limit=limit, goal=goal, architecture=architecture, modality=modality,
                   access=access, scope=scope, explain=explain)
    _notices(kb)
    _emit(ans, "json" if fmt == "json" else "text", lambda a: answer_text(a, markdown=fmt == "markdown"))


@cli.command()
@click.option("--to", "to", default=None, help="The record to learn (kind:id or a unique id).")
@click.option("--know", default="", help="Comma-separated records you already know; they and what only they need are skipped.")
@click.option("--audience", type=click.Choice(list(AUDIENCES)), default=None,
              help="Without --to: walk this audience's curated path, with the prerequisites it skipped.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@pass_kb
def path(kb, to, know, audience, fmt):
    """A learning path: every prerequisite before what needs it, each with why and what to read.

    \b
    Example:
      kb path --to sparse-autoencoders --know pca
      kb path --audience beginner
    """
    from .textfmt import path_text

    result = kb.path(to, [k for k in know.split(",") if k.strip()], audience)
    _notices(kb)
    _emit(result, "json" if fmt == "json" else "text", lambda p: path_text(p, markdown=fmt == "markdown"))


@cli.command()
@click.option("--kind", default=None, help="Only this kind's schema.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write one <kind>.schema.json per kind into this folder.")
def schema(kind, out):
    """JSON Schema of the record kinds, for editors' YAML language servers.

    \b
    In VS Code (YAML extension), map each kind's schema to its folder:
      "yaml.schemas": {"schemas/method.schema.json": "content/method/*.yaml", ...}
    """
    from pathlib import Path

    from .schema import json_schema

    schemas = json_schema()
    if kind:
        if kind not in schemas:
            raise click.BadParameter(f"unknown kind {kind!r}; kinds are {', '.join(schemas)}", param_hint="--kind")
        schemas = {kind: schemas[kind]}
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for k, s in schemas.items():
            (folder / f"{k}.schema.json").write_text(json.dumps(s, indent=2, sort_keys=True) + "\n")
        click.echo(f"wrote {len(schemas)} schema(s) to {folder}")
    else:
        click.echo(json.dumps(schemas[kind] if kind else schemas, indent=2, sort_keys=True))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--max-connections", default=None, type=click.IntRange(4, 100_000),
              help="Open connections per worker (default: below the file-descriptor limit).")
@pass_kb
def serve(kb, host, port, workers, max_connections):
    """Serve the knowledge base as a read-only HTTP JSON API (OpenAPI schema at /openapi.json).

    Needs the server extra: pip install 'interp-kb[server]'. Builds once if the store is stale,
    then answers from the current store; run `kb build` to publish changes. Meant for this
    machine: to expose it further, put a reverse proxy (TLS, rate limits) in front.
    """
    try:
        import uvicorn  # noqa: F401

        from .server import serve as run_server
    except ImportError:
        raise click.ClickException("kb serve needs FastAPI and uvicorn: pip install 'interp-kb[server]'") from None
    kb.list()  # builds the store if needed, and fails early with a clear message if it cannot
    run_server(kb.layout, host, port, workers, max_connections)


@cli.command(name="mcp")
@pass_kb
def mcp_(kb):
    """Serve the knowledge base to coding assistants and agents over the Model Context Protocol (stdio).

    \b
    Tools: query, show, search, path, list, bib (the shapes of --format json); resources: one per
    record, kb://<kind>/<id>. Needs the mcp extra: pip install 'interp-kb[mcp]'. Register it with an
    assistant as the command `kb mcp` (add --root DIR for your own knowledge base), e.g.
      claude mcp add interp-kb -- /path/to/.venv/bin/kb mcp
    Builds the store first if it is missing or stale; then answers until the client disconnects.
    """
    try:
        from .mcp_server import serve_stdio
    except ImportError as exc:
        if not (exc.name or "").startswith(("mcp", "pydantic")):
            raise
        raise click.ClickException("kb mcp needs the MCP SDK: pip install 'interp-kb[mcp]'") from None
    kb.list()  # builds the store if needed, and fails early with a clear message if it cannot
    serve_stdio(kb)


@cli.command()
@pass_kb
def watch(kb):
    """Keep queries of a large knowledge base fast: watch its content for changes (Linux).

    A query checks that the store is current by stat-ing every content file (~0.14 s at 100,000
    records). While `kb watch` runs, queries of this knowledge base ask it instead (a local socket);
    it learns of every change from the kernel (inotify), so an edit is still seen by the next
    query. Runs until interrupted (Ctrl-C); queries stat the files again once it stops.
    """
    from .watch import Watcher, supported

    if not supported():
        raise click.ClickException("kb watch needs Linux (inotify); without it queries check the files themselves")
    kb.list()  # builds the store if needed, and fails early with a clear message if it cannot
    try:
        watcher = Watcher(kb.layout.sources, kb.layout.store)
        sock = watcher.listen()
    except OSError as exc:
        import errno

        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(f"a watcher already runs for {kb.layout.root}") from None
        raise click.ClickException(f"cannot watch {kb.layout.root}: {exc.strerror or exc}") from None
    import signal

    signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    from .freshness import FORK_FROM, current_store, large

    store = current_store(kb.layout.store)
    small = "" if store is None or large(store) else (
        f" (queries ask it from {FORK_FROM:,} records; below that, stat-ing the files is as fast)")
    ready = lambda w: click.echo(f"watching {w.files:,} files under {kb.layout.root}{small}; Ctrl-C to stop", err=True)  # noqa: E731
    try:
        watcher.serve(sock, on_ready=ready)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        watcher.close()


def _progress_bars(show: bool):
    """A (phase, done, total) callback drawing one click progress bar per phase on stderr."""
    bars: dict = {}

    def on_progress(phase, done, total):
        if not show:
            return
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = click.progressbar(length=max(total, 1), label=f"{phase:>6}", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    return on_progress


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), default="site", show_default=True,
              help="Folder to write the handbook into (a previous render there is replaced).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "html"]), default="markdown", show_default=True,
              help="markdown: pages plus mkdocs.yml for MkDocs; html: a standalone static site with offline search.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--check/--no-check", default=True, show_default=True, help="Check every relative link and #anchor afterwards.")
@pass_kb
def render(kb, out, fmt, progress, check):
    """Render the handbook: index, audience guides, glossary, reading lists, tables and one page per record.

    \b
    Examples:
      kb render --out site --format html        # open site/index.html
      kb render --out book && mkdocs build -f book/mkdocs.yml --strict
    """
    show = sys.stderr.isatty() if progress is None else progress
    summary = kb.render(out, fmt, _progress_bars(show))
    line = f"rendered {summary['pages']} pages ({fmt}) into {summary['out']} in {summary['seconds']:.1f} s"
    if summary.get("errors"):
        line += f"; note: the content has {summary['errors']} error(s) (see `kb validate`)"
    click.echo(line)
    if check:
        from .linkcheck import check_rendered

        problems = check_rendered(out)
        for p in problems[:50]:
            click.echo(p.format(), err=True)
        click.echo(f"link check: {len(problems)} broken link(s)")
        if problems:
            sys.exit(1)


@cli.command()
@click.option("--around", default=None, help="Only the neighbourhood of this record (kind:id or a unique id).")
@click.option("--depth", default=1, show_default=True, type=click.IntRange(0, 20), help="Links away from --around.")
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "graphml", "json", "node-link"]), default="dot",
              show_default=True, help="json: {center, depth, nodes, edges} as the HTTP API and MCP answer; "
              "node-link: networkx's node-link JSON.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write to this file instead of stdout.")
@pass_kb
def graph(kb, around, depth, fmt, out):
    """Export the knowledge graph (or a neighbourhood) as DOT, Mermaid, GraphML or JSON.

    \b
    Example:
      kb graph --around method:grad-cam --depth 2 --format mermaid
      kb graph --format dot | dot -Tsvg > kb.svg
    """
    if fmt == "json":
        text = json.dumps(kb.graph_data(around, depth), indent=2, ensure_ascii=False) + "\n"
    else:
        text = kb.graph(around, depth, "json" if fmt == "node-link" else fmt)
    _notices(kb)
    _write_or_echo(text, out)


@cli.command()
@click.argument("refs", nargs=-1)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write to this file instead of stdout.")
@pass_kb
def bib(kb, refs, out):
    """BibTeX of a reading list: the papers of REFS in prerequisite order (all papers without REFS).

    \b
    Examples:
      kb bib path:beginner            # the beginner's reading list
      kb bib topic:superposition      # a topic's papers, prerequisites first
      kb bib method:grad-cam sundararajan2017axiomatic
    """
    text = kb.bib(refs)
    _notices(kb)
    _write_or_echo(text, out)



@cli.command()
@click.argument("tutorial")
@click.option("--out", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to write <id>.ipynb into.")
@pass_kb
def notebook(kb, tutorial, out):
    """Write TUTORIAL (tutorial:id or its id) as a Jupyter notebook; prints the notebook's path.

    The notebook has the tutorial's introduction, its steps as markdown and code cells, and a final
    cell asserting what the tutorial must show. Writing it needs nothing more; its code needs the
    reference extra (torch, matplotlib), and running it a Jupyter kernel (the notebook extra).

    \b
    Examples:
      pip install 'interp-kb[reference,notebook]'
      kb notebook grad-cam-heatmaps --out notebooks
      jupyter execute notebooks/grad-cam-heatmaps.ipynb   # runs every cell, headless

    To read and edit it, open the .ipynb in VS Code (its Jupyter extension), or install
    JupyterLab (pip install jupyterlab) and run jupyter lab notebooks/grad-cam-heatmaps.ipynb.
    """
    path = kb.notebook(tutorial, out)
    _notices(kb)
    click.echo(str(path))
    # the path alone on stdout (scripts read it); how to open it on stderr
    click.echo(_notebook_hint(path), err=True)


def _notebook_hint(path) -> str:
    """How to run or open a written notebook, saying what to install only when it is missing."""
    import importlib.util
    import shlex

    quoted = shlex.quote(str(path))
    missing = [name for module, name in (("torch", "torch"), ("nbclient", "nbclient"), ("ipykernel", "ipykernel"))
               if importlib.util.find_spec(module) is None]
    install = "  (first: pip install 'interp-kb[reference,notebook]')" if missing else ""
    return (f"run it: jupyter execute {quoted}{install}\n"
            f"open it: VS Code (Jupyter extension), or pip install jupyterlab && jupyter lab {quoted}")


def _reference_demo(command: str = "kb run"):
    """kb.reference.demo, imported only here: it needs torch and matplotlib (the [reference] extra)."""
    try:
        from .reference import demo
    except ImportError as exc:
        raise click.ClickException(f"{command} needs the reference extra (torch, matplotlib; {exc.name or 'a module'} "
                                   "is missing): pip install 'interp-kb[reference]'") from None
    return demo


@cli.command()
@click.argument("method", required=False)
@click.option("--list", "list_", is_flag=True, help="List the methods that have a runnable demo and exit.")
@click.option("--out", type=click.Path(file_okay=False), default="kb-run", show_default=True,
              help="Folder for the figure (<method>.png).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def run(method, list_, out, fmt):
    """Run METHOD's reference implementation on a small demo model: writes a figure, prints its reading.

    \b
    Needs the reference extra: pip install 'interp-kb[reference]'.
    Examples:
      kb run --list
      kb run integrated-gradients --out figures
      kb run fixed-point-analysis --format json
    """
    if not list_ and not method:
        raise click.UsageError("give a METHOD id, or --list to see the runnable ones")
    demo = _reference_demo()
    runnable = demo.list_runnable()
    if list_:
        _emit(runnable, fmt, lambda rows: "\n".join(
            f"{r['method']}\t{r['model']}\t{r['description']}" + ("" if r["available"] else "  (optional package missing)")
            for r in rows))
        return
    method = method.split(":", 1)[1] if method.startswith("method:") else method
    entry = next((r for r in runnable if r["method"] == method), None)
    if entry is None:
        raise click.ClickException(f"no runnable demo for {method!r}; see `kb run --list` "
                                   f"({', '.join(r['method'] for r in runnable)})")
    if not entry["available"]:
        package = demo.RUNNABLE[method].requires
        raise click.ClickException(f"kb run {method} needs the optional package {package}: pip install {package}")
    result = demo.run_method(method, out)
    _emit(result, fmt, lambda r: f"figure: {r['figure']}\n\n" + textwrap.fill(r["reading"], 100))


@cli.command()
@click.argument("case", required=False)
@click.option("--list", "list_", is_flag=True, help="List the case studies whose finding can be reproduced here, and exit.")
@click.option("--out", type=click.Path(file_okay=False), default="kb-reproduce", show_default=True,
              help="Folder for the figure (<case>.png).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the run.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@pass_kb
def reproduce(kb, case, list_, out, seed, fmt):
    """Reproduce CASE's landmark finding at small scale on a CPU: the claim, measured vs claimed, a figure.

    \b
    Each run takes under a minute; exit code 1 when the measured numbers miss the stated tolerance.
    Needs the reference extra: pip install 'interp-kb[reference]'.
    Examples:
      kb reproduce --list
      kb reproduce toy-models-of-superposition --out figures
      kb reproduce double-descent-random-features --format json
    """
    if list_:
        _emit(kb.reproductions(), fmt, lambda rows: "\n".join(f"{r['case']}\t{r['shows']}" for r in rows))
        return
    if not case:
        raise click.UsageError("give a CASE (a case study id), or --list to see the reproducible ones")
    _reference_demo("kb reproduce")  # the same missing-extra message as `kb run`
    result = kb.reproduce(case, out, seed=seed)
    _emit(result, fmt, lambda r: "\n".join([
        f"{r['case']}: {'REPRODUCED' if r['passed'] else 'NOT REPRODUCED'} in {r['seconds']:.1f} s (seed {seed})",
        "", textwrap.fill("claim: " + r["claim"], 100), "", textwrap.fill("setup: " + r["setup"], 100), "",
        "measured:", *(f"  {k} = {v}" for k, v in r["measured"].items()),
        "", textwrap.fill("claimed (tolerance): " + r["tolerance"], 100), "", f"figure: {r['figure']}"]))
    if not result["passed"]:
        sys.exit(1)


@cli.command()
@click.argument("only", nargs=-1)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for <kind>/<id>.png and .json (default: figures/ under the root, where kb render looks).")
@click.option("--force", is_flag=True, help="Redraw every figure, even when the reference code is unchanged.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_kb
def figures(kb, only, out, force, fmt):
    """Draw the handbook's figures: every method's `kb run` demo and every case study's reproduction.

    \b
    kb render shows figures/<kind>/<id>.png on that record's page, with its reading as the caption.
    Figures are redrawn only when the reference code changed. Needs the reference extra.
    Examples:
      kb figures                      # all of them (a few minutes on a CPU)
      kb figures grad-cam case_study:double-descent-random-features
    """
    _reference_demo("kb figures")
    done = kb.figures(out, only=only, force=force)
    _emit(done, fmt, lambda d: "\n".join([f"written: {len(d['written'])}, kept: {len(d['kept'])}, failed: {len(d['failed'])}",
                                          *(f"  failed {ref}: {msg}" for ref, msg in d["failed"].items())]))
    if done["failed"]:
        sys.exit(1)


def main():
    cli(prog_name="kb")
