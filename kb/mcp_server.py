"""``kb mcp``: the knowledge base as a Model Context Protocol server (stdio), for coding assistants and agents.

Tools ``query``, ``show``, ``search``, ``path``, ``list`` and ``bib`` take the command line's parameters
(as JSON Schema) and answer with the shapes of ``--format json`` (kb.contract): the text content is that
JSON, the structured content the same object (a list is wrapped as ``{"result": [...]}``, since MCP's
structured content is an object). Records are resources, ``kb://<kind>/<id>`` (for example
``kb://method/integrated-gradients``), read as the JSON of ``kb show``. A failure is an MCP error result
whose text is kb.contract.ErrorBody (``{"detail", "code", "param"}``); the server keeps answering.

Needs the ``mcp`` extra: ``pip install 'interp-kb[mcp]'``.
"""
import json
import threading
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp_types import CallToolResult, Resource, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from .vocab import AUDIENCES
from . import __version__
from .api import KnowledgeBase
from .contract import PathAnswer, QueryAnswer, Record, RecordRef, SearchHit
from .errors import KBError
from .refs import KINDS

__all__ = ["create_server", "serve_stdio"]

Kind = Literal[KINDS]
Audience = Literal[AUDIENCES]
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
INSTRUCTIONS = """interp-kb is a handbook of neural-network interpretability as a knowledge base.
Use `query` to ask which method fits a model and a question (plain words, e.g. "explain my CNN's
prediction on this X-ray"), `show` for one record (kind:id, e.g. method:integrated-gradients) with its
links, `search` for full text, `path` for what to learn first, `list` for ids, and `bib` for BibTeX.
Records are also resources: kb://<kind>/<id>."""


def _answer(data) -> CallToolResult:
    """The CLI's JSON as text, and the same object as structured content."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    structured = data if isinstance(data, dict) else {"result": data}
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def _error(exc: KBError) -> CallToolResult:
    """An MCP error result whose text is kb.contract.ErrorBody, exactly (the SDK's ToolError would prefix it)."""
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(exc.to_dict(), ensure_ascii=False))],
                          is_error=True)


class HandbookServer(MCPServer):
    """An MCPServer whose resource list is the knowledge base's records, read when asked."""

    def __init__(self, kb: KnowledgeBase, ask, **kwargs):
        super().__init__(**kwargs)
        self._kb, self._ask = kb, ask

    async def call_tool(self, name, arguments, context=None):
        """Arguments that fail the input schema get the one error shape too (code ``invalid-parameter``)."""
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            first = cause.errors()[0]
            param = ".".join(str(part) for part in first.get("loc", ())) or None
            body = {"detail": f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg", "invalid"),
                    "code": "invalid-parameter", "param": param}
            return CallToolResult(content=[TextContent(type="text", text=json.dumps(body, ensure_ascii=False))],
                                  is_error=True)

    async def list_resources(self) -> list[Resource]:
        rows = self._ask(lambda: self._kb.list())
        return [Resource(uri=f"kb://{r['kind']}/{r['id']}", name=r["ref"], title=r["name"],
                         mime_type="application/json") for r in rows]


