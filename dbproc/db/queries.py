"""Named, typed queries shared by the services. ``get_*`` raises NotFound, ``find_*``
returns None, ``list_*`` returns a list. Nothing here commits."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db.models import Code, File, Mission, Process, ProcessInput, Product
from dbproc.errors import NotFound

#: Rows per ``IN (...)`` list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500

T = TypeVar("T")


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Split ``items`` into lists of at most ``size``."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def find_mission(session: Session) -> Mission | None:
    """The mission row, or None before the first ``config apply``."""
    return session.scalars(select(Mission).order_by(Mission.id).limit(1)).first()


def get_mission(session: Session) -> Mission:
    """The mission row; NotFound tells the user to apply a mission file."""
    mission = find_mission(session)
    if mission is None:
        raise NotFound(
            "no mission is registered in this database; run `dbproc config apply MISSION.toml`"
        )
    return mission


def list_products(session: Session, *, active_only: bool = True) -> list[Product]:
    """Products by name."""
    stmt = select(Product).order_by(Product.name)
    if active_only:
        stmt = stmt.where(Product.active.is_(True))
    return list(session.scalars(stmt))


def get_product(session: Session, name: str) -> Product:
    """The product called ``name``, matched without regard to case (product names are
    unique that way); an unknown name is an error naming the nearest known ones."""
    product = session.scalars(select(Product).where(Product.name == name)).first()
    if product is not None:
        return product
    products = list_products(session)
    same = [p for p in products if p.name.casefold() == name.casefold()]
    if len(same) == 1:
        return same[0]
    names = [p.name for p in products]
    near = (
        difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        or [n for n in names if name.casefold() in n.casefold()][:3]
    )
    hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    known = ", ".join(names) or "none"
    raise NotFound(f"unknown product {name!r}{hint} (known products: {known})")


def list_processes(session: Session, *, active_only: bool = True) -> list[Process]:
    """Processes by name."""
    stmt = select(Process).order_by(Process.name)
    if active_only:
        stmt = stmt.where(Process.active.is_(True))
    return list(session.scalars(stmt))


def get_process(session: Session, name: str) -> Process:
    """The process called ``name``."""
    process = session.scalars(select(Process).where(Process.name == name)).first()
    if process is None:
        known = ", ".join(p.name for p in list_processes(session)) or "none"
        raise NotFound(f"unknown process {name!r}; known processes: {known}")
    return process


def list_inputs(session: Session, process_id: int) -> list[ProcessInput]:
    """A process's inputs in their order."""
    return list(
        session.scalars(
            select(ProcessInput)
            .where(ProcessInput.process_id == process_id)
            .order_by(ProcessInput.position)
        )
    )


def find_active_code(session: Session, process_id: int) -> Code | None:
    """The code version a process runs now."""
    return session.scalars(
        select(Code).where(Code.process_id == process_id, Code.active.is_(True))
    ).first()


def list_codes(session: Session, process_id: int) -> list[Code]:
    """Every registered version of a process's code, oldest first."""
    return list(
        session.scalars(
            select(Code)
            .where(Code.process_id == process_id)
            .order_by(Code.interface, Code.quality, Code.revision)
        )
    )


def find_file(session: Session, filename: str) -> File | None:
    """The file record called ``filename``."""
    return session.scalars(select(File).where(File.filename == filename)).first()


def get_file(session: Session, filename: str) -> File:
    """The file record called ``filename``; NotFound names it."""
    record = find_file(session, filename)
    if record is None:
        raise NotFound(
            f"no registered file is called {filename!r}; `dbproc files` lists what is registered"
        )
    return record
