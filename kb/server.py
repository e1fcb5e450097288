"""Read-only HTTP JSON API over a KnowledgeBase (FastAPI): the CLI's JSON contracts, over HTTP.

Install with ``pip install 'interp-kb[server]'``; run with ``kb serve``.
"""
import threading
from typing import Literal

from .api import KnowledgeBase
from .contract import ErrorBody, Graph, Health, PathAnswer, QueryAnswer, Record, RecordRef, SearchHit
from .errors import KBError, NotFound, StoreMissing
from .refs import KINDS, MAX_ID, MAX_REF
from .schema import Access, Audience, Scope

__all__ = ["create_app", "serve", "app_from_env", "GuardedH11Protocol"]

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
    app.add_middleware(HeadAndOptions)

    @app.exception_handler(KBError)
    async def kb_error(request: Request, exc: KBError):
        if isinstance(exc, StoreMissing):  # the server's problem, not the client's; and no server paths
            return JSONResponse({"detail": "the knowledge base is not built yet; run `kb build` on the server",
                                 "code": exc.code, "param": None}, status_code=503)
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


class HeadAndOptions:
    """HEAD answers as GET without the body; OPTIONS says which methods exist (and nothing about CORS)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", b"GET, HEAD, OPTIONS")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def without_body(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


# -- running it: bounded connections, timeouts, several workers -----------------------------------
HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a request's headers (KB_SERVE_HEADER_TIMEOUT)


def _default_max_connections() -> int:
    """Open connections one worker keeps: well below its file-descriptor limit, which the store,
    the search index and the worker threads also use."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(1000, (soft if soft > 0 else 1024) - 200))


try:
    from uvicorn.protocols.http.h11_impl import H11Protocol as _H11
except ImportError:  # the server extra is not installed; kb serve says how to add it
    _H11 = object


class GuardedH11Protocol(_H11):
    """uvicorn's HTTP/1.1 protocol with two guards against clients that hold connections open.

    A connection must send a request's headers within HEADER_TIMEOUT of opening (or of its previous
    response); past MAX_CONNECTIONS the oldest connections that are not being answered are closed,
    so half-sent requests cannot exhaust the file descriptors and /health keeps answering.
    """

    header_timeout = HEADER_TIMEOUT
    max_connections = None  # set by serve() (or from KB_SERVE_MAX_CONNECTIONS in a worker process)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._opened = self.loop.time()
        limit = type(self).max_connections or _default_max_connections()
        # a closed transport leaves the set only on the next turn of the loop: count the live ones
        live = [c for c in self.connections if not c.transport.is_closing()]
        if len(live) > limit:
            excess = len(live) - limit
            idle = sorted((c for c in live if c is not self and (c.cycle is None or c.cycle.response_complete)),
                          key=lambda c: getattr(c, "_opened", 0.0))
            for old in idle[:excess]:  # the oldest connections that are not being answered
                old.transport.close()
            if len(idle) < excess:  # every connection is being answered: refuse this one
                transport.close()
                return
        self._await_headers()

    def _await_headers(self) -> None:
        import os

        timeout = float(os.environ.get("KB_SERVE_HEADER_TIMEOUT") or self.header_timeout)
        self.loop.call_later(timeout, self._headers_overdue, self.cycle)

    def _headers_overdue(self, cycle) -> None:
        # no new request since the timer started (the cycle is the same): the client is too slow
        if self.cycle is cycle and not self.transport.is_closing() and (cycle is None or cycle.response_complete):
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()


def app_from_env():
    """The application of one worker process of ``kb serve --workers N`` (uvicorn imports it by name)."""
    import base64
    import os
    import pickle

    layout = pickle.loads(base64.b64decode(os.environ["KB_SERVE_LAYOUT"]))
    GuardedH11Protocol.max_connections = int(os.environ.get("KB_SERVE_MAX_CONNECTIONS") or 0) or None
    return create_app(layout)


def serve(layout, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          max_connections: int | None = None) -> None:
    """Run the HTTP API with uvicorn: bounded connections, header and keep-alive timeouts, a graceful
    stop within a few seconds of SIGTERM, and ``workers`` processes (the application is then
    imported by name in each, so the knowledge base's location travels in the environment)."""
    import base64
    import os
    import pickle

    import uvicorn

    limit = max_connections or _default_max_connections()
    GuardedH11Protocol.max_connections = limit
    options = dict(host=host, port=port, log_level="warning", http=GuardedH11Protocol,
                   # in-flight requests past the connection limit get 503 at once instead of queueing
                   limit_concurrency=limit + 1, timeout_keep_alive=5, timeout_graceful_shutdown=3, backlog=256)
    if workers > 1:
        os.environ["KB_SERVE_LAYOUT"] = base64.b64encode(pickle.dumps(layout)).decode()
        os.environ["KB_SERVE_MAX_CONNECTIONS"] = str(limit)
        uvicorn.run("kb.server:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(layout), **options)
