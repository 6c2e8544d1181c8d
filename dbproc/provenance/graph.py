"""The provenance graph of a set of files, read in a few set-based queries: the files
(and their ancestors to a depth), the runs that made them, their codes, and the RUN runs
that used them. :mod:`dbproc.provenance.prov_export` and ``rocrate_export`` render it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db import queries
from dbproc.db.models import (
    Code,
    File,
    FileLink,
    Process,
    Product,
    Reproduction,
    Run,
    RunStatus,
)
from dbproc.db.queries import chunked
from dbproc.errors import UsageError


@dataclass(frozen=True)
class FileNode:
    id: int
    filename: str
    product: str
    date: dt.date
    version: str
    sha256: str
    size: int
    path: str
    run_id: int | None
    code_id: int | None
    newest: bool
    state: str


@dataclass(frozen=True)
class RunNode:
    id: int
    process: str
    code_id: int
    date: dt.date
    status: str
    started: dt.datetime | None
    ended: dt.datetime | None
    inputs: tuple[int, ...]
    argv: tuple[str, ...]


@dataclass(frozen=True)
class CodeNode:
    id: int
    process: str
    version: str
    path: str
    sha256: str | None


@dataclass
class ProvGraph:
    """Files, runs, codes and links (parent id, child id) of an export."""

    mission: str
    files: dict[int, FileNode] = field(default_factory=dict)
    runs: dict[int, RunNode] = field(default_factory=dict)
    codes: dict[int, CodeNode] = field(default_factory=dict)
    links: set[tuple[int, int]] = field(default_factory=set)
    #: early cutoff: (file id, run id) of runs that reproduced a file identically
    reproductions: list[tuple[int, int]] = field(default_factory=list)
    _parents: dict[int, list[int]] | None = field(default=None, repr=False)

    def parents(self, child: int) -> list[int]:
        """Parents of ``child`` within the graph, by id."""
        if self._parents is None:
            self._parents = {}
            for parent, kid in self.links:
                self._parents.setdefault(kid, []).append(parent)
        return sorted(self._parents.get(child, ()))


def _file_rows(
    session: Session, ids: Sequence[int] | None, products: dict[int, str], root: Path
) -> list[FileNode]:
    """File nodes of ``ids`` (None: every file, in one query)."""
    out = []
    columns = (
        File.id,
        File.filename,
        File.product_id,
        File.date,
        File.interface,
        File.quality,
        File.revision,
        File.sha256,
        File.size,
        File.path,
        File.run_id,
        File.code_id,
        File.is_newest,
        File.on_disk,
        File.purged_at,
    )
    statements = (
        [select(*columns)]
        if ids is None
        else [select(*columns).where(File.id.in_(b)) for b in chunked(sorted(ids))]
    )
    prefix = f"{root}/"
    for stmt in statements:
        for f in session.execute(stmt):
            state = "purged" if f.purged_at is not None else "present" if f.on_disk else "missing"
            path = f.path if f.path.startswith("/") else prefix + f.path
            out.append(
                FileNode(
                    f.id,
                    f.filename,
                    products[f.product_id],
                    f.date,
                    f"{f.interface}.{f.quality}.{f.revision}",
                    f.sha256,
                    f.size,
                    path,
                    f.run_id,
                    f.code_id,
                    bool(f.is_newest),
                    state,
                )
            )
    return out


def select_files(
    session: Session,
    filenames: Sequence[str] = (),
    product: str | None = None,
    everything: bool = False,
) -> list[int]:
    """Ids of the files an export starts from."""
    if sum(bool(x) for x in (filenames, product, everything)) != 1:
        raise UsageError("give FILENAME..., or --product P, or --all (exactly one of them)")
    if everything:
        return list(session.scalars(select(File.id)))
    if product is not None:
        pid = queries.get_product(session, product).id
        return list(session.scalars(select(File.id).where(File.product_id == pid)))
    return [queries.get_file(session, name).id for name in filenames]


def load_graph(
    session: Session,
    start: Sequence[int],
    depth: int | None = None,
    *,
    run_consumers: bool = True,
    everything: bool = False,
) -> ProvGraph:
    """The graph of ``start`` and its ancestors (``depth`` generations; None: all)."""
    mission = queries.get_mission(session)
    root = Path(mission.root_dir)
    products = {i: n for i, n in session.execute(select(Product.id, Product.name))}
    graph = ProvGraph(mission.name)
    if everything:  # every link at once instead of level by level
        graph.links = {
            (p, c) for p, c in session.execute(select(FileLink.parent_id, FileLink.child_id))
        }
        wanted = set(start)
    else:
        graph.links, wanted = _ancestor_links(session, start, depth)
    rows = _file_rows(session, None if everything else sorted(wanted), products, root)
    graph.files = {f.id: f for f in rows}
    run_ids = {f.run_id for f in graph.files.values() if f.run_id is not None}
    graph.reproductions = _reproductions(session, graph, everything)
    run_ids |= {run for _file, run in graph.reproductions}
    _load_runs(session, graph, run_ids)
    if run_consumers:
        _load_run_consumers(session, graph)
    _load_codes(session, graph, Path(mission.codes_dir))
    return graph


def _ancestor_links(
    session: Session, start: Sequence[int], depth: int | None
) -> tuple[set[tuple[int, int]], set[int]]:
    """The links among ``start`` and its ancestors (``depth`` generations; None: all),
    walked level by level, and the ids of those files."""
    links: set[tuple[int, int]] = set()
    wanted = set(start)
    frontier = set(start)
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        found: set[tuple[int, int]] = set()
        for batch in chunked(sorted(frontier)):
            found.update(
                (p, c)
                for p, c in session.execute(
                    select(FileLink.parent_id, FileLink.child_id).where(
                        FileLink.child_id.in_(batch)
                    )
                )
            )
        links |= found
        frontier = {p for p, _c in found} - wanted
        wanted |= frontier
    return {(p, c) for p, c in links if p in wanted and c in wanted}, wanted


def _load_codes(session: Session, graph: ProvGraph, codes_dir: Path) -> None:
    """The codes of the graph's runs and files (relative paths under ``codes_dir``)."""
    code_ids = {r.code_id for r in graph.runs.values()}
    code_ids |= {f.code_id for f in graph.files.values() if f.code_id is not None}
    for batch in chunked(sorted(code_ids)):
        for code, name in session.execute(
            select(Code, Process.name)
            .join(Process, Process.id == Code.process_id)
            .where(Code.id.in_(batch))
        ):
            path = Path(code.path)
            graph.codes[code.id] = CodeNode(
                code.id,
                name,
                str(code.version),
                str(path if path.is_absolute() else codes_dir / path),
                code.sha256,
            )


