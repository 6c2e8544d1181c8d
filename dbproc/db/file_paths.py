"""Where files are on disk: the mission's folders, the folder a product's file belongs
in, and how a file's path is stored in the database (relative to the mission root)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbproc.naming import render_dir

STAGING_DIR = ".dbproc-staging"


def destination(root: Path, product_dir: str, date: dt.date, filename: str) -> Path:
    """Where a file of a product belongs."""
    return root / render_dir(product_dir, date) / filename


def stored_path(root: Path, path: Path) -> str:
    """How a file's path is stored: relative to the root when inside it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def absolute_path(root: Path, stored: str) -> Path:
    """A stored path made absolute."""
    p = Path(stored)
    return p if p.is_absolute() else root / p


def staging_dir(root: Path) -> Path:
    """The staging folder, on the data root's filesystem."""
    return root / STAGING_DIR


@dataclass(frozen=True)
class MissionPaths:
    """The mission's folders as absolute paths."""

    name: str
    root: Path
    incoming: Path
    errors: Path
    codes: Path

    @classmethod
    def of(cls, mission: Any) -> MissionPaths:
        """From a :class:`~dbproc.db.models.Mission` row."""
        return cls(
            mission.name,
            Path(mission.root_dir),
            Path(mission.incoming_dir),
            Path(mission.errors_dir),
            Path(mission.codes_dir),
        )

    @property
    def staging(self) -> Path:
        """Staging folder on the root's filesystem."""
        return staging_dir(self.root)

    @property
    def rejected(self) -> Path:
        """Where refused incoming files go."""
        return self.errors / "rejected"

    @property
    def failed_runs(self) -> Path:
        """Where failed runs keep their logs and partial output."""
        return self.errors / "runs"
