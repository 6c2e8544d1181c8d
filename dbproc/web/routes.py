"""The dashboard's pages and JSON endpoints (contract section 15)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from dbproc.errors import UsageError
from dbproc.provenance import inventory
from dbproc.web import actions, coverage_data, data, svg
from dbproc.web.review import VERDICTS

if TYPE_CHECKING:
    from dbproc.web.app import Dashboard

Page = Callable[..., HTMLResponse]
Wrap = Callable[[Callable[[Request], Any]], Callable[[Request], Response]]

#: the default and largest number of hops of the lineage graph
HOPS, MAX_HOPS = 2, 6


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name}={text!r}: give a whole number") from None
    return max(low, min(high, value))


class Pages:
    """The HTML pages, each reading in one read-only session."""

    def __init__(self, dash: Dashboard, page: Page) -> None:
        self.dash = dash
        self.archive = dash.archive
        self.page = page

    def overview(self, request: Request) -> HTMLResponse:
        with self.archive.reading() as session:
            reviews = self.dash.review.pending(session, 20)
            info = data.overview(self.archive.engine, session, reviews)
        runs = info["recent_runs"]
        per_day = [(d, float(n), float(f)) for d, n, f in data.runs_per_day(runs)]
        return self.page(
            "overview.html",
            request,
            info=info,
            title=info["mission"],
            runs_plot=svg.bars(per_day, label="runs per day, failed in red", unit="runs"),
            durations_plot=svg.ranges(
                data.durations_by_code(runs), label="run durations by code version"
            ),
        )

    def product(self, request: Request) -> HTMLResponse:
        name = request.path_params["name"]
        with self.archive.reading() as session:
            info = coverage_data.coverage(session, name, request.query_params.get("period"))
        monthly = [(f"{y}-{m:02d}", float(n), 0.0) for y, m, n in info["monthly"]]
        return self.page(
            "product.html",
            request,
            info=info,
            title=f"{name} coverage",
            coverage_plot=svg.bars(monthly, label="days with files per month", unit="days"),
        )

    def file(self, request: Request) -> HTMLResponse:
        hops = _int(request, "hops", HOPS, 1, MAX_HOPS)
        with self.archive.reading() as session:
            info = data.file_page(session, request.path_params["filename"], hops)
            review = self.dash.review.state_of(session, info["file"]["filename"])
        return self.page(
            "file.html",
            request,
            info=info,
            review=review,
            hops=hops,
            max_hops=MAX_HOPS,
            verdicts=VERDICTS,
            title=info["file"]["filename"],
            graph=svg.lineage_graph(info["lineage"], hops),
        )

    def run(self, request: Request) -> HTMLResponse:
        with self.archive.reading() as session:
            info = data.run_page(session, _run_id(request))
        return self.page("run.html", request, run=info, title=f"run {info['id']}")

    def day(self, request: Request) -> HTMLResponse:
        name, text = request.path_params["name"], request.path_params["day"]
        from dbproc.web.app import parse_day

        when = parse_day(text)
        rows = self.archive.files(
            inventory.FileQuery(products=[name], since=when, until=when, all_versions=True)
        )
        return self.page(
            "day.html",
            request,
            product=name,
            day=text,
            files=[r.as_dict() for r in rows],
            title=f"{name} {text}",
        )

    def failures(self, request: Request) -> HTMLResponse:
        with self.archive.reading() as session:
            info = data.failures(session)
        return self.page("failures.html", request, info=info, title="failures")

    def review(self, request: Request) -> HTMLResponse:
        with self.archive.reading() as session:
            gated = self.dash.review.gated_products(session)
            pending = self.dash.review.pending(session, 500)
        return self.page("review.html", request, gated=gated, pending=pending, title="review")


def page_routes(dash: Dashboard, page: Page, html: Wrap, api: Wrap) -> list[Route]:
    """Every route but the live stream and the static files."""
    pages = Pages(dash, page)
    return [
        Route("/", html(pages.overview)),
        Route("/products/{name}", html(pages.product)),
        Route("/products/{name}/{day}", html(pages.day)),
        Route("/files/{filename}", html(pages.file)),
        Route("/runs/{run_id}", html(pages.run)),
        Route("/failures", html(pages.failures)),
        Route("/review", html(pages.review)),
        *_api_routes(dash, api),
    ]


def _run_id(request: Request) -> int:
    text = request.path_params["run_id"]
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"run {text!r}: a run id is a whole number") from None


class Api:
    """The JSON endpoints; the POST ones need actions allowed and the bearer token."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.archive = dash.archive

    def status(self, request: Request) -> Any:
        return self.archive.status()

    def files(self, request: Request) -> Any:
        from dbproc.web.app import files_api

        return files_api(self.archive, request)

    def lineage(self, request: Request) -> Any:
        return self.archive.lineage(
            request.path_params["filename"], depth=_int(request, "depth", 1, 1, 1000)
        )

    def run(self, request: Request) -> Any:
        return self.archive.run_record(_run_id(request))

    def events(self, request: Request) -> Any:
        since = _int(request, "since", 0, 0, 2**62)
        limit = _int(request, "limit", 1000, 1, 10000)
        with self.archive.reading() as session:
            return self.dash.feed.events_since(session, since, limit)

    def coverage(self, request: Request) -> Any:
        with self.archive.reading() as session:
            info = coverage_data.coverage(
                session, request.path_params["name"], request.query_params.get("period")
            )
        info["period"] = info["period"].label()
        return info

    def _denied(self, request: Request) -> Response | None:
        """The error response when actions are off or the bearer token is wrong."""
        from dbproc.web.app import error_json

        dash = self.dash
        denied = actions.check_bearer(
            dash.allow_actions, dash.token, request.headers.get("authorization")
        )
        if denied is not None:
            response = error_json(denied.message, denied.status)
            if denied.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None

    def verdict(self, request: Request) -> Any:
        denied = self._denied(request)
        if denied is not None:
            return denied
        body = _body(request)
        choice = body.get("verdict")
        if choice not in VERDICTS:
            raise UsageError(f"verdict {choice!r}: give one of {', '.join(VERDICTS)}")
        with self.archive.writing() as session:
            result = self.dash.review.record(
                session,
                request.path_params["filename"],
                choice,
                body.get("comment"),
                _who(request, body),
            )
        return result

    def retry(self, request: Request) -> Any:
        denied = self._denied(request)
        if denied is not None:
            return denied
        body = _body(request)
        with self.archive.writing() as session:
            result = actions.retry_run(session, _run_id(request), _who(request, body))
        return result


