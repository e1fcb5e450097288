"""Read-only HTTP JSON API over a KnowledgeBase (FastAPI): the CLI's JSON contracts, over HTTP.

Install with ``pip install 'interp-kb[server]'``; run with ``kb serve``.
"""
import threading
from typing import Literal

from .api import KnowledgeBase
from .contract import ErrorBody, Graph, Health, PathAnswer, QueryAnswer, Record, RecordRef, SearchHit
from .errors import KBError, NotFound
from .refs import KINDS, MAX_ID, MAX_REF
from .schema import Access, Audience, Scope

__all__ = ["create_app"]

# Annotations are evaluated (no `from __future__ import annotations`) because FastAPI reads them;
# the vocabularies are the schema's own, so the API cannot drift from the records.
Kind = Literal[KINDS]
ERRORS = {400: {"model": ErrorBody, "description": "A parameter names nothing the knowledge base knows"},
          404: {"model": ErrorBody, "description": "No such record"},
          422: {"model": ErrorBody, "description": "A parameter is missing or malformed"}}


def create_app(root=None, auto_build: bool = False):  # noqa: C901 - one closure per route
    """The FastAPI application. Each worker thread gets its own KnowledgeBase (and connection).

    The server never builds: it answers from the current store and switches to a newer one as
    soon as a `kb build` elsewhere has put it in place.
    """
    from fastapi import FastAPI, Path, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    local = threading.local()

    def kb() -> KnowledgeBase:
        if not hasattr(local, "kb"):
            local.kb = KnowledgeBase(root, auto_build=auto_build)
        return local.kb

    app = FastAPI(title="interp-kb", version="0.1.0", responses=ERRORS,
                  description="Which interpretability method fits your model and question, and how to run it. "
                              "Every answer has the shape of the command line's --format json (kb.contract); "
                              "every error is an ErrorBody.")

    @app.exception_handler(KBError)
    async def kb_error(request: Request, exc: KBError):
        return JSONResponse(exc.to_dict(), status_code=404 if isinstance(exc, NotFound) else 400)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(request: Request, exc: RequestValidationError):
        first = (exc.errors() or [{}])[0]
        param = str(first.get("loc", ("", "?"))[-1])
        body = ErrorBody(detail=f"{param}: {first.get('msg', 'invalid value')}", code="invalid-parameter", param=param)
        return JSONResponse(body.model_dump(), status_code=422)

    @app.get("/health")
    def health() -> Health:
        k = kb()
        return {"ok": True, "records": len(k.list())}

    @app.get("/records", summary="List records (kb list)")
    def list_records(kind: Kind | None = None) -> list[RecordRef]:
        return kb().list(kind)

    @app.get("/records/{kind}/{ident}", summary="One record with links in and out (kb show)")
    def show(kind: Kind, ident: str = Path(..., max_length=MAX_ID)) -> Record:
        return kb().show(f"{kind}:{ident}")

    @app.get("/search", summary="Full-text search (kb search)")
    def search(q: str = Query(..., min_length=1, max_length=500), kind: Kind | None = None,
               limit: int = Query(20, ge=1, le=200)) -> list[SearchHit]:
        return kb().search(q, kind=kind, limit=limit)

    @app.get("/query", summary="Rank methods for a question (kb query)")
    def query(q: str = Query(..., min_length=1, max_length=2000), goal: str | None = Query(None, max_length=MAX_ID),
              architecture: str | None = Query(None, max_length=MAX_ID),
              modality: str | None = Query(None, max_length=MAX_ID),
              access: Access | None = None, scope: Scope | None = None,
              limit: int = Query(5, ge=1, le=100)) -> QueryAnswer:
        return kb().query(q, limit=limit, goal=goal, architecture=architecture, modality=modality,
                          access=access, scope=scope)

    @app.get("/path", summary="Learning path (kb path)")
    def path(to: str | None = Query(None, max_length=MAX_REF),
             know: str = Query("", max_length=2000, description="comma-separated refs already known"),
             audience: Audience | None = None) -> PathAnswer:
        return kb().path(to, know, audience)

    @app.get("/graph", summary="The graph, or a record's neighbourhood, as nodes and edges (kb graph --format json)")
    def graph(around: str | None = Query(None, max_length=MAX_REF), depth: int = Query(1, ge=0, le=3)) -> Graph:
        return kb().graph_data(around, depth)

    return app
