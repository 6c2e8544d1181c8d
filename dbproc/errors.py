"""The one error base of dbproc and its subclasses, each carrying its exit code.

The CLI catches :class:`DbprocError` in one place and prints ``Error: <message>``;
the exit codes follow the contract (interface.md section 8).
"""

from __future__ import annotations


class DbprocError(Exception):
    """Base of every error dbproc raises on purpose. ``exit_code`` is what the CLI exits with."""

    exit_code = 1
    #: what went wrong, for ``--json`` error objects (contract section 11): one of
    #: usage, config, database, lock, schema, bug, failed
    kind = "bug"


class UsageError(DbprocError):
    """A bad option or argument given by the user (exit 2)."""

    exit_code = 2
    kind = "usage"


class ConfigError(DbprocError):
    """A bad mission file or an unknown product/process named by the user (exit 2).

    ``problems`` lists every problem found, each naming the table, the key and the fix.
    """

    exit_code = 2
    kind = "config"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            listing = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{message}\n{listing}"
        super().__init__(message)


class NotFound(DbprocError):
    """A file, product, process or run named by the user does not exist (exit 2)."""

    exit_code = 2
    kind = "usage"


class DatabaseError(DbprocError):
    """The database failed while in use (exit 1, with the URL, password hidden)."""

    exit_code = 1
    kind = "database"


class DatabaseUnreachable(DatabaseError):
    """The database path or URL cannot be opened: no such folder, not a database, wrong
    password, nothing listening (exit 2: the user must fix ``--db``)."""

    exit_code = 2


class SchemaNotAtHead(DbprocError):
    """The database schema is older than this dbproc (exit 5)."""

    exit_code = 5
    kind = "schema"


class SchemaMissing(DbprocError):
    """The database holds no dbproc schema yet (exit 5: run ``dbproc config apply``)."""

    exit_code = 5
    kind = "schema"


class LockHeld(DbprocError):
    """Another pass holds the lock and is alive (exit 4)."""

    exit_code = 4
    kind = "lock"


class PassIncomplete(DbprocError):
    """A pass finished but some runs failed or some files were rejected (exit 3)."""

    exit_code = 3
    kind = "failed"


class NeedsAttention(DbprocError):
    """A check found something a person must look at (exit 3)."""

    exit_code = 3
    kind = "failed"