def _api_routes(dash: Dashboard, api: Wrap) -> list[Route]:
    endpoints = Api(dash)
    return [
        Route("/api/status", api(endpoints.status)),
        Route("/api/files", api(endpoints.files)),
        Route("/api/lineage/{filename}", api(endpoints.lineage)),
        Route("/api/runs/{run_id}", api(endpoints.run)),
        Route("/api/products/{name}/coverage", api(endpoints.coverage)),
        Route("/api/events", api(endpoints.events)),
        Route("/api/review/{filename}", api(endpoints.verdict), methods=["POST"]),
        Route("/api/runs/{run_id}/retry", api(endpoints.retry), methods=["POST"]),
    ]


def _body(request: Request) -> dict[str, Any]:
    """The JSON body of a POST, read synchronously (the handlers run in threads)."""
    import anyio.from_thread

    raw = anyio.from_thread.run(request.body)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise UsageError("the request body must be a JSON object") from None
    if not isinstance(value, dict):
        raise UsageError("the request body must be a JSON object")
    return value


def _who(request: Request, body: dict[str, Any]) -> str:
    name = body.get("by")
    client = request.client.host if request.client else "unknown"
    return (
        f"{name} (dashboard, {client})"
        if isinstance(name, str) and name
        else f"dashboard ({client})"
    )
