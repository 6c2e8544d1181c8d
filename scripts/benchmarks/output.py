"""Benchmark 4 — the controller's memory against what a code prints.

The rot13 example mission, its daily L1 code replaced by one that prints MB megabytes to
stdout for one date (nothing for the others), then ``dbproc run`` is measured: the
controller's peak resident memory (VmHWM of the dbproc process, not of its codes) with a
code printing 0 MB and one printing MB. The output is streamed to capped files by the
worker (``[execution] log_limit_bytes``), so the two peaks should be within a few MB.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w

from dbproc.examples import write_example

from .common import BenchError, Table, dbproc, say, scratch_db, workdir

LOUD = """\
import sys
mb, date, when, *rest = sys.argv[1:]
*inputs, output = rest
if date == when:
    block = b"x" * 1023 + b"\\n"
    for _ in range(int(mb) * 1024):
        sys.stdout.buffer.write(block)
with open(output, "wb") as fh:
    for name in inputs:
        fh.write(open(name, "rb").read())
"""


def one_case(backend: str, megabytes: int) -> dict[str, Any]:
    """``dbproc run`` with a code printing ``megabytes`` MB for one date."""
    with workdir(f"output-{backend}") as tmp, scratch_db(backend, tmp) as db:
        toml = write_example(tmp / "mission")
        (toml.parent / "codes" / "scripts" / "loud.py").write_text(LOUD)
        doc = tomllib.loads(toml.read_text())
        doc["processes"]["L0_to_L1"]["code"].update(
            path="scripts/loud.py", args=[str(megabytes), "{DATE}", "20160101"]
        )
        toml.write_text(tomli_w.dumps(doc))
        dbproc(db, "-q", "config", "apply", str(toml))
        say(f"  run {backend} with a code printing {megabytes} MB ...")
        result = dbproc(db, "-q", "--json", "run")
        if result.json_out().get("exit_code") != 0:
            raise BenchError(f"the pass did not succeed: {result.stdout[-2000:]}")
        return {"backend": backend, "printed_mb": megabytes, "dbproc": result.as_dict()}


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """A quiet code, then one printing each size (MB); the table and the raw results."""
    del profile_dir
    table = Table(
        "output: the controller's peak memory against what a code prints",
        ["backend", "printed MB", "wall s", "controller peak RSS MB", "growth over quiet MB"],
    )
    results: list[dict[str, Any]] = []
    for backend in backends:
        quiet_kb = None
        for mb in [0, *sizes]:
            r = one_case(backend, mb)
            results.append(r)
            peak = r["dbproc"]["peak_rss_kb"]
            quiet_kb = peak if quiet_kb is None else quiet_kb
            table.add(backend, mb, r["dbproc"]["wall_s"], peak / 1024, (peak - quiet_kb) / 1024)
            say(table.render().splitlines()[-1])
    table.notes.append("peak RSS = VmHWM of the dbproc process itself (its codes excluded)")
    return table, results