def create_server(kb: KnowledgeBase) -> MCPServer:
    """The MCP server over ``kb``: six read-only tools and one resource per record."""
    lock = threading.Lock()  # the SDK runs tools in worker threads; one store reader serves them in turn

    def ask(fn):
        with lock:
            return fn()

    def tool_call(fn, wrap=_answer):
        try:
            return wrap(ask(fn))
        except KBError as exc:
            return _error(exc)

    server = HandbookServer(kb, ask, name="interp-kb", version=__version__, instructions=INSTRUCTIONS,
                            log_level="WARNING")

    @server.tool(annotations=READ_ONLY)
    def query(question: Annotated[str, Field(min_length=1, max_length=2000,
                                             description="the question in plain words")],
              goal: Annotated[str | None, Field(description="a goal id, overriding the one read from the question")] = None,
              architecture: Annotated[str | None, Field(description="e.g. cnn, transformer, gru")] = None,
              modality: Annotated[str | None, Field(description="image, text, tabular, sequence, audio, graph, ...")] = None,
              access: Annotated[Literal["black-box", "activations", "gradients", "weights"] | None,
                                Field(description="what you can access in the model")] = None,
              scope: Annotated[Literal["local", "global", "both"] | None,
                               Field(description="local: one prediction; global: the whole model")] = None,
              limit: Annotated[int, Field(ge=1, le=100)] = 5) -> Annotated[CallToolResult, QueryAnswer]:
        """Which interpretability method fits a question? Ranked methods with reasons, caveats, papers and tools (kb query)."""
        return tool_call(lambda: kb.query(question, limit=limit, goal=goal, architecture=architecture,
                                          modality=modality, access=access, scope=scope))

    @server.tool(annotations=READ_ONLY)
    def show(ref: Annotated[str, Field(min_length=1, max_length=200,
                                       description="kind:id (method:integrated-gradients) or an id only one kind has")]
             ) -> Annotated[CallToolResult, Record]:
        """One record with its fields and its links in and out (kb show)."""
        return tool_call(lambda: kb.show(ref))

    @server.tool(annotations=READ_ONLY)
    def search(text: Annotated[str, Field(min_length=1, max_length=500, description="free text; typos are tolerated")],
               kind: Annotated[Kind | None, Field(description="only records of this kind")] = None,
               limit: Annotated[int, Field(ge=1, le=200)] = 20) -> Annotated[CallToolResult, list[SearchHit]]:
        """Full-text search over every record (kb search)."""
        return tool_call(lambda: kb.search(text, kind=kind, limit=limit))

    @server.tool(annotations=READ_ONLY)
    def path(to: Annotated[str | None, Field(max_length=200, description="the record to learn (kind:id)")] = None,
             know: Annotated[list[str], Field(description="records already known (kind:id); skipped")] = [],  # noqa: B006 - pydantic copies defaults
             audience: Annotated[Audience | None, Field(description="without `to`: this audience's curated path")] = None,
             ) -> Annotated[CallToolResult, PathAnswer]:
        """A learning path: every prerequisite before what needs it, each with why and what to read (kb path)."""
        return tool_call(lambda: kb.path(to, know, audience))

    @server.tool(name="list", annotations=READ_ONLY)
    def list_records(kind: Annotated[Kind | None, Field(description="only records of this kind")] = None
                     ) -> Annotated[CallToolResult, list[RecordRef]]:
        """Every record's ref, kind, id and name, papers included (kb list)."""
        return tool_call(lambda: kb.list(kind))

    @server.tool(annotations=READ_ONLY)
    def bib(refs: Annotated[list[str], Field(description="records whose papers to list, prerequisites first; "
                                                         "empty for every paper")] = []) -> CallToolResult:  # noqa: B006
        """BibTeX of a reading list: the papers of the given records in prerequisite order (kb bib)."""
        return tool_call(lambda: kb.bib(refs), lambda text: CallToolResult(content=[TextContent(type="text", text=text)]))

    @server.resource("kb://{kind}/{ident}", name="record", mime_type="application/json",
                     description="One record as kb show --format json: kb://method/integrated-gradients")
    def record(kind: str, ident: str) -> str:
        if kind not in KINDS:
            raise ResourceNotFoundError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        try:
            return json.dumps(ask(lambda: kb.show(f"{kind}:{ident}")), indent=2, ensure_ascii=False)
        except KBError as exc:  # NotFound, or an id that is not a slug: either way no such resource
            raise ResourceNotFoundError(str(exc)) from None

    return server


def serve_stdio(kb: KnowledgeBase) -> None:
    """Answer MCP requests on stdin/stdout until the client closes them."""
    create_server(kb).run("stdio")
