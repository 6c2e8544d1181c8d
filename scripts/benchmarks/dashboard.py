"""Benchmark 4 — the dashboard's pages on a large archive.

The synthetic archive of benchmark 2 (10^4, 10^5, 10^6 file records) is bulk-loaded, the
dashboard is started on a loopback port (in this process, in a thread), and each page is
asked ``REPEAT`` times after one warm-up. The figure is the server's own time before it
answers (its ``Server-Timing`` header: queries and rendering), median and worst; the
client's wall time is given beside it. Goal: at most 300 ms at 10^6, flat with the size.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import archive
from .common import BenchError, Table, dbproc, say, scratch_db, workdir
from .mission import write_mission

FIRST_DAY = dt.date(1970, 1, 1)
PER_DAY = 24
REPEAT = 5
GOAL_MS = 300.0


def _get(url: str) -> tuple[float, float]:
    """(server ms, wall ms) of one GET."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        timing = response.headers.get("Server-Timing", "")
    wall = (time.perf_counter() - started) * 1000
    match = re.search(r"dur=([0-9.]+)", timing)
    if match is None:
        raise BenchError(f"{url}: no Server-Timing header")
    return float(match[1]), wall


def one_case(backend: str, n_files: int) -> dict[str, Any]:
    """Load an archive of about ``n_files`` records and time the pages on it."""
    from dbproc.web.server import BackgroundServer, dashboard_for

    with workdir(f"dashboard-{backend}-{n_files}") as tmp, scratch_db(backend, tmp) as db:
        mission = write_mission(tmp / "mission", hourly=True)
        dbproc(db, "-q", "config", "apply", str(mission.toml))
        days = archive.days_for(n_files, PER_DAY)
        say(f"  dashboard {backend} {n_files}: loading {days} days ...")
        built = archive.load(db, mission, first_day=FIRST_DAY, days=days, per_day=PER_DAY)
        middle = FIRST_DAY + dt.timedelta(days=days // 2)
        pages = {
            "/": "/",
            "/products/L2 (month)": "/products/L2",
            "/products/L2 (year)": f"/products/L2?period={middle.year}",
            "/files/L2 (2 hops)": "/files/" + quote(mission.l2_name(middle)),
            "/files/L1 (2 hops, 48 parents)": "/files/" + quote(mission.l1_name(middle)),
            "/api/status": "/api/status",
        }
        rows = []
        with BackgroundServer(dashboard_for(db)) as server:
            for label, path in pages.items():
                _get(server.url + path)  # warm-up: connection pool, templates
                times = [_get(server.url + path) for _ in range(REPEAT)]
                server_ms = [t[0] for t in times]
                rows.append(
                    {
                        "page": label,
                        "server_ms_median": statistics.median(server_ms),
                        "server_ms_max": max(server_ms),
                        "wall_ms_median": statistics.median(t[1] for t in times),
                    }
                )
                say(f"    {label}: {rows[-1]['server_ms_median']:.0f} ms server")
        return {"backend": backend, "files": built.files, "days": days, "pages": rows}


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None = None
) -> tuple[Table, list[dict[str, Any]]]:
    """Every (backend, size); the table and the raw results."""
    table = Table(
        "dashboard: server time of the pages on a synthetic archive",
        [
            "backend",
            "file rows",
            "page",
            "server ms (median)",
            "server ms (max)",
            "wall ms",
            "goal",
        ],
    )
    results = []
    for backend in backends:
        for n in sizes:
            r = one_case(backend, n)
            results.append(r)
            for i, p in enumerate(r["pages"]):
                table.add(
                    backend if i == 0 else "",
                    r["files"] if i == 0 else "",
                    p["page"],
                    p["server_ms_median"],
                    p["server_ms_max"],
                    p["wall_ms_median"],
                    "ok" if p["server_ms_median"] <= GOAL_MS else "SLOW",
                )
    table.notes += [
        f"median of {REPEAT} requests after a warm-up; server time = the "
        "Server-Timing header (queries + rendering, before the first byte)",
        "/api/status is the CLI's `status --json` (it plans pending work too)",
    ]
    return table, results
