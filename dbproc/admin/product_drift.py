"""Warnings for product changes that leave registered files behind.

A product's ``dir`` or ``format`` may change in the mission file; files already
registered keep their names and places (nothing is ever moved or renamed by ``config
apply``), so they no longer match. The apply says so, with counts and an example,
instead of letting a person find out from ``dbproc check`` months later.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db.file_paths import destination, stored_path
from dbproc.db.models import File, Product
from dbproc.naming import FilenameFormat, FormatError

#: files looked at per product (the count says "at least" beyond it)
SCAN_LIMIT = 100_000


def drift_warning(
    session: Session, product: Product, root: Path, *, dir_changed: bool, format_changed: bool
) -> str | None:
    """One line about the registered files of ``product`` that its new ``dir``/``format``
    no longer describes, or None when every file still matches (or there are none)."""
    if not (dir_changed or format_changed) or product.id is None:
        return None
    try:
        fmt = FilenameFormat.parse(product.format)
    except FormatError:
        return None
    rows = session.execute(
        select(File.filename, File.date, File.path)
        .where(File.product_id == product.id)
        .order_by(File.id)
        .limit(SCAN_LIMIT)
    ).all()
    bad_name = [r.filename for r in rows if format_changed and fmt.match(r.filename) is None]
    bad_dir = [
        r.filename
        for r in rows
        if dir_changed
        and r.path != stored_path(root, destination(root, product.dir, r.date, r.filename))
    ]
    if not bad_name and not bad_dir:
        return None
    parts = []
    if bad_name:
        parts.append(
            f"{len(bad_name)} registered file(s) no longer match the new format "
            f"(e.g. {bad_name[0]})"
        )
    if bad_dir:
        parts.append(
            f"{len(bad_dir)} registered file(s) are not under the new dir (e.g. {bad_dir[0]})"
        )
    return (
        "; ".join(parts) + "; they keep their names and places (nothing is moved or "
        "renamed) and new files follow the new rules; `dbproc check` lists them"
    )
