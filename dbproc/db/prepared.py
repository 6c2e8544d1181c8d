"""Statements of the process loop's hot path, run on the driver's own cursor.

SQLAlchemy's execution of a Core statement costs about 20 µs of Python on top of the
driver's 7 (cache lookup, parameter processing, an execution context and a result), and
a recorded run executes a dozen of them. A :class:`Prepared` statement is compiled once
per dialect and set of parameter names; each execution then converts the parameters
with the statement's own bind processors (the same conversions SQLAlchemy applies:
dates on SQLite, JSON, enums) and runs it on the DBAPI cursor of the caller's
connection, inside the transaction SQLAlchemy began. So the units of work
(:mod:`dbproc.db.unit`), the ``BEGIN IMMEDIATE`` recipe and the pool stay as they are.

A driver error is raised as SQLAlchemy raises it (``IntegrityError``,
``OperationalError``..., a lost connection invalidated first). A statement the driver
cannot be handed directly (Python-side column defaults, expanding ``IN`` lists, schema
translation), a connection with no transaction begun, or an engine with cursor-execute
listeners (instrumentation, the connection-loss fault tests) goes through SQLAlchemy's
``Connection.execute`` instead, with the same result.

On PostgreSQL every statement is a round trip to a server that shares the machine's
cores; :func:`together` holds a block's result-less statements and sends them as one
query (a recorded run's writes after its file's id: six statements, one round trip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, event, exc
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Executable

Params = Mapping[str, Any]
_Convert = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    """A statement compiled for one dialect and one set of parameter names."""

    sql: str
    #: per driver parameter: (its name for a named paramstyle, the key it is read from
    #: in the caller's parameters or None for a value fixed in the statement, that
    #: value, the bind processor)
    binds: tuple[tuple[str, str | None, Any, _Convert], ...]
    positional: bool
    #: result processors of the RETURNING or selected columns (None: the value as is)
    columns: tuple[_Convert, ...]

    def parameters(self, params: Params) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters for one row of the caller's."""
        values = (
            (params[key] if key is not None else fixed, convert)
            for _, key, fixed, convert in self.binds
        )
        converted = [value if convert is None else convert(value) for value, convert in values]
        if self.positional:
            return converted
        return {name: value for (name, *_), value in zip(self.binds, converted, strict=True)}


class Prepared:
    """One Core statement, executed on the driver's cursor (see the module docstring).

    ``lead`` gives, per dialect name, SQL that runs first, in the same transaction: on
    PostgreSQL in the same round trip (psycopg2 sends a string of statements as one
    query; with many rows, in their first page)."""

    def __init__(self, statement: Executable, *, lead: Mapping[str, str] | None = None) -> None:
        self.statement = statement
        self.lead = dict(lead or {})
        self._plans: dict[tuple[Any, ...], _Plan | None] = {}

    def execute(self, connection: Connection, params: Params | Sequence[Params]) -> None:
        """Run the statement once, or once per row (each row with the same names)."""
        rows = [params] if isinstance(params, Mapping) else list(params)
        if rows:
            self._run(connection, rows, fetch=False)

    def rows(self, connection: Connection, params: Params) -> list[tuple[Any, ...]]:
        """Run the statement once; the rows it returns (RETURNING, or a SELECT)."""
        return self._run(connection, [params], fetch=True)

    def scalar(self, connection: Connection, params: Params) -> Any:
        """Run the statement once; the one value of the one row it returns."""
        [(value, *_)] = self.rows(connection, params)
        return value

    def _run(
        self, connection: Connection, rows: list[Params], *, fetch: bool
    ) -> list[tuple[Any, ...]]:
        plan = self._plan(connection, rows[0])
        lead = self.lead.get(connection.dialect.name)
        if plan is None:
            if lead is not None:
                connection.exec_driver_sql(lead)
            result = connection.execute(self.statement, rows[0] if len(rows) == 1 else rows)
            return [tuple(row) for row in result] if fetch else []
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        driver_params: Any = None
        held = connection.info.get(HELD)
        try:
            if held is not None:  # inside together(): see there
                driver_params = [plan.parameters(row) for row in rows]
                statements = _mogrified(cursor, plan.sql, driver_params, lead)
                if not fetch:
                    held.extend(statements)
                    return []
                statements[:0], held[:] = held, []
                _send(cursor, statements)
            elif len(rows) == 1:
                driver_params = plan.parameters(rows[0])
                cursor.execute(plan.sql if lead is None else f"{lead};\n{plan.sql}", driver_params)
            else:
                driver_params = [plan.parameters(row) for row in rows]
                _execute_many(connection.dialect, cursor, plan.sql, driver_params, lead)
            found = cursor.fetchall() if fetch else []
        except connection.dialect.loaded_dbapi.Error as error:
            raise driver_error(connection, cursor, plan.sql, driver_params, error) from error
        finally:
            cursor.close()
        if not fetch:
            return []
        if not any(plan.columns):  # nothing to convert (and a text statement has none)
            return [tuple(row) for row in found]
        return [
            tuple(v if c is None else c(v) for v, c in zip(row, plan.columns, strict=True))
            for row in found
        ]

    def _plan(self, connection: Connection, params: Params) -> _Plan | None:
        """The compiled plan for these parameter names, or None: use SQLAlchemy."""
        if not connection.in_transaction() or instrumented(connection):
            return None
        dialect = connection.dialect
        keys = tuple(sorted(params))
        cache_key = (type(dialect), dialect.paramstyle, dialect.server_version_info, keys)
        try:
            return self._plans[cache_key]
        except KeyError:
            plan = self._plans[cache_key] = _compile(self.statement, dialect, keys)
            return plan


