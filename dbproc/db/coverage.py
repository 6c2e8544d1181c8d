"""The per-(product, day) and per-(product, month) coverage summaries behind the
dashboard's coverage grid, totals and plots.

:func:`record_coverage` is called by :func:`dbproc.db.files.register_file` for every new
file record, inside the caller's transaction, so the summaries are never behind the
files. A page then reads at most a year of day rows of one product, or the month rows,
instead of scanning ``file``. Code that deletes file records recounts the days it
touched with :func:`recount_coverage`.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterable
from functools import cache

from sqlalchemy import Connection, Date, Integer, bindparam, case, delete, literal, select, text

from dbproc.db.models import CoverageDay, CoverageMonth, table_of
from dbproc.db.prepared import Prepared
from dbproc.version import Version

_DAY = table_of(CoverageDay)
_MONTH = table_of(CoverageMonth)
#: version parts are packed into one sortable integer: each part below 2**20
_PART = 1 << 20


def version_key(version: Version) -> int:
    """A version as one integer that sorts like the version."""
    return (version.interface * _PART + version.quality) * _PART + version.revision


@cache
def _statements(dialect: str) -> tuple[Prepared, Prepared | None]:
    """The upserts of a new file record, built once per dialect (whose module is
    imported here: a pass on SQLite never loads SQLAlchemy's PostgreSQL dialect).

    SQLite: the day, then the month (two statements, no round trip). PostgreSQL: one
    statement, the month's upsert reading the day's from a data-modifying CTE (one round
    trip instead of two); the second item is then None."""
    module = "postgresql" if dialect == "postgresql" else "sqlite"
    insert = importlib.import_module(f"sqlalchemy.dialects.{module}").insert
    day_insert = insert(_DAY).values(
        product_id=bindparam("pid"),
        date=bindparam("date"),
        files=1,
        slots=bindparam("new_slot"),
        version=bindparam("version"),
        version_key=bindparam("key"),
    )
    higher = day_insert.excluded.version_key > _DAY.c.version_key
    day = day_insert.on_conflict_do_update(
        index_elements=[_DAY.c.product_id, _DAY.c.date],
        set_={
            "files": _DAY.c.files + 1,
            "slots": _DAY.c.slots + day_insert.excluded.slots,
            "version": case((higher, day_insert.excluded.version), else_=_DAY.c.version),
            "version_key": case(
                (higher, day_insert.excluded.version_key), else_=_DAY.c.version_key
            ),
        },
    ).returning(_DAY.c.files)
    if dialect == "postgresql":
        day_row = day.cte("day_row")
        source = select(
            bindparam("pid", type_=Integer),
            bindparam("month", type_=Date),
            case((day_row.c.files == 1, 1), else_=0),
            literal(1),
            bindparam("new_slot", type_=Integer),
        ).select_from(day_row)
        month = insert(_MONTH).from_select(
            ["product_id", "month", "days", "files", "slots"], source
        )
    else:
        month = insert(_MONTH).values(
            product_id=bindparam("pid"),
            month=bindparam("month"),
            days=bindparam("new_day"),
            files=1,
            slots=bindparam("new_slot"),
        )
    month = month.on_conflict_do_update(
        index_elements=[_MONTH.c.product_id, _MONTH.c.month],
        set_={
            "days": _MONTH.c.days + month.excluded.days,
            "files": _MONTH.c.files + 1,
            "slots": _MONTH.c.slots + month.excluded.slots,
        },
    )
    if dialect == "postgresql":
        return Prepared(month.add_cte(day_row)), None
    return Prepared(day), Prepared(month)


def record_coverage(
    connection: Connection, product_id: int, date: dt.date, version: Version, *, new_slot: bool
) -> None:
    """Count one new file record of ``product_id`` on ``date`` (the day's upsert, then
    the month's; one statement on PostgreSQL)."""
    first, second = _statements(connection.dialect.name)
    params = {
        "pid": product_id,
        "date": date,
        "month": date.replace(day=1),
        "new_slot": int(new_slot),
        "version": str(version),
        "key": version_key(version),
    }
    if second is None:
        first.execute(connection, params)
        return
    files = first.scalar(connection, {k: v for k, v in params.items() if k != "month"})
    second.execute(
        connection,
        {
            "pid": product_id,
            "month": params["month"],
            "new_day": int(files == 1),
            "new_slot": params["new_slot"],
        },
    )


_DAYS_FROM_FILES = f"""
INSERT INTO coverage_day (product_id, date, files, slots, version, version_key)
SELECT product_id, date, n, slots,
       CAST(k / {_PART * _PART} AS VARCHAR(12)) || '.' ||
       CAST((k / {_PART}) % {_PART} AS VARCHAR(12)) || '.' ||
       CAST(k % {_PART} AS VARCHAR(12)),
       k
FROM (SELECT product_id, date, COUNT(*) AS n,
             SUM(CASE WHEN is_newest THEN 1 ELSE 0 END) AS slots,
             MAX((CAST(interface AS BIGINT) * {_PART} + quality) * {_PART} + revision) AS k
      FROM file {{where}} GROUP BY product_id, date) AS days
"""
_MONTHS_FROM_DAYS = """
INSERT INTO coverage_month (product_id, month, days, files, slots)
SELECT product_id, {month} AS m, COUNT(*), SUM(files), SUM(slots)
FROM coverage_day {where} GROUP BY product_id, {month}
"""
_MONTH_OF = {
    "postgresql": "CAST(date_trunc('month', date) AS DATE)",
    "sqlite": "date(date, 'start of month')",
}


def rebuild_coverage(connection: Connection) -> None:
    """Recompute both summaries from ``file`` (the migration, bulk loads, repairs)."""
    month = _MONTH_OF[connection.dialect.name]
    connection.execute(text("DELETE FROM coverage_month"))
    connection.execute(text("DELETE FROM coverage_day"))
    connection.execute(text(_DAYS_FROM_FILES.format(where="")))
    connection.execute(text(_MONTHS_FROM_DAYS.format(month=month, where="")))


def recount_coverage(connection: Connection, product_id: int, dates: Iterable[dt.date]) -> None:
    """Recompute the summaries of some days of a product (after file records were
    deleted or changed by anything but :func:`record_coverage`)."""
    days = sorted(set(dates))
    if not days:
        return
    months = sorted({d.replace(day=1) for d in days})
    month = _MONTH_OF[connection.dialect.name]
    params = {"pid": product_id, "days": days, "months": months}
    connection.execute(delete(_DAY).where(_DAY.c.product_id == product_id, _DAY.c.date.in_(days)))
    connection.execute(
        text(_DAYS_FROM_FILES.format(where="WHERE product_id = :pid AND date IN :days")).bindparams(
            bindparam("days", expanding=True)
        ),
        params,
    )
    connection.execute(
        delete(_MONTH).where(_MONTH.c.product_id == product_id, _MONTH.c.month.in_(months))
    )
    connection.execute(
        text(
            _MONTHS_FROM_DAYS.format(
                month=month, where=f"WHERE product_id = :pid AND {month} IN :months"
            )
        ).bindparams(bindparam("months", expanding=True)),
        params,
    )
