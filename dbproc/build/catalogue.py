"""The mission's products, processes and codes as the planner sees them.

:func:`load_catalogue` reads them whole (they are small) into a frozen :class:`Catalogue`:
the active processes as :class:`~dbproc.build.plan_types.ProcessSpec` s with their inputs
and active codes, every code as a :class:`~dbproc.build.plan_types.CodeSpec`, and the
id/name maps the snapshot loader and the process loop translate rows with.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.build.plan_types import CodeSpec, InputSpec, ProcessSpec
from dbproc.db.models import Code, Process, ProcessInput, Product
from dbproc.version import Version


@dataclass(frozen=True)
class Catalogue:
    """Products, processes and codes of the mission (small; loaded whole)."""

    processes: dict[str, ProcessSpec]
    process_ids: dict[str, int]
    process_names: dict[int, str]
    product_names: dict[int, str]
    product_ids: dict[str, int]
    max_span: dict[int, float]
    codes: dict[int, CodeSpec]
    levels: dict[str, float] = field(default_factory=dict)
    #: ids of ``review = true`` products: their inputs are the newest *passed* versions
    reviewed: frozenset[int] = frozenset()


def code_spec(code: Code) -> CodeSpec:
    """A code row as the planner sees it."""
    return CodeSpec(
        id=code.id,
        version=Version(code.interface, code.quality, code.revision),
        output_interface=code.output_interface,
        valid_from=code.valid_from,
        valid_until=code.valid_until,
        path=code.path,
        args=tuple(code.args or ()),
        timeout=code.timeout,
    )


def load_catalogue(session: Session) -> Catalogue:
    """Active processes with their inputs and active code; every product and code."""
    products = {p.id: p for p in session.scalars(select(Product))}
    codes = {c.id: c for c in session.scalars(select(Code))}
    inputs: dict[int, list[ProcessInput]] = defaultdict(list)
    for item in session.scalars(
        select(ProcessInput).order_by(ProcessInput.process_id, ProcessInput.position)
    ):
        inputs[item.process_id].append(item)
    processes: dict[str, ProcessSpec] = {}
    process_ids: dict[str, int] = {}
    process_names: dict[int, str] = {}
    for proc in session.scalars(select(Process).order_by(Process.name)):
        process_names[proc.id] = proc.name
        if not proc.active:
            continue
        active_codes = sorted(
            (c for c in codes.values() if c.process_id == proc.id and c.active),
            key=lambda c: (c.valid_from or dt.date.min, c.interface, c.quality, c.revision),
        )
        active = active_codes[0] if active_codes else None
        output = products[proc.output_product_id] if proc.output_product_id else None
        processes[proc.name] = ProcessSpec(
            name=proc.name,
            timebase=proc.timebase,
            inputs=tuple(
                InputSpec(products[i.product_id].name, i.before, i.after, i.optional)
                for i in inputs[proc.id]
            ),
            code=code_spec(active) if active else None,
            output=output.name if output else None,
            output_format=output.format if output else None,
            id=proc.id,
            codes=tuple(code_spec(c) for c in active_codes) if len(active_codes) > 1 else (),
        )
        process_ids[proc.name] = proc.id
    return Catalogue(
        processes=processes,
        process_ids=process_ids,
        process_names=process_names,
        product_names={i: p.name for i, p in products.items()},
        product_ids={p.name: i for i, p in products.items()},
        max_span={i: p.max_span_seconds for i, p in products.items()},
        codes={i: code_spec(c) for i, c in codes.items()},
        levels={p.name: p.level for p in products.values()},
        reviewed=frozenset(i for i, p in products.items() if p.review),
    )
