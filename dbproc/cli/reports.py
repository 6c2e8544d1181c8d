"""Read-mostly commands: files, rejects, inspect."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path
from typing import Any

import click

from dbproc.cli.output import table
from dbproc.cli.state import AppState, command, global_options, group_state
from dbproc.clock import iso_utc
from dbproc.errors import UsageError
from dbproc.ingest.incoming import printable, usable_name
from dbproc.provenance.inventory import FileQuery, MetadataFilter, RunQuery
from dbproc.version import Version


def parse_date(value: str | None, option: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` option value."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r}: write a date as YYYY-MM-DD") from None


def _missing(
    state: AppState, product: str, since: dt.date | None, until: dt.date | None, by: str
) -> None:
    """``files --missing``: the dates (or, ``by`` hour, the cadence slots) without a file."""
    archive = state.archive()
    if by == "hour":
        slots = archive.missing_slots(product, since, until)
        hours = [(iso_utc(r.start), iso_utc(r.stop), r.reason) for r in slots]
        state.emit(
            slots, table(hours, ["start", "stop", "reason"]) or f"no missing {product} files"
        )
        return
    dates = archive.missing(product, since, until)
    rows = [(r.date, r.reason, "; ".join(r.evidence)) for r in dates]
    state.emit(dates, table(rows, ["date", "reason", "evidence"]) or f"no missing {product} files")


def register(cli: click.Group) -> None:  # long: it holds the commands, each short
    """Add this module's commands to ``cli``."""

    @command(cli, "files")
    @click.option(
        "--product", "products", multiple=True, metavar="P", help="Only this product (repeatable)."
    )
    @click.option("--all-versions", is_flag=True, help="Every version, not just the newest.")
    @click.option("--newest", is_flag=True, help="Only the newest version (the default).")
    @click.option("--since", metavar="YYYY-MM-DD", help="Only files dated on or after.")
    @click.option("--until", metavar="YYYY-MM-DD", help="Only files dated on or before.")
    @click.option("--version", "version_text", metavar="X.Y.Z", help="Only this version.")
    @click.option(
        "--where",
        "where",
        multiple=True,
        metavar="KEY=VALUE",
        help="Filter on inspector metadata (also KEY<V, KEY>V, KEY!=V).",
    )
    @click.option(
        "--missing",
        is_flag=True,
        help="Instead: dates in --since..--until where an expected file of "
        "--product does not exist, and why.",
    )
    @click.option(
        "--by",
        "by",
        type=click.Choice(["day", "hour"]),
        default="day",
        help="With --missing: per day, or per slot of the product's cadence.",
    )
    def files(
        state: AppState,
        products: tuple[str, ...],
        all_versions: bool,
        newest: bool,
        since: str | None,
        until: str | None,
        version_text: str | None,
        where: tuple[str, ...],
        missing: bool,
        by: str,
    ) -> None:
        """List registered files (newest versions unless --all-versions).

        Example:

        \b
            dbproc files --product L1 --since 2016-01-01 --json
            dbproc files --where 'temperature_K<0.02' --where run=R42
            dbproc files --product L2 --missing --since 2016-01-01 --until 2016-12-31
        """
        if missing:
            if len(products) != 1:
                raise UsageError("--missing needs exactly one --product")
            _missing(
                state, products[0], parse_date(since, "--since"), parse_date(until, "--until"), by
            )
            return
        if newest and all_versions:
            raise UsageError("--newest and --all-versions exclude each other")
        try:
            version = Version.parse(version_text) if version_text else None
        except ValueError as exc:
            raise UsageError(f"--version: {exc}") from None
        query = FileQuery(
            products=products,
            all_versions=all_versions,
            since=parse_date(since, "--since"),
            until=parse_date(until, "--until"),
            version=version,
            where=[MetadataFilter.parse(w) for w in where],
        )
        found = state.archive().files(query)
        text = (
            table(
                [
                    (
                        r.filename,
                        r.product,
                        r.date,
                        r.version,
                        "yes" if r.newest else "no (purged)" if r.state == "purged" else "no",
                    )
                    for r in found
                ],
                ["filename", "product", "date", "version", "newest"],
            )
            or "no files"
        )
        state.emit(found, text)

    @click.group("rejects", invoke_without_command=True)
    @click.option("--all", "include_retried", is_flag=True, help="Include retried rejects.")
    @global_options
    @click.pass_context
    def rejects(ctx: click.Context, /, include_retried: bool, **global_values: Any) -> None:
        """List incoming files that were refused, with the reason.

        Example:

        \b
            dbproc rejects --json
            dbproc rejects retry testDB_000_017.raw
        """
        state = group_state(ctx, **global_values)
        if ctx.invoked_subcommand is not None:
            return
        rows = state.archive().rejects(include_retried=include_retried)
        text = (
            table(
                [
                    (r.filename, r.reason, (iso_utc(r.rejected_at) or "")[:19], r.message)
                    for r in rows
                ],
                ["filename", "reason", "when", "why"],
            )
            or "no rejects"
        )
        state.emit(rows, text)

    @command(rejects, "retry")
    @click.argument("names", nargs=-1)
    def rejects_retry(state: AppState, names: tuple[str, ...]) -> None:
        """Move rejected files (all, or NAMES) back to incoming for the next pass.

        Example:

        \b
            dbproc rejects retry
        """
        result = state.archive().retry_rejects(names)
        lines = [f"moved back: {n}" for n in result.moved]
        lines += [f"skipped {s}" for s in result.skipped]
        state.emit(result, "\n".join(lines) or "nothing to retry")

    cli.add_command(rejects)

    @click.group("runs", invoke_without_command=True)
    @click.option("--failed", is_flag=True, help="Only failed runs.")
    @click.option("--process", "processes", multiple=True, metavar="P", help="Only process P.")
    @click.option(
        "--status",
        "statuses",
        multiple=True,
        metavar="S",
        help="Only this status (queued, running, succeeded, failed, timeout, ...).",
    )
    @click.option("--since", metavar="YYYY-MM-DD", help="Only runs for dates on or after.")
    @click.option("--until", metavar="YYYY-MM-DD", help="Only runs for dates on or before.")
    @click.option(
        "--limit", type=int, default=100, show_default=True, help="At most this many (0: all)."
    )
    @global_options
    @click.pass_context
    def runs(
        ctx: click.Context,
        /,
        failed: bool,
        processes: tuple[str, ...],
        statuses: tuple[str, ...],
        since: str | None,
        until: str | None,
        limit: int,
        **global_values: Any,
    ) -> None:
        """List run records (every execution of a code), newest first.

        Example:

        \b
            dbproc runs --failed
            dbproc runs show 42
        """
        state = group_state(ctx, **global_values)
        if ctx.invoked_subcommand is not None:
            return
        query = RunQuery(
            failed=failed,
            processes=processes,
            status=statuses,
            since=parse_date(since, "--since"),
            until=parse_date(until, "--until"),
            limit=limit or None,
        )
        rows = state.archive().runs(query)
        text = (
            table(
                [
                    (
                        r.id,
                        r.process,
                        r.date,
                        r.status,
                        r.reason,
                        r.output or "",
                        f"{r.duration:.2f}" if r.duration else "",
                        r.error or "",
                    )
                    for r in rows
                ],
                ["run", "process", "date", "status", "reason", "output", "seconds", "error"],
            )
            or "no runs"
        )
        state.emit(rows, text)

    @command(runs, "show")
    @click.argument("run_id", type=int)
    def runs_show(state: AppState, run_id: int) -> None:
        """Show one run: what it ran, how it ended, and its log.

        Example:

        \b
            dbproc runs show 42
        """
        run = state.archive().run_record(run_id)
        data = run.as_dict()
        lines = [
            f"run {run.id}: {run.process} {run.date} code {run.code_version}"
            f" - {run.status} ({run.reason})"
        ]
        for key in (
            "output",
            "version",
            "exit_code",
            "signal",
            "error",
            "host",
            "started_at",
            "ended_at",
            "duration",
            "peak_memory_kb",
            "log",
        ):
            if data.get(key) is not None:
                lines.append(f"  {key}: {data[key]}")
        lines.append(f"  command: {shlex.join(map(str, run.argv or []))}")
        if run.log_text:
            lines.append(run.log_text)
        else:
            for name in ("stdout_tail", "stderr_tail"):
                if data.get(name):
                    lines.append(f"--- {name} ---\n{data[name]}")
        state.emit(data, "\n".join(lines))

    cli.add_command(runs)

    @command(cli, "inspect")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def inspect(state: AppState, path: Path) -> None:
        """Run every product's inspector on one file and show who claims it (ingests nothing).

        The tool for writing an inspector: shows what each one returned or raised.

        Example:

        \b
            dbproc inspect /data/incoming/testDB_000_017.raw
        """
        result = state.archive().inspect_file(path).as_dict()
        result["file"] = printable(str(result["file"]))
        problem = usable_name(path.name)
        if problem is not None:  # an ingest pass refuses such a name before asking anyone
            result.update(
                claimed_by=None, reason="bad_name", message=f"cannot register it: {problem}"
            )
        lines = [f"file: {result['file']}"]
        claimed = result["claimed_by"]
        lines.append(
            f"claimed by: {claimed}" if claimed else f"not ingestible: {result['message']}"
        )
        answers = result["answers"]
        assert isinstance(answers, dict)
        for product, answer in sorted(answers.items()):
            if answer is None:
                lines.append(f"{product}: returned None (not this product)")
            elif "error" in answer:
                lines.append(f"{product}: {answer['error']}")
            else:
                lines.append(f"{product}:")
                for key in ("date", "start", "stop", "version", "keywords", "metadata"):
                    value = answer[key]
                    shown = (
                        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    )
                    lines.append(f"  {key}: {shown}")
        if result["format_mismatch"]:
            lines.append(
                "not asked (the name does not match their format): "
                + ", ".join(result["format_mismatch"])
            )
        if result["detail"]:
            lines.append(str(result["detail"]))
        state.finish(
            result,
            "\n".join(lines),
            0 if claimed else 3,
            f"no product claims {result['file']}: {result['message']}",
        )
