"""Running the dashboard: in the foreground (``dbproc serve``) or in a thread (tests,
notebooks)."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
from pathlib import Path

import uvicorn

from dbproc.api import Archive
from dbproc.db import queries
from dbproc.web.actions import read_token
from dbproc.web.app import Dashboard, create_app

logger = logging.getLogger("dbproc.web")

#: how long open live streams may keep a stopping server
GRACE_SECONDS = 2


def dashboard_for(
    db: str,
    *,
    allow_actions: bool = False,
    token_file: Path | None = None,
    poll_seconds: float = 1.0,
) -> Dashboard:
    """A dashboard of the mission in ``db``; checks the schema, the mission and the token
    before anything is served."""
    archive = Archive(db)
    with archive.reading() as session:
        queries.get_mission(session)
    token = read_token(token_file) if allow_actions and token_file is not None else None
    return Dashboard(archive, allow_actions=allow_actions, token=token, poll_seconds=poll_seconds)


def _config(
    dashboard: Dashboard, host: str, port: int, sock: socket.socket | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(dashboard),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
        lifespan="off",
    )


def serve(dashboard: Dashboard, host: str, port: int) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    if dashboard.allow_actions and not _loopback(host):
        logger.warning(
            "actions are allowed on %s over plain HTTP: put a TLS reverse proxy "
            "in front (docs/dashboard.md)",
            host,
        )
    logger.info(
        "dashboard of %r on http://%s:%s/ (%s)",
        dashboard.archive,
        host,
        port,
        "actions allowed" if dashboard.allow_actions else "read-only",
    )
    # uvicorn stops gracefully on SIGTERM, then raises the signal again for the handler
    # it found: make that one do nothing, so a stop by systemd or kill exits 0
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.Server(_config(dashboard, host, port)).run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class BackgroundServer:
    """The dashboard on a free loopback port in a daemon thread; ``url`` once started."""

    def __init__(self, dashboard: Dashboard, host: str = "127.0.0.1") -> None:
        self.dashboard = dashboard
        probe = socket.socket()
        probe.bind((host, 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(_config(dashboard, host, self.port))
        self._thread = threading.Thread(
            target=self._server.run, daemon=True, name="dbproc-dashboard"
        )

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        """Start and wait (bounded) until the server accepts connections."""
        self._thread.start()
        started = threading.Event()

        def watch() -> None:
            while not self._server.started and self._thread.is_alive():
                started.wait(0.02)
            started.set()

        threading.Thread(target=watch, daemon=True).start()
        if not started.wait(timeout) or not self._server.started:
            raise RuntimeError(f"the dashboard did not start on {self.url}")
        return self

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(GRACE_SECONDS + 10)
        self.dashboard.archive.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
