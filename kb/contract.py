"""The JSON contract: typed models of every answer that programs read, shared by HTTP, MCP and --format json.

``kb list/show/search/query/path/graph/info --format json``, the HTTP API (``kb serve``) and the MCP
tools (``kb mcp``) return these same shapes, so the OpenAPI document and the MCP output schemas
describe the command line's JSON too (tests/test_contract.py checks all three against these models).

Naming: every object that names a record carries ``ref`` (``kind:id``) and, where it is a record
rather than a link, ``kind``, ``id`` and ``name``. Links are ``{"relation", "ref"}``. Errors have
one shape, :class:`ErrorBody`, with no command-line wording.

The models allow extra fields: an answer may carry more than the contract promises (a record's
kind-specific fields, a query's related records), never less.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RecordRef", "Link", "Record", "SearchHit", "PaperRef", "QueryResult", "QueryAnswer", "PathStep",
           "PathAnswer", "GraphNode", "GraphEdge", "Graph", "Info", "ErrorBody", "Health", "MODELS"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RecordRef(_Open):
    """One record named in a list: ``kb list``."""

    ref: str = Field(description="kind:id, e.g. method:grad-cam (papers: paper:<citekey>)")
    kind: str = Field(description="the record kind: method, concept, paper, ...")
    id: str = Field(description="the record's id (a slug; for papers the BibTeX citekey)")
    name: str = Field(description="human-readable name (for papers the title)")


class Link(BaseModel):
    relation: str = Field(description="the edge type, e.g. requires, applies_to, cites")
    ref: str = Field(description="the record at the other end, kind:id")


class Record(RecordRef):
    """One record with its fields (they vary by kind) and its links: ``kb show``."""

    summary: str | None = None
    links_out: list[Link] = Field(description="edges from this record")
    links_in: list[Link] = Field(description="edges to this record")


class SearchHit(RecordRef):
    """A full-text match: ``kb search``."""

    score: float


class PaperRef(_Open):
    id: str = Field(description="the citekey")
    citation: str | None = None
    link: str | None = None


class QueryResult(_Open):
    """One recommended method, best first."""

    ref: str
    kind: Literal["method"] = "method"
    id: str
    name: str
    score: float
    reasons: list[str] = Field(description="why it fits the question")
    caveats: list[str] = Field(description="what to watch out for")


class QueryAnswer(_Open):
    """``kb query``: ranked methods for a question in plain words."""

    question: str
    facets: dict = Field(description="what the question was read as: goal, architecture, modality, access, scope, ...")
    confidence: Literal["high", "medium", "low"] | None = None
    out_of_scope: bool = False
    results: list[QueryResult]


class PathStep(_Open):
    ref: str
    kind: str
    id: str
    name: str
    level: str | None = None
    why: str = Field(description="why this step is on the path")
    summary: str | None = None
    paper: PaperRef | None = None


class PathAnswer(_Open):
    """``kb path``: every prerequisite before what needs it."""

    target: str = Field(description="the record to learn, or path:<audience> for a curated path")
    audience: str | None = None
    known: list[str] = Field(default_factory=list, description="refs already known (skipped with what only they need)")
    steps: list[PathStep]


class GraphNode(RecordRef):
    pass


class GraphEdge(BaseModel):
    source: str
    target: str
    relation: str


class Graph(BaseModel):
    """``kb graph --format json``: the graph, or the neighbourhood of ``center`` within ``depth`` links."""

    center: str | None = Field(None, description="the record the neighbourhood is around; null for the whole graph")
    depth: int | None = None
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class Info(_Open):
    """``kb info``: which knowledge base is used and why, its counts and its store."""

    root: str
    source: Literal["root", "KB_ROOT", "parent", "bundled"]
    reason: str
    bundled: bool
    version: str
    store: str
    records: int
    counts: dict[str, int]
    watched: bool = Field(False, description="whether a `kb watch` process answers this knowledge base's content check")


class ErrorBody(BaseModel):
    """Every error, over HTTP (with a 4xx status) and MCP (an error result): no command-line wording."""

    detail: str = Field(description="what went wrong and how to fix it")
    code: Literal["not-found", "bad-request", "invalid-parameter"]
    param: str | None = Field(None, description="the parameter at fault, when one is")


class Health(BaseModel):
    ok: bool
    records: int


MODELS = {"list": list[RecordRef], "show": Record, "search": list[SearchHit], "query": QueryAnswer,
          "path": PathAnswer, "graph": Graph, "info": Info}
