"""The per-(product, day) coverage summary behind the dashboard's coverage grid.

:func:`record_coverage` is called by :func:`dbproc.db.files.register_file` for every new
file record, inside the caller's transaction, so the summary is never behind the files.
A page then reads at most a year of rows of one product instead of scanning ``file``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, case, text
from sqlalchemy.dialects import postgresql, sqlite

from dbproc.db.models import CoverageDay, table_of
from dbproc.version import Version

_COVERAGE = table_of(CoverageDay)
#: version parts are packed into one sortable integer: each part below 2**20
_PART = 1 << 20


def version_key(version: Version) -> int:
    """A version as one integer that sorts like the version."""
    return (version.interface * _PART + version.quality) * _PART + version.revision


def record_coverage(
    connection: Connection, product_id: int, date: dt.date, version: Version, *, new_slot: bool
) -> None:
    """Count one new file record of ``product_id`` on ``date`` (one upsert statement)."""
    key = version_key(version)
    values = {
        "product_id": product_id,
        "date": date,
        "files": 1,
        "slots": 1 if new_slot else 0,
        "version": str(version),
        "version_key": key,
    }
    dialect = connection.dialect.name
    stmt = (
        postgresql.insert(_COVERAGE) if dialect == "postgresql" else sqlite.insert(_COVERAGE)
    ).values(values)
    higher = stmt.excluded.version_key > _COVERAGE.c.version_key
    connection.execute(
        stmt.on_conflict_do_update(
            index_elements=[_COVERAGE.c.product_id, _COVERAGE.c.date],
            set_={
                "files": _COVERAGE.c.files + 1,
                "slots": _COVERAGE.c.slots + stmt.excluded.slots,
                "version": case((higher, stmt.excluded.version), else_=_COVERAGE.c.version),
                "version_key": case(
                    (higher, stmt.excluded.version_key), else_=_COVERAGE.c.version_key
                ),
            },
        )
    )


_REBUILD = f"""
INSERT INTO coverage_day (product_id, date, files, slots, version, version_key)
SELECT product_id, date, n, slots,
       CAST(k / {_PART * _PART} AS VARCHAR(12)) || '.' ||
       CAST((k / {_PART}) % {_PART} AS VARCHAR(12)) || '.' ||
       CAST(k % {_PART} AS VARCHAR(12)),
       k
FROM (SELECT product_id, date, COUNT(*) AS n,
             SUM(CASE WHEN is_newest THEN 1 ELSE 0 END) AS slots,
             MAX((CAST(interface AS BIGINT) * {_PART} + quality) * {_PART} + revision) AS k
      FROM file GROUP BY product_id, date) AS days
"""


def rebuild_coverage(connection: Connection) -> None:
    """Recompute the whole summary from ``file`` (the migration, bulk loads, repairs)."""
    connection.execute(text("DELETE FROM coverage_day"))
    connection.execute(text(_REBUILD))
