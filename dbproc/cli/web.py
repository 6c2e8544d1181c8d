"""``dbproc serve``: the web dashboard (needs the ``web`` extra)."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from dbproc.cli.state import AppState, command
from dbproc.errors import UsageError

INSTALL_HINT = "dbproc serve needs the web extra: pip install 'dbproc[web]'"


def register(cli: click.Group) -> None:  # long: it holds the commands, each short
    """Add ``serve`` to ``cli``."""

    @command(cli, "serve")
    @click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Address to listen on (only this machine by default).",
    )
    @click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=8150,
        show_default=True,
        help="Port to listen on.",
    )
    @click.option(
        "--allow-actions",
        is_flag=True,
        help="Allow verdicts and retries over POST (needs --token-file).",
    )
    @click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File holding the bearer token that actions must send.",
    )
    def serve(
        state: AppState, host: str, port: int, allow_actions: bool, token_file: Path | None
    ) -> None:
        """Serve a web dashboard of the mission: coverage, files, lineage, runs, failures.

        Read-only unless --allow-actions is given with a --token-file; actions then need
        the header `Authorization: Bearer TOKEN`. Binds 127.0.0.1 unless --host says
        otherwise; see docs/dashboard.md for running it behind a reverse proxy.

        Example:

        \b
            dbproc serve --db mission.sqlite
            dbproc serve --db mission.sqlite --allow-actions --token-file ~/.dbproc-token
        """
        if allow_actions and token_file is None:
            raise UsageError(
                "--allow-actions needs --token-file FILE holding the token that actions must send"
            )
        if token_file is not None and not allow_actions:
            raise UsageError("--token-file is only used with --allow-actions")
        try:
            server = importlib.import_module("dbproc.web.server")
        except ImportError as exc:
            raise UsageError(f"{INSTALL_HINT} ({exc})") from None
        dashboard = server.dashboard_for(
            state.archive().url.render_as_string(hide_password=False),
            allow_actions=allow_actions,
            token_file=token_file,
        )
        click.echo(
            f"dashboard on http://{host}:{port}/ "
            f"({'actions allowed' if allow_actions else 'read-only'}); Ctrl-C stops it",
            err=True,
        )
        server.serve(dashboard, host, port)
