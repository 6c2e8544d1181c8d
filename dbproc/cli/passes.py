"""Commands that do work under the pass lock (ingest, process, run) or look at it
(plan, status, unlock)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from dbproc.cli.output import progress_bar, table
from dbproc.cli.state import AppState, command, pass_problem
from dbproc.errors import UsageError
from dbproc.executors import EXECUTORS

if TYPE_CHECKING:
    from dbproc.admin.plan_view import ChainBuild, RunningPass
    from dbproc.admin.status import ArchiveStatus


def _execution_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--retry-failed",
        is_flag=True,
        help="Also retry builds whose last run failed with the same inputs.",
    )(func)
    func = click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://host:8786 (with --executor dask).",
    )(func)
    func = click.option(
        "--executor",
        type=click.Choice(EXECUTORS),
        help="Where codes run (default: [execution] of the mission, else local).",
    )(func)
    func = click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        metavar="N",
        help="Codes run at once (default: one per core).",
    )(func)
    return func


def _run_pass(
    state: AppState,
    method: str,
    jobs: int | None,
    executor: str | None,
    scheduler: str | None,
    retry_failed: bool,
) -> None:
    archive = state.archive()
    with progress_bar("runs", enabled=not state.json) as bar:

        def progress(done: int, total: int, failed: int) -> None:
            if bar is not None:
                bar(done, total)

        kwargs: dict[str, Any] = dict(
            jobs=jobs,
            executor=executor,
            scheduler=scheduler,
            retry_failed=retry_failed,
            process_progress=progress,
        )
        report = getattr(archive, method)(**kwargs)
    data = report.as_dict()
    state.finish(data, report.summary(), report.exit_code, pass_problem(data))


def register(cli: click.Group) -> None:  # long: it holds the commands, each short
    """Add this module's commands to ``cli``."""

    @command(cli, "ingest")
    def ingest(state: AppState) -> None:
        """Ingest the files waiting in the incoming folder (one locked pass).

        Each file is identified by exactly one product (its format, then its inspector),
        placed in its product folder, registered, then removed from incoming. Refused
        files go to <errors>/rejected/ with the reason. Exit 3 when anything was refused,
        4 when another pass holds the lock.

        Example:

        \b
            dbproc --db mission.sqlite ingest --json
        """
        with progress_bar("ingest", enabled=not state.json) as progress:
            report = state.archive().ingest(progress=progress)
        data = report.as_dict()
        state.finish(data, report.summary(), report.exit_code, pass_problem(data))

    @command(cli, "process")
    @_execution_options
    def process(
        state: AppState,
        jobs: int | None,
        executor: str | None,
        scheduler: str | None,
        retry_failed: bool,
    ) -> None:
        """Build everything buildable, until nothing is left (one locked pass).

        Exit 3 when a run failed (its log is under <errors>/runs/<run id>/), 4 when
        another pass holds the lock.

        Example:

        \b
            dbproc --db mission.sqlite process --jobs 4
        """
        _run_pass(state, "process", jobs, executor, scheduler, retry_failed)

    @command(cli, "run")
    @_execution_options
    def run(
        state: AppState,
        jobs: int | None,
        executor: str | None,
        scheduler: str | None,
        retry_failed: bool,
    ) -> None:
        """Ingest, then process: the command cron calls.

        Exit 0 when all went well, 3 when files were rejected or runs failed, 4 when
        another pass holds the lock (nothing was done; the next cron tick retries).

        Example:

        \b
            */10 * * * * dbproc --db /data/mission.sqlite --log-file /data/logs/dbproc.log run
        """
        _run_pass(state, "run", jobs, executor, scheduler, retry_failed)

    @command(cli, "plan")
    @click.option(
        "--chain",
        "chain",
        is_flag=True,
        help="The whole chain, level by level: what the pass would build in all.",
    )
    @click.option(
        "--next",
        "next_only",
        is_flag=True,
        help="Only the builds that can start now (the default).",
    )
    @click.option(
        "--all",
        "everything",
        is_flag=True,
        help="Plan every date of every process, not just what changed.",
    )
    @click.option("--retry-failed", is_flag=True, help="Include builds whose last run failed.")
    @click.option("--cascade", is_flag=True, hidden=True, help="The same as --chain.")
    def plan(
        state: AppState,
        chain: bool,
        next_only: bool,
        everything: bool,
        retry_failed: bool,
        cascade: bool,
    ) -> None:
        """Show what `dbproc process` would build now, with output names, versions and why.

        Changes nothing (database and files). By default the builds that can start now
        (level 1), with a line saying how many more follow downstream once they are
        built; --chain shows the whole chain, level by level (predicted by assuming each
        build succeeds). While a pass is running, the builds it already holds are marked.

        Example:

        \b
            dbproc plan
            dbproc plan --chain --json
        """
        chain = chain or cascade
        if chain and next_only:
            raise UsageError(
                "--chain (the whole chain) and --next (level 1) exclude each other; give one"
            )
        # the text says how many builds follow downstream, so it needs the chain too
        chain_plan = state.archive().plan_chain(
            next_only=not chain and state.json, everything=everything, retry_failed=retry_failed
        )
        builds = chain_plan.builds if chain else chain_plan.level(1)
        later = len(chain_plan.builds) - len(builds)
        state.emit(builds, _plan_text(builds, chain_plan.running, later))

    @command(cli, "status")
    def status(state: AppState) -> None:
        """Show the lock, the last passes, files per product, failures and pending builds.

        Example:

        \b
            dbproc status
        """
        found = state.archive().status()
        state.emit(found, _status_text(found))

    @command(cli, "check")
    @click.option(
        "--repair", is_flag=True, help="Fix what is safe (under the pass lock) and report the rest."
    )
    @click.option("--quick", is_flag=True, help="Compare sizes only; do not re-hash every file.")
    def check(state: AppState, repair: bool, quick: bool) -> None:
        """Compare the disk with the database: orphans, missing or changed files, leftovers.

        Exit 3 when something needs a person, 4 (with --repair) while a pass runs.

        Example:

        \b
            dbproc check
            dbproc check --repair --json
        """
        report = state.archive().check(repair=repair, checksums=not quick)
        state.finish(
            report.as_dict(),
            report.summary(),
            report.exit_code,
            "check found something a person must look at (see needs_attention)",
        )

    @command(cli, "unlock")
    @click.option(
        "--force",
        is_flag=True,
        help="Also clear a pass of another host whose heartbeat is still fresh.",
    )
    def unlock(state: AppState, force: bool) -> None:
        """Clear the flag of a pass whose process is gone (refused while it is alive).

        A crashed pass is normally taken over by the next pass on its own; this is for
        the operator who wants the flag gone now.

        Example:

        \b
            dbproc unlock
        """
        cleared = state.archive().unlock(force=force)
        state.emit(
            {"cleared": cleared},
            "\n".join(f"cleared {c}" for c in cleared) or "no pass flag was set",
        )


