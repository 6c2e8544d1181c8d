"""Test codes and helpers for the user-code tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tests.helpers import CliHarness, edit_mission

#: usage: loud.py MODE MB DATE WHEN INPUT... OUTPUT; MODE print: MB of stdout (between
#: HEAD-MARK and TAIL-MARK lines); MODE alloc: hold MB of memory; only when DATE == WHEN
LOUD = """
import sys

def main(argv):
    mode, mb, date, when, *rest = argv
    *inputs, output = rest
    if when in ("all", date):
        if mode == "print":
            out = sys.stdout.buffer
            out.write(b"HEAD-MARK\\n")
            block = b"x" * 1023 + b"\\n"
            for _ in range(int(mb) * 1024):
                out.write(block)
            out.write(b"TAIL-MARK\\n")
            out.flush()
        if mode == "alloc":
            held = bytearray(int(mb) * 1024 * 1024)
            for i in range(0, len(held), 4096):
                held[i] = 1
    with open(output, "wb") as fh:
        for name in inputs:
            with open(name, "rb") as src:
                fh.write(src.read())
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
"""


def use_code(
    cli: CliHarness,
    name: str,
    source: str,
    args: list[str],
    *,
    mode: int = 0o644,
    apply_code: int = 0,
    **tables: dict[str, Any],
) -> Path:
    """Make L0_to_L1 run ``scripts/NAME`` (with ``source``) and apply the mission."""
    path = cli.mission_dir / "codes" / "scripts" / name
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    path.chmod(mode)

    def mutate(doc: dict[str, Any]) -> None:
        code = doc["processes"]["L0_to_L1"]["code"]
        code["path"] = f"scripts/{name}"
        code["args"] = args
        for table, values in tables.items():
            doc.setdefault(table, {}).update(values)

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file), code=apply_code)
    return path


def l1_runs(cli: CliHarness) -> list[dict[str, Any]]:
    return [r for r in cli.json("runs", "--limit", "0") if r["process"] == "L0_to_L1"]
