"""dbproc: a relational file-lineage processing controller.

Importing this package creates no file and configures no logging. The Python API
starts at :func:`open`::

    import dbproc
    archive = dbproc.open("sqlite:///mission.sqlite")
    archive.lineage("testDB_20160101_v1.0.0.cat")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from dbproc.api import Archive


def open(db: str) -> Archive:  # noqa: A001 - mirrors sqlite3.connect / dbm.open naming
    """Open the mission database at ``db`` (a SQLAlchemy URL or a SQLite path)."""
    from dbproc.api import Archive

    return Archive(db)


__all__ = ["__version__", "open"]
