"""Worked example missions shipped with dbproc (used by ``dbproc example``, the demo,
the tests and the benchmarks)."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLES = ("rot13",)


def example_dir(name: str = "rot13") -> Path:
    """The folder holding the example's mission file, codes and raw files."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
    return Path(__file__).resolve().parent / name


def write_example(dest: str | Path, name: str = "rot13", *, with_incoming: bool = True) -> Path:
    """Write the example mission into ``dest``; return the path of its mission file.

    ``dest`` receives ``mission.toml`` and ``codes/``; with ``with_incoming`` the raw
    files are placed in ``data/incoming`` ready for ``dbproc ingest``.
    """
    source = example_dir(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "mission.toml", dest / "mission.toml")
    shutil.copytree(
        source / "codes",
        dest / "codes",
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    incoming = dest / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    if with_incoming:
        for raw in sorted((source / "incoming").iterdir()):
            shutil.copy2(raw, incoming / raw.name)
    return dest / "mission.toml"
