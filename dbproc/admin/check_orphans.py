"""``dbproc check``: product files on disk without a record (orphans).

It walks each product folder, identifies files that match a product's format with the
inspectors, and with ``--repair`` registers the ones it can place without doubt.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.orm import Session

from dbproc.admin.check_report import CheckReport, Problem
from dbproc.db import queries
from dbproc.db.file_paths import MissionPaths, destination, stored_path
from dbproc.db.files import list_versions, product_rules, register_file
from dbproc.db.unit import commit, release
from dbproc.ingest.facts import FileFacts
from dbproc.ingest.inspection import InspectorSet
from dbproc.ingest.placement import hash_file


def _product_roots(paths: MissionPaths, dirs: list[str]) -> list[Path]:
    """The folders under which product files can be: each template's fixed leading part."""
    roots: set[Path] = set()
    for template in dirs:
        fixed: list[str] = []
        for part in template.split("/"):
            if "{" in part:
                break
            fixed.append(part)
        roots.add(paths.root.joinpath(*fixed) if fixed else paths.root)
    out: list[Path] = []
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if not any(root == o or o in root.parents for o in out):
            out.append(root)
    return out


def find_orphans(
    session: Session,
    paths: MissionPaths,
    registered: set[str],
    report: CheckReport,
    *,
    repair: bool,
) -> None:
    """Report (and with ``repair`` register) the orphans under the product folders."""
    rules = product_rules(session)
    release(session)
    skip = {
        paths.incoming.resolve(),
        paths.errors.resolve(),
        paths.staging.resolve(),
        (paths.root / ".dbproc").resolve(),
    }
    inspectors = InspectorSet(rules, paths.codes)
    for top in _product_roots(paths, [r.dir for r in rules]):
        if not top.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d for d in dirnames if (here / d).resolve() not in skip and not d.startswith(".")
            )
            for name in sorted(filenames):
                path = here / name
                if str(path) in registered or name.startswith("."):
                    continue
                if not any(r.format.match(name) for r in rules):
                    continue
                _orphan(session, paths, inspectors, path, report, repair=repair)


def _orphan(
    session: Session,
    paths: MissionPaths,
    inspectors: InspectorSet,
    path: Path,
    report: CheckReport,
    *,
    repair: bool,
) -> None:
    verdict = inspectors.identify(path)
    facts = verdict.facts
    if facts is None:
        report.problems.append(
            Problem(
                "orphan_unidentified",
                str(path),
                f"not registered and not identifiable: {verdict.message}",
            )
        )
        return
    if destination(paths.root, facts.product.dir, facts.date, path.name) != path:
        report.problems.append(
            Problem(
                "orphan_unidentified",
                str(path),
                f"looks like {facts.product.name} {facts.date} but is not "
                "in that product's folder; move it to incoming",
            )
        )
        return
    problem = Problem(
        "orphan",
        str(path),
        f"a {facts.product.name} file with no record"
        + ("; registered" if repair else "; --repair registers it"),
    )
    report.problems.append(problem)
    if repair:
        _register_orphan(session, paths, facts, path, problem)


def _register_orphan(
    session: Session, paths: MissionPaths, facts: FileFacts, path: Path, problem: Problem
) -> None:
    """Register an identified orphan, unless its name or identity is taken already."""
    known = queries.find_file(session, path.name)
    existing = list_versions(session, facts.product.id, facts.date, facts.slot)
    if known is not None or any(e.version == facts.version for e in existing):
        release(session)
        problem.kind = "orphan_unidentified"
        problem.detail = (
            f"a {facts.product.name} file with no record, but its name or "
            "identity is registered for another file; look at it"
        )
        return
    digest = hash_file(path)
    register_file(
        session,
        facts,
        filename=path.name,
        path=stored_path(paths.root, path),
        sha256=digest.sha256,
        size=digest.size,
        existing=existing,
        cause=f"check registered orphan {path.name}",
    )
    commit(session)
    problem.repaired = True