def _plan_text(builds: list[ChainBuild], running: RunningPass | None, later: int) -> str:
    lines = []
    if running is not None:
        holder = running.holder
        lines.append(
            f"a pass is running (pass {holder.pass_id if holder else '?'}"
            + (f" on {holder.host} pid {holder.pid}" if holder else "")
            + f"); it already holds {len(running.holds)} build(s)"
            + (", marked * below" if running.holds else "")
        )
    if not builds:
        lines.append("nothing to build")
        return "\n".join(lines)
    lines.append(
        table(
            [
                (
                    b.level,
                    ("* " if b.in_flight else "") + b.process,
                    b.date,
                    b.output or "(RUN)",
                    b.version or "",
                    b.reason,
                )
                for b in builds
            ],
            ["level", "process", "date", "output", "version", "reason"],
        )
    )
    levels = max(b.level for b in builds)
    lines.append(
        f"{len(builds)} build(s)"
        + (f" in {levels} levels (level 1 can start now)" if levels > 1 else "")
    )
    if later:
        lines.append(
            f"and {later} more build(s) downstream once these are built "
            "(`dbproc plan --chain` lists them)"
        )
    return "\n".join(lines)


def _status_text(found: ArchiveStatus) -> str:
    lock = found.lock
    lines = [f"mission {found.mission}"]
    if lock.held:
        holders = lock.passes_marked_running
        who = (
            f"pass {holders[0].pass_id} on {holders[0].host} pid {holders[0].pid}, "
            f"heartbeat {holders[0].heartbeat_age_seconds:.0f} s ago"
            if holders
            else "a dbproc process"
        )
        lines.append(f"lock: held by {who}")
    elif lock.stale:
        lines.append(
            "lock: free, but a pass is marked running (it crashed; the next pass "
            "recovers it, or run `dbproc unlock`)"
        )
    else:
        lines.append("lock: free")
    if found.passes:
        lines.append("last passes:")
        lines.append(
            table(
                [
                    (p.id, p.command, p.started_at.isoformat()[:19], p.state, p.outcome or "")
                    for p in found.passes
                ],
                ["pass", "command", "started (UTC)", "state", "outcome"],
            )
        )
    lines.append("files:")
    lines.append(
        table(
            [(name, c.newest, c.files) for name, c in found.files.items()],
            ["product", "newest", "all versions"],
        )
    )
    failed = found.failed_builds
    lines.append(
        "failed builds: " + (", ".join(f"{k} {v}" for k, v in failed.items()) if failed else "none")
    )
    pending = found.pending_by_process
    lines.append(
        f"pending builds: {found.pending_builds}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in pending.items()) + ")" if pending else "")
    )
    lines.append(f"rejected files waiting: {found.rejects}")
    return "\n".join(lines)