#: ``Connection.info`` key: the statements held inside :func:`together` (mogrified SQL)
HELD = "dbproc.held_statements"


@contextmanager
def together(connection: Connection) -> Iterator[None]:
    """Send the result-less statements of the block together (psycopg2 only).

    Inside, a :class:`Prepared` statement that returns nothing and would run on the
    driver is held; the held ones go with the next one that returns rows, or before any
    statement SQLAlchemy runs, or before the commit, or at the end of the block: a run of
    them costs one round trip instead of one each. Their order and transaction stay the
    same; an error in one of them is raised when they are sent. A rollback drops them, and
    so does an exception out of the block (the caller ends its unit). Elsewhere, or on an
    engine without :func:`hold_statements`, statements run at once as outside. Inside,
    nothing may use the driver's connection directly: it would run before the held ones
    (dbproc does so only in this module)."""
    if (
        connection.dialect.driver != "psycopg2"
        or HELD in connection.info
        or not event.contains(connection.engine, "before_execute", _send_held_before)
    ):
        yield
        return
    connection.info[HELD] = []
    try:
        yield
        send_held(connection)
    finally:
        if not connection.invalidated:  # (an invalidated one's info went with it)
            connection.info.pop(HELD, None)


def hold_statements(engine: Engine) -> None:
    """Let :func:`together` hold statements on ``engine``: what it holds is sent before
    SQLAlchemy runs a statement or commits, and dropped at a rollback."""
    event.listen(engine, "before_execute", _send_held_before)
    event.listen(engine, "commit", send_held)
    event.listen(engine, "rollback", _drop_held)


def send_held(connection: Connection) -> None:
    """Send the statements :func:`together` holds on ``connection`` (none: nothing)."""
    held = None if connection.invalidated else connection.info.get(HELD)
    if not held:
        return
    statements, held[:] = list(held), []
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        _send(cursor, statements)
    except connection.dialect.loaded_dbapi.Error as error:
        sql = b";\n".join(statements).decode(errors="replace")
        raise driver_error(connection, cursor, sql, None, error) from error
    finally:
        cursor.close()


def _send_held_before(connection: Connection, *_: Any) -> None:
    if not connection.invalidated:  # (its info would reconnect)
        send_held(connection)


def _drop_held(connection: Connection) -> None:
    held = None if connection.invalidated else connection.info.get(HELD)
    if held:
        held.clear()


def _send(cursor: Any, statements: list[bytes]) -> None:
    """Statements as strings of at most :data:`PAGE` (one round trip each); the
    cursor's rows are the last statement's."""
    for start in range(0, len(statements), PAGE):
        cursor.execute(b";".join(statements[start : start + PAGE]))


def instrumented(connection: Connection) -> bool:
    """Does anything listen to the statements the driver runs (then SQLAlchemy runs them)?"""
    dispatch = connection.dispatch
    return bool(dispatch.before_cursor_execute) or bool(dispatch.after_cursor_execute)


def _compile(statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
    """Compile ``statement`` for ``dialect`` as SQLAlchemy would for parameters named
    ``keys``; None when the driver cannot be handed the result directly, or when the
    compiler does not look as this module knows it (another SQLAlchemy release)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    if not isinstance(compiled, SQLCompiler):
        return None
    try:
        return _plan_of(compiled, dialect, keys)
    except (AttributeError, IndexError, TypeError):
        return None


def _plan_of(compiled: SQLCompiler, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.schema_translate_map
    ):
        return None
    names = compiled.positiontup if compiled.positional else list(compiled.binds)
    if names is None:
        return None
    escaped = getattr(compiled, "escaped_bind_names", None) or {}
    wanted = set(keys)
    binds = []
    for name in names:
        bind = compiled.binds[name]
        if bind.key in wanted:
            key: str | None = bind.key
        elif name in wanted:
            key = name
        elif bind.required or bind.callable is not None:
            return None  # a value SQLAlchemy would compute or demand at each execution
        else:
            key = None
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds.append((escaped.get(name, name), key, bind.value, convert))
    columns = tuple(  # (key, name, objects, type) of each column a row returns
        column[3].dialect_impl(dialect).result_processor(dialect, None)
        for column in compiled._result_columns
    )
    return _Plan(compiled.string, tuple(binds), compiled.positional, columns)


#: rows of one statement sent together on psycopg2 (one round trip a page)
PAGE = 100


def _execute_many(
    dialect: Dialect, cursor: Any, sql: str, rows: list[Any], lead: str | None = None
) -> None:
    """Many rows of one statement (after ``lead``, if given): on psycopg2 in pages of
    statements, one round trip a page, the lead in the first (its ``executemany`` makes
    one a row; this is what ``psycopg2.extras.execute_batch`` does); elsewhere the
    driver's ``executemany``."""
    if dialect.driver != "psycopg2":
        if lead is not None:
            cursor.execute(lead)
        cursor.executemany(sql, rows)
        return
    _send(cursor, _mogrified(cursor, sql, rows, lead))


def _mogrified(cursor: Any, sql: str, rows: list[Any], lead: str | None) -> list[bytes]:
    """psycopg2's text of ``sql`` for each row, after ``lead`` if given."""
    statements = [cursor.mogrify(sql, row) for row in rows]
    if lead is not None:
        statements.insert(0, lead.encode())  # SQL of ASCII, in any client encoding
    return statements


def driver_error(
    connection: Connection, cursor: Any, sql: str, params: Any, error: Any
) -> exc.DBAPIError:
    """The SQLAlchemy error for a driver error; a lost connection is invalidated first,
    as SQLAlchemy does, so that the pool never hands it out again."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(error)
    wrapped = exc.DBAPIError.instance(
        sql,
        params,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
    assert isinstance(wrapped, exc.DBAPIError)
    return wrapped
