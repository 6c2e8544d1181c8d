"""Lineage: parents and children of a file, to any depth, and the blast radius of a bad
input (``recall``). One query per level of the graph, never one per file."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db import queries
from dbproc.db.file_paths import absolute_path
from dbproc.db.models import Code, File, FileLink, Process, Product
from dbproc.db.queries import chunked
from dbproc.errors import UsageError
from dbproc.mission import resolve_code_path
from dbproc.provenance import runs
from dbproc.records import OMIT, Omitted, Record

DIRECTIONS = ("both", "up", "down")


@dataclass(frozen=True)
class Node:
    """A file in a lineage graph."""

    id: int
    filename: str
    product: str
    version: str
    date: dt.date
    newest: bool
    code_id: int | None
    run_id: int | None
    path: Path


@dataclass(frozen=True)
class CodeRef(Record):
    """The code that made a file."""

    path: str
    version: str
    process: str


@dataclass(frozen=True)
class LineageNode(Record):
    """A file of a lineage answer; ``depth`` (generations away) on ancestors and
    descendants only."""

    filename: str
    product: str
    version: str
    date: dt.date
    newest: bool
    path: Path
    code: CodeRef | None
    run: int | None
    depth: int | Omitted = OMIT


@dataclass(frozen=True, kw_only=True)
class Lineage(LineageNode):
    """``dbproc lineage``: a file, its direct ``parents`` and ``children`` (names), every
    file reached (``ancestors``, ``descendants``, with depth) and the links (``edges``)."""

    parents: list[str]
    children: list[str]
    ancestors: list[LineageNode]
    descendants: list[LineageNode]
    edges: list[tuple[str, str]]
    #: runs that rebuilt this file byte for byte (early cutoff)
    reproduced_by: list[dict[str, Any]]
    #: successful RUN-process runs that read it (not walked upwards)
    runs: list[dict[str, Any]] | Omitted = OMIT

    def nodes(self) -> dict[str, LineageNode]:
        """Every file of the answer by name, this one included."""
        out: dict[str, LineageNode] = {self.filename: self}
        for node in (*self.ancestors, *self.descendants):
            out[node.filename] = node
        return out


@dataclass(frozen=True)
class ProductRecall(Record):
    """The derived files of one product."""

    count: int
    newest: int
    files: list[LineageNode]


@dataclass(frozen=True)
class Recall(Record):
    """``dbproc recall``: every file derived from ``filename``, by product."""

    filename: str
    count: int
    newest: int
    by_product: dict[str, ProductRecall]

    def newest_names(self) -> list[str]:
        """The newest derived files (what ``--reprocess`` rebuilds)."""
        return [f.filename for p in self.by_product.values() for f in p.files if f.newest]


class _Graph:
    def __init__(self, session: Session) -> None:
        self.session = session
        mission = queries.get_mission(session)
        self.root = Path(mission.root_dir)
        self.codes_dir = Path(mission.codes_dir)
        self.products = {p.id: p.name for p in session.scalars(select(Product))}
        self._codes: dict[int, CodeRef] | None = None

    def nodes(self, ids: Iterable[int]) -> dict[int, Node]:
        out: dict[int, Node] = {}
        for batch in chunked(sorted(set(ids))):
            for f in self.session.scalars(select(File).where(File.id.in_(batch))):
                out[f.id] = Node(
                    f.id,
                    f.filename,
                    self.products[f.product_id],
                    str(f.version),
                    f.date,
                    f.is_newest,
                    f.code_id,
                    f.run_id,
                    absolute_path(self.root, f.path),
                )
        return out

    def step(self, ids: Iterable[int], up: bool) -> list[tuple[int, int]]:
        """(parent, child) links touching ``ids`` in one direction."""
        column = FileLink.child_id if up else FileLink.parent_id
        links: list[tuple[int, int]] = []
        for batch in chunked(sorted(set(ids))):
            links.extend(
                (p, c)
                for p, c in self.session.execute(
                    select(FileLink.parent_id, FileLink.child_id).where(column.in_(batch))
                )
            )
        return links

    def walk(
        self, start: int, up: bool, depth: int | None
    ) -> tuple[dict[int, int], list[tuple[int, int]]]:
        """Ids reached from ``start`` (id -> depth) and the links followed."""
        reached: dict[int, int] = {}
        edges: list[tuple[int, int]] = []
        frontier = {start}
        level = 0
        while frontier and (depth is None or level < depth):
            level += 1
            links = self.step(frontier, up)
            edges.extend(links)
            nxt = {p if up else c for p, c in links}
            frontier = {i for i in nxt if i not in reached and i != start}
            for i in frontier:
                reached[i] = level
        return reached, edges

    def code(self, code_id: int | None) -> CodeRef | None:
        if code_id is None:
            return None
        if self._codes is None:
            self._codes = {
                c.id: CodeRef(str(resolve_code_path(self.codes_dir, c.path)), str(c.version), name)
                for c, name in self.session.execute(
                    select(Code, Process.name).join(Process, Process.id == Code.process_id)
                )
            }
        return self._codes.get(code_id)


def _node_fields(graph: _Graph, node: Node) -> dict[str, Any]:
    return {
        "filename": node.filename,
        "product": node.product,
        "version": node.version,
        "date": node.date,
        "newest": node.newest,
        "path": node.path,
        "code": graph.code(node.code_id),
        "run": node.run_id,
    }


def _node(graph: _Graph, node: Node, depth: int) -> LineageNode:
    return LineageNode(**_node_fields(graph, node), depth=depth)


def lineage(
    session: Session, filename: str, *, depth: int | None = 1, direction: str = "both"
) -> Lineage:
    """Parents and children of ``filename`` with the code and run that made each.

    ``depth`` None means the whole ancestry/descendance. The contract's keys are
    ``filename``, ``parents``, ``children`` (direct ones) and ``code``; ``ancestors``
    and ``descendants`` list every file reached, with its depth, and ``edges`` the links.
    """
    if direction not in DIRECTIONS:
        raise UsageError(f"direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    if depth is not None and depth < 1:
        raise UsageError("--depth must be 1 or more (or use --all)")
    record = queries.get_file(session, filename)
    graph = _Graph(session)
    up_ids: dict[int, int] = {}
    down_ids: dict[int, int] = {}
    edges: list[tuple[int, int]] = []
    if direction in ("both", "up"):
        up_ids, up_edges = graph.walk(record.id, True, depth)
        edges += up_edges
    if direction in ("both", "down"):
        down_ids, down_edges = graph.walk(record.id, False, depth)
        edges += down_edges
    nodes = graph.nodes([record.id, *up_ids, *down_ids])
    me = nodes[record.id]

    def names(selected: dict[int, int], level: int | None = None) -> list[str]:
        return sorted(nodes[i].filename for i, d in selected.items() if level is None or d == level)

    return Lineage(
        **_node_fields(graph, me),
        parents=names(up_ids, 1),
        children=names(down_ids, 1),
        ancestors=[
            _node(graph, nodes[i], d)
            for i, d in sorted(up_ids.items(), key=lambda x: (x[1], nodes[x[0]].filename))
        ],
        descendants=[
            _node(graph, nodes[i], d)
            for i, d in sorted(down_ids.items(), key=lambda x: (x[1], nodes[x[0]].filename))
        ],
        edges=sorted(
            {(nodes[p].filename, nodes[c].filename) for p, c in edges if p in nodes and c in nodes}
        ),
        reproduced_by=runs.reproduced_by(session, record.id),
        runs=runs.run_consumers(session, record.id) if direction in ("both", "down") else OMIT,
    )


def to_dot(found: Lineage) -> str:
    """A lineage answer as a Graphviz digraph."""
    nodes = found.nodes()
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for name, node in sorted(nodes.items()):
        style = ", style=bold" if name == found.filename else ""
        style += "" if node.newest else ", color=gray"
        label = f"{name}\\n{node.product} v{node.version}"
        lines.append(f'  "{_esc(name)}" [label="{_esc(label)}"{style}];')
    for parent, child in found.edges:
        code = nodes[child].code if child in nodes else None
        label = f' [label="{_esc(code.process)} {code.version}"]' if code else ""
        lines.append(f'  "{_esc(parent)}" -> "{_esc(child)}"{label};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n")


def recall(session: Session, filename: str) -> Recall:
    """Every file derived from ``filename`` at any depth (newest or not), by product."""
    record = queries.get_file(session, filename)
    graph = _Graph(session)
    reached, _edges = graph.walk(record.id, False, None)
    nodes = graph.nodes(reached)
    by_product: dict[str, list[LineageNode]] = defaultdict(list)
    for i, depth in sorted(reached.items(), key=lambda x: (x[1], nodes[x[0]].filename)):
        by_product[nodes[i].product].append(_node(graph, nodes[i], depth))
    return Recall(
        filename=record.filename,
        count=len(reached),
        newest=sum(1 for i in reached if nodes[i].newest),
        by_product={
            p: ProductRecall(len(v), sum(1 for x in v if x.newest), v)
            for p, v in sorted(by_product.items())
        },
    )
