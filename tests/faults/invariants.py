"""The safety promises of interface.md section 9, as assertions on the database and the disk.

:func:`assert_consistent` is what every fault test checks after its recovery pass:

- every file record's file exists with the recorded size and sha256 (no record without
  its file), and every file in a product folder has a record (no file without its record);
- exactly one newest version per (product, date, slot), and it is the highest version;
- every built file has exactly one succeeded run, its recorded parents are that run's
  inputs, and (optionally) no output was built twice from the same code and inputs;
- no run is left queued, running or promoting;
- the staging folder is empty, the lock is free (no pass row running, and the OS or
  advisory lock can be taken), SQLite's ``integrity_check`` and ``foreign_key_check``
  pass;
- every original incoming file is registered and placed, still in incoming, or in
  ``errors/rejected`` (nothing lost);
- optionally: nothing is pending and ``plan`` has nothing to build.

Functions here open their own engine and close it, so they never hold a lock or a
transaction a pass could wait for.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from dbproc.control.os_lock import OsLock
from dbproc.db.engine import database_url
from dbproc.db.file_paths import STAGING_DIR, absolute_path
from dbproc.db.models import (
    ACTIVE_RUN_STATUSES,
    File,
    FileLink,
    Mission,
    PassRecord,
    PassState,
    Pending,
    Product,
    Run,
    RunStatus,
)
from tests.helpers import CliHarness


def sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def incoming_files(cli: CliHarness) -> dict[str, str]:
    """name -> sha256 of every regular file waiting in incoming (take before a pass)."""
    out: dict[str, str] = {}
    if cli.incoming.is_dir():
        for entry in os.scandir(cli.incoming):
            if entry.is_file(follow_symlinks=False):
                out[entry.name] = sha256(Path(entry.path))
    return out


@contextmanager
def engine_of(cli: CliHarness) -> Iterator[Engine]:
    """A throwaway engine on the harness's database (no pool: nothing stays open)."""
    engine = create_engine(database_url(cli.db), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def product_roots(cli: CliHarness, dirs: list[str]) -> list[Path]:
    """The folders under which product files live (each dir template's fixed part)."""
    roots: set[Path] = set()
    for template in dirs:
        fixed: list[str] = []
        for part in template.split("/"):
            if "{" in part:
                break
            fixed.append(part)
        roots.add(cli.root.joinpath(*fixed))
    return sorted(roots)


def files_in_product_folders(cli: CliHarness, dirs: list[str]) -> set[Path]:
    """Every file (or link) under the product folders."""
    found: set[Path] = set()
    for top in product_roots(cli, dirs):
        if top == cli.root:
            raise AssertionError("a product folder at the data root: name its folder")
        for dirpath, _dirs, names in os.walk(top):
            found.update(Path(dirpath) / n for n in names)
    return found


def lock_is_free(engine: Engine) -> bool:
    """Can the OS/advisory pass lock be taken right now?"""
    probe = OsLock(engine)
    if probe.try_acquire():
        probe.release()
        return True
    return False


def assert_consistent(
    cli: CliHarness,
    originals: Mapping[str, str] | None = None,
    *,
    idle: bool = True,
    no_duplicate_builds: bool = True,
    settled: bool = True,
) -> dict[str, Any]:
    """Assert every invariant (module docstring); return facts for further checks.

    ``originals`` (name -> sha256, from :func:`incoming_files`) are the files delivered
    before the fault; ``idle`` also asserts that nothing is pending. ``settled=False``
    is for the state right after a failed pass, before the next pass repaired it: runs
    may still be active or ``promoting`` with their staging, and work may be pending;
    every other invariant holds.
    """
    idle = idle and settled
    problems: list[str] = []
    with engine_of(cli) as engine, Session(engine, expire_on_commit=False) as session:
        products = {p.id: p for p in session.scalars(select(Product))}
        files = list(session.scalars(select(File).order_by(File.id)))
        runs = {r.id: r for r in session.scalars(select(Run))}
        links: dict[int, set[int]] = defaultdict(set)
        for child, parent in session.execute(select(FileLink.child_id, FileLink.parent_id)):
            links[child].add(parent)
        running = list(
            session.scalars(select(PassRecord).where(PassRecord.state == PassState.RUNNING))
        )
        pending = [
            (r.id, r.process_id, r.date, r.cause)
            for r in session.scalars(select(Pending).order_by(Pending.id))
        ]
        mission = session.scalars(select(Mission)).one()
        if engine.url.get_backend_name() == "sqlite":
            with engine.connect() as conn:
                integrity = [r[0] for r in conn.execute(text("PRAGMA integrity_check"))]
                fk = list(conn.execute(text("PRAGMA foreign_key_check")))
            if integrity != ["ok"]:
                problems.append(f"integrity_check: {integrity}")
            if fk:
                problems.append(f"foreign_key_check: {fk}")
        session.commit()  # ends the read transaction, keeps the objects loaded
        free = lock_is_free(engine)

    root = Path(mission.root_dir)
    assert root == cli.root, (root, cli.root)
    # records -> files
    registered: dict[Path, File] = {}
    for f in files:
        path = absolute_path(root, f.path)
        registered[path] = f
        if not f.on_disk:
            continue
        if not path.is_file():
            problems.append(f"record of {f.filename} without its file {path}")
        elif path.stat().st_size != f.size or sha256(path) != f.sha256:
            problems.append(f"{path}: bytes differ from the record of {f.filename}")
    # files -> records
    on_disk = files_in_product_folders(cli, [p.dir for p in products.values()])
    for path in sorted(on_disk - set(registered)):
        problems.append(f"file without a record in a product folder: {path}")
    # versions: one newest per identity, the highest
    identities: dict[tuple[int, Any, str], list[File]] = defaultdict(list)
    for f in files:
        identities[(f.product_id, f.date, f.slot)].append(f)
    for key, group in identities.items():
        newest = [f for f in group if f.is_newest]
        top = max(group, key=lambda f: f.version)
        if [f.id for f in newest] != [top.id]:
            problems.append(
                f"identity {key}: newest {[f.filename for f in newest]}, "
                f"highest version {top.filename}"
            )
        if len({f.version for f in group}) != len(group):
            problems.append(f"identity {key}: two records of one version")
        if no_duplicate_builds:
            made = [(f.code_id, frozenset(links[f.id])) for f in group if f.run_id is not None]
            if len(set(made)) != len(made):
                problems.append(
                    f"identity {key}: built twice from the same code and inputs: "
                    f"{sorted(f.filename for f in group)}"
                )
    # provenance: each built file has its one succeeded run; parents are its inputs
    outputs_of_run: dict[int, list[str]] = defaultdict(list)
    for f in files:
        if f.run_id is None:
            continue
        outputs_of_run[f.run_id].append(f.filename)
        run = runs.get(f.run_id)
        if run is None or run.status != RunStatus.SUCCEEDED:
            problems.append(
                f"{f.filename}: its run {f.run_id} is {run.status if run else 'missing'}"
            )
            continue
        if run.output_filename != f.filename:
            problems.append(f"{f.filename}: run {run.id} was to make {run.output_filename}")
        if set(run.inputs) != links[f.id]:
            problems.append(
                f"{f.filename}: parents {sorted(links[f.id])} but run {run.id} "
                f"read {sorted(run.inputs)}"
            )
    for run_id, names in outputs_of_run.items():
        if len(names) != 1:
            problems.append(f"run {run_id} recorded {names}")
    for run in runs.values():
        if not settled:
            continue
        if run.status in ACTIVE_RUN_STATUSES:
            problems.append(f"run {run.id} ({run.output_filename}) left {run.status}")
        elif run.promoting is not None:
            problems.append(f"run {run.id} is {run.status} but keeps a promoting record")
        if (
            run.status == RunStatus.SUCCEEDED
            and run.output_filename is not None
            and run.output_filename not in outputs_of_run.get(run.id, [])
        ):
            problems.append(f"run {run.id} succeeded but {run.output_filename} has no record")
    # staging and lock
    staging = root / STAGING_DIR
    left = [p for p in staging.rglob("*") if not p.is_dir()] if staging.is_dir() else []
    if settled and left:
        problems.append(f"staging not empty: {sorted(str(p) for p in left)}")
    if running:
        problems.append(f"pass rows still running: {[(p.id, p.pid) for p in running]}")
    if not free:
        problems.append("the pass lock cannot be taken")
    # nothing lost
    by_name = {f.filename: f for f in files}
    rejected = cli.errors / "rejected"
    for name, digest in (originals or {}).items():
        f = by_name.get(name)
        if f is not None and f.sha256 == digest:
            if (cli.incoming / name).exists():
                problems.append(f"{name} is registered but still in incoming")
            continue
        here = cli.incoming / name
        if here.is_file() and sha256(here) == digest:
            continue
        if rejected.is_dir() and any(
            sha256(p) == digest
            for p in rejected.iterdir()
            if p.is_file() and not p.name.endswith(".reason")
        ):
            continue
        problems.append(f"incoming file {name} was lost")
    if idle and pending:
        problems.append(f"{len(pending)} pending row(s) left after a complete pass: {pending}")
    assert not problems, "invariants broken:\n  " + "\n  ".join(problems)
    return {"files": {f.filename: f for f in files}, "runs": runs}


def content_state(cli: CliHarness) -> dict[str, tuple[str, str]]:
    """filename -> (path relative to the root, sha256) of every registered file."""
    with engine_of(cli) as engine, Session(engine) as session:
        rows = session.execute(select(File.filename, File.path, File.sha256)).all()
    return {r.filename: (r.path, r.sha256) for r in rows}


def newest_content(cli: CliHarness) -> dict[tuple[str, str, str], str]:
    """(product, date, slot) -> sha256 of its newest file: what users see, whatever
    versions it took to get there."""
    with engine_of(cli) as engine, Session(engine) as session:
        rows = session.execute(
            select(Product.name, File.date, File.slot, File.sha256)
            .join(Product, Product.id == File.product_id)
            .where(File.is_newest.is_(True))
        ).all()
    return {(r.name, r.date.isoformat(), r.slot): r.sha256 for r in rows}


def dump_without_passes(db: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but ``pass_record`` (a pass always adds its own row) and ``event``
    (and its ``pass.finished`` event)."""
    from tests.helpers import dump_database

    dump = dump_database(db)
    dump.pop("pass_record", None)
    dump.pop("event", None)
    return dump
