"""The declarative base of the schema: its constraint naming convention, the JSON column
type (JSONB on PostgreSQL) and :func:`table_of`.

The tables themselves are in :mod:`dbproc.db.models` (and the ``models_*`` modules it
loads); import ``Base`` from there, so that its metadata holds every table.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, MetaData, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class JsonType(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL. SQLAlchemy's PostgreSQL types are loaded
    only when a PostgreSQL dialect asks (``JSON().with_variant(JSONB(), ...)`` would
    load that dialect in every command on SQLite: about 30 ms of a 0.35 s ``status``)."""

    impl = JSON
    cache_ok = True
    #: as JSON's: an explicit None is stored as JSON ``null``, an unset value as NULL
    should_evaluate_none = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


class Base(DeclarativeBase):
    """Declarative base with the constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JsonType(), list[Any]: JsonType()}


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, for statements on hot paths: a Core
    ``insert``/``update``/``delete`` skips the ORM's bulk-statement machinery (and its
    evaluation of the criteria against the session) and costs a fraction of the CPU."""
    return cast(Table, model.__table__)
