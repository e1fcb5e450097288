"""Read content/<kind>/<id>.yaml into typed records, with file and line for every problem."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import ValidationError

from .config import is_editor_artefact  # lives in config so the freshness check needs neither yaml nor pydantic
from .errors import Problem
from .refs import KINDS, is_citekey, is_slug
from .schema import MODELS

__all__ = ["Loaded", "load_records", "load_yaml", "content_files", "scan_content", "is_editor_artefact", "declared_refs"]

try:  # libyaml is ~10x faster; both are safe loaders
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


@dataclass
class Loaded:
    """A record as read from disk: kind, id, the validated model, its file and the line of each field."""

    kind: str
    id: str
    model: Any
    file: str
    lines: dict[tuple, int] = field(default_factory=dict)
    body_line: int | None = None  # first line of the body's text, for links inside prose

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.id}"

    def line(self, *loc) -> int | None:
        """Line of the field at ``loc`` (e.g. ``("goals", 2)``), else of its nearest parent."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)


def scan_content(content_dir: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The YAML files under ``content_dir`` (sorted) and the YAML-named entries skipped, with why.

    Skipped: editor lock and backup files (Emacs leaves ``.#name.yaml``, a link to nowhere, while a
    file is edited) and any other entry that is not a readable file.
    """
    files, skipped = [], []
    if not content_dir.is_dir():
        return files, skipped
    for p in sorted(content_dir.rglob("*")):
        if p.suffix not in (".yaml", ".yml") and not p.name.endswith((".yaml~", ".yml~", ".yaml#", ".yml#")):
            continue
        if is_editor_artefact(p.name) or p.name.endswith("#"):
            skipped.append((p, "an editor's lock or backup file"))
        elif not p.is_file():
            skipped.append((p, "a link to nothing" if p.is_symlink() else "not a regular file"))
        else:
            files.append(p)
    return files, skipped


def content_files(content_dir: Path) -> Iterator[Path]:
    """Every YAML file under ``content_dir``, sorted (so loading order and output are deterministic)."""
    yield from scan_content(content_dir)[0]


MAX_RECORD_BYTES = 1_000_000
MAX_FLOW_DEPTH = 200


def _flow_depth(text: str) -> int:
    """An upper bound on flow nesting ([ and {), from the brackets alone (quotes are not parsed,
    so brackets inside strings count too; real records stay far below the limit)."""
    depth = deepest = 0
    for ch in re.sub(r"[^\[\]{}]", "", text):
        depth = depth + 1 if ch in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def _line_map(node: yaml.Node, loc: tuple, out: dict, problems: list, file: str) -> None:
    out[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem("yaml-duplicate-key", file, line, None,
                                        f"key {key!r} appears twice in one mapping (first on line {seen[key]})"))
            seen[key] = line
            _line_map(value_node, loc + (key,), out, problems, file)
            out[loc + (key,)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, loc + (i,), out, problems, file)


def _aliases(text: str):
    """Lines (1-based) of YAML alias events, found by scanning tokens (no node graph is built)."""
    try:
        for token in yaml.scan(text, Loader=_Loader):
            if isinstance(token, yaml.AliasToken):
                yield token.start_mark.line + 1
    except yaml.YAMLError:
        return


def load_yaml(text: str, file: str) -> tuple[Any, dict[tuple, int], int | None, list[Problem]]:
    """Safe-load one YAML document; return (data, line map, body line, problems).

    >>> data, lines, _, problems = load_yaml("id: x\\nname: X\\n", "x.yaml")
    >>> data, lines[("name",)], problems
    ({'id': 'x', 'name': 'X'}, 2, [])
    """
    problems: list[Problem] = []
    if len(text) > MAX_RECORD_BYTES:
        return None, {}, None, [Problem("too-large", file, None, None,
                                        f"the file has {len(text):,} characters; a record may hold at most {MAX_RECORD_BYTES:,}")]
    # libyaml's composer recurses per nesting level: ~100k nested brackets crash the interpreter
    # (a C stack overflow, not an exception), so deep nesting is refused before parsing.
    if _flow_depth(text) > MAX_FLOW_DEPTH:
        return None, {}, None, [Problem("too-deep", file, None, None,
                                        f"lists or mappings nest more than {MAX_FLOW_DEPTH} levels deep")]
    # Aliases let a small file stand for an exponentially large value ("billion laughs"); records
    # never need them, so they are refused before any node graph is built.
    alias_line = next(_aliases(text), None) if "*" in text else None
    if alias_line:
        return None, {}, None, [Problem("yaml-alias", file, alias_line, None,
                                        "anchors and aliases (&name, *name) are not allowed; write the value out")]
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, {}, None, [Problem("not-a-mapping", file, 1, None, "the file is empty; a record is a YAML mapping")]
            lines: dict[tuple, int] = {}
            _line_map(node, (), lines, problems, file)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        return None, {}, None, [Problem("yaml-tag", file, line, None, f"{exc.problem} (only plain YAML values are allowed)")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        what = getattr(exc, "problem", None) or str(exc)
        ctx = getattr(exc, "context", None)
        ctx_mark = getattr(exc, "context_mark", None)
        if ctx and ctx_mark is not None:
            ctx += f" started on line {ctx_mark.line + 1}"
        return None, {}, None, [Problem("yaml-syntax", file, line, None, f"{what}" + (f" ({ctx})" if ctx else ""))]
    except (ValueError, RecursionError) as exc:  # e.g. absurd nesting or NUL bytes
        return None, {}, None, [Problem("yaml-syntax", file, 1, None, f"unreadable YAML: {exc}")]
    body_line = None
    if isinstance(data, dict) and ("body",) in lines:
        # A block scalar's text starts on the line after its indicator.
        body_node = next(v for k, v in node.value if getattr(k, "value", None) == "body")
        # (a body that is not text, e.g. a mapping, has no style: the schema reports its type)
        body_line = body_node.start_mark.line + 1 + (1 if getattr(body_node, "style", None) in ("|", ">") else 0)
    return data, lines, body_line, problems


_MESSAGES = {
    "missing": ("missing-field", "required field {field!r} is missing"),
    "extra_forbidden": ("unknown-field", "unknown field {field!r} for a {kind} record"),
}


def _schema_problems(exc: ValidationError, kind: str, file: str, lines: dict, ident: str | None) -> list[Problem]:
    found = []
    ref = f"{kind}:{ident}" if ident else None
    for err in exc.errors():
        loc = tuple(err["loc"])
        fld = ".".join(str(p) for p in loc) or "<record>"
        code, template = _MESSAGES.get(err["type"], ("wrong-type", "field {field!r}: {msg}"))
        if loc and loc[0] == "id" and err["type"] not in _MESSAGES:
            code = "bad-id"
        msg = err.get("msg", "").removeprefix("Value error, ")
        line = None
        probe = loc
        while probe and line is None:
            line = lines.get(probe)
            probe = probe[:-1]
        found.append(Problem(code, file, line or lines.get(()) or 1, ref,
                             template.format(field=fld, kind=kind, msg=msg)))
    return found


def load_file(path: Path, kind: str, rel: str, text: str | None = None) -> tuple[Loaded | None, list[Problem]]:
    """Load and validate one record file of ``kind``."""
    try:
        text = path.read_text(encoding="utf-8") if text is None else text
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem("yaml-syntax", rel, None, None, f"cannot read the file: {exc}")]
    data, lines, body_line, problems = load_yaml(text, rel)
    if problems and data is None:
        return None, problems
    if not isinstance(data, dict):
        return None, problems + [Problem("not-a-mapping", rel, 1, None,
                                         f"expected a mapping of fields, found {type(data).__name__}")]
    stem = path.stem
    ident = data.get("id")
    ok_id = is_citekey(stem) if kind == "paper" else is_slug(stem)
    if not ok_id:
        problems.append(Problem("bad-id", rel, 1, None, f"file name {stem!r} is not a valid id; rename the file to a slug"))
        return None, problems
    if ident is not None and ident != stem:
        problems.append(Problem("id-mismatch", rel, lines.get(("id",), 1), f"{kind}:{stem}",
                                f"id {ident!r} differs from the file name {stem!r}; make them equal"))
        return None, problems
    data.setdefault("id", stem)
    try:
        model = MODELS[kind].model_validate(data)
    except ValidationError as exc:
        return None, problems + _schema_problems(exc, kind, rel, lines, stem)
    return Loaded(kind, stem, model, rel, lines, body_line), problems


def declared_refs(content_dir: Path, files: list[Path] | None = None) -> set[tuple[str, str]]:
    """``(kind, id)`` of every record file present (``files``, default: all), loadable or not.

    Links to a record whose file has an error are not reported as dangling as well: one mistake,
    one message.
    """
    found = set()
    for path in content_files(content_dir) if files is None else files:
        parts = path.relative_to(content_dir).parts
        if len(parts) == 2 and parts[0] in KINDS:
            found.add((parts[0], path.stem))
    return found


def _cached(entry: dict | None, stamp: list, kind: str) -> Loaded | None:
    """A record rebuilt from the parse cache when its file is unchanged (skips YAML parsing)."""
    if not entry or entry.get("stamp") != stamp or entry.get("kind") != kind:
        return None
    try:
        model = MODELS[kind].model_validate(entry["data"])
    except ValidationError:
        return None
    lines = {tuple(item[:-1]): item[-1] for item in entry["lines"]}
    return Loaded(kind, model.id, model, entry["file"], lines, entry.get("body_line"))


def _cache_entry(record: Loaded, stamp: list) -> dict:
    return {"stamp": stamp, "kind": record.kind, "file": record.file, "body_line": record.body_line,
            "data": record.model.model_dump(mode="json"), "lines": [[*loc, line] for loc, line in record.lines.items()]}


def load_records(content_dir: Path, relative_to: Path, cache: dict | None = None,
                 on_file=None, files: list[Path] | None = None) -> tuple[list[Loaded], list[Problem]]:
    """Load every record under ``content_dir``; return the good ones and all problems at once.

    ``cache`` (optional, updated in place) maps each file to its parsed record, keyed by the file's
    mtime and size, so an incremental build re-parses only the files that changed.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> records, problems = load_records(root / "content", root)
    >>> records, problems
    ([], [])
    """
    records: list[Loaded] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    for done, path in enumerate(content_files(content_dir) if files is None else files, 1):
        if on_file:
            on_file(done)
        rel = str(path.relative_to(relative_to))
        parts = path.relative_to(content_dir).parts
        kind = parts[0] if len(parts) == 2 else None
        if kind not in KINDS:
            problems.append(Problem("unknown-kind", rel, None, None,
                                    f"records live in content/<kind>/<id>.yaml with kind one of {', '.join(KINDS)}"))
            continue
        stamp = None
        record = None
        if cache is not None:
            try:
                st = path.stat()
            except OSError as exc:  # removed or unlinked since the folder was listed
                problems.append(Problem("skipped-file", rel, None, None, f"skipped: cannot read it ({exc.strerror})",
                                        "warning"))
                continue
            stamp = [st.st_mtime_ns, st.st_size]
            record = _cached(cache.get(rel), stamp, kind)
        if record is None:
            record, found = load_file(path, kind, rel)
            problems.extend(found)
            if cache is not None:
                if record is not None and not found:
                    cache[rel] = _cache_entry(record, stamp)
                else:
                    cache.pop(rel, None)
        if record is None:
            continue
        key = (record.kind, record.id)
        if key in seen:
            problems.append(Problem("duplicate-id", rel, 1, record.ref, f"{record.ref} is also defined in {seen[key]}"))
            continue
        seen[key] = rel
        records.append(record)
    return records, problems