def _reproductions(session: Session, graph: ProvGraph, everything: bool) -> list[tuple[int, int]]:
    stmt = select(Reproduction.file_id, Reproduction.run_id).order_by(Reproduction.id)
    if everything:
        return [(f, r) for f, r in session.execute(stmt)]
    out: list[tuple[int, int]] = []
    for batch in chunked(sorted(graph.files)):
        out.extend((f, r) for f, r in session.execute(stmt.where(Reproduction.file_id.in_(batch))))
    return out


def _run_node(run: Run, name: str) -> RunNode:
    return RunNode(
        run.id,
        name,
        run.code_id,
        run.date,
        run.status,
        run.started_at,
        run.ended_at,
        tuple(run.inputs or ()),
        tuple(str(a) for a in run.argv or ()),
    )


def _load_runs(session: Session, graph: ProvGraph, ids: set[int]) -> None:
    for batch in chunked(sorted(ids)):
        for run, name in session.execute(
            select(Run, Process.name)
            .join(Process, Process.id == Run.process_id)
            .where(Run.id.in_(batch))
        ):
            graph.runs[run.id] = _run_node(run, name)


def _load_run_consumers(session: Session, graph: ProvGraph) -> None:
    """Successful runs of RUN processes whose inputs are all in the graph."""
    for run, name in session.execute(
        select(Run, Process.name)
        .join(Process, Process.id == Run.process_id)
        .where(Process.output_product_id.is_(None), Run.status == RunStatus.SUCCEEDED)
    ):
        inputs = tuple(run.inputs or ())
        if inputs and all(i in graph.files for i in inputs):
            graph.runs[run.id] = _run_node(run, name)


def run_inputs(graph: ProvGraph, run: RunNode, output: int | None) -> list[int]:
    """The files a run used: its recorded inputs, else the output's parents."""
    if run.inputs:
        return [i for i in run.inputs if i in graph.files]
    if output is None:
        return []
    return graph.parents(output)
