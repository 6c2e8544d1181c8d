"""The dashboard's ASGI application: routes, rendering, the live stream, the actions.

Pages and API endpoints are plain functions (Starlette runs them in its thread pool);
each reads through :mod:`dbproc.web.data` in one read-only session of the
:class:`~dbproc.api.Archive`. The JSON API returns what the CLI's ``--json`` prints,
made by the same functions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dbproc import __version__
from dbproc.api import Archive
from dbproc.errors import DbprocError, NotFound, UsageError
from dbproc.provenance import inventory
from dbproc.records import FileRecord, jsonable
from dbproc.web import actions, data, svg
from dbproc.web.feed import ChangeFeed, EventsFeed
from dbproc.web.review import VERDICTS, FeedReviewGate, ReviewConflict, ReviewGate

logger = logging.getLogger("dbproc.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class Dashboard:
    """What the application serves and how."""

    archive: Archive
    allow_actions: bool = False
    token: str | None = None
    feed: ChangeFeed = field(default_factory=EventsFeed)
    review: ReviewGate = field(default_factory=FeedReviewGate)
    #: how often the live stream looks for changes, seconds
    poll_seconds: float = 1.0
    _token_cache: tuple[float, str] = (0.0, "")
    _token_lock: threading.Lock = field(default_factory=threading.Lock)

    def current_token(self) -> str:
        """The feed's token, asked at most once per ``poll_seconds`` for all listeners."""
        with self._token_lock:
            at, value = self._token_cache
            if time.monotonic() - at >= self.poll_seconds or not value:
                with self.archive.reading() as session:
                    value = self.feed.token(session)
                self._token_cache = (time.monotonic(), value)
            return value


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("dbproc.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.globals.update(file_href=svg.file_href, version=__version__)
    env.filters["seconds"] = lambda v: "" if v is None else f"{float(v):.2f}"
    env.filters["short"] = lambda v: "" if v is None else str(v)[:19].replace("T", " ")
    return env


def error_status(exc: DbprocError) -> int:
    """The HTTP status of an error."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, ReviewConflict):
        return 409
    if isinstance(exc, UsageError):
        return 400
    return 503 if exc.exit_code == 5 else 500


def error_json(message: str, status: int, exit_code: int = 2) -> JSONResponse:
    """The contract's error object (section 11)."""
    kind = {400: "usage", 401: "usage", 403: "usage", 404: "usage", 409: "usage"}.get(
        status, "database"
    )
    return JSONResponse(
        {"error": {"message": message, "exit_code": exit_code, "kind": kind}}, status_code=status
    )


def create_app(dashboard: Dashboard) -> Starlette:
    """The ASGI application serving ``dashboard``."""
    env = _templates()

    def page(name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        body = env.get_template(name).render(
            request=request, allow_actions=dashboard.allow_actions, path=request.url.path, **context
        )
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def html(handler: Callable[[Request], HTMLResponse]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return handler(request)
            except DbprocError as exc:
                return page("error.html", request, error_status(exc), message=str(exc))

        return endpoint

    def api(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                result = handler(request)
            except DbprocError as exc:
                return error_json(str(exc), error_status(exc), exc.exit_code)
            if isinstance(result, Response):
                return result
            return Response(
                json.dumps(jsonable(result), default=str, ensure_ascii=False),
                media_type="application/json",
                headers=SECURITY_HEADERS,
            )

        return endpoint

    from dbproc.web.routes import page_routes

    routes: list[BaseRoute] = list(page_routes(dashboard, page, html, api))
    routes.append(Route("/api/events/stream", _stream_endpoint(dashboard)))
    routes.append(Mount("/static", StaticFiles(packages=[("dbproc.web", "static")]), name="static"))
    app = Starlette(routes=routes)
    app.add_middleware(ServerTiming)
    return app


class ServerTiming:
    """Adds ``Server-Timing: app;dur=MS`` to every response: the time the server took
    before it started answering (the page's queries and rendering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                timing = (b"server-timing", f"app;dur={took:.1f}".encode())
                message = {**message, "headers": [*message.get("headers", []), timing]}
            await send(message)

        await self.app(scope, receive, timed)


def _stream_endpoint(dashboard: Dashboard) -> Callable[[Request], Any]:
    async def stream(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            last = await anyio.to_thread.run_sync(dashboard.current_token)
            yield f"event: hello\ndata: {json.dumps({'token': last})}\n\n"
            quiet = 0.0
            while True:
                await anyio.sleep(dashboard.poll_seconds)
                token = await anyio.to_thread.run_sync(dashboard.current_token)
                if token != last:
                    last, quiet = token, 0.0
                    yield f"event: change\ndata: {json.dumps({'token': token})}\n\n"
                else:
                    quiet += dashboard.poll_seconds
                    if quiet >= 15:
                        quiet = 0.0
                        yield ": still here\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return stream


def parse_day(text: str | None) -> dt.date | None:
    """A ``YYYY-MM-DD`` query parameter."""
    if text is None or text == "":
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"date {text!r}: write YYYY-MM-DD") from None


def files_api(archive: Archive, request: Request) -> list[FileRecord]:
    """``/api/files?product=P&date=D`` (also ``since``, ``until``, ``all_versions=1``)."""
    q = request.query_params
    day = parse_day(q.get("date"))
    query = inventory.FileQuery(
        products=q.getlist("product"),
        all_versions=q.get("all_versions") in ("1", "true"),
        since=day or parse_day(q.get("since")),
        until=day or parse_day(q.get("until")),
    )
    return archive.files(query)


__all__ = ["VERDICTS", "Dashboard", "actions", "create_app", "data"]
