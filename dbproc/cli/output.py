"""Rendering helpers for the CLI: plain tables, a progress bar on terminals only."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dbproc import logs


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain aligned text table (no colour: it must survive pipes and mail)."""
    if not rows:
        return ""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextmanager
def progress_bar(
    label: str, *, enabled: bool = True
) -> Iterator[Callable[[int, int], None] | None]:
    """A ``(done, total)`` callback drawing a bar on a terminal; None under cron or pipes.

    The bar and the log lines share one console: while the bar is up, log lines are
    printed above it (never onto it). The total is what is known so far; chained builds
    join it as their inputs appear, so it reads "of 30 so far" until the end.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    # rich only for a bar on a terminal (importing it costs every command ~50 ms)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.text import Text

    console = Console(stderr=True)
    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed} of {task.fields[known]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None, known="?")

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, known=f"{total} so far")

        def print_line(line: str) -> None:
            console.print(Text(line), soft_wrap=True, highlight=False)

        with logs.print_through(print_line):
            yield update
