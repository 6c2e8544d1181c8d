"""Files that arrive a second time: a name already registered (absorbed when identical,
a registered file restored from it when missing, refused when different) and a symlink
in incoming to a file already in its product folder (registered where it is)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from dbproc.db.file_paths import absolute_path, destination
from dbproc.db.files import list_versions
from dbproc.db.unit import release
from dbproc.faults import crash_point
from dbproc.ingest.candidates import Candidate, Known
from dbproc.ingest.desk import IngestDesk
from dbproc.ingest.inspection import InspectorSet
from dbproc.ingest.placement import hash_file, place, unlink_durably

logger = logging.getLogger("dbproc.ingest")


def absorb_redelivery(desk: IngestDesk, c: Candidate, known: Known) -> None:
    """Take a re-delivered copy of a registered file out of incoming, or refuse it if
    its bytes differ."""
    digest = hash_file(c.path)
    if digest.sha256 != known.sha256 or digest.size != known.size:
        desk.reject(
            c,
            "conflict",
            f"a different file called {c.name} is registered "
            f"(sha256 {known.sha256[:12]}…, this one {digest.sha256[:12]}…); "
            "a registered file is never overwritten: deliver it under a new "
            "name or version",
        )
        return
    registered = absolute_path(desk.paths.root, known.path)
    if not registered.exists():
        place(c.path, registered, digest, desk.paths.staging / "ingest")
        logger.warning("restored missing registered file %s from incoming", registered)
    unlink_durably(c.path)
    crash_point("ingest.unlinked")
    logger.info("absorbed %s: identical to the registered file", c.name)
    desk.report.absorbed.append(c.name)


def ingest_link(
    desk: IngestDesk, inspectors: InspectorSet, c: Candidate, known: Known | None
) -> None:
    """Register the file a symlink in incoming points to, where it is, if that is its
    product folder under its own name; refuse the link otherwise."""
    target = Path(os.path.realpath(c.path))
    if not target.is_file():
        desk.reject(c, "bad_symlink", f"symlink to {target}, which is not a file")
        return
    if target.name != c.name:
        desk.reject(
            c,
            "bad_symlink",
            f"symlink to {target}, whose name differs from "
            "the link's; link under the file's own name",
        )
        return
    verdict = inspectors.identify(target, c.name)
    if verdict.facts is None:
        desk.refuse(c, verdict)
        return
    facts = verdict.facts
    dst = destination(desk.paths.root, facts.product.dir, facts.date, c.name)
    if os.path.realpath(dst.parent) != str(target.parent):
        desk.reject(
            c,
            "bad_symlink",
            f"symlink to {target}, which is not in the "
            f"product folder {dst.parent}; put the file itself in incoming",
        )
        return
    digest = hash_file(target)
    if known is not None:
        if known.sha256 == digest.sha256 and absolute_path(desk.paths.root, known.path) == dst:
            unlink_durably(c.path)
            desk.report.absorbed.append(c.name)
            return
        desk.reject(c, "conflict", f"a different file called {c.name} is registered")
        return
    existing = list_versions(desk.session, facts.product.id, facts.date, facts.slot)
    if any(e.version == facts.version for e in existing):
        release(desk.session)
        desk.reject(c, "conflict", "same product, date, keywords and version as a registered file")
        return
    desk.record(c, facts, dst, digest, existing)
