"""Starting a run: its command line (no shell), its row, its folders, and how its outcome reads.

One transaction inserts the run row, or the rows of a group of runs started together
(crash point ``job.queued`` after it, once per run); the code then runs with no
transaction open. :mod:`dbproc.build.recording` records how it ended."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import String, bindparam, cast, func, literal_column, select
from sqlalchemy.orm import Session

from dbproc.build.planner import BuildAction
from dbproc.clock import utcnow
from dbproc.db.file_paths import MissionPaths, absolute_path
from dbproc.db.models import (
    Run,
    RunStatus,
    table_of,
)
from dbproc.db.prepared import Prepared
from dbproc.db.unit import commit
from dbproc.executors.base import JobResult, JobSpec
from dbproc.executors.launch import code_head
from dbproc.faults import crash_point
from dbproc.ingest.facts import FileFacts, ProductRule, facts_json
from dbproc.mission import resolve_code_path
from dbproc.version import Version

RUN_TABLE = table_of(Run)


#: the columns :func:`_run_row` gives a starting run
_STARTED_COLUMNS = (
    "pass_id",
    "process_id",
    "code_id",
    "date",
    "slot",
    "output_filename",
    "output_version",
    "reason",
    "bump",
    "build_key",
    "inputs",
    "argv",
    "status",
    "attempt",
    "queued_at",
    "started_at",
)


def _insert_run(new_id: Any) -> Prepared:
    """One statement that inserts a starting run with the id ``new_id`` gives and its run
    root (``root_prefix`` + the id) in the same row, and returns the id: a round trip less
    a run than an insert and then an update of the root."""
    chosen = select(new_id.label("id")).subquery("new_run")
    values = [bindparam(name, type_=RUN_TABLE.c[name].type) for name in _STARTED_COLUMNS]
    root = bindparam("root_prefix", type_=String()) + cast(chosen.c.id, String())
    rows = select(chosen.c.id, *values, root)
    columns = ["id", *_STARTED_COLUMNS, "run_root"]
    return Prepared(RUN_TABLE.insert().from_select(columns, rows).returning(RUN_TABLE.c.id))


#: by dialect: PostgreSQL takes the id from the column's sequence (as a default would);
#: SQLite from the largest id, as it does for a row without one (the pass holds the write
#: lock, ``BEGIN IMMEDIATE``, so no other writer can take the same id)
_INSERT_RUN = {
    "postgresql": _insert_run(
        func.nextval(func.pg_get_serial_sequence(literal_column("'run'"), literal_column("'id'")))
    ),
    "sqlite": _insert_run(
        select(
            func.coalesce(func.max(RUN_TABLE.c.id), literal_column("0")) + literal_column("1")
        ).scalar_subquery()
    ),
}


#: update a run's row (``rid``): the columns are the other keys of the parameters; run on
#: the driver's cursor (:mod:`dbproc.db.prepared`), compiled once per set of columns
UPDATE_RUN = Prepared(RUN_TABLE.update().where(RUN_TABLE.c.id == bindparam("rid")))


RESULT_STATUS = {
    "timeout": RunStatus.TIMEOUT,
    "worker_lost": RunStatus.WORKER_LOST,
    "cancelled": RunStatus.CANCELLED,
}


def run_logs_dir(paths: MissionPaths) -> Path:
    """Where the full logs of successful runs are kept."""
    return paths.root / ".dbproc" / "logs"


def run_root(paths: MissionPaths, run_id: int) -> Path:
    """The staging folder of one run (on the data root's filesystem)."""
    return Path(run_root_prefix(paths) + str(run_id))


def run_root_prefix(paths: MissionPaths) -> str:
    """What the staging folder of a run is named before its id."""
    return str(paths.staging / "run-")


def substitute(arg: str, values: Mapping[str, str]) -> str:
    """Replace ``{DATE}`` and friends in a code argument; other braces stay as they are."""
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def build_argv(action: BuildAction, paths: MissionPaths) -> tuple[str, ...]:
    """``CODE [args...] INPUT...`` (the output path is added by the worker); no shell."""
    head = code_head(resolve_code_path(paths.codes, action.code.path))
    d = action.date
    values = {
        "DATE": f"{d:%Y%m%d}",
        "Y": f"{d:%Y}",
        "m": f"{d:%m}",
        "d": f"{d:%d}",
        "ROOTDIR": str(paths.root),
        "CODEDIR": str(paths.codes),
        "CODEVERSION": str(action.code.version),
    }
    args = [substitute(a, values) for a in action.code.args]
    inputs = [str(absolute_path(paths.root, f.path)) for f in action.inputs]
    return (*head, *args, *inputs)


@dataclass
class RunOutcome:
    """What recording one result did."""

    run_id: int
    status: RunStatus
    process: str
    date: dt.date
    reason: str | None = None
    output: str | None = None
    version: str | None = None
    error: str | None = None
    queued: list[tuple[int, dt.date]] = field(default_factory=list)

    @classmethod
    def of(cls, run_id: int, status: RunStatus, action: BuildAction, **kwargs: Any) -> RunOutcome:
        """An outcome for a planned action."""
        version = str(action.output_version) if action.output_version else None
        return cls(
            run_id,
            status,
            action.process,
            action.date,
            action.reason.value,
            version=version,
            **kwargs,
        )

    def as_json(self) -> dict[str, Any]:
        """JSON shape of a finished run in a pass report."""
        return {
            "run_id": self.run_id,
            "process": self.process,
            "date": self.date.isoformat(),
            "output": self.output,
            "version": self.version,
            "reason": self.reason,
            "status": self.status.value,
            "error": self.error,
        }


def start_runs(
    session: Session,
    actions: Sequence[tuple[BuildAction, int]],
    *,
    pass_id: int | None,
    paths: MissionPaths,
    kill_grace: float,
) -> list[JobSpec]:
    """Insert the rows of runs of (action, process id) in ONE transaction (crash point
    ``job.queued`` after it, once per run) and return the jobs to submit, in order."""
    connection = session.connection()
    insert = _INSERT_RUN[connection.dialect.name]
    root_prefix = run_root_prefix(paths)
    started: list[tuple[BuildAction, tuple[str, ...], int]] = []
    for action, process_id in actions:
        argv = build_argv(action, paths)
        row = _run_row(action, process_id, pass_id, argv)
        run_id: int = insert.scalar(connection, {**row, "root_prefix": root_prefix})
        started.append((action, argv, run_id))
    commit(session)
    specs = []
    for action, argv, run_id in started:
        crash_point("job.queued")
        specs.append(_job(action, argv, run_id, paths, kill_grace))
    return specs


def _run_row(
    action: BuildAction, process_id: int, pass_id: int | None, argv: tuple[str, ...]
) -> dict[str, Any]:
    """The columns of a run starting now (:data:`_STARTED_COLUMNS`)."""
    now = utcnow()
    return {
        "pass_id": pass_id,
        "process_id": process_id,
        "code_id": action.code.id,
        "date": action.date,
        "slot": action.slot,
        "output_filename": action.output_filename,
        "output_version": str(action.output_version) if action.output_version else None,
        "reason": action.reason.value,
        "bump": action.bump.value if action.bump else None,
        "build_key": action.build_key,
        "inputs": [f.id for f in action.inputs],
        "argv": list(argv) + (["<OUTPUT>"] if action.output_filename else []),
        "status": RunStatus.RUNNING,
        "attempt": 1,  # given, not the column's default: a default is SQLAlchemy's to apply
        "queued_at": now,
        "started_at": now,
    }


def _job(
    action: BuildAction, argv: tuple[str, ...], run_id: int, paths: MissionPaths, kill_grace: float
) -> JobSpec:
    env = {
        "DBPROC_RUN_ID": str(run_id),
        "DBPROC_PROCESS": action.process,
        "DBPROC_DATE": action.date.isoformat(),
    }
    return JobSpec(
        run_id=run_id,
        attempt=1,
        argv=argv,
        run_root=str(run_root(paths, run_id)),
        output_name=action.output_filename,
        env=env,
        timeout=action.code.timeout,
        kill_grace=kill_grace,
    )


def _when(epoch: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None) if epoch else None


def result_fields(result: JobResult) -> dict[str, Any]:
    started, ended = _when(result.started), _when(result.ended)
    return {
        "exit_code": result.exit_code,
        "signal": result.signal,
        "host": result.host,
        "started_at": started,
        "ended_at": ended,
        "duration": (result.ended - result.started) if result.started and result.ended else None,
        "peak_memory_kb": result.peak_memory_kb,
        "stdout_tail": result.stdout_tail,
        "stderr_tail": result.stderr_tail,
        "argv": list(result.argv) if result.argv else None,
    }


def stored_facts_json(facts: FileFacts) -> dict[str, Any]:
    """The facts of an output as kept with its promoting run (read back by recovery)."""
    return {**facts_json(facts), "product_id": facts.product.id, "slot": facts.slot}


def facts_from_json(data: Mapping[str, Any], rule: ProductRule) -> FileFacts:
    """Rebuild the facts saved in a ``promoting`` record."""
    return FileFacts(
        rule,
        dt.date.fromisoformat(data["date"]),
        dt.datetime.fromisoformat(data["start"]),
        dt.datetime.fromisoformat(data["stop"]),
        Version.parse(data["version"]),
        dict(data["keywords"]),
        dict(data["metadata"]),
        data["slot"],
    )
