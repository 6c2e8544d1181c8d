"""Lineage: parents and children of a file, to any depth, and the blast radius of a bad
input (``recall``). One query per level of the graph, never one per file."""

from __future__ import annotations

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

DIRECTIONS = ("both", "up", "down")


@dataclass(frozen=True)
class Node:
    """A file in a lineage graph."""

    id: int
    filename: str
    product: str
    version: str
    date: str
    newest: bool
    code_id: int | None
    run_id: int | None
    path: str


class _Graph:
    def __init__(self, session: Session) -> None:
        self.session = session
        mission = queries.get_mission(session)
        self.root = Path(mission.root_dir)
        self.codes_dir = Path(mission.codes_dir)
        self.products = {p.id: p.name for p in session.scalars(select(Product))}
        self._codes: dict[int, dict[str, Any]] | None = None

    def nodes(self, ids: Iterable[int]) -> dict[int, Node]:
        out: dict[int, Node] = {}
        for batch in chunked(sorted(set(ids))):
            for f in self.session.scalars(select(File).where(File.id.in_(batch))):
                out[f.id] = Node(
                    f.id,
                    f.filename,
                    self.products[f.product_id],
                    str(f.version),
                    f.date.isoformat(),
                    f.is_newest,
                    f.code_id,
                    f.run_id,
                    str(absolute_path(self.root, f.path)),
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

    def code(self, code_id: int | None) -> dict[str, Any] | None:
        if code_id is None:
            return None
        if self._codes is None:
            self._codes = {
                c.id: {
                    "path": str(resolve_code_path(self.codes_dir, c.path)),
                    "version": str(c.version),
                    "process": name,
                }
                for c, name in self.session.execute(
                    select(Code, Process.name).join(Process, Process.id == Code.process_id)
                )
            }
        return self._codes.get(code_id)


def _node_json(graph: _Graph, node: Node, depth: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "filename": node.filename,
        "product": node.product,
        "version": node.version,
        "date": node.date,
        "newest": node.newest,
        "path": node.path,
        "code": graph.code(node.code_id),
        "run": node.run_id,
    }
    if depth is not None:
        data["depth"] = depth
    return data


def lineage(
    session: Session, filename: str, *, depth: int | None = 1, direction: str = "both"
) -> dict[str, Any]:
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

    data = _node_json(graph, me)
    data["parents"] = names(up_ids, 1)
    data["children"] = names(down_ids, 1)
    data["ancestors"] = [
        _node_json(graph, nodes[i], d)
        for i, d in sorted(up_ids.items(), key=lambda x: (x[1], nodes[x[0]].filename))
    ]
    data["descendants"] = [
        _node_json(graph, nodes[i], d)
        for i, d in sorted(down_ids.items(), key=lambda x: (x[1], nodes[x[0]].filename))
    ]
    data["edges"] = sorted(
        {(nodes[p].filename, nodes[c].filename) for p, c in edges if p in nodes and c in nodes}
    )
    data["reproduced_by"] = runs.reproduced_by(session, record.id)
    if direction in ("both", "down"):
        data["runs"] = runs.run_consumers(session, record.id)
    return data


def to_dot(data: dict[str, Any]) -> str:
    """A lineage result as a Graphviz digraph."""
    nodes = {data["filename"]: data}
    for item in (*data["ancestors"], *data["descendants"]):
        nodes[item["filename"]] = item
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for name, node in sorted(nodes.items()):
        style = ", style=bold" if name == data["filename"] else ""
        style += "" if node.get("newest", True) else ", color=gray"
        label = f"{name}\\n{node['product']} v{node['version']}"
        lines.append(f'  "{_esc(name)}" [label="{_esc(label)}"{style}];')
    for parent, child in data["edges"]:
        code = nodes.get(child, {}).get("code")
        label = f' [label="{_esc(code["process"])} {code["version"]}"]' if code else ""
        lines.append(f'  "{_esc(parent)}" -> "{_esc(child)}"{label};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n")


def recall(session: Session, filename: str) -> dict[str, Any]:
    """Every file derived from ``filename`` at any depth (newest or not), by product."""
    record = queries.get_file(session, filename)
    graph = _Graph(session)
    reached, _edges = graph.walk(record.id, False, None)
    nodes = graph.nodes(reached)
    by_product: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i, depth in sorted(reached.items(), key=lambda x: (x[1], nodes[x[0]].filename)):
        by_product[nodes[i].product].append(_node_json(graph, nodes[i], depth))
    return {
        "filename": record.filename,
        "count": len(reached),
        "newest": sum(1 for i in reached if nodes[i].newest),
        "by_product": {
            p: {"count": len(v), "newest": sum(1 for x in v if x["newest"]), "files": v}
            for p, v in sorted(by_product.items())
        },
    }
